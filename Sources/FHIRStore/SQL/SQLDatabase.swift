/// The SQL dialects the store speaks. Statements are written once with `?` placeholders;
/// the dialect decides the few places where the two databases differ.
public enum SQLDialect: Sendable {
    case sqlite, postgres
}

/// A value bound to a statement placeholder or read from a result column.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)

    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .double(let value): return Int64(value)
        case .text(let text): return Int64(text)
        case .null: return nil
        }
    }

    public var string: String? {
        switch self {
        case .text(let text): return text
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        case .null: return nil
        }
    }

    public init(_ text: String?) { self = text.map(SQLValue.text) ?? .null }
}

/// One result row, by column position.
public typealias SQLRow = [SQLValue]

/// A statement with `?` placeholders and the values bound to them.
public struct SQLStatement: Sendable {
    public var sql: String
    public var binds: [SQLValue]

    public init(_ sql: String, _ binds: [SQLValue]) {
        self.sql = sql
        self.binds = binds
    }
}

/// Runs statements on one connection (inside a transaction where one was opened).
public protocol SQLExecutor: Sendable {
    /// Runs `sql` with `?` placeholders bound to `binds`, and returns the rows.
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]

    /// Runs data-changing statements (INSERT, UPDATE, DELETE without RETURNING) whose
    /// results are not needed, in order, in as few round trips as the database allows.
    func execute(_ statements: [SQLStatement]) async throws
}

extension SQLExecutor {
    public func execute(_ statements: [SQLStatement]) async throws {
        for statement in statements { try await query(statement.sql, statement.binds) }
    }
}

extension SQLExecutor {
    /// Runs `body` between `begin` and COMMIT, rolling back when it throws (`begin` nil: the
    /// caller began the transaction).
    func inTransaction<T>(begin: String?, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        if let begin { try await query(begin, []) }
        do {
            let result = try await body(self)
            try await query("COMMIT", [])
            return result
        } catch {
            _ = try? await query("ROLLBACK", [])
            throw error
        }
    }
}

/// A database the FHIR store runs on.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` on a connection, outside any explicit transaction.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    /// Runs data-changing `statements` (as ``SQLExecutor/execute(_:)`` takes them) so that
    /// all of them are written or none, in as few round trips as the database allows.
    func writeAtomically(_ statements: [SQLStatement]) async throws
    /// Closes every connection.
    func close() async throws
}

extension SQLDatabase {
    public func writeAtomically(_ statements: [SQLStatement]) async throws {
        try await withTransaction { try await $0.execute(statements) }
    }
}

/// Raised when a unique constraint is violated (a concurrent create of the same id).
public struct SQLUniqueViolation: Error {}

/// How long one statement may run. The HTTP layer sets ``current`` for each request, so a
/// costly search is stopped by the database (SQLite is interrupted, PostgreSQL applies
/// `statement_timeout`) instead of holding a connection; outside a request nothing is limited.
public enum SQLStatementTimeLimit {
    /// The limit for statements run by the current task; `nil` for none.
    @TaskLocal public static var current: Duration?

    /// The default of `caduceus serve --statement-time-limit`: far above any search the
    /// benchmarks run (their p99 is under 40 ms per request, BENCHMARKS.md), far below a
    /// client's patience.
    public static let standard: Duration = .seconds(10)

    /// The longest limit: PostgreSQL's `statement_timeout` is a 32-bit count of milliseconds.
    public static let maximum: Duration = .seconds(86_400)

    /// Whole milliseconds from 1 (PostgreSQL reads 0 as no limit) to ``maximum``.
    static func milliseconds(_ limit: Duration) -> Int64 {
        let (seconds, attoseconds) = min(max(limit, .zero), maximum).components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

/// Raised when a statement ran past ``SQLStatementTimeLimit/current`` and the database stopped it.
public struct SQLStatementTimeout: Error, CustomStringConvertible {
    /// The limit it ran past.
    public var limit: Duration

    public init(limit: Duration) { self.limit = limit }

    public var description: String { "A database statement ran longer than the limit of \(limit) and was stopped" }
}

/// A lock for async code: waiters are served first come, first served.
actor AsyncMutex {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty {
            locked = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

extension AsyncMutex {
    nonisolated func withLock<T>(_ body: () async throws -> T) async throws -> T {
        await lock()
        do {
            let result = try await body()
            await unlock()
            return result
        } catch {
            await unlock()
            throw error
        }
    }
}
