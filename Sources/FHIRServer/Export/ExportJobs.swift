import FHIR
import FHIRStore
import Foundation

/// Bulk Data `$export` jobs: each runs in the background, writing one NDJSON file per
/// resource type, and is polled for its manifest (FHIR Bulk Data Access 1.0/2.0).
public actor ExportJobs {
    /// What an export covers.
    enum Scope: Sendable {
        case system
        /// Every patient's compartment.
        case patients
        /// The compartments of one Group's member patients.
        case group(id: String)
    }

    struct Request: Sendable {
        var scope: Scope
        var types: Set<String>?
        var since: Int64?
        /// The kick-off URL, echoed in the manifest.
        var url: String
        var baseURL: String
        var tenant: String?
    }

    enum State: Sendable {
        case running(exported: Int)
        case completed(manifest: JSONValue)
        case failed(FHIRError)
    }

    struct Job {
        var request: Request
        var state: State
        var directory: URL
        var task: Task<Void, Never>?
    }

    private var jobs: [String: Job] = [:]
    private let root: URL

    /// Jobs keep their files under `directory` until deleted.
    public init(directory: URL) {
        root = directory
    }

    /// Starts a job and returns its id.
    func start(_ request: Request, store: any FHIRStore) throws -> String {
        let id = UUID().uuidString.lowercased()
        let directory = root.appendingPathComponent(id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let transactionTime = Int64(Date().timeIntervalSince1970 * 1000)
        jobs[id] = Job(request: request, state: .running(exported: 0), directory: directory)
        jobs[id]?.task = Task {
            do {
                let manifest = try await ExportWriter(
                    request: request, store: store, directory: directory, jobId: id, transactionTime: transactionTime
                ) { count in await self.progress(id, exported: count) }.run()
                self.finish(id, .completed(manifest: manifest))
            } catch is CancellationError {
                return
            } catch let error as FHIRError {
                self.finish(id, .failed(error))
            } catch {
                self.finish(id, .failed(FHIRError(status: 500, code: "exception", "The export failed: \(error)")))
            }
        }
        return id
    }

    private func progress(_ id: String, exported: Int) {
        if case .running? = jobs[id]?.state { jobs[id]?.state = .running(exported: exported) }
    }

    private func finish(_ id: String, _ state: State) {
        jobs[id]?.state = state
    }

    /// The state of job `id`, if it exists and belongs to `tenant`.
    func state(of id: String, tenant: String?) -> State? {
        guard let job = jobs[id], job.request.tenant == tenant else { return nil }
        return job.state
    }

    /// The path of one output file of job `id`.
    func file(_ name: String, of id: String, tenant: String?) -> URL? {
        guard let job = jobs[id], job.request.tenant == tenant, case .completed = job.state,
            name.hasSuffix(".ndjson"), !name.contains("/"), !name.hasPrefix(".")
        else { return nil }
        let url = job.directory.appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// Cancels job `id` (if running) and deletes its files. False when there is no such job.
    func delete(_ id: String, tenant: String?) -> Bool {
        guard let job = jobs[id], job.request.tenant == tenant else { return false }
        job.task?.cancel()
        try? FileManager.default.removeItem(at: job.directory)
        jobs[id] = nil
        return true
    }
}
