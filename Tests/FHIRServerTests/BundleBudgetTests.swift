import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Attacker finding F4: a batch of 1,000 `GET Patient?_count=1000` entries (62 KB) answered
/// 323 MB and took 2.4 GB of memory, each entry held the single writer, and an entry stopped by
/// the statement time limit answered 500. Bundles now have an entry limit, a response budget,
/// read entries on a reader connection, and the REST API's error answers.
@Suite struct BundleBudgetTests {
    static let backends = TestDatabases.backends

    static func bundle(_ type: String, _ entries: [String]) -> String {
        #"{"resourceType":"Bundle","type":"\#(type)","entry":[\#(entries.joined(separator: ","))]}"#
    }

    static func get(_ url: String) -> String { #"{"request":{"method":"GET","url":"\#(url)"}}"# }

    static func post(family: String, padding: Int = 0) -> String {
        let text =
            padding > 0
            ? #","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">\#(String(repeating: "x", count: padding))</div>"}"#
            : ""
        return
            #"{"resource":{"resourceType":"Patient","name":[{"family":"\#(family)"}]\#(text)},"request":{"method":"POST","url":"Patient"}}"#
    }

    static func total(_ client: any TestClientProtocol, _ query: String) async throws -> Int? {
        guard case .number(let text)? = try await client.fhir(.get, query).json?["total"] else { return nil }
        return Int(text)
    }

    static func statuses(_ response: FHIRTestResponse) -> [String] {
        (response.json?["entry"]?.arrayValue ?? []).map { $0["response"]?["status"]?.stringValue ?? "?" }
    }

    static func expectTooCostly(_ response: FHIRTestResponse, _ text: String) {
        #expect(response.status == .contentTooLarge, "\(response.status) \(response.text.prefix(300))")
        #expect(response.json?["resourceType"] == "OperationOutcome")
        #expect(response.json?["issue"]?.arrayValue?.first?["code"] == "too-costly")
        #expect(response.text.contains(text), "\(response.text.prefix(300))")
    }

    @Test(arguments: backends)
    func moreEntriesThanTheLimitAre413AndNothingRuns(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.maximumBundleEntries = 5
        try await withFHIRApp(backend, configuration: configuration) { client in
            let six = (0..<6).map { Self.post(family: "Six\($0)") }
            for type in ["batch", "transaction"] {
                Self.expectTooCostly(
                    try await client.fhir(.post, "", body: Self.bundle(type, six)), "--max-bundle-entries")
            }
            #expect(try await Self.total(client, "Patient?_count=0") == 0)
            let five = try await client.fhir(.post, "", body: Self.bundle("transaction", Array(six.prefix(5))))
            #expect(five.status == .ok, "\(five.text.prefix(300))")
            #expect(try await Self.total(client, "Patient?_count=0") == 5)
        }
    }

    /// Synthea's patient Bundles (the largest real traffic the project knows) are far from the
    /// default, and the largest passes with every resource returned.
    @Test func theDefaultsLetSyntheaBundlesThroughWithMargin() async throws {
        let files = SyntheaTests.bundleFiles
        #expect(files.count == 23)
        var largest: (entries: Int, text: String) = (0, "")
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let entries = try JSONParser.parse(text)["entry"]?.arrayValue?.count ?? 0
            if entries > largest.entries { largest = (entries, text) }
        }
        #expect(largest.entries > 300)
        #expect(FHIRServerConfiguration.defaultMaximumBundleEntries >= 10 * largest.entries)
        #expect(
            FHIRServerConfiguration.defaultMaximumResponseSize >= 4 * FHIRServerConfiguration.defaultMaximumBodySize)
        let biggest = largest
        try await withFHIRApp(.sqlite) { client in
            let response = try await client.fhir(
                .post, "", body: biggest.text, headers: ["Prefer": "return=representation"])
            #expect(response.status == .ok, "\(response.text.prefix(300))")
            let entries = response.json?["entry"]?.arrayValue ?? []
            #expect(entries.count == biggest.entries)
            #expect(
                entries.allSatisfy {
                    $0["resource"]?["id"]?.stringValue != nil && $0["response"]?["status"] == "201 Created"
                })
        }
    }

    /// Past the budget a batch stops: the read that does not fit and every later entry answer
    /// 413 without running (the POST after them writes nothing).
    @Test(arguments: backends)
    func aBatchPastTheResponseBudgetAnswersTheRest413WithoutRunningThem(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.maximumResponseSize = 64 << 10
        try await withFHIRApp(backend, configuration: configuration) { client in
            for part in 0..<2 {
                let load = try await client.fhir(
                    .post, "",
                    body: Self.bundle("transaction", (0..<150).map { Self.post(family: "Load\(part)x\($0)") }),
                    headers: ["Prefer": "return=minimal"])
                #expect(load.status == .ok, "\(load.text.prefix(300))")
            }
            // Each page of 100 Patients is some 20-30 KB: two fit in 64 KiB, the third does not.
            let entries = Array(repeating: Self.get("Patient?_count=100"), count: 5) + [Self.post(family: "NotRun")]
            let response = try await client.fhir(.post, "", body: Self.bundle("batch", entries))
            #expect(response.status == .ok, "\(response.text.prefix(300))")
            #expect(
                Self.statuses(response) == ["200 OK", "200 OK"] + Array(repeating: "413 Content Too Large", count: 4),
                "\(Self.statuses(response))")
            #expect(response.text.utf8.count < 64 << 10)
            let refused = (response.json?["entry"]?.arrayValue ?? []).dropFirst(2)
            #expect(
                refused.allSatisfy {
                    $0["response"]?["outcome"]?["issue"]?.arrayValue?.first?["code"] == "too-costly"
                        && $0["resource"] == nil
                })
            #expect(try await Self.total(client, "Patient?family=notrun&_count=0") == 0)

            // A write that does not fit has happened: its status, location and ETag, no resource.
            let write = try await client.fhir(
                .post, "",
                body: Self.bundle(
                    "batch",
                    [
                        Self.get("Patient?_count=100"), Self.get("Patient?_count=100"),
                        Self.post(family: "Written", padding: 30_000), Self.post(family: "After"),
                    ]),
                headers: ["Prefer": "return=representation"])
            let written = try #require(write.json?["entry"]?.arrayValue?[2])
            #expect(written["response"]?["status"] == "201 Created")
            #expect(written["response"]?["location"]?.stringValue?.hasPrefix("Patient/") == true)
            let resourceLeftOut = written["resource"] == nil
            #expect(resourceLeftOut)
            #expect(written["response"]?["outcome"]?["issue"]?.arrayValue?.first?["severity"] == "warning")
            #expect(Self.statuses(write).last == "413 Content Too Large")
            #expect(try await Self.total(client, "Patient?family=written&_count=0") == 1)
            #expect(try await Self.total(client, "Patient?family=after&_count=0") == 0)
        }
    }

    /// A transaction's answer holds every entry: past the budget it is rolled back, with the
    /// default (the resources are returned) as with `return=representation`; the same writes
    /// with `return=minimal` fit.
    @Test(arguments: backends)
    func aTransactionPastTheResponseBudgetIsRolledBack(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.maximumResponseSize = 64 << 10
        try await withFHIRApp(backend, configuration: configuration) { client in
            let entries = (0..<3).map { Self.post(family: "Big\($0)", padding: 30_000) }
            for headers in [[:], ["Prefer": "return=representation"]] {
                let full = try await client.fhir(.post, "", body: Self.bundle("transaction", entries), headers: headers)
                Self.expectTooCostly(full, "--max-response-size")
                #expect(try await Self.total(client, "Patient?_count=0") == 0)
            }
            let minimal = try await client.fhir(
                .post, "", body: Self.bundle("transaction", entries), headers: ["Prefer": "return=minimal"])
            #expect(minimal.status == .ok, "\(minimal.text.prefix(300))")
            #expect(Self.statuses(minimal) == Array(repeating: "201 Created", count: 3))
            #expect(try await Self.total(client, "Patient?_count=0") == 3)
        }
    }

    /// Past the time limit (zero here, so that no timing decides the test) a batch answers its
    /// remaining entries 503 without running them and a transaction is rolled back.
    @Test(arguments: backends)
    func pastTheTimeLimitABatchStopsAndATransactionRollsBack(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.maximumBundleDuration = .zero
        try await withFHIRApp(backend, configuration: configuration) { client in
            let entries = [Self.post(family: "Late"), Self.get("Patient?family=late")]
            let batch = try await client.fhir(.post, "", body: Self.bundle("batch", entries))
            #expect(
                Self.statuses(batch) == ["503 Service Unavailable", "503 Service Unavailable"],
                "\(batch.text.prefix(300))")
            #expect(batch.text.contains("--max-bundle-time"))
            let transaction = try await client.fhir(.post, "", body: Self.bundle("transaction", entries))
            #expect(transaction.status == .serviceUnavailable, "\(transaction.text.prefix(300))")
            #expect(transaction.json?["issue"]?.arrayValue?.first?["code"] == "too-costly")
            #expect(try await Self.total(client, "Patient?_count=0") == 0)
        }
    }

    /// Attacker finding A8: with `--max-bundle-time 5` a transaction of costly creates answered
    /// 503 only after 52.9 s, because the time was checked only once a chunk of 8 prepared
    /// entries was ready. A timer now stops the wait and the preparing entries stop at their
    /// next look at cancellation: the 503 comes within the limit and about one entry's work.
    @Test(arguments: backends)
    func aTransactionOfCostlyCreatesStopsAtItsTimeLimit(backend: TestBackend) async throws {
        // ig-1 looks each of 1,500 groupingIds up among 1,500 groupings: about 2.3 million steps
        // each, within the validation budget, so every entry is valid and costly.
        let groupings = (0..<1_500).map { #"{"id":"g\#($0)","name":"g"}"# }.joined(separator: ",")
        let resources = (0..<1_500).map { #"{"reference":{"reference":"Basic/b\#($0)"},"groupingId":"g\#($0)"}"# }
            .joined(separator: ",")
        let guide =
            #"{"resourceType":"ImplementationGuide","url":"http://x/ig","name":"X","status":"draft","packageId":"x.y","fhirVersion":["4.0.1"],"definition":{"grouping":[\#(groupings)],"resource":[\#(resources)]}}"#
        var configuration = FHIRServerConfiguration()
        configuration.maximumBundleDuration = .seconds(1)
        try await withFHIRApp(backend, configuration: configuration) { client in
            // One entry's work on this machine now, measured rather than assumed.
            let single = ContinuousClock.now
            let alone = try await client.fhir(.post, "ImplementationGuide", body: guide)
            #expect(alone.status == .created, "\(alone.text.prefix(300))")
            let oneEntry = ContinuousClock.now - single
            let entry = #"{"resource":\#(guide),"request":{"method":"POST","url":"ImplementationGuide"}}"#
            let started = ContinuousClock.now
            let response = try await client.fhir(
                .post, "", body: Self.bundle("transaction", Array(repeating: entry, count: 24)))
            let took = ContinuousClock.now - started
            print(
                "24 costly ImplementationGuide creates, limit 1 s: \(response.status.code) after \(took) (one entry alone: \(oneEntry))"
            )
            #expect(response.status == .serviceUnavailable, "\(response.text.prefix(300))")
            #expect(response.text.contains("--max-bundle-time"))
            // A chunk alone is 8 entries' work; validation stops at the limit inside an entry, so
            // the 503 comes about one entry after the limit (twice that and a second of slack here:
            // the machine's load varies between the two measures).
            #expect(took < .seconds(1) + oneEntry * 2 + .seconds(1), "took \(took), one entry \(oneEntry)")
            #expect(try await Self.total(client, "ImplementationGuide?_count=0") == 1)
        }
    }

    /// A batch's reads do not take the writer: with SQLite's single writer held by another
    /// transaction, a batch of searches and reads still answers. (A liveness check: the writer
    /// is released after 60 s whatever happens, and the test then fails instead of hanging.)
    @Test func batchReadsDoNotWaitForTheWriter() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let patient = try await store.create(
                try JSONParser.parse(#"{"resourceType":"Patient","name":[{"family":"Held"}]}"#), type: "Patient")
            let (held, hold) = AsyncStream.makeStream(of: Void.self)
            let (released, release) = AsyncStream.makeStream(of: Void.self)
            let writer = Task {
                try await store.transaction { _ in
                    hold.yield()
                    for await _ in released { break }
                }
            }
            for await _ in held { break }
            let watchdog = Task {
                try await Task.sleep(for: .seconds(60))
                release.yield()
            }
            try await Application(router: FHIRApplication.buildRouter(store: store)).test(.router) { client in
                let batch = Self.bundle(
                    "batch",
                    [
                        Self.get("Patient?family=held"), Self.get("Patient/\(patient.id)"),
                        #"{"request":{"method":"HEAD","url":"Patient/\#(patient.id)"}}"#,
                    ])
                let response = try await client.fhir(.post, "", body: batch)
                watchdog.cancel()
                #expect(Self.statuses(response) == ["200 OK", "200 OK", "200 OK"], "\(response.text.prefix(300))")
                #expect(response.json?["entry"]?.arrayValue?.first?["resource"]?["total"] == 1)
            }
            // The batch finished while the writer was held (the watchdog had not fired).
            let watchdogFired = await (try? watchdog.value) != nil
            #expect(!watchdogFired)
            release.yield()
            try await writer.value
        }
    }

    /// A batch search stopped by the statement time limit answers as REST does: 503 `too-costly`.
    @Test(arguments: backends)
    func aBatchEntryPastTheTimeLimitAnswers503(backend: TestBackend) async throws {
        try await SearchTimeLimitTests.withLimitedRouter(backend) { standard, limited in
            try await standard.test(.router) { client in
                try await SearchTimeLimitTests.loadPatients(client, count: 1500)
            }
            try await limited.test(.router) { client in
                // The search of SearchTimeLimitTests: 100 unindexable patterns against 4,500 names,
                // then a sort, is work far past the 2 ms limit on any machine; the watchdog
                // interrupts it whether or not it had to wait for a thread first.
                let patterns = (0..<100).map { "zz\($0)q" }.joined(separator: ",")
                let search = "Patient?name:contains=\(patterns)&_sort=-family,given"
                let response = try await client.fhir(.post, "", body: Self.bundle("batch", [Self.get(search)]))
                #expect(response.status == .ok, "\(response.text.prefix(300))")
                #expect(Self.statuses(response) == ["503 Service Unavailable"], "\(response.text.prefix(300))")
                let issue = response.json?["entry"]?.arrayValue?.first?["response"]?["outcome"]?["issue"]?.arrayValue?
                    .first
                #expect(issue?["code"] == "too-costly")
                for leak in ["SELECT", "idx_", "SQLite", "PSQL", "statement timeout", "canceling", "Error("] {
                    #expect(!response.text.contains(leak), "\(leak) in \(response.text.prefix(300))")
                }
            }
        }
    }
}
