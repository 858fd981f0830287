import FHIR
import FHIRStore
import Foundation

/// Where Bulk Data jobs are kept: in the server's memory with files on its disk
/// (``ExportJobs``, one server on SQLite), or in the PostgreSQL database of their tenant
/// (``SharedExportJobs``), where every replica finds them.
protocol ExportJobStore: Sendable {
    /// Starts a job exporting from `store` and returns its id; 429 past the bounds.
    func start(_ request: ExportJobs.Request, store: any FHIRStore) async throws -> String
    /// The state of job `id`, if it exists and belongs to `tenant` and `client`.
    func state(of id: String, tenant: String?, client: String?) async throws -> ExportJobs.State?
    /// The bytes of output file `name` of completed job `id`, if it exists and belongs to
    /// `tenant` and `client`.
    func fileData(_ name: String, of id: String, tenant: String?, client: String?) async throws -> Data?
    /// Cancels job `id` (if running) and deletes its files. False when there is no such job.
    func delete(_ id: String, tenant: String?, client: String?) async throws -> Bool
}

/// Its own `start`, `state` and `delete` are the protocol's, run on the actor.
extension ExportJobs: ExportJobStore {
    func fileData(_ name: String, of id: String, tenant: String?, client: String?) async throws -> Data? {
        guard let url = file(name, of: id, tenant: tenant, client: client) else { return nil }
        return try Data(contentsOf: url)
    }
}

extension ExportJobs {
    /// The type an output file's name names (`Patient.ndjson`), `nil` for any other name.
    static func fileType(_ name: String) -> String? {
        guard name.hasSuffix(".ndjson"), !name.contains("/"), !name.hasPrefix(".") else { return nil }
        return String(name.dropLast(".ndjson".count))
    }
}
