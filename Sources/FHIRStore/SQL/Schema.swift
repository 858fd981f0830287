/// The tables: current resources, every version, and one index table per parameter kind
/// (each kind's own, in ``IndexKinds``).
///
/// Index rows exist only for current, non-deleted versions; a write replaces them in the
/// same transaction as the resource row.
enum Schema {
    /// Bumped whenever a table changes shape; a database of another version is refused.
    static let version: Int64 = 2

    static func statements(for dialect: SQLDialect) -> [String] {
        // PostgreSQL compares text by locale unless told otherwise; byte order (C) keeps the
        // prefix ranges of string search correct and indexable, as SQLite's BINARY does.
        let text = dialect == .postgres ? "TEXT COLLATE \"C\"" : "TEXT"
        let real = dialect == .postgres ? "DOUBLE PRECISION" : "REAL"
        return [
            "CREATE TABLE IF NOT EXISTS caduceus_schema (version INTEGER NOT NULL)",
            """
            CREATE TABLE IF NOT EXISTS resources (
              type \(text) NOT NULL, id \(text) NOT NULL, version INTEGER NOT NULL,
              last_updated BIGINT NOT NULL, deleted SMALLINT NOT NULL,
              PRIMARY KEY (type, id))
            """,
            "CREATE INDEX IF NOT EXISTS resources_type_updated ON resources (type, last_updated)",
            "CREATE INDEX IF NOT EXISTS resources_updated ON resources (last_updated)",
            """
            CREATE TABLE IF NOT EXISTS resource_history (
              type \(text) NOT NULL, id \(text) NOT NULL, version INTEGER NOT NULL,
              last_updated BIGINT NOT NULL, deleted SMALLINT NOT NULL, body TEXT,
              PRIMARY KEY (type, id, version))
            """,
            "CREATE INDEX IF NOT EXISTS history_updated ON resource_history (last_updated)",
            "CREATE INDEX IF NOT EXISTS history_type_updated ON resource_history (type, last_updated)",
        ] + IndexKinds.all.flatMap { $0.createStatements(text: text, real: real) }
            + (dialect == .postgres ? IndexKinds.all.map(\.postgresStatistics) + PostgresServerState.statements : [])
    }
}
