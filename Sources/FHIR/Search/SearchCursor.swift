/// Where the next page of a search without `_sort` starts: the keyset of the last entry of
/// the page before, and the snapshot the paging walks (``SearchQuery/cursor``, carried by a
/// `next` link as `_cursor`). Paging by it, writes between pages neither shift nor repeat
/// entries, and a deep page costs what the first costs (no OFFSET to skip).
public enum SearchCursor: Sendable, Hashable {
    /// The (`meta.lastUpdated`, type, id) order: after the entry with that key, among the
    /// resources as they were at `snapshot` (milliseconds): one written since is placed by
    /// the version it had then, and one created since is left out.
    case ordered(lastUpdated: Int64, type: String, id: String, snapshot: Int64)
    /// SQLite's walk of the driving clause's index rows (write order): after index row `row`,
    /// among the rows up to `bound` (the last at the first page). A resource written since has
    /// new rows past the bound: it is left out, never repeated.
    case walk(row: Int64, bound: Int64)

    /// The text of a `_cursor`: `o.LASTUPDATED.SNAPSHOT.TYPE.ID` or `w.ROW.BOUND`.
    public var text: String {
        switch self {
        case .ordered(let lastUpdated, let type, let id, let snapshot):
            return "o.\(lastUpdated).\(snapshot).\(type).\(id)"
        case .walk(let row, let bound): return "w.\(row).\(bound)"
        }
    }

    /// A cursor from its text; `nil` for anything this server did not write.
    public init?(text: String) {
        guard text.utf8.count <= 200 else { return nil }
        let parts = text.split(separator: ".", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "o":
            guard parts.count == 5, let lastUpdated = Int64(parts[1]), let snapshot = Int64(parts[2]),
                FHIRResourceType.isKnown(parts[3]),
                FHIRResourceType.isValidId(parts[4])
            else { return nil }
            self = .ordered(lastUpdated: lastUpdated, type: parts[3], id: parts[4], snapshot: snapshot)
        case "w":
            guard parts.count == 3, let row = Int64(parts[1]), let bound = Int64(parts[2]) else { return nil }
            self = .walk(row: row, bound: bound)
        default:
            return nil
        }
    }
}
