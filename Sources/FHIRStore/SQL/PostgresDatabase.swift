import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// PostgreSQL through postgres-nio's connection pool.
///
/// A URL with several hosts names a primary and its standbys: the store writes to the primary
/// (the host that is not in recovery, on the newest timeline) and, when it stops answering,
/// looks for another until a standby has been promoted (PostgresDatabase+Primary.swift). A
/// request that finds no connection within ``connectionWait`` fails with
/// ``SQLDatabaseUnavailable`` instead of waiting for ever.
public final class PostgresDatabase: SQLDatabase, @unchecked Sendable {
    public let dialect = SQLDialect.postgres
    let url: PostgresURL
    /// What each session is set to on its first lease: the URL's ``PostgresURL/sessionSettings()``.
    let sessionSettings: [(name: String, value: String)]
    let logger: Logger
    /// How long a request waits for a connection while the pool grants none and has none
    /// leased before it fails (503): a pool whose connections are all busy is waited for.
    let connectionWait: Duration
    /// The pool of the primary in use; replaced when another host becomes the primary, or by a
    /// fresh one when it stalls (which fails the leases waiting on it).
    let active: NIOLockedValueBox<Pool>
    /// The search for the primary, the newest timeline seen, whether the store is closed.
    let failover = NIOLockedValueBox(FailoverState())
    /// Fails the leases of a stalled pool (PostgresDatabase+Primary.swift).
    private(set) var watchdog: Task<Void, Never>?

    struct Connection: SQLExecutor, @unchecked Sendable {
        let connection: PostgresConnection
        let logger: Logger
        /// The database's record of which prepared statements have run on which connection.
        let preparedOn: NIOLockedValueBox<[PreparedKey: PreparationState]>

        /// Runs `statement`, prepared on this connection the first time.
        ///
        /// postgres-nio remembers a failed preparation for the connection's lifetime and answers
        /// every later use with the same error (a preparation stopped by statement_timeout, say).
        /// A statement whose first run here failed in a way a preparation can fail runs on this
        /// connection from then on as an unnamed statement of the same text (planned each time,
        /// as before it was prepared). The connection is never closed here: closing a leased
        /// connection left other leases of the pool waiting for ever (found by an attacker's
        /// read: eight concurrent PUTs creating one id hung).
        func execute<Statement: PostgresPreparedStatement>(prepared statement: Statement) async throws
        where Statement.Row == () {
            let key = PreparedKey(connection: connection.id, statement: Statement.name)
            let state = preparedOn.withLockedValue { $0[key] }
            if state == .unprepared {
                _ = try await query(PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings()))
                return
            }
            do {
                _ = try await connection.execute(statement, logger: logger)
                if state == nil { remember(key, .prepared) }
            } catch {
                if state == nil && !PostgresDatabase.isExecutionError(error) { remember(key, .unprepared) }
                throw PostgresDatabase.translated(error)
            }
        }

        /// Records how `key`'s statement runs on its connection (a connection serves one lease at
        /// a time, so its first run decides); forgets every record past 1,024 connections' worth.
        private func remember(_ key: PreparedKey, _ state: PreparationState) {
            preparedOn.withLockedValue { prepared in
                if prepared.count > 1024 { prepared.removeAll() }
                prepared[key] = state
            }
        }

        /// All statements as one: `WITH s0 AS (...), s1 AS (...) SELECT 1`. PostgreSQL runs the
        /// parts on one snapshot, so a DELETE of old index rows and the INSERT of new ones do
        /// not see each other; one round trip instead of one per statement.
        func execute(_ statements: [SQLStatement]) async throws {
            if let combined = PostgresDatabase.combined(statements) {
                try await query(combined.sql, combined.binds)
            } else {
                for statement in statements { try await query(statement.sql, statement.binds) }
            }
        }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            var bindings = PostgresBindings(capacity: binds.count)
            for value in binds {
                switch value {
                case .null: bindings.appendNull()
                case .integer(let number): bindings.append(number)
                case .double(let number): bindings.append(number)
                case .text(let text): bindings.append(text)
                }
            }
            return try await query(PostgresQuery(unsafeSQL: PostgresDatabase.numberPlaceholders(sql), binds: bindings))
        }

        private func query(_ query: PostgresQuery) async throws -> [SQLRow] {
            do {
                let rows = try await connection.query(query, logger: logger)
                var result: [SQLRow] = []
                for try await row in rows {
                    result.append(row.map(PostgresDatabase.value(of:)))
                }
                return result
            } catch {
                throw PostgresDatabase.translated(error)
            }
        }
    }

    /// The store's error for a PostgreSQL error: unique violations and statement timeouts
    /// have their own types; anything else is passed on.
    static func translated(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        switch error.serverInfo?[.sqlState] {
        case "23505": return SQLUniqueViolation()
        case "57014":
            // query_canceled: statement_timeout stopped it (the pool cancels nothing else).
            guard let limit = SQLStatementTimeLimit.current else { return error }
            return SQLStatementTimeout(limit: limit)
        default: return error
        }
    }

    /// Runs `statement`, prepared once per connection, on a pooled connection under the task's
    /// time limit.
    func execute<Statement: PostgresPreparedStatement>(prepared statement: Statement) async throws
    where Statement.Row == () {
        try await leased { try await $0.execute(prepared: statement) }
    }

    struct PreparedKey: Hashable {
        var connection: PostgresConnection.ID
        var statement: String
    }

    /// How a prepared statement runs on one connection.
    enum PreparationState {
        /// Prepared, and it has run there.
        case prepared
        /// Its first run there failed, maybe in the preparation: an unnamed statement instead.
        case unprepared
    }

    /// PostgreSQL's SQLSTATE of `error`, if it is one of its errors.
    static func sqlState(of error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// Whether PostgreSQL refused `error`'s statement while executing it (a constraint or a
    /// value: SQLSTATE classes 22 and 23), so that its preparation had succeeded.
    static func isExecutionError(_ error: any Error) -> Bool {
        guard let state = (error as? PSQLError)?.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23")
    }

    /// The default of ``connectionWait``: longer than a promotion takes when an operator is at
    /// hand, short enough that a client is told rather than left waiting.
    public static let standardConnectionWait: Duration = .seconds(5)

    /// Connects to `url` (`postgres://user:password@host:port/database`, or several
    /// `host:port` separated by commas, a primary and its standbys in any order).
    public static func connect(
        url text: String, connectionWait: Duration = standardConnectionWait,
        logger: Logger = Logger(label: "caduceus.postgres")
    ) async throws -> PostgresDatabase {
        // The text is not echoed: it may hold a password.
        guard let url = PostgresURL(text), !url.endpoints.isEmpty else {
            throw StoreError.configuration(
                "Not a PostgreSQL URL (expected postgres://user:password@host:port/database,"
                    + " or host1:port1,host2:port2 for a primary and its standbys)")
        }
        let sessionSettings = try url.sessionSettings()
        var endpoint = url.endpoints[0]
        var timeline: Int?
        if url.endpoints.count > 1 {
            // PostgreSQL may be starting (a compose stack, a restart): probe for up to 30 s, as a
            // single host's pool keeps trying to connect.
            let found = await findPrimary(url: url, every: .milliseconds(500), for: .seconds(30)) {
                choosePrimary($0, current: nil, newestSeen: 0)
            }
            guard let primary = found.primary else {
                try Task.checkCancellation()
                throw StoreError.configuration(
                    "None of \(url.endpoints.map(\.description).joined(separator: ", ")) became a PostgreSQL"
                        + " primary that accepts connections within 30 s: " + describe(found.probes))
            }
            (endpoint, timeline) = primary
        }
        let database = PostgresDatabase(
            url: url, sessionSettings: sessionSettings, endpoint: endpoint, timeline: timeline,
            connectionWait: connectionWait, logger: logger)
        // The pool serves leases only once `run()` is under way; a lease before that works but
        // logs a warning, so give the run task a moment to start.
        try await Task.sleep(for: .milliseconds(5))
        return database
    }

    /// Creates database `name` on the server at `serverURL` (dropping it first when
    /// `replacing`), and connects to it. Tests and benchmarks use this for a clean slate.
    public static func createDatabase(named name: String, serverURL: String, replacing: Bool = false) async throws
        -> PostgresDatabase
    {
        guard let url = PostgresURL(serverURL) else {
            throw StoreError.configuration("Cannot create database '\(name)' on \(serverURL)")
        }
        try await administer(database: name, serverURL: serverURL) { executor in
            if replacing { try await executor.query("DROP DATABASE IF EXISTS \(name)", []) }
            try await executor.query("CREATE DATABASE \(name)", [])
        }
        return try await connect(url: url.with(database: name).description)
    }

    /// Creates database `name` on the server at `serverURL` unless it exists.
    public static func createDatabaseIfMissing(named name: String, serverURL: String) async throws {
        try await administer(database: name, serverURL: serverURL) { executor in
            let exists = try await executor.query("SELECT 1 FROM pg_database WHERE datname = ?", [.text(name)])
            if exists.isEmpty {
                do {
                    try await executor.query("CREATE DATABASE \(name)", [])
                } catch let error where error is SQLUniqueViolation || PostgresDatabase.sqlState(of: error) == "42P04" {
                    // Created concurrently by another process (PostgreSQL says so either way):
                    // that is what we wanted.
                }
            }
        }
    }

    /// Runs `body` on a connection to `serverURL` for statements about database `name`
    /// (whose name goes into SQL, so it may hold only letters, digits and `_`).
    private static func administer(
        database name: String, serverURL: String, _ body: @escaping @Sendable (any SQLExecutor) async throws -> Void
    ) async throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw StoreError.configuration("Cannot create database '\(name)' on \(serverURL)")
        }
        let admin = try await connect(url: serverURL)
        do {
            try await admin.withConnection(body)
            try await admin.close()
        } catch {
            try? await admin.close()
            throw error
        }
    }

    private init(
        url: PostgresURL, sessionSettings: [(name: String, value: String)], endpoint: PostgresURL.Endpoint,
        timeline: Int?, connectionWait: Duration, logger: Logger
    ) {
        self.url = url
        self.sessionSettings = sessionSettings
        self.logger = logger
        self.connectionWait = connectionWait
        active = NIOLockedValueBox(Pool(endpoint: endpoint, url: url, logger: logger))
        failover.withLockedValue { $0.newestTimeline = timeline ?? 0 }
        watchdog = Task { [weak self] in
            var last = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                // A database dropped without close() ends its watchdog here.
                guard let self else { return }
                // A tick a second late means this process, not the database, was not running
                // (every thread busy): what waited meanwhile is counted from now.
                if ContinuousClock.now - last > .seconds(1) {
                    self.active.withLockedValue { $0 }.restartWait()
                } else {
                    await self.failStalledLeases()
                }
                last = ContinuousClock.now
            }
        }
    }

    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T)
        async throws -> T
    {
        try await leased { try await body($0) }
    }

    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T)
        async throws -> T
    {
        try await leased { try await $0.inTransaction(begin: "BEGIN", body) }
    }

    /// Gives the leased connection the task's ``SQLStatementTimeLimit`` as its session's
    /// `statement_timeout`, unless it has it already, and on its first lease the URL's
    /// ``PostgresURL/sessionSettings()`` in the same statement (`set_config` with bound values:
    /// one round trip, nothing spliced into the SQL). Outside a transaction, so that no
    /// rollback undoes it.
    func applySessionSettings(_ executor: Connection, pool: Pool) async throws {
        let wanted = SQLStatementTimeLimit.current.map(SQLStatementTimeLimit.milliseconds) ?? 0
        let id = executor.connection.id
        let applied = pool.appliedTimeLimits.withLockedValue { $0[id] }
        guard applied != wanted else { return }
        var sql = "SELECT set_config('statement_timeout', ?, false)"
        var binds: [SQLValue] = [.text(String(wanted))]
        for setting in applied == nil ? sessionSettings : [] {
            sql += ", set_config(?, ?, false)"
            binds += [.text(setting.name), .text(setting.value)]
        }
        _ = try await executor.query(sql, binds)
        pool.appliedTimeLimits.withLockedValue { applied in
            // Connections the pool replaced leave their entries; forget them all now and then.
            if applied.count > 1024 { applied.removeAll() }
            applied[id] = wanted
        }
    }

    public func close() async throws {
        watchdog?.cancel()
        let search = failover.withLockedValue { state in
            state.closed = true
            return state.search
        }
        search?.cancel()
        await search?.value
        let pool = active.withLockedValue { $0 }
        pool.runTask.cancel()
        await pool.runTask.value
    }

    /// `statements` as one statement, `WITH s0 AS (...), s1 AS (...) SELECT 1`; `nil` when
    /// there are none or their values are more than one statement may bind.
    static func combined(_ statements: [SQLStatement]) -> SQLStatement? {
        guard statements.count > 1 else { return statements.first }
        guard statements.reduce(0, { $0 + $1.binds.count }) < Int(UInt16.max) else { return nil }
        let parts = statements.enumerated().map { "s\($0.offset) AS (\($0.element.sql))" }
        return SQLStatement("WITH " + parts.joined(separator: ", ") + " SELECT 1", statements.flatMap(\.binds))
    }

    /// One statement is atomic on its own: without BEGIN and COMMIT it takes one round trip
    /// instead of three. Statements too many to combine run in a transaction.
    public func writeAtomically(_ statements: [SQLStatement]) async throws {
        guard let combined = Self.combined(statements) else {
            try await withTransaction { try await $0.execute(statements) }
            return
        }
        try await withConnection { try await $0.query(combined.sql, combined.binds) }
    }

    /// Rewrites `?` placeholders as `$1`, `$2`, ... (the store's SQL has no `?` in literals).
    static func numberPlaceholders(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        for character in sql {
            if character == "?" {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        return result
    }

    static func value(of cell: PostgresCell) -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return (try? cell.decode(Int64.self)).map(SQLValue.integer) ?? .null
        case .float4, .float8, .numeric: return (try? cell.decode(Double.self)).map(SQLValue.double) ?? .null
        default: return (try? cell.decode(String.self)).map(SQLValue.text) ?? .null
        }
    }
}

/// Errors of the store's setup.
public enum StoreError: Error, CustomStringConvertible {
    case configuration(String)

    public var description: String {
        switch self {
        case .configuration(let message): return message
        }
    }
}
