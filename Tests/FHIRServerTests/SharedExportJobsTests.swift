import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// Bulk Data jobs kept in PostgreSQL (issue 18), seen from two stores (two replicas' pools)
/// on one database: the guarantees of the in-memory jobs hold across both.
@Suite(.enabled(if: TestDatabases.backends.contains(.postgres)))
struct SharedExportJobsTests {
    static func request(_ client: String?, tenant: String? = nil) -> ExportJobs.Request {
        ExportJobs.Request(
            scope: .system, types: ["Patient"], url: "x", baseURL: "http://localhost", tenant: tenant, client: client)
    }

    /// Two stores on one fresh database, closed after `body`.
    static func withTwoStores(_ body: (SQLFHIRStore, SQLFHIRStore) async throws -> Void) async throws {
        let url = try await TestDatabases.freshPostgresURL()
        let first = try await SQLFHIRStore.open(url: url)
        let second = try await SQLFHIRStore.open(url: url)
        do {
            try await body(first, second)
        } catch {
            try? await first.close()
            try? await second.close()
            throw error
        }
        try await first.close()
        try await second.close()
    }

    static func completed(_ jobs: SharedExportJobs, _ id: String, client: String?) async throws -> JSONValue? {
        // By a deadline, not a count of polls: the full parallel test run can starve a poll.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if case .completed(let manifest)? = try await jobs.state(of: id, tenant: nil, client: client) {
                return manifest
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test func aJobAnswersOnlyItsClientAndTenantOnEveryReplica() async throws {
        try await Self.withTwoStores { first, second in
            _ = try await first.transaction {
                try await $0.create(["resourceType": "Patient"], type: "Patient", id: "p1")
            }
            let here = SharedExportJobs(database: first.database, retention: .seconds(60), maximumJobs: 4)
            let there = SharedExportJobs(database: second.database, retention: .seconds(60), maximumJobs: 4)
            let id = try await here.start(Self.request("alice"), store: first)
            #expect(try await Self.completed(there, id, client: "alice") != nil)
            #expect(try await there.fileData("Patient.ndjson", of: id, tenant: nil, client: "alice") != nil)
            for (tenant, client) in [(nil, "mallory"), (nil, nil), ("clinic_a", "alice")] as [(String?, String?)] {
                #expect(try await there.state(of: id, tenant: tenant, client: client) == nil)
                #expect(try await there.fileData("Patient.ndjson", of: id, tenant: tenant, client: client) == nil)
                #expect(try await there.delete(id, tenant: tenant, client: client) == false)
            }
            for name in ["../Patient.ndjson", ".ndjson", "Patient.json", "Observation.ndjson"] {
                #expect(try await there.fileData(name, of: id, tenant: nil, client: "alice") == nil, "\(name)")
            }
            #expect(try await there.delete(id, tenant: nil, client: "alice"))
            #expect(try await here.state(of: id, tenant: nil, client: "alice") == nil)
            let chunks = try await first.database.withConnection {
                try await $0.query("SELECT COUNT(*) FROM caduceus_export_chunks", [])
            }
            #expect(chunks.first?.first?.int == 0)
        }
    }

    /// The bounds count the jobs of every replica: half of them per client, all of them in all.
    @Test func theBoundsCountTheJobsOfBothReplicas() async throws {
        try await Self.withTwoStores { first, second in
            let here = SharedExportJobs(database: first.database, retention: .seconds(60), maximumJobs: 4)
            let there = SharedExportJobs(database: second.database, retention: .seconds(60), maximumJobs: 4)
            _ = try await here.start(Self.request("alice"), store: first)
            _ = try await there.start(Self.request("alice"), store: second)
            await #expect(throws: FHIRError.self) { _ = try await there.start(Self.request("alice"), store: second) }
            _ = try await here.start(Self.request("bob"), store: first)
            _ = try await there.start(Self.request("carol"), store: second)
            await #expect(throws: FHIRError.self) { _ = try await here.start(Self.request("dave"), store: first) }
        }
    }

    /// An ended job and its files are gone after the retention period, and the next start
    /// deletes their rows; a running job whose replica stopped reporting answers as failed.
    @Test func jobsExpireAndAStoppedReplicasJobFails() async throws {
        try await Self.withTwoStores { first, second in
            _ = try await first.transaction {
                try await $0.create(["resourceType": "Patient"], type: "Patient", id: "p1")
            }
            // Retention long enough that a starved poll still sees the job completed before it ends.
            let jobs = SharedExportJobs(database: first.database, retention: .seconds(4), maximumJobs: 4)
            let id = try await jobs.start(Self.request(nil), store: first)
            #expect(try await Self.completed(jobs, id, client: nil) != nil)
            try await Task.sleep(for: .seconds(5))
            #expect(try await jobs.state(of: id, tenant: nil, client: nil) == nil)
            #expect(try await jobs.fileData("Patient.ndjson", of: id, tenant: nil, client: nil) == nil)
            // A job another replica left running four minutes ago.
            try await second.database.withConnection { executor in
                try await executor.query(
                    "INSERT INTO caduceus_export_jobs (id, tenant, owner, state, heartbeat) VALUES ('stopped', '', '-', 'running', \(SharedExportJobs.now) - 240000)",
                    [])
            }
            guard case .failed(let error)? = try await jobs.state(of: "stopped", tenant: nil, client: nil) else {
                Issue.record("a job whose replica stopped should answer as failed")
                return
            }
            #expect(error.description.contains("stopped before it finished"))
            _ = try await jobs.start(Self.request(nil), store: first)
            let rows = try await first.database.withConnection {
                try await $0.query("SELECT id FROM caduceus_export_jobs", [])
            }
            #expect(rows.count == 1)  // the expired job and the stopped one were swept
            let chunks = try await first.database.withConnection {
                try await $0.query("SELECT DISTINCT job FROM caduceus_export_chunks", [])
            }
            #expect(chunks.allSatisfy { $0.first?.string == rows.first?.first?.string })
        }
    }

    /// A failure keeps its cause to the log; a job deleted while running stops at its next report.
    @Test func aFailedJobKeepsItsCauseToTheLogAndADeletedOneStops() async throws {
        try await Self.withTwoStores { first, _ in
            let jobs = SharedExportJobs(database: first.database, retention: .seconds(60), maximumJobs: 4)
            let id = try await jobs.start(
                Self.request(nil), store: PoisonedStore(base: first, poison: "", failsReads: true))
            var failure: FHIRError?
            for _ in 0..<3000 where failure == nil {
                if case .failed(let error)? = try await jobs.state(of: id, tenant: nil, client: nil) { failure = error }
                try await Task.sleep(for: .milliseconds(10))
            }
            let message = try #require(failure).description
            #expect(message.contains("The export failed"))
            #expect(!message.contains("SELECT") && !message.contains("InternalFailure"))
            try await first.database.withConnection { executor in
                try await executor.query(
                    "INSERT INTO caduceus_export_jobs (id, tenant, owner, state, heartbeat) VALUES ('running', '', '-', 'running', \(SharedExportJobs.now))",
                    [])
            }
            let reporter = ProgressReporter(database: first.database, job: "running")
            try await Task.sleep(for: SharedExportJobs.reportInterval)
            try await reporter.report(10)
            if case .running(let exported)? = try await jobs.state(of: "running", tenant: nil, client: nil) {
                #expect(exported == 10)
            } else {
                Issue.record("the job should be running")
            }
            #expect(try await jobs.delete("running", tenant: nil, client: nil))
            try await Task.sleep(for: SharedExportJobs.reportInterval)
            await #expect(throws: CancellationError.self) { try await reporter.report(20) }
        }
    }
}
