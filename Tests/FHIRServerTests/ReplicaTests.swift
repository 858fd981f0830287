import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Two FHIR servers on one PostgreSQL database, as replicas behind a load balancer run
/// (issue 18): whatever one is asked, the other answers the same.
@Suite(.enabled(if: TestDatabases.backends.contains(.postgres)))
struct ReplicaTests {
    /// One replica: its own stores (own connection pool), trail and router.
    struct Replica {
        let stores: TenantStores
        let audit: AuditTrail?
        let router: Router<FHIRRequestContext>

        init(
            url: String, tenants: [String] = [], audit: Bool = false, exfiltration: ExfiltrationDetector? = nil,
            configuration: FHIRServerConfiguration = .init()
        ) async throws {
            stores = try await TenantStores.forDatabase(url: url, tenants: tenants)
            self.audit = audit ? AuditTrail(stores: stores, maximumWait: .seconds(120)) : nil
            if let exfiltration, let trail = self.audit { await trail.watch(exfiltration) }
            router = FHIRApplication.buildRouter(
                stores: stores, configuration: configuration, security: FHIRSecurity(audit: self.audit))
        }

        func close() async throws {
            await audit?.close()
            try await stores.close()
        }
    }

    /// Runs `body` with a client of each of two replicas on one fresh database.
    static func withReplicas(
        tenants: [String] = [], audit: Bool = false, exfiltration: ExfiltrationDetector? = nil,
        configuration: @Sendable (Int) -> FHIRServerConfiguration = { _ in .init() },
        _ body: @escaping @Sendable (any TestClientProtocol, any TestClientProtocol, [Replica]) async throws -> Void
    ) async throws {
        let url = try await TestDatabases.freshPostgresURL()
        var replicas: [Replica] = []
        for index in 0..<2 {
            replicas.append(
                try await Replica(
                    url: url, tenants: tenants, audit: audit, exfiltration: exfiltration,
                    configuration: configuration(index)))
        }
        let all = replicas
        do {
            try await Application(router: all[0].router).test(.router) { first in
                try await Application(router: all[1].router).test(.router) { second in
                    try await body(first, second, all)
                }
            }
        } catch {
            for replica in all { try? await replica.close() }
            throw error
        }
        for replica in all { try await replica.close() }
    }

    /// Sends request `index` of `indices` through `first` when even, `second` when odd, all at
    /// once; the statuses, in the order they came back.
    static func onBoth(
        _ indices: Range<Int>, _ first: any TestClientProtocol, _ second: any TestClientProtocol,
        _ send: @escaping @Sendable (any TestClientProtocol, Int) async throws -> FHIRTestResponse
    ) async throws -> [Int] {
        try await answersOnBoth(indices, first, second, send).map(\.status.code)
    }

    /// ``onBoth(_:_:_:_:)``'s answers whole.
    static func answersOnBoth(
        _ indices: Range<Int>, _ first: any TestClientProtocol, _ second: any TestClientProtocol,
        _ send: @escaping @Sendable (any TestClientProtocol, Int) async throws -> FHIRTestResponse
    ) async throws -> [FHIRTestResponse] {
        try await withThrowingTaskGroup(of: FHIRTestResponse.self) { group in
            for index in indices {
                let client = index % 2 == 0 ? first : second
                group.addTask { try await send(client, index) }
            }
            return try await group.reduce(into: [FHIRTestResponse]()) { $0.append($1) }
        }
    }

    /// The same conditional create sent to both replicas at once creates one resource: each
    /// holds the criteria's advisory lock from its search to its commit.
    @Test func conditionalCreateRacingOnTwoReplicasCreatesOne() async throws {
        try await Self.withReplicas { first, second, _ in
            for round in 0..<3 {
                let criteria = "identifier=\(encodeQuery("urn:race|\(round)"))"
                let body = #"{"resourceType":"Patient","identifier":[{"system":"urn:race","value":"\#(round)"}]}"#
                let statuses = try await Self.onBoth(0..<8, first, second) { client, _ in
                    try await client.fhir(.post, "Patient", body: body, headers: ["If-None-Exist": criteria])
                }
                #expect(statuses.filter { $0 == 201 }.count == 1, "round \(round): \(statuses)")
                #expect(statuses.filter { $0 == 200 }.count == 7, "round \(round): \(statuses)")
                #expect(try await second.fhir(.get, "Patient?\(criteria)").json?["total"] == 1)
            }
        }
    }

    /// Transaction Bundles with conditional creates of the same criteria, on both replicas at
    /// once, in opposite entry orders: one resource each, and no deadlock.
    @Test func conditionalCreatesInBundlesOnTwoReplicasCreateOneEach() async throws {
        try await Self.withReplicas { first, second, _ in
            @Sendable func bundle(_ values: [String]) -> String {
                let entries = values.map { value in
                    #"{"fullUrl":"urn:uuid:\#(UUID().uuidString.lowercased())","resource":{"resourceType":"Organization","identifier":[{"system":"urn:org","value":"\#(value)"}]},"request":{"method":"POST","url":"Organization","ifNoneExist":"identifier=urn:org|\#(value)"}}"#
                }
                return #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#
            }
            let values = (0..<6).map { "org\($0)" }
            let answers = try await Self.answersOnBoth(0..<6, first, second) { client, index in
                try await client.fhir(.post, "", body: bundle(index % 2 == 0 ? values : values.reversed()))
            }
            // Each waits for the Bundles before it: on a starved machine (the whole suite on two
            // cores) a waiter can run past the statement time limit, a retryable 503. A
            // deadlock would be PostgreSQL's 40P01, a 500.
            #expect(answers.contains { $0.status == .ok })
            for answer in answers where answer.status != .ok {
                #expect(
                    answer.status == .serviceUnavailable && answer.text.contains("retry"),
                    "\(answer.status) \(answer.text.prefix(300))")
            }
            for value in values {
                #expect(try await first.fhir(.get, "Organization?identifier=urn:org|\(value)").json?["total"] == 1)
            }
        }
    }

    /// `If-Match` updates of one version racing on both replicas: exactly one wins, the others
    /// get 412 (the update reads the current row FOR UPDATE).
    @Test func ifMatchUpdatesRacingOnTwoReplicasLetOneWin() async throws {
        try await Self.withReplicas { first, second, _ in
            let created = try await first.fhir(.post, "Patient", body: #"{"resourceType":"Patient","gender":"female"}"#)
            let path = pathOf(try #require(created.header("Location"))).components(separatedBy: "/_history").first!
            let id = try #require(path.split(separator: "/").last.map(String.init))
            let statuses = try await Self.onBoth(0..<8, first, second) { client, index in
                let body =
                    #"{"resourceType":"Patient","id":"\#(id)","gender":"male","birthDate":"2000-01-0\#(index + 1)"}"#
                return try await client.fhir(.put, "Patient/\(id)", body: body, headers: ["If-Match": #"W/"1""#])
            }
            #expect(statuses.filter { $0 == 200 }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 412 }.count == 7, "\(statuses)")
            #expect(try await second.fhir(.get, "Patient/\(id)").json?["meta"]?["versionId"] == "2")
        }
    }

    /// A tenant's database is created by whichever replica the tenant first reaches, both at
    /// once here; what one writes there the other reads.
    @Test func aTenantFirstUsedOnBothReplicasAtOnceIsOneTenant() async throws {
        try await Self.withReplicas(tenants: [
            "clinic_" + String(UUID().uuidString.lowercased().prefix(8)).replacingOccurrences(of: "-", with: "")
        ]) { first, second, replicas in
            let tenant = try #require(replicas[0].stores.tenants.first)
            let headers = ["X-FHIR-TENANT-ID": tenant]
            // A 503 (a time limit on a starved machine: a full parallel run's requests took 18 s)
            // asks the client to retry: it does, once. A 500 or a second tenant is the failure.
            @Sendable func create(_ client: some TestClientProtocol, _ gender: String) async throws -> FHIRTestResponse
            {
                let body = #"{"resourceType":"Patient","gender":"\#(gender)"}"#
                let answer = try await client.fhir(.post, "Patient", body: body, headers: headers)
                guard answer.status == .serviceUnavailable else { return answer }
                return try await client.fhir(.post, "Patient", body: body, headers: headers)
            }
            async let one = create(first, "female")
            async let other = create(second, "male")
            let (a, b) = try await (one, other)
            #expect(a.status == .created)
            #expect(b.status == .created)
            #expect(
                try await second.fhir(.get, pathOf(try #require(a.header("Location"))), headers: headers).status == .ok)
            #expect(
                try await first.fhir(.get, pathOf(try #require(b.header("Location"))), headers: headers).status == .ok)
            #expect(try await first.fhir(.get, "Patient", headers: headers).json?["total"] == 2)
            #expect(try await second.fhir(.get, "Patient").json?["total"] == 0)
        }
    }

    /// Each replica queues and batches its own AuditEvents into the shared database: every
    /// event of either lands, once.
    @Test func auditEventsOfBothReplicasAllLand() async throws {
        try await Self.withReplicas(audit: true) { first, second, replicas in
            let statuses = try await Self.onBoth(0..<60, first, second) { client, _ in
                try await client.fhir(.get, "Patient?_count=1")
            }
            #expect(statuses.allSatisfy { $0 == 200 })
            for replica in replicas { await replica.audit!.flush() }
            for replica in replicas {
                #expect(await replica.audit!.written == 30)
                #expect(await replica.audit!.failures == 0)
            }
            let store = try await replicas[1].stores.store(tenant: nil)
            let events = try await store.reading {
                try await $0.resources(ofType: "AuditEvent", since: nil, after: nil, limit: 1000)
            }
            #expect(events.count == 60)
        }
    }

    /// An export started on one replica is polled, downloaded and deleted on the other; the
    /// bound on jobs counts the jobs of both.
    @Test func anExportStartedOnOneReplicaIsPolledAndDownloadedOnTheOther() async throws {
        let configuration: @Sendable (Int) -> FHIRServerConfiguration = { index in
            FHIRServerConfiguration(
                exportDirectory: FileManager.default.temporaryDirectory.appendingPathComponent(
                    "caduceus-replica-\(index)-\(UUID().uuidString)"),
                maximumExportJobs: 2)
        }
        try await Self.withReplicas(configuration: configuration) { first, second, _ in
            for index in 0..<7 {
                let patient = #"{"resourceType":"Patient","id":"p\#(index)","gender":"female"}"#
                #expect(try await first.fhir(.put, "Patient/p\(index)", body: patient).status == .created)
                let observation =
                    #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p\#(index)"}}"#
                #expect(try await second.fhir(.post, "Observation", body: observation).status == .created)
            }
            let kickOff = try await first.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
            #expect(kickOff.status == .accepted)
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            var manifest: JSONValue?
            for _ in 0..<3000 {
                let poll = try await second.fhir(.get, status)
                if poll.status == .ok {
                    manifest = poll.json
                    break
                }
                #expect(poll.status == .accepted)
                try await Task.sleep(for: .milliseconds(50))
            }
            let outputs = try #require(manifest?["output"]?.arrayValue)
            #expect(outputs.compactMap { $0["type"]?.stringValue }.sorted() == ["Observation", "Patient"])
            for output in outputs {
                let url = try #require(output["url"]?.stringValue)
                let file = try await second.fhir(.get, pathOf(url))
                #expect(file.status == .ok)
                #expect(file.header("Content-Type") == "application/fhir+ndjson")
                let lines = file.text.split(separator: "\n")
                #expect(lines.count == 7)
                #expect(output["count"] == 7)
                #expect(lines.allSatisfy { (try? JSONParser.parse(String($0)))?["resourceType"] == output["type"] })
                #expect(try await first.fhir(.get, pathOf(url)).text == file.text)
            }
            // Two jobs are the bound: the second replica counts the first's.
            let other = try await second.fhir(.get, "Patient/$export", headers: ["Prefer": "respond-async"])
            #expect(other.status == .accepted)
            #expect(
                try await first.fhir(.get, "$export", headers: ["Prefer": "respond-async"]).status == .tooManyRequests)
            // Deleted on the one, gone on both.
            #expect(try await first.fhir(.delete, status).status == .accepted)
            #expect(try await second.fhir(.get, status).status == .notFound)
            #expect(
                try await second.fhir(.get, pathOf(try #require(outputs.first?["url"]?.stringValue))).status
                    == .notFound)
            #expect(try await second.fhir(.get, "$export", headers: ["Prefer": "respond-async"]).status == .accepted)
        }
    }

    /// A client whose reads are spread over both replicas, 4 patients through each (under the
    /// limit of 5 on either alone), raises exactly one alert: not zero (each counting its
    /// own), not two (each alerting).
    @Test func readsThroughBothReplicasRaiseOneExfiltrationAlert() async throws {
        let detector = try ExfiltrationDetector(patients: 5, window: 60)
        try await Self.withReplicas(audit: true, exfiltration: detector) { first, second, replicas in
            for index in 0..<16 {
                let body = #"{"resourceType":"Patient","id":"p\#(index)"}"#
                #expect(try await first.fhir(.put, "Patient/p\(index)", body: body).status == .created)
            }
            for index in 0..<4 {
                #expect(try await first.fhir(.get, "Patient/p\(index)").status == .ok)
                #expect(try await second.fhir(.get, "Patient/p\(index + 4)").status == .ok)
            }
            for replica in replicas { await replica.audit!.flush() }
            // More, on both at once: still within the window of the one alert.
            let statuses = try await Self.onBoth(8..<16, first, second) { client, index in
                try await client.fhir(.get, "Patient/p\(index)")
            }
            #expect(statuses.allSatisfy { $0 == 200 })
            for replica in replicas { await replica.audit!.flush() }
            let store = try await replicas[0].stores.store(tenant: nil)
            let events = try await store.reading {
                try await $0.resources(ofType: "AuditEvent", since: nil, after: nil, limit: 1000)
            }
            let alerts = events.filter { $0.body?.contains(ExfiltrationDetector.ruleId) == true }
            #expect(alerts.count == 1)
            // Counted a batch at a time: the crossing batch may carry the replica's other reads.
            let description =
                try JSONParser.parse(alerts.first?.body ?? "{}")["entity"]?.arrayValue?.first?["description"]?
                .stringValue ?? ""
            #expect((6...8).contains(Int(description.prefix { $0.isNumber }) ?? 0), "\(description)")
            #expect(events.count == 16 + 16 + 1)
        }
    }

    /// The paging links of a `POST _search` answered by one replica work on the other: the
    /// criteria are kept in the database, for the same credentials only.
    @Test func aPostSearchPagedOnTheOtherReplica() async throws {
        try await Self.withReplicas { first, second, _ in
            for index in 1...5 {
                let body = #"{"resourceType":"Patient","id":"p\#(index)","name":[{"family":"Fam\#(index)"}]}"#
                #expect(try await first.fhir(.put, "Patient/p\(index)", body: body).status == .created)
            }
            let posted = try await first.fhir(
                .post, "Patient/_search", body: "family=fam&_count=2&_sort=_id",
                contentType: "application/x-www-form-urlencoded")
            var ids = posted.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []
            var next = posted.json?["link"]?.arrayValue?.first { $0["relation"] == "next" }?["url"]?.stringValue
            #expect(next?.contains("_getpages=") == true)
            var hops = 0
            while let url = next, hops < 5 {
                hops += 1
                let page = try await (hops % 2 == 1 ? second : first).fhir(.get, pathOf(url))
                #expect(page.status == .ok)
                ids += page.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []
                next = page.json?["link"]?.arrayValue?.first { $0["relation"] == "next" }?["url"]?.stringValue
            }
            #expect(ids == ["p1", "p2", "p3", "p4", "p5"])
            let key = posted.json?["link"]?.arrayValue?.first { $0["relation"] == "next" }?["url"]?.stringValue ?? ""
            #expect(
                try await second.fhir(.get, pathOf(key), headers: ["Authorization": "Bearer someone-else"]).status
                    == .gone)
        }
    }

    /// The stored searches in the database keep the in-memory bounds: capacity, bytes,
    /// lifetime, owner (kept hashed) and path.
    @Test func storedSearchesInTheDatabaseAreBounded() async throws {
        try await SharedExportJobsTests.withTwoStores { first, second in
            let here = SharedStoredSearches(
                database: first.database, limits: StoredSearches(capacity: 3, lifetime: 60, maximumBytes: 1 << 20))
            let there = SharedStoredSearches(
                database: second.database, limits: StoredSearches(capacity: 3, lifetime: 60, maximumBytes: 1 << 20))
            var keys: [String] = []
            for index in 0..<5 {
                keys.append(
                    try await (index % 2 == 0 ? here : there).store(
                        [("family", "f\(index)")], path: "/Patient", owner: "a"))
            }
            let rows = try await first.database.withConnection {
                try await $0.query("SELECT owner FROM caduceus_stored_searches", [])
            }
            #expect(rows.count == 3)
            #expect(rows.allSatisfy { $0.first?.string?.count == 64 })  // a SHA-256, not the credentials
            #expect(try await there.parameters(key: keys[0], path: "/Patient", owner: "a") == nil)
            #expect(try await there.parameters(key: keys[4], path: "/Patient", owner: "a")?.first?.value == "f4")
            #expect(try await here.parameters(key: keys[4], path: "/Patient", owner: "b") == nil)
            #expect(try await here.parameters(key: keys[4], path: "/Observation", owner: "a") == nil)
            let big = SharedStoredSearches(
                database: first.database, limits: StoredSearches(capacity: 100, lifetime: 60, maximumBytes: 10_000))
            for index in 0..<10 {
                _ = try await big.store(
                    [("family", String(repeating: "x", count: 3000))], path: "/Patient\(index)", owner: "a")
            }
            let count = try await first.database.withConnection {
                try await $0.query("SELECT COUNT(*) FROM caduceus_stored_searches", [])
            }
            #expect((count.first?.first?.int ?? 99) <= 3)
            // One owner's flood pushes out its own oldest keys, not another's.
            let shared = SharedStoredSearches(
                database: first.database,
                limits: StoredSearches(capacity: 100, lifetime: 60, maximumBytes: 1 << 20, ownerCapacity: 2))
            let calm = try await shared.store([("family", "calm")], path: "/Patient", owner: "calm")
            var flood: [String] = []
            for index in 0..<5 {
                flood.append(try await shared.store([("family", "f\(index)")], path: "/Patient", owner: "flood"))
            }
            #expect(try await shared.parameters(key: calm, path: "/Patient", owner: "calm") != nil)
            #expect(try await shared.parameters(key: flood[2], path: "/Patient", owner: "flood") == nil)
            #expect(try await shared.parameters(key: flood[3], path: "/Patient", owner: "flood") != nil)
            #expect(try await shared.parameters(key: flood[4], path: "/Patient", owner: "flood") != nil)
            let brief = SharedStoredSearches(
                database: first.database, limits: StoredSearches(capacity: 10, lifetime: 1, maximumBytes: 1 << 20))
            let key = try await brief.store([("family", "x+y %z\u{e9}")], path: "/Patient", owner: "a")
            #expect(try await brief.parameters(key: key, path: "/Patient", owner: "a")?.first?.value == "x+y %z\u{e9}")
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await brief.parameters(key: key, path: "/Patient", owner: "a") == nil)
        }
    }

    /// A conditional create waits for the criteria's lock no longer than the statement time
    /// limit, and then says why (503, retry), rather than blaming its search.
    @Test func aConditionalCreateWaitsForTheLockNoLongerThanTheTimeLimit() async throws {
        try await Self.withReplicas(configuration: { _ in
            var configuration = FHIRServerConfiguration()
            configuration.statementTimeLimit = .milliseconds(300)
            return configuration
        }) { first, _, replicas in
            let criteria = "identifier=urn:held|1"
            let store = try await replicas[1].stores.store(tenant: nil)
            let holding = Task {
                try await store.transaction { transaction in
                    try await transaction.lock(names: [
                        ConditionalInteractions.lockName(type: "Patient", criteria: criteria)
                    ])
                    try await Task.sleep(for: .seconds(12))
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            let answer = try await first.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient"}"#, headers: ["If-None-Exist": criteria])
            // Waiting for the holder would take 11.7 s; the limit stops the wait at 0.3 s (more
            // on a starved machine: 4.3 s once in a full parallel run).
            #expect(ContinuousClock.now - started < .seconds(9))
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.text.contains("same conditional criteria"), "\(answer.text.prefix(300))")
            try await holding.value
            #expect(
                try await first.fhir(
                    .post, "Patient", body: #"{"resourceType":"Patient"}"#, headers: ["If-None-Exist": criteria]
                ).status == .created)
        }
    }
}
