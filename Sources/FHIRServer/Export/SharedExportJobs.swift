import FHIR
import FHIRStore
import Foundation
import Logging

/// Bulk Data jobs in the PostgreSQL database of their tenant, so that a job started on one
/// replica is polled, downloaded and cancelled on any (issue 18). Tables: `caduceus_export_jobs`
/// and `caduceus_export_chunks` (``ExportChunks``).
///
/// The replica that started a job runs it and reports its progress at most once a second;
/// a running job that has not reported for ``staleAfter`` is answered as failed (its replica
/// stopped). Cancelling deletes the job's rows: the replica running it stops at its next
/// report. The guarantees of ``ExportJobs`` hold: a job answers only its tenant (its own
/// database) and the client that started it, its files are deleted ``retention`` after it
/// ends (swept when a job starts), and the bounds on jobs, server-wide and per client, are
/// counted over every replica under an advisory lock.
struct SharedExportJobs: ExportJobStore {
    let database: any SQLDatabase
    let retention: Duration
    let maximumJobs: Int

    /// A running job whose replica has not reported for this long has stopped (milliseconds).
    static let staleAfter: Int64 = 120_000
    /// The least time between two progress reports of a job.
    static let reportInterval = Duration.seconds(1)
    /// The advisory lock under which jobs are counted and started ("CADUEXPJ" in ASCII).
    static let startLock: Int64 = 0x4341_4455_4558_504A
    /// Milliseconds since the epoch by the database's clock, which every replica shares.
    static let now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"

    /// The database of `store`, when it is a PostgreSQL one.
    static func database(of store: any FHIRStore) -> (any SQLDatabase)? {
        guard let store = store as? SQLFHIRStore, store.database.dialect == .postgres else { return nil }
        return store.database
    }

    /// The owner column of `client`: "-" without access control, else "+" and the client.
    static func owner(_ client: String?) -> String { client.map { "+" + $0 } ?? "-" }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    func start(_ request: ExportJobs.Request, store: any FHIRStore) async throws -> String {
        let id = UUID().uuidString.lowercased()
        let retention = Self.milliseconds(retention)
        let (maximumJobs, perClient) = (maximumJobs, (maximumJobs + 1) / 2)
        let tenant = request.tenant ?? "", owner = Self.owner(request.client)
        try await database.withTransaction { executor in
            try await executor.query("SELECT pg_advisory_xact_lock(?)", [.integer(Self.startLock)])
            // Ended jobs past their retention, and running ones whose replica stopped that long ago.
            try await executor.query(
                "DELETE FROM caduceus_export_jobs WHERE expires < \(Self.now) OR (state = 'running' AND heartbeat < \(Self.now) - ?)",
                [.integer(Self.staleAfter + retention)])
            let counts = try await executor.query(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE tenant = ? AND owner = ?) FROM caduceus_export_jobs",
                [.text(tenant), .text(owner)])
            guard Int(counts.first?[0].int ?? 0) < maximumJobs else {
                throw FHIRError(
                    status: 429, code: "throttled",
                    "The server holds \(maximumJobs) export jobs already; delete one or try again when one expires")
            }
            // Without access control every request is the same client: the server-wide bound is the one.
            if request.client != nil, Int(counts.first?[1].int ?? 0) >= perClient {
                throw FHIRError(
                    status: 429, code: "throttled",
                    "This client holds \(perClient) export jobs already; delete one or try again when one expires")
            }
            try await executor.query(
                "INSERT INTO caduceus_export_jobs (id, tenant, owner, state, heartbeat) VALUES (?, ?, ?, 'running', \(Self.now))",
                [.text(id), .text(tenant), .text(owner)])
        }
        let database = database
        let transactionTime = Int64(Date().timeIntervalSince1970 * 1000)
        Task {
            let reporter = ProgressReporter(database: database, job: id)
            do {
                let manifest = try await ExportWriter(
                    request: request, store: store, jobId: id, transactionTime: transactionTime,
                    outputs: ExportChunks(database: database, job: id), progress: reporter.report
                ).run()
                try await Self.finish(id, in: database) { executor in
                    try await executor.query(
                        "UPDATE caduceus_export_jobs SET state = 'completed', result = ?, expires = \(Self.now) + ? WHERE id = ? AND state = 'running'",
                        [
                            .text(String(decoding: JSONWriter().bytes(manifest), as: UTF8.self)), .integer(retention),
                            .text(id),
                        ])
                }
            } catch is CancellationError {
                return  // deleted: its rows went with it
            } catch {
                let failure =
                    (error as? FHIRError)
                    ?? FHIRError(status: 500, code: "exception", "The export failed; the server's log has the cause")
                if !(error is FHIRError) {
                    // The cause (a database's message) goes to the log, not to the client.
                    Logger(label: "caduceus.export").error("Export \(id) failed: \(String(reflecting: error))")
                }
                try? await Self.finish(id, in: database) { executor in
                    try await executor.query("DELETE FROM caduceus_export_chunks WHERE job = ?", [.text(id)])
                    try await executor.query(
                        "UPDATE caduceus_export_jobs SET state = 'failed', result = ?, error_status = ?, error_code = ?,"
                            + " expires = \(Self.now) + ? WHERE id = ? AND state = 'running'",
                        [
                            .text(failure.issues.map(\.diagnostics).joined(separator: "; ")),
                            .integer(Int64(failure.status)),
                            .text(failure.issues.first?.code ?? "exception"), .integer(retention), .text(id),
                        ])
                }
            }
        }
        return id
    }

    /// Runs `body` (a job's last writes) in a transaction of its own.
    static func finish(
        _ id: String, in database: any SQLDatabase, _ body: @escaping @Sendable (any SQLExecutor) async throws -> Void
    ) async throws {
        try await database.withTransaction { try await body($0) }
    }

    func state(of id: String, tenant: String?, client: String?) async throws -> ExportJobs.State? {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "SELECT state, exported, result, error_status, error_code, CASE WHEN heartbeat < \(Self.now) - ? THEN 1 ELSE 0 END"
                    + " FROM caduceus_export_jobs"
                    + " WHERE id = ? AND tenant = ? AND owner = ? AND (expires IS NULL OR expires >= \(Self.now))",
                [.integer(Self.staleAfter), .text(id), .text(tenant ?? ""), .text(Self.owner(client))])
        }
        guard let row = rows.first else { return nil }
        switch row[0].string {
        case "completed":
            guard let manifest = try? JSONParser.parse(row[2].string ?? "") else { return nil }
            return .completed(manifest: manifest)
        case "failed":
            return .failed(
                FHIRError(
                    status: Int(row[3].int ?? 500), code: row[4].string ?? "exception",
                    row[2].string ?? "The export failed"))
        default:
            if row[5].int == 1 {
                return .failed(
                    FHIRError(
                        status: 500, code: "exception",
                        "The server running this export stopped before it finished; start the export again"))
            }
            return .running(exported: Int(row[1].int ?? 0))
        }
    }

    func fileData(_ name: String, of id: String, tenant: String?, client: String?) async throws -> Data? {
        guard let type = ExportJobs.fileType(name) else { return nil }
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "SELECT c.body FROM caduceus_export_chunks c JOIN caduceus_export_jobs j ON j.id = c.job"
                    + " WHERE j.id = ? AND j.tenant = ? AND j.owner = ? AND j.state = 'completed' AND j.expires >= \(Self.now)"
                    + " AND c.type = ? ORDER BY c.seq",
                [.text(id), .text(tenant ?? ""), .text(Self.owner(client)), .text(type)])
        }
        guard !rows.isEmpty else { return nil }
        var data = Data()
        for row in rows { data.append(contentsOf: Array((row[0].string ?? "").utf8)) }
        return data
    }

    func delete(_ id: String, tenant: String?, client: String?) async throws -> Bool {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "DELETE FROM caduceus_export_jobs WHERE id = ? AND tenant = ? AND owner = ? RETURNING id",
                [.text(id), .text(tenant ?? ""), .text(Self.owner(client))])
        }
        return !rows.isEmpty
    }
}

/// Reports a running job's progress (and that its replica is alive) at most once per
/// ``SharedExportJobs/reportInterval``; throws `CancellationError` once the job is gone.
final class ProgressReporter: @unchecked Sendable {
    let database: any SQLDatabase
    let job: String
    /// Only the job's own task calls ``report(_:)``, one call at a time.
    private var last = ContinuousClock.now

    init(database: any SQLDatabase, job: String) {
        self.database = database
        self.job = job
    }

    @Sendable func report(_ exported: Int) async throws {
        guard ContinuousClock.now - last >= SharedExportJobs.reportInterval else { return }
        last = ContinuousClock.now
        let (job, exported) = (job, exported)
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "UPDATE caduceus_export_jobs SET exported = ?, heartbeat = \(SharedExportJobs.now) WHERE id = ? AND state = 'running' RETURNING id",
                [.integer(Int64(exported)), .text(job)])
        }
        if rows.isEmpty { throw CancellationError() }
    }
}

/// An export's NDJSON lines as rows of `caduceus_export_chunks`: each type's lines gather
/// in memory up to ``chunkBytes`` (and all types' up to ``bufferedBytes``), then go to the
/// database as one row.
final class ExportChunks: ExportOutputs, @unchecked Sendable {
    static let chunkBytes = 1 << 20
    static let bufferedBytes = 8 << 20

    let database: any SQLDatabase
    let job: String
    /// Only the job's own task writes, one call at a time.
    private var buffers: [String: [UInt8]] = [:]
    private var sequence: [String: Int] = [:]
    private var counts: [String: Int] = [:]
    private var buffered = 0

    init(database: any SQLDatabase, job: String) {
        self.database = database
        self.job = job
    }

    func write(_ resource: StoredResource) async throws {
        guard let body = resource.body else { return }
        let type = resource.type
        // Stored bodies are compact JSON: one line each, as NDJSON requires.
        buffers[type, default: []].append(contentsOf: body.utf8)
        buffers[type]!.append(0x0A)
        buffered += body.utf8.count + 1
        counts[type, default: 0] += 1
        if buffers[type]!.count >= Self.chunkBytes {
            try await flush(type)
        } else if buffered >= Self.bufferedBytes {
            for type in buffers.keys.sorted() { try await flush(type) }
        }
    }

    func finish() async throws -> [String: Int] {
        for type in buffers.keys.sorted() { try await flush(type) }
        return counts
    }

    private func flush(_ type: String) async throws {
        guard let bytes = buffers.removeValue(forKey: type), !bytes.isEmpty else { return }
        buffered -= bytes.count
        let seq = sequence[type, default: 0]
        sequence[type] = seq + 1
        let (job, body) = (job, String(decoding: bytes, as: UTF8.self))
        try await database.withConnection { executor in
            try await executor.query(
                "INSERT INTO caduceus_export_chunks (job, type, seq, body) VALUES (?, ?, ?, ?)",
                [.text(job), .text(type), .integer(Int64(seq)), .text(body)])
        }
    }
}
