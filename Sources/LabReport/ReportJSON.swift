import Foundation
import JSON

/// `report.json`: the figures the charts of `report.html` draw, so that a script (or a test)
/// can check them without reading SVG. A part whose input was missing is null, and its file
/// is listed under `notMeasured`.
extension ReportData {
    /// How many event names the bar chart shows before folding the rest into "other".
    public static let topEventNames = 15

    /// The document, indented, with a final newline.
    public var jsonText: String { JSONWriter(pretty: true).string(jsonValue) + "\n" }

    public var jsonValue: JSONValue {
        .object(
            JSONObject([
                ("generatedAt", .string(ReportFormat.timestamp(generatedAt))),
                ("host", .string(host)),
                ("resultsDirectory", .string(resultsDirectory)),
                ("notMeasured", .array(notMeasured.map { .string($0.rawValue) })),
                ("events", events.map(Self.eventsJSON) ?? .null),
                ("alerts", alerts.map(Self.alertsJSON) ?? .null),
                ("matrix", matrix.map(Self.matrixJSON) ?? .null),
                ("overhead", overhead.map(Self.overheadJSON) ?? .null),
            ]))
    }

    static func eventsJSON(_ events: EventStatistics) -> JSONValue {
        func counts(_ pairs: [(String, UInt64)], key: String) -> JSONValue {
            .array(pairs.map { .object(JSONObject([(key, .string($0.0)), ("count", ReportNumber.json($0.1))])) })
        }
        let (top, otherNames, otherCount) = events.topNames(topEventNames)
        let timeline = events.timeline
        return .object(
            JSONObject([
                ("total", ReportNumber.json(events.total)),
                ("perName", counts(events.countsByName, key: "name")),
                (
                    "chart",
                    .object(
                        JSONObject([
                            ("top", counts(top, key: "name")),
                            (
                                "other",
                                .object(
                                    JSONObject([
                                        ("names", ReportNumber.json(otherNames)),
                                        ("count", ReportNumber.json(otherCount)),
                                    ]))
                            ),
                        ]))
                ),
                (
                    "overTime",
                    .object(
                        JSONObject([
                            (
                                "start",
                                .string(
                                    timeline.counts.isEmpty
                                        ? "" : ReportFormat.timestamp(seconds: timeline.startSeconds))
                            ),
                            ("startSeconds", ReportNumber.json(timeline.startSeconds)),
                            ("intervalSeconds", ReportNumber.json(timeline.intervalSeconds)),
                            ("counts", .array(timeline.counts.map(ReportNumber.json))),
                        ]))
                ),
                ("perContainer", counts(events.countsByContainer, key: "container")),
            ]))
    }

    static func alertsJSON(_ alerts: AlertStatistics) -> JSONValue {
        .object(
            JSONObject([
                ("total", ReportNumber.json(alerts.total)),
                (
                    "perRule",
                    .array(
                        alerts.byRule.map { rule in
                            .object(
                                JSONObject([
                                    ("ruleId", .string(rule.ruleId)), ("rule", .string(rule.rule)),
                                    ("priority", .string(rule.priority)),
                                    ("count", ReportNumber.json(rule.count)),
                                    ("first", .string(ReportFormat.timestamp(nanoseconds: rule.firstTimestamp))),
                                    ("last", .string(ReportFormat.timestamp(nanoseconds: rule.lastTimestamp))),
                                ]))
                        })
                ),
                (
                    "perPriority",
                    .array(
                        alerts.byPriority.map {
                            .object(
                                JSONObject([("priority", .string($0.priority)), ("count", ReportNumber.json($0.count))])
                            )
                        })
                ),
                (
                    "table",
                    .array(
                        alerts.firstAlerts.map { alert in
                            .object(
                                JSONObject([
                                    ("time", .string(alert.time)), ("ruleId", .string(alert.ruleId)),
                                    ("rule", .string(alert.rule)),
                                    ("priority", .string(alert.priority)),
                                    ("mitre", .array(alert.mitre.map { .string($0) })),
                                    ("container", .string(alert.container)), ("output", .string(alert.output)),
                                ]))
                        })
                ),
            ]))
    }

    static func matrixJSON(_ matrix: DetectionMatrix) -> JSONValue {
        .object(
            JSONObject([
                ("detected", ReportNumber.json(matrix.detectedCount)),
                ("missed", ReportNumber.json(matrix.missedCount)),
                ("prevented", ReportNumber.json(matrix.preventedCount)),
                ("killed", ReportNumber.json(matrix.killedCount)),
                ("didNotRun", ReportNumber.json(matrix.didNotRunCount)),
                ("failures", ReportNumber.json(matrix.failureCount)),
                ("notApplicable", ReportNumber.json(matrix.notApplicableCount)),
                ("detectedByAuditTrail", ReportNumber.json(matrix.detectedByAuditTrailCount)),
                ("falsePositives", ReportNumber.json(matrix.falsePositives)),
                ("workloadInteractions", ReportNumber.json(matrix.workloadInteractions)),
                (
                    "scenarios",
                    .array(
                        matrix.scenarios.map { row in
                            .object(
                                JSONObject([
                                    ("id", .string(row.id)), ("name", .string(row.name)),
                                    ("tactic", .string(row.tactic)),
                                    ("technique", .string(row.technique)),
                                    ("expected", .array(row.expected.map { .string($0) })),
                                    ("fired", .array(row.fired.map { .string($0) })),
                                    ("detected", row.detected.map { .bool($0) } ?? .null),
                                    ("secondsToDetect", row.secondsToDetect.map(ReportNumber.json) ?? .null),
                                    ("exitStatus", ReportNumber.json(row.exitStatus)), ("result", .string(row.result)),
                                    ("source", .string(row.source)),
                                    ("sourceProblem", row.sourceProblem.map { .string($0) } ?? .null),
                                    ("drift", row.drift.map { .array($0.map { .string($0) }) } ?? .null),
                                    ("verdict", .string(row.verdict.name)),
                                    ("verdictReason", row.verdict.reason.map { .string($0) } ?? .null),
                                    ("cell", .string(row.cell.rawValue)),
                                ]))
                        })
                ),
            ]))
    }

    static func overheadJSON(_ overhead: OverheadResults) -> JSONValue {
        func spread(_ spread: OverheadResults.Spread?) -> JSONValue {
            guard let spread else { return .null }
            return .object(
                JSONObject([
                    ("min", ReportNumber.json(spread.min)), ("median", ReportNumber.json(spread.median)),
                    ("max", ReportNumber.json(spread.max)),
                ]))
        }
        return .object(
            JSONObject([
                (
                    "load",
                    .object(
                        JSONObject([
                            ("connections", ReportNumber.json(overhead.connections)),
                            ("seconds", ReportNumber.json(overhead.seconds)),
                            ("runs", ReportNumber.json(overhead.runsPerConfiguration)),
                        ]))
                ),
                ("ratioMethod", overhead.ratioMethod.map { .string($0) } ?? .null),
                ("goalRatio", ReportNumber.json(OverheadResults.goalRatio)),
                ("floorRatio", ReportNumber.json(OverheadResults.floorRatio)),
                (
                    "configurations",
                    .array(
                        overhead.configurations.map { configuration in
                            .object(
                                JSONObject([
                                    ("name", .string(configuration.name)), ("label", .string(configuration.label)),
                                    ("runs", ReportNumber.json(configuration.runCount)),
                                    ("throughput", spread(configuration.throughput)),
                                    ("ratio", spread(configuration.ratio)),
                                    // null: no goal, or a file from before the benchmark judged its goals.
                                    ("goal", configuration.goal.map { .string($0) } ?? .null),
                                    ("meetsGoal", configuration.verdict.map { .bool($0.met) } ?? .null),
                                    ("verdict", configuration.verdict.map { .string($0.text) } ?? .null),
                                    // null: judged on the configuration's own rows (or not judged).
                                    ("verdictMethod", configuration.verdictMethod.map { .string($0) } ?? .null),
                                    ("p50Ms", spread(configuration.p50Milliseconds)),
                                    ("p99Ms", spread(configuration.p99Milliseconds)),
                                ]))
                        })
                ),
            ]))
    }
}
