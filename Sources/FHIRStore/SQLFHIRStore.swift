import FHIR
import Foundation

/// The FHIR store on any ``SQLDatabase``: resources as versioned JSON text, search answered
/// from index tables filled in the same transaction as each write.
public final class SQLFHIRStore: FHIRStore, @unchecked Sendable {
    public let database: any SQLDatabase
    let indexer: SearchIndexer
    let clock = MonotonicClock()
    let statistics = StatisticsSchedule()
    /// Concurrent creates on PostgreSQL, grouped into one statement.
    let postgresCreates = PostgresCreateQueue()

    /// Wraps `database`, creating the tables when they are missing.
    public init(database: any SQLDatabase, registry: SearchParameterRegistry = .r4) async throws {
        self.database = database
        indexer = SearchIndexer(registry: registry)
        let statements = Schema.statements(for: database.dialect)
        try await database.withTransaction { executor in
            // Two servers opening one new PostgreSQL database at once (replicas starting, a
            // tenant's first requests on two of them) would both create the tables, and one
            // would fail on PostgreSQL's catalog; the lock makes the second wait and find them.
            var complete = false
            if database.dialect == .postgres {
                try await executor.query("SELECT pg_advisory_xact_lock(\(Self.schemaLock))", [])
                complete = try await Self.postgresSchemaIsComplete(statements, executor)
            }
            // On PostgreSQL each `CREATE INDEX IF NOT EXISTS` takes its table's SHARE lock even
            // when the index exists, until this transaction ends: a replica opening a tenant that
            // another replica was already writing to deadlocked with that write (40P01, a 500).
            // A complete schema is left alone.
            if !complete {
                for statement in statements { try await executor.query(statement, []) }
            }
            let found = try await executor.query("SELECT version FROM caduceus_schema", []).first?.first?.int
            if found == nil {
                try await executor.query("INSERT INTO caduceus_schema (version) VALUES (?)", [.integer(Schema.version)])
            } else if found != Schema.version {
                throw StoreError.configuration(
                    "The database has schema version \(found!), this Caduceus uses \(Schema.version); use a new database"
                )
            }
        }
    }

    /// Whether every table, index and statistics object `statements` create exists already in
    /// the current schema (false when a statement is not such a `CREATE ... IF NOT EXISTS`).
    static func postgresSchemaIsComplete(_ statements: [String], _ executor: any SQLExecutor) async throws -> Bool {
        var relations: Set<String> = []
        var statistics: Set<String> = []
        for statement in statements {
            let words = statement.split(whereSeparator: \.isWhitespace).map(String.init)
            guard words.count > 5, words[0] == "CREATE", words[2...4] == ["IF", "NOT", "EXISTS"] else { return false }
            switch words[1] {
            case "TABLE", "INDEX": relations.insert(words[5])
            case "STATISTICS": statistics.insert(words[5])
            default: return false
            }
        }
        let foundRelations = try await executor.query(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace", []
        ).compactMap { $0.first?.string }
        let foundStatistics = try await executor.query(
            "SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = current_schema()::regnamespace", []
        ).compactMap { $0.first?.string }
        return relations.isSubset(of: Set(foundRelations)) && statistics.isSubset(of: Set(foundStatistics))
    }

    /// The advisory lock the schema's creation holds on PostgreSQL ("CADUSCHM" in ASCII).
    static let schemaLock: Int64 = 0x4341_4455_5343_484D

    /// Opens the store named by `url`: `postgres://...`, `sqlite:path`, or a file path. With
    /// `creatingPostgresDatabase`, a missing PostgreSQL database is created first. On PostgreSQL, `postgresConnectionWait` is how long a request waits for a connection
    /// before it fails as ``SQLDatabaseUnavailable``.
    public static func open(
        url: String, creatingPostgresDatabase: Bool = false,
        postgresConnectionWait: Duration = PostgresDatabase.standardConnectionWait
    ) async throws -> SQLFHIRStore {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            if creatingPostgresDatabase, let parsed = PostgresURL(url), let name = parsed.database {
                try await PostgresDatabase.createDatabaseIfMissing(
                    named: name, serverURL: parsed.with(database: "postgres").description)
            }
            return try await SQLFHIRStore(
                database: try await PostgresDatabase.connect(url: url, connectionWait: postgresConnectionWait))
        }
        var path = url.hasPrefix("sqlite:") ? String(url.dropFirst("sqlite:".count)) : url
        if path.hasPrefix("//") { path.removeFirst(2) }
        if path != ":memory:" {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        return try await SQLFHIRStore(database: try await SQLiteDatabase.open(path: path))
    }

    public func close() async throws {
        try await database.close()
    }

    // MARK: Interactions, each one transaction

    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any FHIRTransaction) async throws -> T)
        async throws -> T
    {
        let result = try await database.withTransaction { executor in
            try await body(SQLFHIRTransaction(store: self, executor: executor))
        }
        refreshStatisticsIfDue()
        return result
    }

    /// Starts a refresh of PostgreSQL's table statistics when enough has been written.
    private func refreshStatisticsIfDue() {
        if database.dialect == .postgres, statistics.shouldAnalyze() {
            // PostgreSQL plans from table statistics that autovacuum refreshes only about once a
            // minute; right after a bulk load its plans can be off by orders of magnitude.
            Task {
                // Not bound by the time limit of the request that happened to trigger it.
                await SQLStatementTimeLimit.$current.withValue(nil) {
                    _ = try? await self.database.withConnection { try await $0.query("ANALYZE", []) }
                }
                self.statistics.analyzed()
            }
        }
    }

    public func reading<T: Sendable>(_ body: @escaping @Sendable (any FHIRTransaction) async throws -> T) async throws
        -> T
    {
        try await database.withConnection { executor in
            try await body(SQLFHIRTransaction(store: self, executor: executor))
        }
    }

    /// A create reads nothing first: its statements go to the database as one atomic write.
    public func create(_ resource: JSONValue, type: String) async throws -> StoredResource {
        let id = ResourceIds.make()
        let stored: StoredResource
        if let sqlite = database as? SQLiteDatabase {
            // Stamped in the writer's turn, not before waiting for it: `meta.lastUpdated` must
            // follow the order of commits, or a client polling `_lastUpdated` or `_since` past a
            // large Bundle's commit would miss a resource stamped earlier but committed later.
            // Everything else (JSON text, index rows) is worked out before, outside the turn.
            let prepared = try prepareWrite(resource, type: type, id: id, version: 1, isNew: true)
            let clock = self.clock
            stored = try await sqlite.withReplayableTransaction { executor in
                let (statements, stored) = prepared.statements(stampedAt: clock.now())
                try await executor.execute(statements)
                return stored
            }
        } else if let postgres = database as? PostgresDatabase {
            // PostgreSQL: one autocommitted statement, prepared once per connection, one round
            // trip, shared with the creates of concurrent requests. Concurrent transactions commit
            // in any order there whatever the stamp, as before.
            stored = try await createOnPostgres(resource, type: type, id: id, database: postgres)
        } else {
            let (statements, written) = try writeStatements(resource, type: type, id: id, version: 1, isNew: true)
            try await database.writeAtomically(statements)
            stored = written
        }
        statistics.recordWrite()
        refreshStatisticsIfDue()
        return stored
    }

    public func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        do {
            return try await transaction { try await $0.update(resource, type: type, id: id, ifMatch: ifMatch) }
        } catch is SQLUniqueViolation {
            // Another request created the same id between our read and our insert: the row
            // exists now, so a second attempt takes the update path.
            do {
                return try await transaction { try await $0.update(resource, type: type, id: id, ifMatch: ifMatch) }
            } catch is SQLUniqueViolation {
                throw FHIRError.conflict("\(type)/\(id) was written concurrently; retry the update")
            }
        }
    }

    public func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource? {
        try await transaction { try await $0.delete(type: type, id: id, ifMatch: ifMatch) }
    }

    public func read(type: String, id: String) async throws -> StoredResource {
        try await database.withConnection {
            try await SQLFHIRTransaction(store: self, executor: $0).read(type: type, id: id)
        }
    }

    public func vread(type: String, id: String, version: Int) async throws -> StoredResource {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "SELECT version, last_updated, deleted, body FROM resource_history WHERE type = ? AND id = ? AND version = ?",
                [.text(type), .text(id), .integer(Int64(version))])
        }
        guard let row = rows.first else { throw FHIRError.notFound("\(type)/\(id) has no version \(version)") }
        let stored = SQLFHIRStore.stored(type: type, id: id, row: row)
        if stored.deleted { throw FHIRError.gone("Version \(version) of \(type)/\(id) is a deletion") }
        return stored
    }

    /// Joins each current row to the history row that holds its body.
    static let joinCurrentBody = "JOIN resource_history h ON h.type = r.type AND h.id = r.id AND h.version = r.version"

    static func stored(type: String, id: String, row: SQLRow) -> StoredResource {
        StoredResource(
            type: type, id: id, versionId: Int(row[0].int ?? 0), lastUpdated: row[1].int ?? 0, deleted: row[2].int == 1,
            body: row[3].string)
    }

    public func history(type: String?, id: String?, since: Int64?, count: Int, offset: Int) async throws -> SearchPage {
        var conditions: [String] = []
        var binds: [SQLValue] = []
        if let type {
            conditions.append("type = ?")
            binds.append(.text(type))
        }
        if let id {
            conditions.append("id = ?")
            binds.append(.text(id))
        }
        if let since {
            conditions.append("last_updated >= ?")
            binds.append(.integer(since))
        }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let countBinds = binds
        let pageBinds = binds + [.integer(Int64(count)), .integer(Int64(offset))]
        let (total, rows) = try await database.withConnection { executor in
            let total = try await executor.query("SELECT COUNT(*) FROM resource_history\(whereClause)", countBinds)
            let rows =
                count == 0
                ? []
                : try await executor.query(
                    "SELECT version, last_updated, deleted, body, type, id FROM resource_history\(whereClause)"
                        + " ORDER BY last_updated DESC, version DESC LIMIT ? OFFSET ?", pageBinds)
            return (Int(total.first?.first?.int ?? 0), rows)
        }
        return SearchPage(
            total: total,
            resources: rows.map { SQLFHIRStore.stored(type: $0[4].string ?? "", id: $0[5].string ?? "", row: $0) })
    }

    public func search(_ query: SearchQuery) async throws -> SearchPage {
        try await database.withConnection { try await SQLFHIRTransaction(store: self, executor: $0).search(query) }
    }
}

/// Counts writes and says when table statistics are due: after `threshold` resources written
/// since the last refresh, at most one refresh at a time and one per `interval`.
final class StatisticsSchedule: @unchecked Sendable {
    private var written = 0
    private var running = false
    private var last = ContinuousClock.now - .seconds(3600)
    private let lock = NSLock()
    let threshold: Int
    let interval: Duration

    init(threshold: Int = 2000, interval: Duration = .seconds(10)) {
        self.threshold = threshold
        self.interval = interval
    }

    func recordWrite() {
        lock.lock()
        written += 1
        lock.unlock()
    }

    func shouldAnalyze() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !running, written >= threshold, ContinuousClock.now - last >= interval else { return false }
        running = true
        written = 0
        return true
    }

    func analyzed() {
        lock.lock()
        running = false
        last = ContinuousClock.now
        lock.unlock()
    }
}

/// Milliseconds since the epoch that never go backwards (the wall clock may), so that
/// `_since` and `_lastUpdated` order writes the way they happened.
final class MonotonicClock: @unchecked Sendable {
    private var last: Int64 = 0
    private let lock = NSLock()

    func now() -> Int64 {
        let wall = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        lock.lock()
        defer { lock.unlock() }
        last = max(wall, last)
        return last
    }
}
