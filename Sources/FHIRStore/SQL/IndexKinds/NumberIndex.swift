import FHIR

/// `number` and `quantity` parameters (one table): the value, and a quantity's system and
/// code.
struct NumberIndex: SearchIndexKind {
    var table: String { "idx_number" }
    var columns: [IndexColumn] { Self.valueColumns }
    private static let valueColumns: [IndexColumn] = [.double("value"), .text("system"), .text("code")]

    func createStatements(text: String, real: String) -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS idx_number (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, value \(real) NOT NULL, system \(text), code \(text))",
            "CREATE INDEX IF NOT EXISTS idx_number_value ON idx_number (type, param, value)",
            "CREATE INDEX IF NOT EXISTS idx_number_resource ON idx_number (type, id)",
        ]
    }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.numbers.map { [.text($0.parameter), .double($0.value), SQLValue($0.system), SQLValue($0.code)] }
    }

    func sortColumn(descending: Bool) -> String? { "value" }

    /// The target range [`alias`.value, `alias`.`highColumn`] against the search value (and
    /// the range [low, high) its precision covers), as the R4 prefix rules say; for a single
    /// value (`highColumn` = `value`) lo = hi. A quantity's system and code must match too.
    static func condition(
        _ prefix: SearchPrefix, _ number: Double, low: Double, high: Double, system: String?, code: String?,
        alias i: String,
        highColumn: String, binds: inout [SQLValue]
    ) -> String {
        let lo = "\(i).value", hi = "\(i).\(highColumn)"
        var tests: [String] = []
        switch prefix {
        case .eq:
            tests.append("\(lo) >= ? AND \(hi) < ?")
            binds.append(contentsOf: [.double(low), .double(high)])
        case .ne:
            tests.append("(\(lo) < ? OR \(hi) >= ?)")
            binds.append(contentsOf: [.double(low), .double(high)])
        case .gt:
            tests.append("\(hi) > ?")
            binds.append(.double(number))
        case .sa:
            tests.append("\(lo) > ?")
            binds.append(.double(number))
        case .lt:
            tests.append("\(lo) < ?")
            binds.append(.double(number))
        case .eb:
            tests.append("\(hi) < ?")
            binds.append(.double(number))
        case .ge:
            tests.append("\(hi) >= ?")
            binds.append(.double(number))
        case .le:
            tests.append("\(lo) <= ?")
            binds.append(.double(number))
        case .ap:
            let margin = max(abs(number) * 0.1, high - low)
            tests.append("\(lo) <= ? AND \(hi) >= ?")
            binds.append(contentsOf: [.double(number + margin), .double(number - margin)])
        }
        if let system {
            tests.append("\(i).system = ?")
            binds.append(.text(IndexKinds.bounded(system)))
        }
        if let code {
            tests.append("\(i).code = ?")
            binds.append(.text(IndexKinds.bounded(code)))
        }
        return tests.joined(separator: " AND ")
    }
}
