import FHIR
import Foundation

/// `date` parameters: the range [low, high) of milliseconds a value's precision covers.
struct DateIndex: SearchIndexKind {
    var table: String { "idx_date" }
    var columns: [IndexColumn] { Self.valueColumns }
    private static let valueColumns: [IndexColumn] = [.bigint("low"), .bigint("high")]

    func createStatements(text: String, real: String) -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS idx_date (type \(text) NOT NULL, id \(text) NOT NULL, param \(text) NOT NULL, low BIGINT NOT NULL, high BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS idx_date_value ON idx_date (type, param, low, high)",
            "CREATE INDEX IF NOT EXISTS idx_date_resource ON idx_date (type, id)",
        ]
    }

    func rows(_ entries: SearchIndexEntries) -> [[SQLValue]] {
        entries.dates.map { [.text($0.parameter), .integer($0.range.low), .integer($0.range.high)] }
    }

    /// The earliest start ascending, the latest end descending.
    func sortColumn(descending: Bool) -> String? { descending ? "high" : "low" }

    /// The R4 prefix rules as range comparisons: the target range [`low`, `high`) (column
    /// expressions) against the range the search value's precision covers.
    static func condition(
        _ prefix: SearchPrefix, _ range: FHIRDateRange, low: String, high: String, binds: inout [SQLValue]
    ) -> String {
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

    /// `_filter`'s `po`: the target range [`low`, `high`) overlaps `range`.
    static func overlap(_ range: FHIRDateRange, low: String, high: String, binds: inout [SQLValue]) -> String {
        binds += [.integer(range.high), .integer(range.low)]
        return "\(low) < ? AND \(high) > ?"
    }
}
