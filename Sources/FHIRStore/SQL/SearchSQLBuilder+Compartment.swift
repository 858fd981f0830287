/// Compartment membership, and OR lists that SQLite can take at any length the search
/// limits allow.
extension SearchSQLBuilder {
    /// `terms` OR-ed as a balanced tree of parentheses. SQLite refuses an expression deeper
    /// than 1,000, and `a OR b OR c ...` is as deep as it is long (about 500 OR'ed values made
    /// a search fail); balanced, 1,000 values are 10 levels deep. Empty: nothing matches.
    static func anyOf(_ terms: [String]) -> String {
        terms.isEmpty ? "(1 = 0)" : balanced(terms[...])
    }

    private static func balanced(_ terms: ArraySlice<String>) -> String {
        if terms.count == 1 { return "(\(terms[terms.startIndex]))" }
        let middle = terms.startIndex + terms.count / 2
        return "(" + balanced(terms[..<middle]) + " OR " + balanced(terms[middle...]) + ")"
    }

    /// In the compartment of `owner/id`: the owner itself, or a resource whose reference
    /// index rows point at the owner through a parameter that links its type (from the
    /// (type, param, target_id) index at type level, the (target_id, target_type) one across types).
    func compartmentCondition(
        owner: String, id: String, links: [String: [String]], alias: String, resourceType: String?
    ) -> (String, [SQLValue]) {
        var parts: [String] = []
        var binds: [SQLValue] = []
        if let resourceType {
            if let parameters = links[resourceType], !parameters.isEmpty {
                parts.append(
                    "\(alias).id IN (SELECT i.id FROM idx_reference i WHERE i.type = ? AND i.param IN (\(Self.placeholders(parameters.count)))"
                        + " AND i.target_id = ? AND i.target_type = ?)")
                binds += [.text(resourceType)] + parameters.map(SQLValue.text) + [.text(id), .text(owner)]
            }
            if resourceType == owner {
                parts.append("\(alias).id = ?")
                binds.append(.text(id))
            }
            return (Self.anyOf(parts), binds)
        }
        var typeTests: [String] = []
        var typeBinds: [SQLValue] = []
        for (type, parameters) in links.sorted(by: { $0.key < $1.key }) where !parameters.isEmpty {
            typeTests.append("i.type = ? AND i.param IN (\(Self.placeholders(parameters.count)))")
            typeBinds += [.text(type)] + parameters.map(SQLValue.text)
        }
        if !typeTests.isEmpty {
            parts.append(
                "(\(alias).type, \(alias).id) IN (SELECT i.type, i.id FROM idx_reference i WHERE i.target_id = ? AND i.target_type = ? AND \(Self.anyOf(typeTests)))"
            )
            binds += [.text(id), .text(owner)] + typeBinds
        }
        if links[owner] != nil {
            parts.append("(\(alias).type = ? AND \(alias).id = ?)")
            binds += [.text(owner), .text(id)]
        }
        return (Self.anyOf(parts), binds)
    }

    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}
