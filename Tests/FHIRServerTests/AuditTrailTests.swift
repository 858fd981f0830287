import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Testing

/// An audit trail no request can suppress (issue 13): one request carrying `%00` once rolled
/// back the AuditEvents of every user queued with it.
@Suite struct AuditTrailTests {
    static let backends = TestDatabases.backends

    @Test(arguments: backends)
    func aControlCharacterNeverDropsAnotherEvent(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            let admin = try await harness.token("system/*.*", subject: "admin")
            #expect(
                try await harness.call(.put, "Patient/p1", token: admin, body: #"{"resourceType":"Patient","id":"p1"}"#)
                    .status == .created)
            await harness.trail.flush()
            let before = await harness.trail.written
            // Queued together: users' reads and one request with NUL and other control characters.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        let user = try await harness.token("system/*.read", subject: "user\(index)")
                        _ = try await harness.call(.get, "Patient/p1", token: user)
                    }
                }
                // Control characters in the query (kept as sent, base64) and in a token's subject.
                group.addTask {
                    let evil = try await harness.token("system/*.*", subject: "evil\u{0}\u{1}\u{7F}")
                    _ = try await harness.call(.get, "Observation?patient=Patient/%00%01%7F&code=%00", token: evil)
                }
            }
            await harness.trail.flush()
            #expect(await harness.trail.failures == 0)
            #expect(await harness.trail.written == before + 11)
            let events = try await harness.call(.get, "AuditEvent?entity=Patient/p1&_count=100", token: admin)
            #expect(events.json?["total"]?.intValue ?? 0 >= 10)
            // The request with control characters has its event too (its patient, not a valid
            // id, is not listed), with the token's subject escaped.
            // Only the evil request's: the admin's own AuditEvent search just above is written
            // asynchronously, and may or may not be there yet.
            let searches =
                (try await harness.call(.get, "AuditEvent?subtype=search-type&_count=100", token: admin).json?["entry"]?
                .arrayValue ?? [])
                .filter { $0["resource"]?["agent"]?.arrayValue?.first?["name"]?.stringValue != "admin" }
            let queries = searches.compactMap { $0["resource"]?["entity"]?.arrayValue?.first?["query"]?.stringValue }
            #expect(
                queries.compactMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } == [
                    "patient=Patient/%00%01%7F&code=%00"
                ])
            #expect(
                searches.compactMap { $0["resource"]?["agent"]?.arrayValue?.first?["name"]?.stringValue } == [
                    #"evil\u0000\u0001\u007F"#
                ])
        }
    }

    /// `POST _search` carries its criteria in the body: its patients are recorded as a GET's are.
    @Test(arguments: backends)
    func postSearchRecordsThePatientsOfItsForm(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            let admin = try await harness.token("system/*.*", subject: "admin")
            let search = try await harness.call(
                .post, "Observation/_search", token: admin, body: "patient=Patient/p2&code=x",
                contentType: "application/x-www-form-urlencoded")
            #expect(search.status == .ok)
            await harness.trail.flush()
            let events = try await harness.call(.get, "AuditEvent?entity=Patient/p2", token: admin)
            let subtypes = events.json?["entry"]?.arrayValue?.compactMap {
                $0["resource"]?["subtype"]?.arrayValue?.first?["code"]?.stringValue
            }
            #expect(subtypes == ["search-type"])
        }
    }

    /// The AuditEvent of a `POST _search` records its whole criteria (the form, then the URL's
    /// query), under the same 2 KB bound as a GET's query.
    @Test(arguments: backends)
    func postSearchRecordsItsFormAsTheQuery(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            let admin = try await harness.token("system/*.*", subject: "admin")
            let longCode = String(repeating: "c", count: 5000)
            for (path, form) in [
                ("Observation/_search?_count=5", "code=secret-code&status=final"),
                ("Condition/_search", "code=\(longCode)"),
            ] {
                let search = try await harness.call(
                    .post, path, token: admin, body: form, contentType: "application/x-www-form-urlencoded")
                #expect(search.status == .ok)
            }
            await harness.trail.flush()
            func recorded(_ type: String) async throws -> (query: String?, description: String?) {
                let events =
                    try await harness.call(.get, "AuditEvent?subtype=search-type&_count=100", token: admin).json?[
                        "entry"]?.arrayValue ?? []
                let entity = events.compactMap { $0["resource"]?["entity"]?.arrayValue?.first }.first {
                    $0["description"]?.stringValue?.hasPrefix(type) == true
                }
                let query = entity?["query"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map {
                    String(decoding: $0, as: UTF8.self)
                }
                return (query, entity?["description"]?.stringValue)
            }
            #expect(try await recorded("Observation").query == "code=secret-code&status=final&_count=5")
            let long = try await recorded("Condition")
            #expect(long.query == "code=" + String(longCode.prefix(2043)))
            #expect(long.description?.contains("query truncated to 2048 of 5005 bytes") == true)
        }
    }

    @Test func controlCharactersAreEscapedNotDropped() {
        let record = AuditRecord(
            subtypes: [.interaction("search-type")], action: "E", outcome: "0", agentName: "a\u{0}b",
            query: "patient=Patient/%00",
            patients: ["\u{0}\u{1B}x"], tenant: "t\u{7}")
        let event = record.resource(observer: "test")
        let text = String(decoding: JSONWriter(pretty: false).bytes(event), as: UTF8.self)
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 })
        #expect(text.contains(#"Patient/\\u0000\\u001Bx"#))
        #expect(event["agent"]?.arrayValue?.first?["name"] == #"a\u0000b"#)
        #expect(event["source"]?["site"] == #"t\u0007"#)
    }

    /// Clients are keyed by their token's subject: a subject shared by two apps is one client;
    /// a client id that happens to equal someone's subject is another.
    @Test func theExfiltrationDetectorKeysClientsByTokenSubject() throws {
        var detector = try ExfiltrationDetector(patients: 3, window: 60)
        func read(_ patients: [String], subject: String?, clientId: String, at seconds: Double) -> AuditRecord {
            AuditRecord(
                subtypes: [.interaction("search-type")], action: "E",
                recorded: Date(timeIntervalSince1970: 1_746_100_800 + seconds),
                outcome: "0", agentName: subject ?? clientId, agentClientId: clientId,
                agentAddress: "10.0.0.\(Int(seconds))",
                patientsReturned: Set(patients))
        }
        #expect(detector.observe(read(["a", "b"], subject: "mallory", clientId: "app-1", at: 1)) == nil)
        // The same subject through another app and address: still mallory.
        let alert = detector.observe(read(["c", "d"], subject: "mallory", clientId: "app-2", at: 2))
        #expect(alert?.agentName == "mallory")
        // A subject-less token whose client id is "carol" is not the user carol.
        #expect(detector.observe(read(["a", "b"], subject: "carol", clientId: "carol-app", at: 3)) == nil)
        #expect(detector.observe(read(["c", "d"], subject: nil, clientId: "carol", at: 4)) == nil)
        #expect(ExfiltrationDetector.client(of: read([], subject: nil, clientId: "carol", at: 5)).key == "client:carol")
        #expect(ExfiltrationDetector.client(of: read([], subject: "carol", clientId: "x", at: 5)).key == "sub:carol")
    }
}

extension AuditTrailTests {
    /// An event the store still refuses costs only itself: its batch is written one by one.
    @Test func aRefusedEventDoesNotTakeItsBatchWithIt() async throws {
        let store = try await TestDatabases.makeStore(.sqlite)
        let trail = AuditTrail(store: PoisonedStore(base: store, poison: "poison"))
        for index in 0..<20 {
            await trail.record(
                AuditRecord(
                    subtypes: [.interaction("read")], action: "R", outcome: "0",
                    agentName: index == 7 ? "poison" : "user\(index)"))
        }
        await trail.flush()
        #expect(await trail.written == 19)
        #expect(await trail.failures == 1)
        #expect(try await Self.storedAuditEvents(in: store) == 19)
        try await store.close()
    }

    /// Under a flood the queue stays bounded: recording waits for a slow writer instead of
    /// holding every event in memory, and none is dropped. (The wait is not what this tests:
    /// a long one, since a full parallel run once starved the writer past the default.)
    @Test func aFloodWaitsForTheWriterInsteadOfGrowingTheQueue() async throws {
        let store = try await TestDatabases.makeStore(.sqlite)
        let trail = AuditTrail(
            store: PoisonedStore(base: store, poison: "poison", delay: .milliseconds(20)), maximumPending: 40,
            commit: .writeBehind, maximumWait: .seconds(300))
        for index in 0..<300 {
            await trail.record(
                AuditRecord(subtypes: [.interaction("read")], action: "R", outcome: "0", agentName: "user\(index)"))
        }
        #expect(await trail.peakPending <= 41)
        await trail.flush()
        #expect(await trail.written == 300)
        #expect(await trail.failures == 0)
        try await store.close()
    }
}

/// The audit trail's commit before the response (issue 18: a server that stops loses no
/// AuditEvent of a request it answered), and what a read gets when its event cannot be stored.
extension AuditTrailTests {
    /// A response goes out only once its AuditEvent is in the database: read straight after the
    /// answer, without waiting for the writer, the event is there.
    @Test(arguments: backends)
    func anAnswerGoesOutAfterItsAuditEventIsCommitted(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            let admin = try await harness.token("system/*.*", subject: "admin")
            #expect(
                try await harness.call(.put, "Patient/p1", token: admin, body: #"{"resourceType":"Patient","id":"p1"}"#)
                    .status == .created)
            for index in 0..<5 {
                let reader = try await harness.token("system/*.read", subject: "reader\(index)")
                #expect(try await harness.call(.get, "Patient/p1", token: reader).status == .ok)
                // No flush: the read's own event is counted as written when its answer arrives.
                #expect(await harness.trail.written == index + 2)
            }
            let events = try await harness.call(.get, "AuditEvent?entity=Patient/p1&subtype=read", token: admin)
            #expect(events.json?["total"]?.intValue == 5)
        }
    }

    /// With the database unavailable to the audit trail, a read is not sent (503 `transient`)
    /// once its event could not be stored within the wait; a write already carried out is
    /// answered as it went. Nothing is dropped: once the database is back, every event queued
    /// in the outage is written.
    @Test(arguments: backends)
    func aReadIsNotSentWithoutItsAuditEventAndNoEventIsLost(backend: TestBackend) async throws {
        let base = try await TestDatabases.makeStore(backend)
        _ = try await base.update(
            try JSONParser.parse(#"{"resourceType":"Patient","id":"p1"}"#), type: "Patient", id: "p1", ifMatch: nil)
        let outage = PoisonedStore.Outage(isOn: false)
        let store = PoisonedStore(base: base, poison: "\u{0}never", outage: outage)
        let stores = TenantStores(defaultStore: store)
        let trail = AuditTrail(stores: stores, maximumWait: .seconds(5))
        let router = FHIRApplication.buildRouter(stores: stores, security: FHIRSecurity(audit: trail))
        do {
            try await Application(router: router).test(.router) { client in
                await outage.start()
                let read = try await client.fhir(.get, "Patient/p1")
                #expect(read.status == .serviceUnavailable)
                #expect(read.json?["issue"]?.arrayValue?.first?["code"] == "transient")
                #expect(read.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.contains("audit") == true)
                #expect(try await client.fhir(.get, "Patient?_id=p1").status == .serviceUnavailable)
                // A batch Bundle's entries may read: held back too, saying what it did was done.
                let batch = try await client.fhir(
                    .post, "",
                    body:
                        #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/p1"}}]}"#
                )
                #expect(batch.status == .serviceUnavailable)
                #expect(
                    batch.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.contains("carried out")
                        == true)
                // A write's answer is not held back by its audit: it was carried out.
                let write = try await client.fhir(.put, "Patient/p2", body: #"{"resourceType":"Patient","id":"p2"}"#)
                #expect(write.status == .created)
                // An error's answer does not wait for its event (which cannot be stored: 5 s).
                let started = ContinuousClock.now
                #expect(try await client.fhir(.get, "Patient/missing").status == .notFound)
                #expect(ContinuousClock.now - started < .seconds(5))
                #expect(await outage.refused > 2)
                #expect(await trail.written == 0)
                await outage.end()
                await trail.flush()
                #expect(await trail.written == 5)
                #expect(await trail.failures == 0)
                #expect(await trail.retries > 0)
                _ = try await client.fhir(.get, "Patient/p1")
            }
            await trail.close()
            #expect(try await Self.storedAuditEvents(in: base) == 6)
            try await stores.close()
        } catch {
            await trail.close()
            try? await stores.close()
            throw error
        }
    }

    /// A queue full of events the database cannot take does not grow: a request past it waits
    /// until its deadline and its event is counted as not stored; the queued ones are written
    /// once the database is back.
    @Test func aLongOutageKeepsTheQueueBounded() async throws {
        let base = try await TestDatabases.makeStore(.sqlite)
        let outage = PoisonedStore.Outage()
        let trail = AuditTrail(
            store: PoisonedStore(base: base, poison: "\u{0}never", outage: outage), maximumPending: 4,
            maximumWait: .milliseconds(300))
        let stored = await Self.recordReads(20, in: trail)
        #expect(stored == Array(repeating: false, count: 20))
        #expect(await trail.peakPending == 4)
        #expect(await trail.failures == 16)
        await outage.end()
        await trail.flush()
        #expect(await trail.written == 4)
        #expect(try await Self.storedAuditEvents(in: base) == 4)
        try await base.close()
    }

    /// A writer stuck in a slow store call does not hold a request past its wait. (The store
    /// is stuck 15 s and the request let go before 10: with 6 s and 4, a full parallel test run
    /// took 4.9 s to let it go after its 0.5 s wait.)
    @Test func aStuckWriterDoesNotHoldARequestPastItsWait() async throws {
        let base = try await TestDatabases.makeStore(.sqlite)
        let trail = AuditTrail(
            store: PoisonedStore(base: base, poison: "\u{0}never", delay: .seconds(15)), maximumWait: .milliseconds(500)
        )
        let started = ContinuousClock.now
        let stored = await trail.record(AuditRecord(subtypes: [.interaction("read")], action: "R", outcome: "0"))
        #expect(!stored)
        #expect(ContinuousClock.now - started < .seconds(10))
        await trail.flush()
        #expect(await trail.written == 1)
        try await base.close()
    }

    /// A batch whose commit landed before its connection was lost is written again under the
    /// same ids: found stored, never twice.
    @Test func aBatchCommittedBeforeItsConnectionWasLostIsNotWrittenTwice() async throws {
        let base = try await TestDatabases.makeStore(.sqlite)
        let lost = PoisonedStore.Outage()
        let trail = AuditTrail(
            store: PoisonedStore(base: base, poison: "\u{0}never", lostAfterCommit: lost), maximumWait: .seconds(120))
        let stored = await Self.recordReads(3, in: trail)
        #expect(stored == [true, true, true])
        #expect(await lost.refused == 1)
        #expect(await trail.retries >= 1)
        #expect(await trail.written == 3)
        #expect(await trail.failures == 0)
        #expect(try await Self.storedAuditEvents(in: base) == 3)
        try await base.close()
    }

    /// The AuditEvents `store` holds.
    static func storedAuditEvents(in store: any FHIRStore) async throws -> Int {
        try await store.reading {
            try await $0.resources(ofType: "AuditEvent", since: nil, after: nil, limit: 1000)
        }.count
    }

    /// `count` reads recorded at once by as many requests; what each was answered.
    static func recordReads(_ count: Int, in trail: AuditTrail) async -> [Bool] {
        await withTaskGroup(of: Bool.self) { group in
            for index in 0..<count {
                group.addTask {
                    await trail.record(
                        AuditRecord(subtypes: [.interaction("read")], action: "R", outcome: "0", agentName: "u\(index)")
                    )
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
    }
}
