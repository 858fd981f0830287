import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// Bulk Data export files (issue 13): private to the job (0600 files in a 0700 directory),
/// answered only to the client that started the job, deleted after the retention period.
@Suite struct ExportPrivacyTests {
    static func permissions(_ url: URL) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int)
    }

    @Test func exportFilesArePrivateAndExpire() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = FHIRServerConfiguration(exportDirectory: directory, exportRetention: .seconds(2))
        try await withFHIRApp(.sqlite, configuration: configuration) { client in
            #expect(try await client.fhir(.put, "Patient/p1", body: #"{"resourceType":"Patient","id":"p1"}"#).status == .created)
            let kickOff = try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            var manifest: JSONValue?
            for _ in 0..<200 where manifest == nil {
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
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await TestDatabases.makeStore(.sqlite)
        _ = try await store.transaction { try await $0.create(["resourceType": "Patient"], type: "Patient", id: "p1") }
        let jobs = ExportJobs(directory: directory)
        let request = ExportJobs.Request(scope: .system, types: ["Patient"], url: "x", baseURL: "http://localhost", tenant: nil, client: "alice")
        let id = try await jobs.start(request, store: store)
        for _ in 0..<200 {
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
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-export-test-\(UUID().uuidString)")
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

    /// A failed export says so without the database's message or the file's path.
    @Test func aFailedExportKeepsItsCauseToTheLog() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-export-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await TestDatabases.makeStore(.sqlite)
        let jobs = ExportJobs(directory: directory)
        let request = ExportJobs.Request(scope: .system, types: ["Patient"], url: "x", baseURL: "http://localhost", tenant: nil)
        let id = try await jobs.start(request, store: PoisonedStore(base: store, poison: "", failsReads: true))
        var failure: FHIRError?
        for _ in 0..<200 where failure == nil {
            if case .failed(let error)? = await jobs.state(of: id, tenant: nil) { failure = error }
            try await Task.sleep(for: .milliseconds(10))
        }
        let message = try #require(failure).description
        #expect(message.contains("The export failed"))
        #expect(!message.contains("SELECT") && !message.contains("/var/lib") && !message.contains("InternalFailure"))
        try await store.close()
    }
}
