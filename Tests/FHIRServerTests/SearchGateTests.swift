import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The server-wide bound on concurrent searches: past it a search waits its turn, for a
/// bounded time, then answers 503 `throttled`; reads by id are not held up by it.
@Suite struct SearchGateTests {
    /// Occupies one of `gate`'s places until `release` is called; returns once it holds it.
    static func occupy(_ gate: SearchGate) async -> (task: Task<Void, any Error>, release: @Sendable () -> Void) {
        let (held, hold) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            try await gate.run {
                hold.yield()
                for await _ in released { break }
            }
        }
        for await _ in held { break }
        return (task, { release.yield() })
    }

    @Test func pastTheLimitASearchWaitsItsTurnThenIsRefused() async throws {
        let gate = SearchGate(limit: 2, maximumWait: .milliseconds(100))
        let first = await Self.occupy(gate)
        let second = await Self.occupy(gate)
        do {
            _ = try await gate.run { 1 }
            Issue.record("a third search ran beside two")
        } catch let error as FHIRError {
            #expect(error.status == 503)
            #expect(error.issues.first?.code == "throttled")
            #expect(error.issues.first?.diagnostics.contains("--max-concurrent-searches") == true)
        }
        // A search that waits is admitted when a place frees, before its wait ends.
        let patient = SearchGate(limit: 1, maximumWait: .seconds(600))
        let holder = await Self.occupy(patient)
        let queued = Task { try await patient.run { 42 } }
        while await patient.waiting == 0 { await Task.yield() }
        holder.release()
        #expect(try await queued.value == 42)
        #expect(await patient.waiting == 0)
        try await holder.task.value
        first.release()
        second.release()
        try await first.task.value
        try await second.task.value
        #expect(try await gate.run { 7 } == 7)
    }

    @Test(arguments: TestDatabases.backends)
    func aFullGateRefusesSearchesButNotReads(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.searchGate = SearchGate(limit: 1, maximumWait: .milliseconds(100))
        let gate = configuration.searchGate
        try await withFHIRApp(backend, configuration: configuration) { client in
            let created = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","name":[{"family":"Gate"}]}"#,
                headers: ["Prefer": "return=representation"])
            let id = try #require(created.json?["id"]?.stringValue)
            let holder = await Self.occupy(gate)
            let search = try await client.fhir(.get, "Patient?family=gate")
            #expect(search.status == .serviceUnavailable, "\(search.status) \(search.text.prefix(300))")
            #expect(search.json?["issue"]?.arrayValue?.first?["code"] == "throttled")
            #expect(try await client.fhir(.get, "Patient/\(id)").status == .ok)
            let batch = try await client.fhir(
                .post, "",
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?family=gate"}},{"request":{"method":"GET","url":"Patient/\#(id)"}}]}"#
            )
            let statuses = (batch.json?["entry"]?.arrayValue ?? []).map { $0["response"]?["status"]?.stringValue }
            #expect(statuses == ["503 Service Unavailable", "200 OK"], "\(batch.text.prefix(300))")
            holder.release()
            try await holder.task.value
            let after = try await client.fhir(.get, "Patient?family=gate")
            #expect(after.status == .ok && after.json?["total"] == 1, "\(after.text.prefix(300))")
        }
    }
}
