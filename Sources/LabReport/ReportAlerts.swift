import Detection
import Foundation
import JSON
import Sensor

/// One alert as `caduceus detect --output` writes it (``Alert/jsonValue``), reduced to what the
/// report shows.
public struct AlertRecord: Sendable, Equatable {
    public let ruleId: String
    public let rule: String
    public let priority: String
    public let output: String
    /// RFC 3339, as written.
    public let time: String
    /// Nanoseconds since the epoch.
    public let timestamp: UInt64
    public let mitre: [String]
    /// The container's name, else its short id; "host" outside containers.
    public let container: String
}

/// The alerts of an `alerts.json` file: counted per rule and priority, every alert's time and
/// rule kept for the timeline (a few numbers each), and the first ``tableLimit`` in full for
/// the table.
public struct AlertStatistics: Sendable {
    public static let tableLimit = 200

    public struct RuleCount: Sendable, Equatable {
        public let ruleId: String
        public let rule: String
        /// The rule's priority as its first alert gave it.
        public let priority: String
        public let count: Int
        public let firstTimestamp: UInt64
        public let lastTimestamp: UInt64
    }

    /// One marker of the timeline: which rule (an index into `byRule`), when, how severe.
    public struct TimelinePoint: Sendable, Equatable {
        public let ruleIndex: Int
        public let timestamp: UInt64
        public let priority: String
    }

    public let total: Int
    /// Most severe priority first, then most alerts, then rule id.
    public let byRule: [RuleCount]
    /// Most severe first.
    public let byPriority: [(priority: String, count: Int)]
    /// The first ``tableLimit`` alerts, in file order.
    public let firstAlerts: [AlertRecord]
    public let timeline: [TimelinePoint]

    /// Reads `path`; a line that is not JSON, or not an alert, is an error naming its line number.
    public init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ReportFileError(path: path, line: nil, message: "cannot be read")
        }
        defer { try? handle.close() }
        var lineNumber = 0
        var records: [AlertRecord] = []
        var points: [(ruleId: String, timestamp: UInt64, priority: String)] = []
        var perRule: [String: (rule: String, priority: String, count: Int, first: UInt64, last: UInt64)] = [:]
        var perPriority: [String: Int] = [:]
        try JSONLines.forEach(in: handle) { line in
            lineNumber += 1
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { return }
            let record = try Self.record(line, path: path, line: lineNumber)
            if records.count < Self.tableLimit { records.append(record) }
            points.append((record.ruleId, record.timestamp, record.priority))
            perPriority[record.priority, default: 0] += 1
            if var known = perRule[record.ruleId] {
                known.count += 1
                known.first = min(known.first, record.timestamp)
                known.last = max(known.last, record.timestamp)
                perRule[record.ruleId] = known
            } else {
                perRule[record.ruleId] = (record.rule, record.priority, 1, record.timestamp, record.timestamp)
            }
        }
        total = points.count
        byRule = perRule.map {
            RuleCount(
                ruleId: $0.key, rule: $0.value.rule, priority: $0.value.priority, count: $0.value.count,
                firstTimestamp: $0.value.first, lastTimestamp: $0.value.last)
        }.sorted {
            let (a, b) = (Self.severityRank($0.priority), Self.severityRank($1.priority))
            if a != b { return a < b }
            return $0.count != $1.count ? $0.count > $1.count : $0.ruleId < $1.ruleId
        }
        byPriority = perPriority.map { ($0.key, $0.value) }.sorted {
            Self.severityRank($0.0) != Self.severityRank($1.0)
                ? Self.severityRank($0.0) < Self.severityRank($1.0) : $0.0 < $1.0
        }
        let ruleIndex = Dictionary(uniqueKeysWithValues: byRule.enumerated().map { ($1.ruleId, $0) })
        timeline = points.map {
            TimelinePoint(ruleIndex: ruleIndex[$0.ruleId]!, timestamp: $0.timestamp, priority: $0.priority)
        }
        firstAlerts = records
    }

    /// 0 for emergency … 7 for debug (Falco's order, any spelling); unknown priorities last.
    public static func severityRank(_ priority: String) -> Int {
        RulePriority(falco: priority).flatMap { RulePriority.allCases.firstIndex(of: $0) }
            ?? RulePriority.allCases.count
    }

    static func record(_ line: Data.SubSequence, path: String, line number: Int) throws -> AlertRecord {
        let document = try ReportField.parseDocument(line, path: path, line: number)
        let alert = ReportField(document, path: path, line: number, location: "")
        guard document.objectValue != nil else {
            throw alert.failure("an alert must be a JSON object, not \(document.kindDescription)")
        }
        let container = try alert.optionalMember("container")
        let containerID = try container?.optionalString("id") ?? "host"
        let containerName = try container?.optionalString("name") ?? ""
        return AlertRecord(
            ruleId: try alert.string("ruleId"), rule: try alert.string("rule"), priority: try alert.string("priority"),
            output: try alert.string("output"), time: try alert.string("time"),
            timestamp: try alert.uint64("timestamp"),
            mitre: try alert.optionalMember("mitre")?.array().map { try $0.string() } ?? [],
            container: containerID == "host"
                ? "host" : containerName.isEmpty ? String(containerID.prefix(12)) : containerName)
    }
}
