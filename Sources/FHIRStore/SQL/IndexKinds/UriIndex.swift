import FHIR

/// `uri` parameters: the URI as written.
struct UriIndex: SearchIndexKind {
    var table: String { "idx_uri" }
    var columns: [IndexColumn] { Self.valueColumns }
    private static let valueColumns: [IndexColumn] = [.text("value")]

    func createStatements(text: String, real: String) -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS idx_uri (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, value \(text))",
            "CREATE INDEX IF NOT EXISTS idx_uri_value ON idx_uri (type, param, value)",
            "CREATE INDEX IF NOT EXISTS idx_uri_resource ON idx_uri (type, id)",
        ]
    }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.uris.map { [.text($0.parameter), .text($0.exact)] }
    }

    func sortColumn(descending: Bool) -> String? { "value" }

    /// Equal; `:below` a prefix of it (as a range); `:above` one of its prefixes.
    static func condition(_ text: String, modifier: String?, alias i: String, binds: inout [SQLValue]) -> String {
        let text = IndexKinds.bounded(text)
        switch modifier {
        case "below":
            binds.append(.text(text))
            binds.append(.text(text + SearchSQLBuilder.prefixEnd))
            return "\(i).value >= ? AND \(i).value < ?"
        case "above":
            binds.append(.text(text))
            return "? LIKE (\(i).value || '%')"
        default:
            binds.append(.text(text))
            return "\(i).value = ?"
        }
    }
}
