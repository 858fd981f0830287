import FHIR

/// `token` parameters: a code and its system, and the text that goes with the code
/// (`display`, normalized as strings are), which `:text` compares.
struct TokenIndex: SearchIndexKind {
    var table: String { "idx_token" }
    var columns: [IndexColumn] { Self.valueColumns }
    private static let valueColumns: [IndexColumn] = [.text("system"), .text("code"), .text("display")]

    func createStatements(text: String, real: String) -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS idx_token (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, system \(text), code \(text), display \(text))",
            "CREATE INDEX IF NOT EXISTS idx_token_value ON idx_token (type, param, code, system)",
            "CREATE INDEX IF NOT EXISTS idx_token_display ON idx_token (type, param, display) WHERE display IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS idx_token_resource ON idx_token (type, id)",
        ]
    }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.tokens.map { [.text($0.parameter), SQLValue($0.system), SQLValue($0.code), SQLValue($0.display)] }
    }

    func sortColumn(descending: Bool) -> String? { "code" }

    var correlatedColumns: [String] { ["type", "param", "system", "code"] }

    /// `[system]|[code]`: an empty system means none; `:below` and `:above` widen the code
    /// to what it subsumes, or what subsumes it. `columns` are the row's system and code
    /// (a reference's identifier columns for `:identifier`).
    static func condition(
        _ system: String?, _ code: String?, modifier: String?, alias i: String,
        columns: (system: String, code: String) = ("system", "code"), binds: inout [SQLValue]
    ) -> String? {
        var tests: [String] = []
        if let system {
            if system.isEmpty {
                tests.append("\(i).\(columns.system) IS NULL")
                // `|` alone: a code without a system, never a concept's text row (neither system
                // nor code), which exists only when no coded row has the same text.
                if code == nil { tests.append("\(i).\(columns.code) IS NOT NULL") }
            } else {
                tests.append("\(i).\(columns.system) = ?")
                binds.append(.text(IndexKinds.bounded(system)))
            }
        }
        if let code {
            var codes = [code]
            if let system, !system.isEmpty, modifier == "below" {
                codes = CodeHierarchy.r4.descendants(of: code, in: system)
            } else if let system, !system.isEmpty, modifier == "above" {
                codes = CodeHierarchy.r4.ancestors(of: code, in: system)
            }
            if codes.count == 1 {
                tests.append("\(i).\(columns.code) = ?")
            } else {
                tests.append("\(i).\(columns.code) IN (\(codes.map { _ in "?" }.joined(separator: ", ")))")
            }
            binds.append(contentsOf: codes.map { .text(IndexKinds.bounded($0)) })
        }
        return tests.isEmpty ? nil : tests.joined(separator: " AND ")
    }

    /// `:text`: a prefix of the code's display or the concept's text.
    static func displayPrefix(_ text: String, alias i: String, binds: inout [SQLValue]) -> String {
        let normalized = IndexKinds.bounded(SearchIndexer.normalize(text))
        binds.append(.text(normalized))
        binds.append(.text(normalized + SearchSQLBuilder.prefixEnd))
        return "\(i).display >= ? AND \(i).display < ?"
    }
}
