import FHIR
import FHIRStore
import Foundation

/// ``StoredSearches`` in the PostgreSQL database of the request's tenant (table
/// `caduceus_stored_searches`), so that the paging links of a `POST _search` answered by one
/// replica work on any (issue 18).
///
/// The same guarantees: a random key, answered only to the same `Authorization` and tenant
/// headers (kept as their SHA-256, never in clear), on the same path, for ``StoredSearches/lifetime``;
/// at most ``StoredSearches/capacity`` searches and ``StoredSearches/maximumBytes`` of criteria
/// in the database, the oldest going first, and one owner's own oldest first past its share
/// (``StoredSearches/ownerCapacity``, ``StoredSearches/ownerMaximumBytes``). Storing costs three
/// statements (the insert, then the owner's trim and the trim of all), a page one.
struct SharedStoredSearches {
    let database: any SQLDatabase
    let limits: StoredSearches

    static let hashedOwner = "encode(sha256(convert_to(?, 'UTF8')), 'hex')"

    /// Keeps `parameters` of a search on `path` made by `owner`; returns the key.
    func store(_ parameters: [(name: String, value: String)], path: String, owner: String) async throws -> String {
        let key = UUID().uuidString.lowercased()
        let criteria = FHIRQueryString.encode(parameters)
        let bytes = Int64(owner.utf8.count + path.utf8.count + criteria.utf8.count)
        let lifetime = Int64(limits.lifetime * 1000)
        let limits = limits
        try await database.withConnection { executor in
            try await executor.query(
                "INSERT INTO caduceus_stored_searches (key, owner, path, parameters, bytes, expires)"
                    + " VALUES (?, \(Self.hashedOwner), ?, ?, ?, \(SharedExportJobs.now) + ?)",
                [.text(key), .text(owner), .text(path), .text(criteria), .integer(bytes), .integer(lifetime)])
            // The owner's oldest past its share first (one client's flood does not expire the
            // others' keys), then the expired, then the oldest past the bounds; never this one.
            try await executor.query(
                Self.trimming(owner: true),
                [
                    .text(owner), .text(key), .integer(Int64(limits.ownerCapacity)), .integer(bytes),
                    .integer(Int64(limits.ownerMaximumBytes)),
                ])
            try await executor.query(
                Self.trimming(owner: false),
                [.text(key), .integer(Int64(limits.capacity)), .integer(bytes), .integer(Int64(limits.maximumBytes))])
        }
        return key
    }

    /// Deletes, besides the new key (bound first), the expired and the oldest past a count
    /// and a byte bound (bound after the new key's bytes), of one owner (bound first) or of all.
    static func trimming(owner: Bool) -> String {
        "DELETE FROM caduceus_stored_searches WHERE " + (owner ? "" : "expires <= \(SharedExportJobs.now) OR ")
            + "key IN (SELECT key FROM (SELECT key, ROW_NUMBER() OVER newest AS rank, SUM(bytes) OVER newest AS total"
            + " FROM caduceus_stored_searches WHERE " + (owner ? "owner = \(hashedOwner) AND " : "") + "key <> ?"
            + " WINDOW newest AS (ORDER BY expires DESC, key)) others WHERE rank + 1 > ? OR total + ? > ?)"
    }

    /// The criteria `key` names for `owner` on `path`; `nil` when unknown, expired, or another's.
    func parameters(key: String, path: String, owner: String) async throws -> [(name: String, value: String)]? {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "SELECT parameters FROM caduceus_stored_searches WHERE key = ? AND path = ? AND owner = \(Self.hashedOwner)"
                    + " AND expires > \(SharedExportJobs.now)",
                [.text(key), .text(path), .text(owner)])
        }
        guard let text = rows.first?.first?.string else { return nil }
        return FHIRQueryString.parse(Substring(text))
    }
}
