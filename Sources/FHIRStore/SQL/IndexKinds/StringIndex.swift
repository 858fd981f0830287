import FHIR

/// `string` parameters: each value lower-cased without accents (`normalized`, what default
/// and `:contains` searches compare) and as written (`exact`, for `:exact`).
struct StringIndex: SearchIndexKind {
    var table: String { "idx_string" }
    var columns: [IndexColumn] { Self.valueColumns }
    /// `exact` is in no index: kept whole, so that `:exact` compares all of it.
    private static let valueColumns: [IndexColumn] = [.text("normalized"), .text("exact", inIndex: false)]

    func createStatements(text: String, real: String) -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS idx_string (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, normalized \(text), exact \(text))",
            "CREATE INDEX IF NOT EXISTS idx_string_value ON idx_string (type, param, normalized)",
            "CREATE INDEX IF NOT EXISTS idx_string_resource ON idx_string (type, id)",
        ]
    }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.strings.map { [.text($0.parameter), .text($0.normalized), .text($0.exact)] }
    }

    func sortColumn(descending: Bool) -> String? { "normalized" }

    /// `:exact` compares the text as written, `:contains` a part of the normalized text, and
    /// the default a prefix of it, as a range that both databases answer from the index.
    static func condition(_ text: String, modifier: String?, alias i: String, binds: inout [SQLValue]) -> String {
        switch modifier {
        case "exact":
            binds.append(.text(text))
            return "\(i).exact = ?"
        case "contains":
            binds.append(
                .text("%" + SearchSQLBuilder.escapeLike(IndexKinds.bounded(SearchIndexer.normalize(text))) + "%"))
            return "\(i).normalized LIKE ? ESCAPE '\\'"
        default:
            let normalized = IndexKinds.bounded(SearchIndexer.normalize(text))
            binds.append(.text(normalized))
            binds.append(.text(normalized + SearchSQLBuilder.prefixEnd))
            return "\(i).normalized >= ? AND \(i).normalized < ?"
        }
    }
}
