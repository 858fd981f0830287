/// The tables: current resources, every version, and one index table per parameter kind.
///
/// Index rows exist only for current, non-deleted versions; a write replaces them in the
/// same transaction as the resource row.
enum Schema {
    /// Bumped whenever a table changes shape; a database of another version is refused.
    static let version: Int64 = 2

    /// The index tables and their value columns, in insert order.
    static let indexTables: [(name: String, columns: [String])] = [
        ("idx_string", ["normalized", "exact"]),
        ("idx_token", ["system", "code", "display"]),
        ("idx_reference", ["target_type", "target_id", "url", "identifier_system", "identifier_value"]),
        ("idx_date", ["low", "high"]),
        ("idx_uri", ["value"]),
        ("idx_number", ["value", "system", "code"]),
        // Composites: one row per value of each component (`comp`, from 0) of each element
        // instance (`inst`); a search joins the rows of one instance. The value columns are
        // those of the component's own kind: token and quantity system/code, number and
        // quantity value..value_high, date low..high, reference target and url, string normalized.
        ("idx_composite", [
            "inst", "comp", "system", "code", "value", "value_high", "low", "high", "target_type", "target_id", "url",
            "normalized",
        ]),
    ]

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
            "CREATE TABLE IF NOT EXISTS idx_string (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, normalized \(text), exact \(text))",
            "CREATE INDEX IF NOT EXISTS idx_string_value ON idx_string (type, param, normalized)",
            "CREATE INDEX IF NOT EXISTS idx_string_resource ON idx_string (type, id)",
            "CREATE TABLE IF NOT EXISTS idx_token (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, system \(text), code \(text), display \(text))",
            "CREATE INDEX IF NOT EXISTS idx_token_value ON idx_token (type, param, code, system)",
            "CREATE INDEX IF NOT EXISTS idx_token_display ON idx_token (type, param, display) WHERE display IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS idx_token_resource ON idx_token (type, id)",
            """
            CREATE TABLE IF NOT EXISTS idx_reference (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL,
              target_type \(text), target_id \(text), url \(text), identifier_system \(text), identifier_value \(text))
            """,
            "CREATE INDEX IF NOT EXISTS idx_reference_value ON idx_reference (type, param, target_id, target_type)",
            "CREATE INDEX IF NOT EXISTS idx_reference_url ON idx_reference (type, param, url)",
            "CREATE INDEX IF NOT EXISTS idx_reference_resource ON idx_reference (type, id)",
            // Who refers to a resource: $everything, export and the compartment walk.
            "CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (target_id, target_type)",
            "CREATE INDEX IF NOT EXISTS idx_reference_identifier ON idx_reference (type, param, identifier_value) WHERE identifier_value IS NOT NULL",
            "CREATE TABLE IF NOT EXISTS idx_date (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, low BIGINT NOT NULL, high BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS idx_date_value ON idx_date (type, param, low, high)",
            "CREATE INDEX IF NOT EXISTS idx_date_resource ON idx_date (type, id)",
            "CREATE TABLE IF NOT EXISTS idx_uri (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, value \(text))",
            "CREATE INDEX IF NOT EXISTS idx_uri_value ON idx_uri (type, param, value)",
            "CREATE INDEX IF NOT EXISTS idx_uri_resource ON idx_uri (type, id)",
            "CREATE TABLE IF NOT EXISTS idx_number (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, value \(real) NOT NULL, system \(text), code \(text))",
            "CREATE INDEX IF NOT EXISTS idx_number_value ON idx_number (type, param, value)",
            "CREATE INDEX IF NOT EXISTS idx_number_resource ON idx_number (type, id)",
            """
            CREATE TABLE IF NOT EXISTS idx_composite (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL,
              inst INTEGER NOT NULL, comp INTEGER NOT NULL, system \(text), code \(text), value \(real), value_high \(real),
              low BIGINT, high BIGINT, target_type \(text), target_id \(text), url \(text), normalized \(text))
            """,
            // A search starts from the first component's code (every R4 composite starts with a
            // token), then finds the other components of the same instance by the second index,
            // which also serves the deletion of a resource's rows.
            "CREATE INDEX IF NOT EXISTS idx_composite_value ON idx_composite (type, param, comp, code, system)",
            "CREATE INDEX IF NOT EXISTS idx_composite_instance ON idx_composite (type, id, param, inst, comp)",
        ]
    }
}
