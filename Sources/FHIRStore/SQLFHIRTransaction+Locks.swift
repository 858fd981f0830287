import FHIR

extension SQLFHIRTransaction {
    /// How many PostgreSQL advisory locks names share: a transaction holds at most this many
    /// whatever a Bundle names (PostgreSQL's lock table is shared, about 6,400 entries by
    /// default; ten thousand names in one Bundle would fill it for every session). Two names
    /// in one bucket only wait for each other.
    static let lockBuckets: UInt64 = 64
    /// The first advisory lock key of the buckets (an arbitrary constant: "CADU" in ASCII).
    static let lockBase: Int64 = 0x4341_4455_0000_0000

    /// PostgreSQL: one transaction-scoped advisory lock per bucket of `names` (FNV-1a of the
    /// name), taken in ascending order so that two transactions taking their locks at once
    /// cannot deadlock. Waiting is bounded by the statement time limit. SQLite: nothing,
    /// its writers take turns.
    func lock(names: [String]) async throws {
        guard dialect == .postgres else { return }
        for key in Set(names.map(Self.lockKey)).sorted() {
            do {
                try await executor.query("SELECT pg_advisory_xact_lock(?)", [.integer(key)])
            } catch let timeout as SQLStatementTimeout {
                // Not the client's search that was slow: the requests ahead of it were.
                throw FHIRError(
                    status: 503, code: "transient",
                    "Other requests with the same conditional criteria held them past this server's time limit of \(timeout.limit); retry"
                )
            }
        }
    }

    static func lockKey(_ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return lockBase + Int64(hash % lockBuckets)
    }
}
