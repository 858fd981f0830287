import Dispatch
import Logging
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import SQLiteNIO
import VaporCSQLite

/// SQLite, the embedded default: one writer connection and a few readers over a WAL file.
///
/// SQLite allows one writer at a time, so writes queue on a lock rather than fail with
/// `SQLITE_BUSY`; readers see the last committed state and never block the writer.
public final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    private let writer: Connection
    private let readers: [Connection]
    private let nextReader = ManagedCounter()
    let commitQueue = CommitQueue()

    /// One connection: sqlite-nio opens and closes it, ``SQLiteStatements`` runs its statements.
    final class Connection: SQLExecutor, @unchecked Sendable {
        let connection: SQLiteConnection
        let mutex = AsyncMutex()
        let watchdog: StatementWatchdog
        /// Guarded by `mutex` (every caller holds it).
        private let statements: SQLiteStatements
        /// Statements run inline so far; guarded by `mutex`.
        private var inlineCount = 0

        init(_ connection: SQLiteConnection) throws {
            self.connection = connection
            watchdog = try StatementWatchdog(connection)
            statements = SQLiteStatements(handle: watchdog.handle)
        }

        /// Writes inside the writer's transaction run on the calling thread: each touches a
        /// bounded number of rows, takes microseconds, and a hop to a thread and back cost
        /// more than the statement. Everything else (reads, which may run until their time
        /// limit, and BEGIN and COMMIT, which may wait for a lock or fsync) runs on the
        /// thread pool, so that no task thread is held for long.
        static func runsInline(_ sql: String) -> Bool {
            for prefix in ["INSERT", "UPDATE", "DELETE", "SAVEPOINT", "RELEASE", "ROLLBACK TO"]
            where sql.hasPrefix(prefix) {
                return true
            }
            return false
        }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            do {
                if Self.runsInline(sql) {
                    // A Bundle of thousands of entries is thousands of statements: let other
                    // tasks have this thread now and then.
                    inlineCount &+= 1
                    if inlineCount % 256 == 0 { await Task.yield() }
                    return try statements.run(sql, binds)
                }
                // Only reads are timed: an interrupted write inside a transaction rolls back the
                // whole transaction, and with group commit that would be other requests' writes.
                let limit = sql.hasPrefix("SELECT") ? SQLStatementTimeLimit.current : nil
                return try await watchdog.run(limit: limit) { try await runOnThreadPool(sql, binds) }
            } catch let failure as SQLiteFailure where failure.isUniqueViolation {
                throw SQLUniqueViolation()
            }
        }

        /// Runs one statement on the thread pool. The pool thread resumes the caller itself
        /// (one hop back, not two through an event loop), and the statement runs even if the
        /// task is cancelled meanwhile: a COMMIT always runs.
        private func runOnThreadPool(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            let statements = UncheckedBox(self.statements)
            return try await withCheckedThrowingContinuation { continuation in
                NIOThreadPool.singleton.submit { state in
                    guard case .active = state else {
                        continuation.resume(throwing: StoreError.configuration("The SQLite thread pool has stopped"))
                        return
                    }
                    continuation.resume(with: Result { try statements.value.run(sql, binds) })
                }
            }
        }

        /// `BEGIN IMMEDIATE` (the write lock). Tried on the calling thread without waiting:
        /// only another process can hold the lock (this one writes through one connection,
        /// under its mutex), and the hop to a thread and back cost more than the statement
        /// (a fifth of the writer's turn for a group of creates). If the lock is taken, the
        /// wait of up to ``busyTimeout`` happens on the thread pool.
        func beginImmediate() async throws {
            sqlite_nio_sqlite3_busy_timeout(watchdog.handle, 0)
            do {
                _ = try statements.run("BEGIN IMMEDIATE", [])
                sqlite_nio_sqlite3_busy_timeout(watchdog.handle, SQLiteDatabase.busyTimeout)
            } catch let failure as SQLiteFailure where failure.code & 0xFF == SQLITE_BUSY {
                sqlite_nio_sqlite3_busy_timeout(watchdog.handle, SQLiteDatabase.busyTimeout)
                _ = try await runOnThreadPool("BEGIN IMMEDIATE", [])
            } catch {
                sqlite_nio_sqlite3_busy_timeout(watchdog.handle, SQLiteDatabase.busyTimeout)
                throw error
            }
        }

        /// Before the connection closes (SQLite will not close with statements open).
        func finalizeStatements() { statements.finalizeAll() }
    }

    /// How much of the database file a reader maps (SQLite's `mmap_size`).
    static let readerMapBytes = 256 << 20

    /// How long a connection waits for a lock another process holds, in milliseconds.
    static let busyTimeout: Int32 = 10000

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readers: Int = 2, logger: Logger = Logger(label: "caduceus.sqlite"))
        async throws -> SQLiteDatabase
    {
        try await open(path: path, readers: readers, checkpointFrames: 8192, logger: logger)
    }

    /// ``open(path:readers:logger:)`` with the WAL size (in frames) at which a checkpoint starts.
    static func open(path: String, readers: Int, checkpointFrames: Int32, logger: Logger) async throws -> SQLiteDatabase
    {
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let writer = try await SQLiteConnection.open(storage: storage, logger: logger)
        // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable
        // before it is acknowledged, so a crash loses no acknowledged write.
        // The writer's page cache holds a whole transaction Bundle's pages (at SQLite's default
        // of 2 MB a Bundle of Synthea's size spilled pages to the WAL mid-transaction and read
        // them back). Statement journals stay in memory (temp_store): a multi-row statement
        // that may fail halfway journals every page it touches, and spilled to a temp file that
        // was a fifth of an ingest's CPU.
        for pragma in [
            "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=\(busyTimeout)",
            "PRAGMA foreign_keys=OFF",
            "PRAGMA cache_size=-32768", "PRAGMA temp_store=MEMORY",
        ] {
            _ = try await writer.query(pragma)
        }
        var readerConnections: [Connection] = []
        if path != ":memory:" {
            for _ in 0..<readers {
                let reader = try await SQLiteConnection.open(storage: storage, logger: logger)
                _ = try await reader.query("PRAGMA busy_timeout=\(busyTimeout)")
                // A reader's page cache is dropped whenever a write committed since its last
                // read, so under writes it re-read its pages with one pread each (37 a request
                // of the overhead benchmark's mix). Mapped, the file's pages are read from
                // memory; pages still in the WAL are read as before. 256 MiB of address space,
                // not memory: the kernel's page cache backs it.
                _ = try await reader.query("PRAGMA mmap_size=\(readerMapBytes)")
                readerConnections.append(try Connection(reader))
            }
        }
        let writerConnection = try Connection(writer)
        var checkpointer: SQLiteCheckpointer?
        if path != ":memory:" {
            // Checkpoints every 32 MB of WAL instead of SQLite's 4 MB copy a page written by
            // many commits once and stall fewer commits (BENCHMARKS.md, "Synthea ingest"); they
            // run off the writer's commit path (SQLiteCheckpointer).
            checkpointer = try SQLiteCheckpointer(
                connection: try await SQLiteConnection.open(storage: storage, logger: logger),
                thresholdFrames: checkpointFrames)
            checkpointer?.install(on: writerConnection.watchdog.handle)
        }
        return SQLiteDatabase(writer: writerConnection, readers: readerConnections, checkpointer: checkpointer)
    }

    /// The writer's WAL checkpoints (nil in memory).
    let checkpointer: SQLiteCheckpointer?

    private init(writer: Connection, readers: [Connection], checkpointer: SQLiteCheckpointer?) {
        self.writer = writer
        self.readers = readers
        self.checkpointer = checkpointer
    }

    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T)
        async throws -> T
    {
        let connection = readers.isEmpty ? writer : readers[nextReader.next() % readers.count]
        return try await connection.mutex.withLock { try await body(connection) }
    }

    /// Group commit: transactions that arrive while one is being written share the next
    /// COMMIT (and its fsync), each inside a SAVEPOINT of its own, so one that fails rolls
    /// back alone. A caller hears of success only after the shared COMMIT.
    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T)
        async throws -> T
    {
        try await enqueue(body, replayable: false)
    }

    /// ``withTransaction(_:)`` for a `body` that may run more than once: it has no effect but
    /// its statements and its result, and everything it writes depends only on the database
    /// and the moment it runs (a create: stamp, then insert). A group of such transactions is
    /// written without savepoints (each savepoint copied every page its transaction touched
    /// to a sub-journal first: an eighth of a create's CPU time, BENCHMARKS.md). If one of
    /// them fails after a statement ran, the whole group is rolled back and written again
    /// with a savepoint each, so the others still commit and it fails alone.
    public func withReplayableTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T)
        async throws -> T
    {
        try await enqueue(body, replayable: true)
    }

    private func enqueue<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T, replayable: Bool)
        async throws -> T
    {
        let result = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<any Sendable, any Error>) in
            let job = PendingTransaction(
                body: { try await body($0) }, replayable: replayable, continuation: continuation)
            if commitQueue.enqueue(job) {
                Task { await self.drainCommitQueue() }
            }
        }
        return result as! T
    }

    /// Writes queued transactions in groups until the queue is empty.
    private func drainCommitQueue() async {
        while let group = commitQueue.takeGroup(maximum: 64) {
            var results: [Result<any Sendable, any Error>]
            do {
                results = try await writer.mutex.withLock {
                    if group.count > 1, group.allSatisfy(\.replayable),
                        let results = try await writeWithoutSavepoints(group)
                    {
                        return results
                    }
                    return try await writeWithSavepoints(group)
                }
            } catch {
                // The group's COMMIT failed: nothing of it was written.
                results = group.map { _ in .failure(error) }
            }
            for (job, result) in zip(group, results) { job.continuation.resume(with: result) }
        }
    }

    /// Each job of `group` in a savepoint of its own (none when alone), one COMMIT.
    private func writeWithSavepoints(_ group: [PendingTransaction]) async throws -> [Result<any Sendable, any Error>] {
        var results: [Result<any Sendable, any Error>] = []
        // IMMEDIATE takes the write lock at BEGIN, so no statement fails for want of it.
        try await writer.beginImmediate()
        try await writer.inTransaction(begin: nil) { executor in
            if group.count == 1 {
                // Alone, the transaction itself is the unit: no savepoint needed.
                results.append(.success(try await group[0].body(executor)))
                return
            }
            for job in group {
                try await executor.query("SAVEPOINT job", [])
                do {
                    results.append(.success(try await job.body(executor)))
                    try await executor.query("RELEASE job", [])
                } catch {
                    results.append(.failure(error))
                    try await executor.query("ROLLBACK TO job", [])
                    try await executor.query("RELEASE job", [])
                }
            }
        }
        return results
    }

    /// Replayable jobs one after the other in one transaction, without savepoints. A job
    /// that throws before running a statement has written nothing and fails alone; one that
    /// throws after may have written part of itself: then everything is rolled back and the
    /// answer is `nil` (the caller writes the group again with savepoints).
    private func writeWithoutSavepoints(_ group: [PendingTransaction]) async throws -> [Result<
        any Sendable, any Error
    >]? {
        var results: [Result<any Sendable, any Error>] = []
        try await writer.beginImmediate()
        do {
            for job in group {
                let counted = CountingExecutor(writer)
                do {
                    results.append(.success(try await job.body(counted)))
                } catch  where counted.statements == 0 {
                    results.append(.failure(error))
                }
            }
        } catch {
            // (SQLite may have rolled back already, after an I/O error.)
            _ = try? await writer.query("ROLLBACK", [])
            return nil
        }
        do {
            try await writer.query("COMMIT", [])
        } catch {
            _ = try? await writer.query("ROLLBACK", [])
            throw error
        }
        return results
    }

    public func close() async throws {
        try await writer.mutex.withLock { try await checkpointer?.close() }
        for connection in readers + [writer] {
            try await connection.mutex.withLock {
                connection.finalizeStatements()
                try await connection.connection.close()
            }
        }
    }
}

/// Stops a statement of one connection that runs past its time limit. sqlite-nio builds
/// SQLite without the progress callback, so a timer calls `sqlite3_interrupt`, which SQLite
/// allows from any thread.
///
/// SQLite clears an interrupt when a statement starts on an idle connection, so one call is
/// lost if it comes while the statement still waits for a thread of sqlite-nio's pool (two on
/// a two-core machine, shared by every connection). Past the limit the timer therefore
/// interrupts again, every limit but at least every ``longestRepeat``, until the statement returns. It runs on a
/// dispatch queue of its own, not on an event loop that busy work could hold up. The limit
/// counts from the call, waiting for a pool thread included. The generation check keeps a
/// late timer off the next statement.
final class StatementWatchdog: @unchecked Sendable {
    /// The longest pause between interrupts of an overdue statement.
    static let longestRepeat: Int64 = 20
    private static let queue = DispatchQueue(label: "caduceus.sqlite.statement-watchdog")

    let handle: OpaquePointer
    private let lock = NIOLock()
    private var generation: UInt64 = 0
    private var running: UInt64 = 0
    private var fired = false

    /// Reads the `sqlite3 *` of `connection`, which sqlite-nio keeps internal. Fails (rather
    /// than run without time limits) if a new sqlite-nio stores it differently.
    init(_ connection: SQLiteConnection) throws {
        guard let handle = Mirror(reflecting: connection).descendant("handle", "raw") as? OpaquePointer else {
            throw StoreError.configuration(
                "Cannot reach the SQLite handle of this sqlite-nio version to limit statement time")
        }
        self.handle = handle
    }

    /// Runs `body` (one statement), interrupting it after `limit`; an interrupted statement
    /// throws ``SQLStatementTimeout``.
    func run<T>(limit: Duration?, _ body: () async throws -> T) async throws -> T {
        guard let limit else { return try await body() }
        let statement = lock.withLock {
            generation += 1
            running = generation
            fired = false
            return generation
        }
        let timer = DispatchSource.makeTimerSource(queue: Self.queue)
        let milliseconds = SQLStatementTimeLimit.milliseconds(limit)
        timer.schedule(
            deadline: .now() + .milliseconds(Int(milliseconds)),
            repeating: .milliseconds(Int(min(milliseconds, Self.longestRepeat))), leeway: .milliseconds(1))
        timer.setEventHandler { self.interrupt(statement) }
        timer.resume()
        defer { timer.cancel() }
        do {
            let result = try await body()
            _ = finish()
            return result
        } catch {
            if finish() { throw SQLStatementTimeout(limit: limit) }
            throw error
        }
    }

    private func interrupt(_ statement: UInt64) {
        lock.withLock {
            guard running == statement else { return }
            fired = true
            sqlite_nio_sqlite3_interrupt(handle)
        }
    }

    /// Ends the timing; true when the statement was interrupted.
    private func finish() -> Bool {
        lock.withLock {
            running = 0
            return fired
        }
    }
}

/// A transaction waiting for the writer.
struct PendingTransaction: Sendable {
    let body: @Sendable (any SQLExecutor) async throws -> any Sendable
    /// The body may run again (``SQLiteDatabase/withReplayableTransaction(_:)``).
    let replayable: Bool
    let continuation: CheckedContinuation<any Sendable, any Error>
}

/// The transactions waiting for the writer, and whether someone is draining them.
final class CommitQueue: @unchecked Sendable {
    private var pending: [PendingTransaction] = []
    private var draining = false
    private let lock = NIOLock()

    /// How many transactions wait for the writer.
    var waiting: Int { lock.withLock { pending.count } }

    /// Queues `job`; true when the caller must start draining.
    func enqueue(_ job: PendingTransaction) -> Bool {
        lock.withLock {
            pending.append(job)
            if draining { return false }
            draining = true
            return true
        }
    }

    /// The next group, or `nil` (and draining ends) when none is waiting.
    func takeGroup(maximum: Int) -> [PendingTransaction]? {
        lock.withLock {
            guard !pending.isEmpty else {
                draining = false
                return nil
            }
            let group = Array(pending.prefix(maximum))
            pending.removeFirst(group.count)
            return group
        }
    }
}

/// Passes statements to the writer and counts them: a replayable job that failed before
/// its first statement wrote nothing.
final class CountingExecutor: SQLExecutor, @unchecked Sendable {
    private let executor: any SQLExecutor
    /// Guarded by the writer's mutex, like the executor itself.
    private(set) var statements = 0

    init(_ executor: any SQLExecutor) { self.executor = executor }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        statements += 1
        return try await executor.query(sql, binds)
    }
}

/// Carries a value the caller guards itself (here: by a connection's mutex) into a
/// `@Sendable` closure.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A thread-safe round-robin counter.
final class ManagedCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NIOLock()

    func next() -> Int {
        lock.withLock {
            value &+= 1
            return value & Int.max
        }
    }
}
