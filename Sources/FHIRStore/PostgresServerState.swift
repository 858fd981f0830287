/// The tables a FHIR server on PostgreSQL keeps its own state in, beside the resources, so
/// that any of several servers (replicas behind a load balancer) answers any request: Bulk
/// Data jobs and their files, the exfiltration detector's windows, the criteria of
/// `POST _search` paging links. SQLite (one embedded server) keeps these in memory and on
/// disk instead, and gets none of them.
enum PostgresServerState {
    static let statements = [
        // One row per export job; times in milliseconds since the epoch (the database's clock).
        // `owner` is "-" without access control, else "+" and the token's subject or client.
        """
        CREATE TABLE IF NOT EXISTS caduceus_export_jobs (
          id TEXT PRIMARY KEY, tenant TEXT NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL,
          exported BIGINT NOT NULL DEFAULT 0, result TEXT, error_status INTEGER, error_code TEXT,
          heartbeat BIGINT NOT NULL, expires BIGINT)
        """,
        // An export's NDJSON, in pieces of about a megabyte, in order within each type.
        """
        CREATE TABLE IF NOT EXISTS caduceus_export_chunks (
          job TEXT NOT NULL REFERENCES caduceus_export_jobs (id) ON DELETE CASCADE, type TEXT NOT NULL,
          seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job, type, seq))
        """,
        // Each client's latest read of each patient, and when it was last alerted.
        """
        CREATE TABLE IF NOT EXISTS caduceus_exfiltration_reads (
          client TEXT NOT NULL, patient TEXT NOT NULL, read_at BIGINT NOT NULL, PRIMARY KEY (client, patient))
        """,
        "CREATE INDEX IF NOT EXISTS caduceus_exfiltration_reads_time ON caduceus_exfiltration_reads (read_at)",
        "CREATE TABLE IF NOT EXISTS caduceus_exfiltration_alerts (client TEXT PRIMARY KEY, alerted_at BIGINT NOT NULL)",
        // `POST _search` criteria by key; `owner` is a SHA-256 of the request's credentials.
        """
        CREATE TABLE IF NOT EXISTS caduceus_stored_searches (
          key TEXT PRIMARY KEY, owner TEXT NOT NULL, path TEXT NOT NULL, parameters TEXT NOT NULL,
          bytes INTEGER NOT NULL, expires BIGINT NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS caduceus_stored_searches_expires ON caduceus_stored_searches (expires)",
    ]
}
