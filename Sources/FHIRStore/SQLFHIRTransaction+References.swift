import FHIR

/// Walking references through the index: who refers to a resource, and what resources
/// refer to. `Patient/$everything` and Bulk Data export are built on these.
extension SQLFHIRTransaction {
    func referrers(to type: String, id: String, excludingTypes: Set<String>) async throws -> [ReferenceLink] {
        let (sql, binds) = Self.referrersQuery(to: type, id: id, excludingTypes: excludingTypes)
        let rows = try await executor.query(sql, binds)
        return rows.compactMap { row in
            guard let type = row[0].string, let id = row[1].string, let parameter = row[2].string else { return nil }
            return ReferenceLink(type: type, id: id, parameter: parameter)
        }
    }

    func referenceTargets(of resources: [StoredResource]) async throws -> [ResourceKey] {
        var keys: [ResourceKey] = []
        let sources = resources.map { (type: $0.type, id: $0.id) }
        for start in stride(from: 0, to: sources.count, by: 500) {
            let (test, binds) = Self.keysCondition(sources[start..<min(start + 500, sources.count)], alias: "")
            let rows = try await executor.query(
                "SELECT DISTINCT target_type, target_id FROM idx_reference\(byResourceIndex) WHERE target_id IS NOT NULL AND (\(test))",
                binds)
            keys += rows.compactMap { row in
                guard let type = row[0].string, let id = row[1].string else { return nil }
                return ResourceKey(type: type, id: id)
            }
        }
        return keys
    }

    func resources(_ keys: [ResourceKey]) async throws -> [StoredResource] {
        try await fetch(keys.map { (type: $0.type, id: $0.id) })
    }

    func lastUpdated(of keys: [ResourceKey]) async throws -> [ResourceKey: Int64] {
        var stamps: [ResourceKey: Int64] = [:]
        let pairs = keys.map { (type: $0.type, id: $0.id) }
        for start in stride(from: 0, to: pairs.count, by: 500) {
            let (test, binds) = Self.keysCondition(pairs[start..<min(start + 500, pairs.count)], alias: "")
            for row in try await executor.query(
                "SELECT type, id, last_updated FROM resources WHERE deleted = 0 AND (\(test))", binds)
            {
                guard let type = row[0].string, let id = row[1].string, let stamp = row[2].int else { continue }
                stamps[ResourceKey(type: type, id: id)] = stamp
            }
        }
        return stamps
    }

    func resources(ofType type: String, since: Int64?, after: String?, limit: Int) async throws -> [StoredResource] {
        var sql =
            "SELECT r.version, r.last_updated, r.deleted, h.body, r.type, r.id FROM resources r \(SQLFHIRStore.joinCurrentBody)"
            + " WHERE r.deleted = 0 AND r.type = ?"
        var binds: [SQLValue] = [.text(type)]
        if let since {
            sql += " AND r.last_updated >= ?"
            binds.append(.integer(since))
        }
        if let after {
            sql += " AND r.id > ?"
            binds.append(.text(after))
        }
        sql += " ORDER BY r.id LIMIT ?"
        binds.append(.integer(Int64(limit)))
        return try await executor.query(sql, binds).map {
            SQLFHIRStore.stored(type: type, id: $0[5].string ?? "", row: $0)
        }
    }

    /// The statement of ``referrers(to:id:excludingTypes:)``: one range of the (target_id,
    /// target_type, type) index between each two excluded types, so that the excluded ones'
    /// rows are stepped over, not read and filtered out (with 20,000 AuditEvents of a patient,
    /// 0.9 ms instead of 8 with a filter on the rows, 80 with all of them).
    static func referrersQuery(to type: String, id: String, excludingTypes: Set<String>) -> (String, [SQLValue]) {
        let excluded = excludingTypes.sorted()
        var selects: [String] = []
        var binds: [SQLValue] = []
        for position in 0...excluded.count {
            var test = "target_id = ? AND target_type = ?"
            binds += [.text(id), .text(type)]
            if position > 0 {
                test += " AND type > ?"
                binds.append(.text(excluded[position - 1]))
            }
            if position < excluded.count {
                test += " AND type < ?"
                binds.append(.text(excluded[position]))
            }
            selects.append("SELECT DISTINCT type, id, param FROM idx_reference WHERE \(test)")
        }
        // The parts hold different types: nothing to merge between them.
        return (selects.joined(separator: " UNION ALL "), binds)
    }
}
