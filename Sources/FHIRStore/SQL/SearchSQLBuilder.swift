import Foundation
import FHIR

/// Translates a ``SearchQuery`` into SQL over the index tables. Each clause becomes one
/// `EXISTS` (or `NOT EXISTS`) subquery whose OR-ed conditions are the clause's values;
/// clauses are AND-ed. Nothing is filtered in Swift.
struct SearchSQLBuilder {
    let dialect: SQLDialect

    struct Statements {
        var count: String
        var select: String
        var binds: [SQLValue]
        var selectBinds: [SQLValue]
    }

    /// Upper bound for a prefix range: no valid UTF-8 text sorts above this code point.
    static let prefixEnd = "\u{10FFFF}"

    func build(_ query: SearchQuery) -> Statements {
        var conditions = ["r.deleted = 0"]
        var binds: [SQLValue] = []
        if let type = query.resourceType {
            conditions.append("r.type = ?")
            binds.append(.text(type))
        } else if !query.types.isEmpty {
            conditions.append("r.type IN (" + query.types.map { _ in "?" }.joined(separator: ", ") + ")")
            binds.append(contentsOf: query.types.map(SQLValue.text))
        }
        for clause in query.clauses {
            let (sql, clauseBinds) = condition(for: clause, resourceType: query.resourceType)
            conditions.append(sql)
            binds.append(contentsOf: clauseBinds)
        }
        let whereClause = conditions.joined(separator: " AND ")
        // SQLite's planner prefers walking an index in the ORDER BY order and testing each row,
        // which costs a scan of the whole type when the match set is small. With index clauses,
        // sorting by expressions makes it start from the matches instead.
        let drivenByMatches = dialect == .sqlite && query.clauses.contains { if case .indexed = $0.target { return true } else { return false } }
        func key(_ column: String, numeric: Bool) -> String {
            drivenByMatches ? (numeric ? "r.\(column) + 0" : "r.\(column) || ''") : "r.\(column)"
        }
        var order = query.sort.map {
            ($0.key == .id ? key("id", numeric: false) : key("last_updated", numeric: true)) + ($0.descending ? " DESC" : " ASC")
        }
        order.append(contentsOf: [key("last_updated", numeric: true) + " ASC", key("type", numeric: false) + " ASC", key("id", numeric: false) + " ASC"])
        return Statements(
            count: "SELECT COUNT(*) FROM resources r WHERE \(whereClause)",
            select: "SELECT r.version, r.last_updated, r.deleted, h.body, r.type, r.id FROM resources r "
                + "\(SQLFHIRStore.joinCurrentBody) WHERE \(whereClause)"
                + " ORDER BY \(order.joined(separator: ", ")) LIMIT ? OFFSET ?",
            binds: binds,
            selectBinds: binds + [.integer(Int64(query.count)), .integer(Int64(query.offset))])
    }

    func condition(for clause: SearchClause, resourceType: String?) -> (String, [SQLValue]) {
        switch clause.target {
        case .id:
            var binds: [SQLValue] = []
            let parts = clause.values.compactMap { value -> String? in
                guard case .token(_, let code?) = value else { return nil }
                binds.append(.text(code))
                return "?"
            }
            let test = parts.isEmpty ? "1 = 0" : "r.id IN (\(parts.joined(separator: ", ")))"
            return (clause.modifier == "not" ? "NOT (\(test))" : test, binds)
        case .lastUpdated:
            var binds: [SQLValue] = []
            let parts = clause.values.compactMap { value -> String? in
                guard case .date(let prefix, let range) = value else { return nil }
                return dateCondition(prefix, range, low: "r.last_updated", high: "(r.last_updated + 1)", binds: &binds)
            }
            return ("(" + (parts.isEmpty ? "1 = 0" : parts.joined(separator: " OR ")) + ")", binds)
        case .indexed(let definition):
            return indexedCondition(clause, definition: definition, resourceType: resourceType)
        }
    }

    /// `(r.type, r.id) [NOT] IN (SELECT ... FROM idx_* WHERE param = ? AND (v1 OR v2))`: the
    /// subquery starts from the index on (type, param, value), so the cost follows the number
    /// of matches, not the number of resources of the type.
    func indexedCondition(_ clause: SearchClause, definition: SearchParameterDefinition, resourceType: String?) -> (String, [SQLValue]) {
        let table: String
        switch definition.type {
        case .string: table = "idx_string"
        case .token: table = "idx_token"
        case .reference: table = "idx_reference"
        case .date: table = "idx_date"
        case .uri: table = "idx_uri"
        case .number, .quantity: table = "idx_number"
        case .composite, .special: return ("1 = 0", [])
        }
        // At type level the type is fixed and the id alone identifies a resource; at system
        // level (common parameters only) the pair does.
        var binds: [SQLValue] = []
        let column: String
        let matches: String
        if let resourceType {
            column = "r.id"
            matches = "SELECT i.id FROM \(table) i WHERE i.type = ? AND i.param = ?"
            binds = [.text(resourceType), .text(definition.code)]
        } else {
            column = "(r.type, r.id)"
            matches = "SELECT i.type, i.id FROM \(table) i WHERE i.param = ?"
            binds = [.text(definition.code)]
        }
        if case .missing(let missing)? = clause.values.first {
            return ("\(column) \(missing ? "NOT " : "")IN (\(matches))", binds)
        }
        var parts: [String] = []
        for value in clause.values {
            if let part = valueCondition(value, modifier: clause.modifier, binds: &binds) { parts.append(part) }
        }
        let test = parts.isEmpty ? "1 = 0" : parts.map { "(\($0))" }.joined(separator: " OR ")
        let negate = clause.modifier == "not"
        return ("\(column) \(negate ? "NOT " : "")IN (\(matches) AND (\(test)))", binds)
    }

    func valueCondition(_ value: SearchValue, modifier: String?, binds: inout [SQLValue]) -> String? {
        switch value {
        case .string(let text):
            switch modifier {
            case "exact":
                binds.append(.text(text))
                return "i.exact = ?"
            case "contains":
                binds.append(.text("%" + SearchSQLBuilder.escapeLike(SearchIndexer.normalize(text)) + "%"))
                return "i.normalized LIKE ? ESCAPE '\\'"
            default:
                // A prefix match as a range, which both databases answer from the index.
                let normalized = SearchIndexer.normalize(text)
                binds.append(.text(normalized))
                binds.append(.text(normalized + SearchSQLBuilder.prefixEnd))
                return "i.normalized >= ? AND i.normalized < ?"
            }
        case .token(let system, let code):
            var tests: [String] = []
            if let system {
                if system.isEmpty {
                    tests.append("i.system IS NULL")
                } else {
                    tests.append("i.system = ?")
                    binds.append(.text(system))
                }
            }
            if let code {
                tests.append("i.code = ?")
                binds.append(.text(code))
            }
            return tests.isEmpty ? nil : tests.joined(separator: " AND ")
        case .reference(let type, let id, let url):
            var alternatives: [String] = []
            if let url {
                alternatives.append("i.url = ?")
                binds.append(.text(url))
            }
            if let id {
                if let type {
                    alternatives.append("i.target_type = ? AND i.target_id = ?")
                    binds.append(.text(type))
                } else {
                    alternatives.append("i.target_id = ?")
                }
                binds.append(.text(id))
            }
            return alternatives.isEmpty ? nil : alternatives.map { "(\($0))" }.joined(separator: " OR ")
        case .date(let prefix, let range):
            return dateCondition(prefix, range, low: "i.low", high: "i.high", binds: &binds)
        case .uri(let text):
            switch modifier {
            case "below":
                binds.append(.text(text))
                binds.append(.text(text + SearchSQLBuilder.prefixEnd))
                return "i.value >= ? AND i.value < ?"
            case "above":
                binds.append(.text(text))
                return "? LIKE " + (dialect == .postgres ? "(i.value || '%')" : "(i.value || '%')")
            default:
                binds.append(.text(text))
                return "i.value = ?"
            }
        case .number(let prefix, let number, let low, let high, let system, let code):
            var tests: [String] = []
            switch prefix {
            case .eq:
                tests.append("i.value >= ? AND i.value < ?")
                binds.append(contentsOf: [.double(low), .double(high)])
            case .ne:
                tests.append("(i.value < ? OR i.value >= ?)")
                binds.append(contentsOf: [.double(low), .double(high)])
            case .gt, .sa:
                tests.append("i.value > ?")
                binds.append(.double(number))
            case .lt, .eb:
                tests.append("i.value < ?")
                binds.append(.double(number))
            case .ge:
                tests.append("i.value >= ?")
                binds.append(.double(number))
            case .le:
                tests.append("i.value <= ?")
                binds.append(.double(number))
            case .ap:
                let margin = max(abs(number) * 0.1, high - low)
                tests.append("i.value >= ? AND i.value <= ?")
                binds.append(contentsOf: [.double(number - margin), .double(number + margin)])
            }
            if let system {
                tests.append("i.system = ?")
                binds.append(.text(system))
            }
            if let code {
                tests.append("i.code = ?")
                binds.append(.text(code))
            }
            return tests.joined(separator: " AND ")
        case .missing:
            return nil
        }
    }

    /// The R4 prefix rules as range comparisons: the target range [low, high) against the
    /// range the search value's precision covers.
    func dateCondition(_ prefix: SearchPrefix, _ range: FHIRDateRange, low: String, high: String, binds: inout [SQLValue]) -> String {
        switch prefix {
        case .eq:
            binds.append(contentsOf: [.integer(range.low), .integer(range.high)])
            return "\(low) >= ? AND \(high) <= ?"
        case .ne:
            binds.append(contentsOf: [.integer(range.low), .integer(range.high)])
            return "(\(low) < ? OR \(high) > ?)"
        case .gt:
            binds.append(.integer(range.high))
            return "\(high) > ?"
        case .lt:
            binds.append(.integer(range.low))
            return "\(low) < ?"
        case .ge:
            binds.append(.integer(range.low))
            return "\(high) > ?"
        case .le:
            binds.append(.integer(range.high))
            return "\(low) < ?"
        case .sa:
            binds.append(.integer(range.high))
            return "\(low) >= ?"
        case .eb:
            binds.append(.integer(range.low))
            return "\(high) <= ?"
        case .ap:
            // Approximately: within 10% of the distance between the value and now, and at
            // least a day, on either side.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let margin = max(abs(now - range.low) / 10, 86_400_000)
            binds.append(contentsOf: [.integer(range.high + margin), .integer(range.low - margin)])
            return "\(low) < ? AND \(high) > ?"
        }
    }

    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
