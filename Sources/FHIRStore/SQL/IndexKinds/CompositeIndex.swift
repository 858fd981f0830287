import FHIR

/// `composite` parameters: one row per value of each component (`comp`, from 0) of each
/// element instance (`inst`); a search joins the rows of one instance. The value columns are
/// those of the component's own kind: token and quantity system/code, number and quantity
/// value..value_high, date low..high, reference target and url, string normalized.
struct CompositeIndex: SearchIndexKind {
    var table: String { "idx_composite" }
    var columns: [IndexColumn] { Self.valueColumns }
    private static let valueColumns: [IndexColumn] =
        [
            .bigint("inst"), .bigint("comp"), .text("system"), .text("code"), .double("value"), .double("value_high"),
            .bigint("low"), .bigint("high"), .text("target_type"), .text("target_id"), .text("url"),
            .text("normalized"),
        ]

    func createStatements(text: String, real: String) -> [String] {
        [
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

    var resourceIndex: String { "idx_composite_instance" }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.composites.map {
            [
                .text($0.parameter), .integer(Int64($0.instance)), .integer(Int64($0.component)), SQLValue($0.system),
                SQLValue($0.code), $0.value.map(SQLValue.double) ?? .null, $0.valueHigh.map(SQLValue.double) ?? .null,
                $0.low.map(SQLValue.integer) ?? .null, $0.high.map(SQLValue.integer) ?? .null, SQLValue($0.targetType),
                SQLValue($0.targetId), SQLValue($0.url), SQLValue($0.normalized),
            ]
        }
    }

    /// Composites are not sorted by.
    func sortColumn(descending: Bool) -> String? { nil }

    /// The rows of the other components of `c0`'s instance, `c1`, `c2`...: appended to a
    /// FROM that names the first component's rows `c0`.
    static func instanceJoins(components: Int) -> String {
        var joins = ""
        for position in 1..<max(1, components) {
            let alias = "c\(position)"
            joins +=
                " JOIN idx_composite \(alias) ON \(alias).type = c0.type AND \(alias).id = c0.id"
                + " AND \(alias).param = c0.param AND \(alias).inst = c0.inst AND \(alias).comp = \(position)"
        }
        return joins
    }

    /// One composite value: each component's value against its row `c`position, AND-ed (the
    /// component's kind's own test, without modifier).
    static func valueTest(_ parts: [SearchValue], binds: inout [SQLValue]) -> String {
        var tests: [String] = []
        for (position, part) in parts.enumerated() {
            if let test = IndexKinds.condition(
                part, modifier: nil, alias: "c\(position)", numberHigh: "value_high", binds: &binds)
            {
                tests.append("(\(test))")
            }
        }
        return tests.isEmpty ? "1 = 1" : tests.joined(separator: " AND ")
    }

    /// `column IN (...)`: some element instance has, for every component, a row of that
    /// instance matching the component's value. The first component's rows (`c0`) drive the
    /// search from the value index; the other components' rows of the same instance join to
    /// them. Values of the wrong number of components match nothing.
    static func condition(
        _ clause: SearchClause, definition: SearchParameterDefinition, column: String, resourceType: String?
    ) -> (String, [SQLValue]) {
        let from = "idx_composite c0" + instanceJoins(components: definition.components.count)
        var binds: [SQLValue]
        let matches: String
        let (parameterTest, parameterBinds) = SearchSQLBuilder.parameterTest(definition, column: "c0.param")
        if let resourceType {
            matches = "SELECT c0.id FROM \(from) WHERE c0.type = ? AND \(parameterTest) AND c0.comp = 0"
            binds = [.text(resourceType)] + parameterBinds
        } else {
            matches = "SELECT c0.type, c0.id FROM \(from) WHERE \(parameterTest) AND c0.comp = 0"
            binds = parameterBinds
        }
        var alternatives: [String] = []
        for value in clause.values {
            guard case .composite(let parts) = value, parts.count == definition.components.count else { continue }
            alternatives.append(valueTest(parts, binds: &binds))
        }
        return ("\(column) IN (\(matches) AND \(SearchSQLBuilder.anyOf(alternatives)))", binds)
    }
}
