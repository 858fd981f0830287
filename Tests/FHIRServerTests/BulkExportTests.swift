import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// Bulk Data `$export` at system, Patient and Group level (issue 3).
@Suite struct BulkExportTests {
    static let backends = TestDatabases.backends

    /// Kicks off `path`, polls until the manifest is ready, and returns type -> NDJSON lines.
    static func export(_ client: any TestClientProtocol, _ path: String) async throws -> [String: [JSONValue]] {
        let kickOff = try await client.fhir(
            .get, path, headers: ["Prefer": "respond-async", "Accept": "application/fhir+json"])
        #expect(kickOff.status == .accepted, "\(path): \(kickOff.text)")
        let status = pathOf(try #require(kickOff.header("Content-Location")))
        // Polls for up to a minute: a count of 200 polls (4 s) ran out under a parallel test
        // run sharing two cores with a build, the export still under way.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let poll = try await client.fhir(.get, status)
            if poll.status == .accepted {
                #expect(poll.header("X-Progress") != nil)
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            #expect(poll.status == .ok, "\(poll.text)")
            let manifest = try #require(poll.json)
            #expect(manifest["requiresAccessToken"] == false)
            #expect(manifest["request"]?.stringValue?.contains("$export") == true)
            var files: [String: [JSONValue]] = [:]
            for output in manifest["output"]?.arrayValue ?? [] {
                let type = try #require(output["type"]?.stringValue)
                let file = try await client.fhir(.get, pathOf(try #require(output["url"]?.stringValue)))
                #expect(file.header("Content-Type") == "application/fhir+ndjson")
                let lines = file.text.split(separator: "\n").map { try? JSONParser.parse(String($0)) }
                #expect(lines.allSatisfy { $0?["resourceType"]?.stringValue == type })
                #expect(output["count"] == .number(String(lines.count)))
                files[type] = lines.compactMap { $0 }
            }
            #expect(try await client.fhir(.delete, status).status == .accepted)
            #expect(try await client.fhir(.get, status).status == .notFound)
            return files
        }
        Issue.record("the export of \(path) did not finish")
        return [:]
    }

    @Test(arguments: backends)
    func exportsAtEveryLevel(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            for text in [
                #"{"resourceType":"Patient","id":"p1"}"#, #"{"resourceType":"Patient","id":"p2"}"#,
                #"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}"#,
                #"{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"}}"#,
                #"{"resourceType":"Organization","id":"org","name":"Not in a compartment"}"#,
                #"{"resourceType":"Group","id":"g","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p2"}}]}"#,
            ] {
                let value = try JSONParser.parse(text)
                #expect(
                    try await client.fhir(
                        .put, "\(value["resourceType"]!.stringValue!)/\(value["id"]!.stringValue!)", body: text
                    ).status == .created)
            }
            let system = try await Self.export(client, "$export")
            #expect(system.mapValues(\.count) == ["Patient": 2, "Observation": 2, "Organization": 1, "Group": 1])
            let typed = try await Self.export(
                client, "$export?_type=Observation,Organization&_outputFormat=application/fhir%2Bndjson")
            #expect(typed.mapValues(\.count) == ["Observation": 2, "Organization": 1])
            let patients = try await Self.export(client, "Patient/$export")
            // Group belongs to the Patient compartment through `member` (R4 CompartmentDefinition).
            #expect(patients.mapValues(\.count) == ["Patient": 2, "Observation": 2, "Group": 1])
            let group = try await Self.export(client, "Group/g/$export")
            #expect(group["Observation"]?.first?["id"] == "o2")
            #expect(group.mapValues(\.count) == ["Patient": 1, "Observation": 1, "Group": 1])
            let future = try await Self.export(client, "$export?_since=2999-01-01T00:00:00Z")
            #expect(future.isEmpty)

            #expect(try await client.fhir(.get, "$export").status == .badRequest)  // no Prefer: respond-async
            #expect(
                try await client.fhir(.get, "$export?_outputFormat=csv", headers: ["Prefer": "respond-async"]).status
                    == .badRequest)
            #expect(
                try await client.fhir(.get, "Group/none/$export", headers: ["Prefer": "respond-async"]).status
                    == .notFound)
            #expect(try await client.fhir(.get, "$export-poll-status/unknown").status == .notFound)
        }
    }
}
