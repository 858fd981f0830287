import FHIR
import Foundation

/// Stable paging of searches without `_sort` (``SearchCursor``): the page after a cursor,
/// and the cursor of the page after it.
///
/// The snapshot a first page starts: on the ordered form, the store's clock when the page
/// has been read (stamps never go backwards, so every later write is stamped at or after it;
/// a write in that very millisecond counts as after it); on SQLite's walk, the last index row
/// before the page is read.
extension SQLFHIRTransaction {
    /// The page's matches, with those written since an ordered cursor's snapshot merged in at
    /// the place their version before it had; and the cursor of the next page when this one
    /// is full. `walkBound`: the walk's snapshot, taken before a first page was read;
    /// `changedMayExist` false when the page's statement found no match written since.
    func keysetPage(
        _ query: SearchQuery, sql: SearchSQLBuilder.Statements, rows: [SQLRow], matches: [StoredResource],
        walkBound: Int64?,
        changedMayExist: Bool = true
    ) async throws -> ([StoredResource], SearchCursor?) {
        if sql.walkTable != nil {
            guard matches.count == query.count, let row = rows.last?[6].int else { return (matches, nil) }
            var bound = walkBound ?? row
            if case .walk(_, let given)? = query.cursor { bound = given }
            return (matches, .walk(row: row, bound: bound))
        }
        // Keys in the (last_updated, type, id) order: the page's own, and the changed rows'.
        var keyed = matches.map { (key: ($0.lastUpdated, $0.type, $0.id), resource: $0) }
        var snapshot = store.clock.now()
        if case .ordered(_, _, _, let given)? = query.cursor {
            snapshot = given
        }
        if case .ordered? = query.cursor, let changed = sql.changed, changedMayExist {
            var placed: [ResourceKey: Int64] = [:]
            for row in try await executor.query(changed, sql.changedBinds) {
                guard let type = row[0].string, let id = row[1].string, let key = row[2].int else { continue }
                placed[ResourceKey(type: type, id: id)] = key
            }
            for resource in try await fetch(placed.keys.map { (type: $0.type, id: $0.id) }) {
                guard let key = placed[ResourceKey(type: resource.type, id: resource.id)] else { continue }
                keyed.append((key: (key, resource.type, resource.id), resource: resource))
            }
            keyed.sort { $0.key < $1.key }
            keyed = Array(keyed.prefix(query.count))
        }
        let page = keyed.map(\.resource)
        guard page.count == query.count, let last = keyed.last?.key else { return (page, nil) }
        return (page, .ordered(lastUpdated: last.0, type: last.1, id: last.2, snapshot: snapshot))
    }
}
