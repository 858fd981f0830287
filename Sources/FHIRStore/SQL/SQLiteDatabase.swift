import Logging
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import SQLiteNIO

/// SQLite, the embedded default: one writer connection and a few readers over a WAL file.
///
/// SQLite allows one writer at a time, so writes queue on a lock rather than fail with
/// `SQLITE_BUSY`; readers see the last committed state and never block the writer.
public final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    private let writer: Connection
    private let readers: [Connection]
    private let nextReader = ManagedCounter()

    final class Connection: SQLExecutor, @unchecked Sendable {
        let connection: SQLiteConnection
        let mutex = AsyncMutex()

        init(_ connection: SQLiteConnection) { self.connection = connection }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            let rows: [SQLiteRow]
            do {
                rows = try await connection.query(sql, binds.map(Connection.sqliteData))
            } catch let error as SQLiteError where error.reason == .constraintUniqueFailed || error.reason == .constraintPrimaryKeyFailed {
                throw SQLUniqueViolation()
            }
            return rows.map { row in
                row.columns.map { column in
                    switch column.data {
                    case .integer(let value): return .integer(Int64(value))
                    case .float(let value): return .double(value)
                    case .text(let text): return .text(text)
                    case .blob(let buffer): return .text(String(buffer: buffer))
                    case .null: return .null
                    }
                }
            }
        }

        static func sqliteData(_ value: SQLValue) -> SQLiteData {
            switch value {
            case .null: return .null
            case .integer(let value): return .integer(Int(value))
            case .double(let value): return .float(value)
            case .text(let text): return .text(text)
            }
        }
    }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readers: Int = 2, logger: Logger = Logger(label: "caduceus.sqlite")) async throws -> SQLiteDatabase {
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let writer = try await SQLiteConnection.open(storage: storage, logger: logger)
        // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable
        // before it is acknowledged, so a crash loses no acknowledged write.
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=OFF"] {
            _ = try await writer.query(pragma)
        }
        var readerConnections: [Connection] = []
        if path != ":memory:" {
            for _ in 0..<readers {
                let reader = try await SQLiteConnection.open(storage: storage, logger: logger)
                _ = try await reader.query("PRAGMA busy_timeout=10000")
                readerConnections.append(Connection(reader))
            }
        }
        return SQLiteDatabase(writer: Connection(writer), readers: readerConnections)
    }

    private init(writer: Connection, readers: [Connection]) {
        self.writer = writer
        self.readers = readers
    }

    public func withConnection<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let connection = readers.isEmpty ? writer : readers[nextReader.next() % readers.count]
        return try await connection.mutex.withLock { try await body(connection) }
    }

    public func withTransaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        // IMMEDIATE takes the write lock at BEGIN, so a transaction never fails halfway for
        // want of it.
        try await writer.mutex.withLock { try await writer.inTransaction(begin: "BEGIN IMMEDIATE", body) }
    }

    public func close() async throws {
        for reader in readers { try await reader.connection.close() }
        try await writer.connection.close()
    }
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
