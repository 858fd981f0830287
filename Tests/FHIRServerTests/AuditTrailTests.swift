import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
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
        let stored = try await store.reading {
            try await $0.resources(ofType: "AuditEvent", since: nil, after: nil, limit: 100)
        }
        #expect(stored.count == 19)
        try await store.close()
    }

    /// Under a flood the queue stays bounded: recording waits for a slow writer instead of
    /// holding every event in memory, and none is dropped.
    @Test func aFloodWaitsForTheWriterInsteadOfGrowingTheQueue() async throws {
        let store = try await TestDatabases.makeStore(.sqlite)
        let trail = AuditTrail(
            store: PoisonedStore(base: store, poison: "poison", delay: .milliseconds(20)), maximumPending: 40)
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
