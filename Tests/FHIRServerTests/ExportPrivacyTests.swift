import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Bulk Data export files (issue 13): private to the job (0600 files in a 0700 directory),
/// answered only to the client that started the job, deleted after the retention period.
@Suite struct ExportPrivacyTests {
    static func permissions(_ url: URL) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int)
    }

    @Test func exportFilesArePrivateAndExpire() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = FHIRServerConfiguration(exportDirectory: directory, exportRetention: .seconds(2))
        try await withFHIRApp(.sqlite, configuration: configuration) { client in
            #expect(
                try await client.fhir(.put, "Patient/p1", body: #"{"resourceType":"Patient","id":"p1"}"#).status
                    == .created)
            let kickOff = try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            var manifest: JSONValue?
            for _ in 0..<3000 where manifest == nil {
                let poll = try await client.fhir(.get, status)
                if poll.status == .ok { manifest = poll.json } else { try await Task.sleep(for: .milliseconds(20)) }
            }
            let url = try #require(manifest?["output"]?.arrayValue?.first?["url"]?.stringValue)
            let job = try #require(url.split(separator: "/").dropLast().last.map(String.init))
            let jobDirectory = directory.appendingPathComponent(job)
            #expect(try Self.permissions(jobDirectory) == 0o700)
            #expect(try Self.permissions(jobDirectory.appendingPathComponent("Patient.ndjson")) == 0o600)
            #expect(try await client.fhir(.get, pathOf(url)).status == .ok)
            // After the retention period the job and its files are gone.
            try await Task.sleep(for: .seconds(3))
            #expect(try await client.fhir(.get, status).status == .notFound)
            #expect(try await client.fhir(.get, pathOf(url)).status == .notFound)
            #expect(!FileManager.default.fileExists(atPath: jobDirectory.path))
        }
    }

    @Test func aJobAnswersOnlyTheClientThatStartedIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await TestDatabases.makeStore(.sqlite)
        _ = try await store.transaction { try await $0.create(["resourceType": "Patient"], type: "Patient", id: "p1") }
        let jobs = ExportJobs(directory: directory)
        let request = ExportJobs.Request(
            scope: .system, types: ["Patient"], url: "x", baseURL: "http://localhost", tenant: nil, client: "alice")
        let id = try await jobs.start(request, store: store)
        for _ in 0..<3000 {
            if case .completed? = await jobs.state(of: id, tenant: nil, client: "alice") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await jobs.file("Patient.ndjson", of: id, tenant: nil, client: "alice") != nil)
        #expect(await jobs.state(of: id, tenant: nil, client: "mallory") == nil)
        #expect(await jobs.state(of: id, tenant: nil) == nil)
        #expect(await jobs.file("Patient.ndjson", of: id, tenant: nil, client: "mallory") == nil)
        #expect(await jobs.delete(id, tenant: nil, client: "mallory") == false)
        #expect(await jobs.delete(id, tenant: nil, client: "alice"))
        try await store.close()
    }

    /// Each job writes a copy of the data to disk: a client cannot keep more than the maximum.
    @Test func jobsBeyondTheMaximumAre429() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = FHIRServerConfiguration(exportDirectory: directory, maximumExportJobs: 2)
        try await withFHIRApp(.sqlite, configuration: configuration) { client in
            var statuses: [String] = []
            for _ in 0..<2 {
                let kickOff = try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
                #expect(kickOff.status == .accepted)
                statuses.append(pathOf(try #require(kickOff.header("Content-Location"))))
            }
            let refused = try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
            #expect(refused.status == .tooManyRequests && refused.json?["resourceType"] == "OperationOutcome")
            #expect(try await client.fhir(.delete, statuses[0]).status == .accepted)
            #expect(try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"]).status == .accepted)
        }
    }

    /// One client may hold half of the jobs at most: it cannot take every slot for the
    /// retention period (attacker review, F1); other clients still start theirs.
    @Test func oneClientHoldsAtMostHalfOfTheJobs() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await TestDatabases.makeStore(.sqlite)
        let jobs = ExportJobs(directory: directory, maximumJobs: 4)
        #expect(jobs.maximumJobsPerClient == 2)
        func request(_ client: String?) -> ExportJobs.Request {
            ExportJobs.Request(
                scope: .system, types: ["Patient"], url: "x", baseURL: "http://localhost", tenant: nil, client: client)
        }
        for _ in 0..<2 { _ = try await jobs.start(request("mallory"), store: store) }
        await #expect(throws: FHIRError.self) { try await jobs.start(request("mallory"), store: store) }
        for _ in 0..<2 { _ = try await jobs.start(request("alice"), store: store) }
        // Past the server-wide maximum, every client waits.
        await #expect(throws: FHIRError.self) { try await jobs.start(request("bob"), store: store) }
        try await Task.sleep(for: .milliseconds(200))
        try await store.close()
    }

    /// A failed export says so without the database's message or the file's path.
    @Test func aFailedExportKeepsItsCauseToTheLog() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await TestDatabases.makeStore(.sqlite)
        let jobs = ExportJobs(directory: directory)
        let request = ExportJobs.Request(
            scope: .system, types: ["Patient"], url: "x", baseURL: "http://localhost", tenant: nil)
        let id = try await jobs.start(request, store: PoisonedStore(base: store, poison: "", failsReads: true))
        var failure: FHIRError?
        for _ in 0..<3000 where failure == nil {
            if case .failed(let error)? = await jobs.state(of: id, tenant: nil) { failure = error }
            try await Task.sleep(for: .milliseconds(10))
        }
        let message = try #require(failure).description
        #expect(message.contains("The export failed"))
        #expect(!message.contains("SELECT") && !message.contains("/var/lib") && !message.contains("InternalFailure"))
        try await store.close()
    }

    /// F1 of the attacker's review: the routes passed no client, so any token that could read
    /// every type polled, downloaded and cancelled another client's job. Another client's
    /// job now answers exactly as a missing one; the manifest says files need a token.
    @Test(arguments: TestDatabases.backends)
    func anotherClientsJobAnswersAsAMissingOne(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AccessControlTests.seed(harness)
            let owner = try await harness.token("system/*.rs", subject: "admin")
            let other = try await harness.token("user/*.r", subject: "someone-else")
            let kickOff = try await harness.call(
                .get, "$export?_type=Patient", token: owner, headers: ["Prefer": "respond-async"])
            #expect(kickOff.status == .accepted)
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            var manifest: JSONValue?
            for _ in 0..<3000 where manifest == nil {
                let poll = try await harness.call(.get, status, token: owner)
                if poll.status == .ok { manifest = poll.json } else { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(manifest?["requiresAccessToken"] == true)
            let file = pathOf(try #require(manifest?["output"]?.arrayValue?.first?["url"]?.stringValue))
            let job = try #require(file.split(separator: "/").dropLast().last.map(String.init))
            let missing = "00000000-0000-0000-0000-000000000000"
            for (method, path) in [(HTTPRequest.Method.get, status), (.get, file), (.delete, status)] {
                let foreign = try await harness.call(method, path, token: other)
                let absent = try await harness.call(
                    method, path.replacingOccurrences(of: job, with: missing), token: other)
                #expect(foreign.status == .notFound, "\(method) \(path)")
                #expect(foreign.text.replacingOccurrences(of: job, with: missing) == absent.text, "\(method) \(path)")
            }
            // The owner's job survived the other client's cancel.
            #expect(try await harness.call(.get, file, token: owner).status == .ok)
            #expect(try await harness.call(.delete, status, token: owner).status == .accepted)
            #expect(try await harness.call(.get, status, token: owner).status == .notFound)
            // A token that may not export is told what it needs, in one sentence.
            let narrow = try await harness.call(
                .get, "$export", token: try await harness.token("user/Patient.rs"), headers: ["Prefer": "respond-async"]
            )
            #expect(narrow.status == .forbidden)
            let text = narrow.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue
            #expect(
                text
                    == "The access token's scopes do not allow Bulk Data export (it needs a scope such as user/*.r or system/*.r)"
            )
        }
    }
}
