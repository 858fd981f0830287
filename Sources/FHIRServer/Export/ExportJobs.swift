import FHIR
import FHIRStore
import Foundation
import Logging

/// Bulk Data `$export` jobs: each runs in the background, writing one NDJSON file per
/// resource type, and is polled for its manifest (FHIR Bulk Data Access 1.0/2.0).
///
/// A job's files hold patient data: they sit in a directory of the job's own that only the
/// server's user can open (0700, files 0600), a job answers only the tenant and the client
/// that started it, and its files are deleted `retention` after it ends.
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
        /// Who started the job (the token's subject or client id); `nil` without access control.
        /// Only the same client sees its state and files.
        var client: String? = nil
        /// Whether the files need an access token (the server requires tokens): the manifest says so.
        var requiresAccessToken = false
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
    /// How long a job's files are kept after it ends.
    public nonisolated let retention: Duration
    private var sweptRoot = false

    /// The most jobs kept at once, running or holding files: each writes a copy of the data
    /// to disk, so without a bound a client could fill the disk with exports.
    public nonisolated let maximumJobs: Int

    /// The default of ``retention``: an hour, time enough for a client to fetch what it asked for.
    public static let defaultRetention = Duration.seconds(3600)
    /// The default of ``maximumJobs``.
    public static let defaultMaximumJobs = 16

    /// Jobs keep their files under `directory` until deleted, or for `retention` after they end.
    public init(
        directory: URL, retention: Duration = ExportJobs.defaultRetention,
        maximumJobs: Int = ExportJobs.defaultMaximumJobs
    ) {
        root = directory
        self.retention = retention
        self.maximumJobs = maximumJobs
    }

    /// The most jobs one client may hold at once: half of ``maximumJobs`` (rounded up), so
    /// that one client cannot take every slot for the retention period.
    public nonisolated var maximumJobsPerClient: Int { (maximumJobs + 1) / 2 }

    /// Starts a job and returns its id.
    func start(_ request: Request, store: any FHIRStore) throws -> String {
        guard jobs.count < maximumJobs else {
            throw FHIRError(
                status: 429, code: "throttled",
                "The server holds \(maximumJobs) export jobs already; delete one or try again when one expires")
        }
        // Without access control every request is the same client: the server-wide bound is the one.
        if let client = request.client,
            jobs.values.count(where: { $0.request.client == client && $0.request.tenant == request.tenant })
                >= maximumJobsPerClient
        {
            throw FHIRError(
                status: 429, code: "throttled",
                "This client holds \(maximumJobsPerClient) export jobs already; delete one or try again when one expires"
            )
        }
        let id = UUID().uuidString.lowercased()
        let directory = root.appendingPathComponent(id)
        try FileManager.default.createDirectory(
            at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        if !sweptRoot {
            sweptRoot = true
            removeExpiredDirectories()
        }
        let transactionTime = Int64(Date().timeIntervalSince1970 * 1000)
        jobs[id] = Job(request: request, state: .running(exported: 0), directory: directory)
        jobs[id]?.task = Task {
            do {
                let manifest = try await ExportWriter(
                    request: request, store: store, jobId: id, transactionTime: transactionTime,
                    outputs: ExportFiles(directory: directory)
                ) { count in await self.progress(id, exported: count) }.run()
                self.finish(id, .completed(manifest: manifest))
            } catch is CancellationError {
                return
            } catch let error as FHIRError {
                self.finish(id, .failed(error))
            } catch {
                // The cause (a database's message, a file path) goes to the log, not to the client.
                Logger(label: "caduceus.export").error("Export \(id) failed: \(String(reflecting: error))")
                self.finish(
                    id,
                    .failed(
                        FHIRError(status: 500, code: "exception", "The export failed; the server's log has the cause")))
            }
        }
        return id
    }

    private func progress(_ id: String, exported: Int) {
        if case .running? = jobs[id]?.state { jobs[id]?.state = .running(exported: exported) }
    }

    private func finish(_ id: String, _ state: State) {
        jobs[id]?.state = state
        let retention = retention
        Task { [weak self] in
            try? await Task.sleep(for: retention)
            await self?.expire(id)
        }
    }

    /// Deletes the files of ended job `id` and forgets it.
    private func expire(_ id: String) {
        guard let job = jobs[id] else { return }
        try? FileManager.default.removeItem(at: job.directory)
        jobs[id] = nil
    }

    /// Job directories a previous run left behind (its jobs are gone with it), once older than
    /// the retention period.
    private func removeExpiredDirectories() {
        let manager = FileManager.default
        let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
        for name in (try? manager.contentsOfDirectory(atPath: root.path)) ?? []
        where jobs[name] == nil && UUID(uuidString: name) != nil {
            let url = root.appendingPathComponent(name)
            if let modified = (try? manager.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date,
                modified < cutoff
            {
                try? manager.removeItem(at: url)
            }
        }
    }

    /// Job `id`, if it belongs to `tenant` and `client`.
    private func job(_ id: String, tenant: String?, client: String?) -> Job? {
        guard let job = jobs[id], job.request.tenant == tenant, job.request.client == client else { return nil }
        return job
    }

    /// The state of job `id`, if it exists and belongs to `tenant` and `client`.
    func state(of id: String, tenant: String?, client: String? = nil) -> State? {
        job(id, tenant: tenant, client: client)?.state
    }

    /// The path of one output file of job `id`.
    func file(_ name: String, of id: String, tenant: String?, client: String? = nil) -> URL? {
        guard let job = job(id, tenant: tenant, client: client), case .completed = job.state, Self.fileType(name) != nil
        else { return nil }
        let url = job.directory.appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// Cancels job `id` (if running) and deletes its files. False when there is no such job.
    func delete(_ id: String, tenant: String?, client: String? = nil) -> Bool {
        guard let job = job(id, tenant: tenant, client: client) else { return false }
        job.task?.cancel()
        try? FileManager.default.removeItem(at: job.directory)
        jobs[id] = nil
        return true
    }
}
