import Foundation
import JSON
import Lab
@testable import LabReport
import Sensor
import Testing

/// `caduceus report` on a results directory of small inputs in the real formats: trace events
/// written from `TraceEvent` (encoded as `JSONEventWriter` writes them), alerts with `Alert`'s
/// members in its order, a matrix from `AttackLab.matrixJSON` on real scenarios, and an
/// overhead file in `caduceus bench overhead`'s schema.
@Suite struct ReportTests {
    /// 2025-05-01T12:00:00Z, in nanoseconds.
    static let start: UInt64 = 1_746_100_800 * 1_000_000_000
    static let fhir = ContainerInfo(id: String(repeating: "ab", count: 32), name: "fhir", image: "caduceus-fhir:latest")

    static func event(_ name: String, at offset: Double, container: ContainerInfo?) -> String {
        let event = TraceEvent(
            timestamp: start + UInt64(offset * 1e9), processId: 7, threadId: 7, hostProcessId: 4242, hostThreadId: 4242,
            processName: "caduceus", hostName: "lab", container: container, eventId: "257", eventName: name,
            returnValue: 3,
            args: [TraceArgument(name: "pathname", type: "const char*", value: .string("/etc/<passwd>"))])
        return JSONWriter().string(event.jsonValue)
    }

    static func alert(_ ruleId: String, _ rule: String, priority: String, output: String, at offset: Double) -> String {
        let timestamp = start + UInt64(offset * 1e9)
        let process: JSONValue = [
            "pid": 4242, "vpid": 7, "name": "sh", "exepath": "/bin/sh", "cmdline": "sh -c id", "uid": 0, "user": "root",
        ]
        let alert: JSONValue = [
            "ruleId": .string(ruleId), "rule": .string(rule), "priority": .string(priority), "output": .string(output),
            "time": .string("2025-05-01T12:00:0\(Int(offset)).000000000Z"), "timestamp": .number(String(timestamp)),
            "raisedAt": .number(String(timestamp + 150_000)), "mitre": ["T1059.004"], "tags": ["container"],
            "container": ["id": .string(fhir.id), "name": "fhir", "image": "caduceus-fhir:latest"],
            "process": process, "ancestors": [process],
            "events": [TraceEvent(timestamp: timestamp, container: fhir, eventId: "59", eventName: "execve").jsonValue],
        ]
        return JSONWriter().string(alert)
    }

    static let overheadJSON = """
        {"load":{"connections":16,"seconds":20,"runs":3},"ratioMethod":"each run over the unmonitored run of its round","configurations":[
        {"name":"none","label":"no monitor","runs":[{"throughput":1000,"p50Ms":4.0,"p99Ms":9.0},{"throughput":1010,"p50Ms":4.1,"p99Ms":9.5},{"throughput":990,"p50Ms":3.9,"p99Ms":8.8}],
         "throughput":{"min":990,"median":1000,"max":1010},"ratio":{"min":0.99,"median":1,"max":1.01},
         "p50Ms":{"min":3.9,"median":4.0,"max":4.1},"p99Ms":{"min":8.8,"median":9.0,"max":9.5}},
        {"name":"capture","label":"caduceus trace","goal":"median ratio >= 0.95 and every ratio > 0.90 over >= 5 runs, 0 events lost",
         "verdict":{"met":false,"text":"NOT met: 3 runs with a ratio, fewer than 5 (median 0.970, min 0.960, max 0.980 over 3 runs, 0 lost)"},"verdictMethod":"judged on 3 runs of its own in turns","verdictRatios":[0.97,0.96,0.98],"runs":[{"throughput":970,"p50Ms":4.2,"p99Ms":10.0},{"throughput":960,"p50Ms":4.3,"p99Ms":10.5},{"throughput":980,"p50Ms":4.1,"p99Ms":9.9}],
         "throughput":{"min":960,"median":970,"max":980},"ratio":{"min":0.96,"median":0.97,"max":0.98},
         "p50Ms":{"min":4.1,"median":4.2,"max":4.3},"p99Ms":{"min":9.9,"median":10.0,"max":10.5}},
        {"name":"strace","label":"strace -f","runs":[{"throughput":400,"p50Ms":11,"p99Ms":40},{"throughput":380,"p50Ms":12,"p99Ms":44},{"throughput":420,"p50Ms":10,"p99Ms":38}],
         "throughput":{"min":380,"median":400,"max":420},"ratio":{"min":0.38,"median":0.4,"max":0.42},
         "p50Ms":{"min":10,"median":11,"max":12},"p99Ms":{"min":38,"median":40,"max":44}}]}
        """

    /// Scenarios of the real lab: one detected, one missed (one of its two rules fired), one with
    /// no rule, and the bulk read twice: detected by the FHIR audit trail, and not detected
    /// against a server that does not audit.
    static var outcomes: [AttackLab.Outcome] {
        func scenario(_ id: String) -> AttackScenario { AttackScenario.all.first { $0.id == id }! }
        return [
            .init(
                scenario: scenario("shell-from-server"), exitStatus: 0, firedRules: ["CAD-001"], secondsToDetect: 0.25),
            .init(scenario: scenario("reverse-shell"), exitStatus: 0, firedRules: ["CAD-003"], secondsToDetect: nil),
            .init(scenario: scenario("timestomp"), exitStatus: 0, firedRules: [], secondsToDetect: nil),
            .init(
                scenario: scenario("fhir-exfiltration"), exitStatus: 0, firedRules: ["CAD-API-001"],
                secondsToDetect: 1.5),
            .init(
                scenario: scenario("fhir-exfiltration"), exitStatus: 0, firedRules: [], secondsToDetect: nil,
                sourceProblem: "server not auditing: serve --audit on"),
        ]
    }

    static func resultsDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func write(_ text: String, _ name: String, in directory: URL) throws {
        try Data(text.utf8).write(to: directory.appendingPathComponent(name))
    }

    @Test func theReportCarriesTheFiguresOfEveryInput() throws {
        let directory = try Self.resultsDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // 5 openat and 3 execve in the container, 2 close on the host, and 17 names seen once:
        // the chart shows 15 names and folds 5 into "other".
        var events: [String] = []
        for index in 0..<5 { events.append(Self.event("openat", at: 1.2 + Double(index) * 0.1, container: Self.fhir)) }
        for index in 0..<3 { events.append(Self.event("execve", at: Double(index) * 0.5, container: Self.fhir)) }
        for _ in 0..<2 { events.append(Self.event("close", at: 3.5, container: nil)) }
        for letter in "abcdefghijklmnopq" { events.append(Self.event("rare_\(letter)", at: 2, container: Self.fhir)) }
        try Self.write(events.joined(separator: "\n") + "\n", "events.json", in: directory)
        let alerts = [
            Self.alert(
                "CAD-001", "Shell in the FHIR server", priority: "critical",
                output: "shell <script>alert(\"x\")</script> & 'co'", at: 1),
            Self.alert("CAD-007", "Shadow file read", priority: "warning", output: "read /etc/shadow", at: 2),
            Self.alert("CAD-001", "Shell in the FHIR server", priority: "critical", output: "shell again", at: 4),
        ]
        try Self.write(alerts.joined(separator: "\n") + "\n", "alerts.json", in: directory)
        try Self.write(
            AttackLab.matrixJSON(Self.outcomes, falsePositives: 1, workloadInteractions: 331), "matrix.json",
            in: directory)
        try Self.write(Self.overheadJSON, "overhead.json", in: directory)

        let data = try ReportData.load(from: directory.path, host: "test-host")
        let written = try data.write(htmlPath: directory.appendingPathComponent("report.html").path)
        #expect(written.json == directory.appendingPathComponent("report.json").path)
        let report = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: written.json)))

        // Events: the counts per name, the chart's top 15 and "other", buckets adding up to the total.
        let eventFigures = try #require(report["events"])
        #expect(eventFigures["total"] == .number("27"))
        let perName = try #require(eventFigures["perName"]?.arrayValue)
        #expect(perName.count == 20)
        #expect(perName.prefix(3).map { $0["name"]?.stringValue } == ["openat", "execve", "close"])
        #expect(perName.prefix(3).map { $0["count"] } == [.number("5"), .number("3"), .number("2")])
        // The same counts, in the same order, as `caduceus summary` gives.
        let summary = try TraceFileSummary(path: directory.appendingPathComponent("events.json").path)
        #expect(perName.map { $0["name"]?.stringValue ?? "" } == summary.counts.map(\.name))
        #expect(perName.map { $0["count"]?.intValueForTest ?? -1 } == summary.counts.map { Int($0.count) })
        #expect(eventFigures["chart"]?["top"]?.arrayValue?.count == ReportData.topEventNames)
        #expect(eventFigures["chart"]?["other"] == ["names": 5, "count": 5])
        let overTime = try #require(eventFigures["overTime"])
        #expect(overTime["intervalSeconds"] == .number("1"))
        #expect(overTime["start"] == "2025-05-01T12:00:00Z")
        let buckets = try #require(overTime["counts"]?.arrayValue).compactMap { $0.intValueForTest }
        #expect(buckets == [2, 6, 17, 2])  // seconds 0 (execve), 1 (execve, openat), 2 (rare_*), 3 (close)
        #expect(buckets.reduce(0, +) == 27)
        #expect(
            eventFigures["perContainer"] == [["container": "fhir", "count": 25], ["container": "host", "count": 2]])

        // Alerts: per rule, per priority, and the table.
        let alertFigures = try #require(report["alerts"])
        #expect(alertFigures["total"] == .number("3"))
        #expect(
            alertFigures["perRule"]?.arrayValue?.map { [$0["ruleId"], $0["count"]] } == [
                ["CAD-001", 2], ["CAD-007", 1],
            ])
        #expect(alertFigures["perPriority"]?.arrayValue?.map { $0["priority"] } == ["critical", "warning"])
        #expect(alertFigures["table"]?.arrayValue?.count == 3)

        // The matrix: two detected (one by the audit trail), two missed, one with no rule, and the false positives.
        let matrix = try #require(report["matrix"])
        #expect(
            matrix["detected"] == 2 && matrix["missed"] == 2 && matrix["notApplicable"] == 1
                && matrix["detectedByAuditTrail"] == 1)
        #expect(matrix["falsePositives"] == 1 && matrix["workloadInteractions"] == 331)
        let rows = try #require(matrix["scenarios"]?.arrayValue)
        #expect(rows.map { $0["detected"] } == [.bool(true), .bool(false), .null, .bool(true), .bool(false)])
        #expect(rows.map { $0["source"] } == ["kernel", "kernel", "kernel", "audit trail", "audit trail"])
        #expect(
            rows.map { $0["sourceProblem"] } == [.null, .null, .null, .null, "server not auditing: serve --audit on"])
        #expect(rows.first?["secondsToDetect"] == .number("0.25"))

        // Overhead: the median ratios, and the verdict only where the benchmark gave one.
        let configurations = try #require(report["overhead"]?["configurations"]?.arrayValue)
        #expect(configurations.map { $0["ratio"]?["median"] } == [.number("1"), .number("0.97"), .number("0.4")])
        #expect(configurations.map { $0["meetsGoal"] } == [.null, false, .null])
        #expect(
            configurations[1]["verdict"]
                == "NOT met: 3 runs with a ratio, fewer than 5 (median 0.970, min 0.960, max 0.980 over 3 runs, 0 lost)"
        )
        #expect(configurations.map { $0["verdictMethod"] } == [.null, "judged on 3 runs of its own in turns", .null])
        #expect(report["overhead"]?["ratioMethod"] == "each run over the unmonitored run of its round")
        #expect(configurations.map { $0["runs"] } == [3, 3, 3])
        #expect(report["notMeasured"] == [])

        // The page: every chart, and the alert's script escaped.
        let html = try String(contentsOfFile: written.html, encoding: .utf8)
        for id in [
            "chart-events-per-name", "chart-events-over-time", "chart-alerts-timeline", "chart-detection-matrix",
            "chart-overhead",
        ] {
            #expect(html.contains("<svg id=\"\(id)\""), "\(id)")
        }
        #expect(!html.contains("<script"))
        #expect(html.contains("shell &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;"))
        #expect(html.contains("test-host"))
        // Where each detection came from, and why one could not be made.
        #expect(
            html.contains(
                "5 scenarios: 2 detected, 2 missed, 1 with no rule expected; 2 failures (missed or did not run) (1 detected by the FHIR server's audit trail"
            ))
        #expect(
            html.contains("<td>CAD-API-001</td><td>audit trail</td><td><span class=\"detected\">detected</span></td>"))
        #expect(html.contains("<span class=\"missed\">not detected</span> (server not auditing: serve --audit on)"))
        #expect(html.contains("<td>CAD-001</td><td>kernel</td>"))
        #expect(
            html.contains(
                "Goal, caduceus trace: median ratio &gt;= 0.95 and every ratio &gt; 0.90 over &gt;= 5 runs, 0 events lost "
                    + "(judged on 3 runs of its own in turns): "
                    + "<span class=\"missed\">NOT met: 3 runs with a ratio, fewer than 5"))
        #expect(html.contains("each run over the unmonitored run of its round"))
    }

    @Test func theMatrixFileRoundTrips() throws {
        let text = AttackLab.matrixJSON(Self.outcomes, falsePositives: 0, workloadInteractions: 0)
        let matrix = try DetectionMatrix(parsing: Array(text.utf8), path: "matrix.json")
        #expect(
            matrix.scenarios.map(\.id) == [
                "shell-from-server", "reverse-shell", "timestomp", "fhir-exfiltration", "fhir-exfiltration",
            ])
        #expect(matrix.scenarios.map(\.detected) == [true, false, nil, true, false])
        #expect(matrix.scenarios[1].expected == ["CAD-003", "CAD-004"] && matrix.scenarios[1].fired == ["CAD-003"])
        #expect(matrix.scenarios.map(\.secondsToDetect) == [0.25, nil, nil, 1.5, nil])
        #expect(matrix.scenarios[0].technique == "T1059.004" && matrix.scenarios[0].tactic == "execution")
        #expect(matrix.scenarios.map(\.source) == ["kernel", "kernel", "kernel", "audit trail", "audit trail"])
        #expect(matrix.scenarios.map(\.sourceProblem) == [nil, nil, nil, nil, "server not auditing: serve --audit on"])
        #expect(
            (matrix.detectedCount, matrix.missedCount, matrix.notApplicableCount, matrix.detectedByAuditTrailCount) == (
                2, 2, 1, 1
            ))
        // The printed matrix: a source column, and why the second bulk read was not detected.
        let printed = AttackLab.matrix(Self.outcomes)
        #expect(
            printed.contains(
                "5 scenarios: 2 detected, 2 missed, 1 with no rule expected; 2 failures (missed or did not run); 1 detected by the FHIR audit trail, not the kernel"
            ))
        #expect(printed.contains("fhir-exfiltration: not detected (server not auditing: serve --audit on)"))
        let exfiltrationLine = try #require(printed.split(separator: "\n").first { $0.hasPrefix("fhir-exfiltration ") })
        #expect(
            exfiltrationLine.contains("CAD-API-001") && exfiltrationLine.contains("audit trail")
                && exfiltrationLine.contains(" yes "))
        // A matrix written before `source` existed reads as the kernel's; an unknown source is an error.
        let legacy =
            #"{"scenarios":[{"id":"x","name":"x","tactic":"t","technique":"T1","expected":["CAD-001"],"fired":[],"detected":false,"secondsToDetect":null,"exitStatus":0}],"falsePositives":0,"workloadInteractions":0}"#
        let old = try DetectionMatrix(parsing: Array(legacy.utf8), path: "old.json")
        #expect(old.scenarios.first?.source == "kernel" && old.scenarios.first?.sourceProblem == nil)
        let bad = legacy.replacingOccurrences(of: #""exitStatus":0"#, with: #""exitStatus":0,"source":"firewall""#)
        #expect(throws: ReportFileError.self) { try DetectionMatrix(parsing: Array(bad.utf8), path: "bad.json") }
    }

    /// A scenario whose refusal the sensor saw (memfd under the deployment's seccomp profile:
    /// memfd_create returned EPERM) is "prevented": counted apart from the misses in the printed
    /// matrix, the file's reader, the report's JSON and HTML. One that printed EPERM but whose
    /// refusal nobody saw did not run: a failure, not a win, even though its rule fired.
    @Test func aRefusalSeenIsPreventedAPrintedOneDidNotRun() throws {
        func scenario(_ id: String) -> AttackScenario { AttackScenario.all.first { $0.id == id }! }
        var memfd = AttackLab.Outcome(scenario: scenario("memfd"), exitStatus: 1, firedRules: [], secondsToDetect: nil)
        memfd.result = "blocked (EPERM)"
        memfd.verdict = .prevented("memfd_create returned EPERM (seen by the sensor)")
        var ptrace = AttackLab.Outcome(
            scenario: scenario("ptrace"), exitStatus: 1, firedRules: ["CAD-017"], secondsToDetect: 0.1)
        ptrace.result = "blocked (EPERM)"
        ptrace.verdict = .didNotRun("exit 1 and no refusal observed (it printed EPERM)")
        var shadow = AttackLab.Outcome(
            scenario: scenario("reverse-shell"), exitStatus: 0, firedRules: [], secondsToDetect: nil)
        shadow.result = "ran"
        let outcomes = [memfd, ptrace, shadow]
        #expect(outcomes.map(\.prevented) == [true, false, false])
        let printed = AttackLab.matrix(outcomes)
        #expect(
            printed.contains(
                "3 scenarios: 0 detected, 1 prevented (refusal observed), 1 missed, 1 did not run; 2 failures (missed or did not run)"
            ), "\(printed)")
        let memfdLine = try #require(printed.split(separator: "\n").first { $0.hasPrefix("memfd ") })
        #expect(
            memfdLine.contains(" prevented ")
                && memfdLine.contains("blocked (EPERM); memfd_create returned EPERM (seen by the sensor)"))
        let matrix = try DetectionMatrix(
            parsing: Array(AttackLab.matrixJSON(outcomes, falsePositives: 0, workloadInteractions: 0).utf8),
            path: "m.json")
        #expect(
            (matrix.detectedCount, matrix.missedCount, matrix.preventedCount, matrix.didNotRunCount) == (0, 1, 1, 1))
        let directory = try Self.resultsDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.write(
            AttackLab.matrixJSON(outcomes, falsePositives: 0, workloadInteractions: 0), "matrix.json", in: directory)
        let written = try ReportData.load(from: directory.path).write(
            htmlPath: directory.appendingPathComponent("report.html").path)
        let json = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: written.json)))
        #expect(
            json["matrix"]?["prevented"] == 1 && json["matrix"]?["missed"] == 1 && json["matrix"]?["didNotRun"] == 1)
        let html = try String(contentsOfFile: written.html, encoding: .utf8)
        #expect(
            html.contains("<span class=\"prevented\">prevented</span>")
                && html.contains("1 prevented (refusal observed)"))
        // No profile was watched: no drift column.
        #expect(!html.contains("profile drift") && matrix.scenarios.allSatisfy { $0.drift == nil })
    }

    /// `lab attack --profile`: each row's PROFILE-* drift reaches the report's table, its summary
    /// and its JSON; an empty list is "-".
    @Test func theLearnedProfilesDriftIsAColumnOfTheReport() throws {
        func scenario(_ id: String) -> AttackScenario { AttackScenario.all.first { $0.id == id }! }
        var shadow = AttackLab.Outcome(
            scenario: scenario("shadow"), exitStatus: 0, firedRules: ["CAD-007"], secondsToDetect: 0.05)
        shadow.drift = ["PROFILE-EXEC", "PROFILE-SYSCALL"]
        var timestomp = AttackLab.Outcome(
            scenario: scenario("timestomp"), exitStatus: 0, firedRules: [], secondsToDetect: nil)
        timestomp.drift = []
        let directory = try Self.resultsDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.write(
            AttackLab.matrixJSON([shadow, timestomp], falsePositives: 0, workloadInteractions: 0), "matrix.json",
            in: directory)
        let data = try ReportData.load(from: directory.path)
        #expect(data.matrix?.scenarios.map(\.drift) == [["PROFILE-EXEC", "PROFILE-SYSCALL"], []])
        let written = try data.write(htmlPath: directory.appendingPathComponent("report.html").path)
        let html = try String(contentsOfFile: written.html, encoding: .utf8)
        #expect(html.contains("<th>profile drift</th>") && html.contains("the learned profile drifted in 1 of 2"))
        #expect(html.contains("<td>PROFILE-EXEC, PROFILE-SYSCALL</td>") && html.contains("<td>-</td><td>-</td>"))
        let json = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: written.json)))
        #expect(json["matrix"]?["scenarios"]?.arrayValue?.first?["drift"] == ["PROFILE-EXEC", "PROFILE-SYSCALL"])
    }

    @Test func missingInputsAreReportedAsNotMeasured() throws {
        let directory = try Self.resultsDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try ReportData.load(from: directory.path)
        #expect(data.notMeasured == ReportData.Input.allCases)
        let html = data.html
        #expect(html.components(separatedBy: "Not measured: no ").count - 1 == 5)  // events have two sections
        #expect(!html.contains("<svg"))
        let report = try JSONParser.parse(data.jsonText)
        #expect(report["notMeasured"] == ["events.json", "alerts.json", "matrix.json", "overhead.json"])
        #expect(report["events"] == .null && report["overhead"] == .null)
    }

    @Test func aMalformedAlertLineIsAnErrorNamingTheFileAndLine() throws {
        let directory = try Self.resultsDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = Self.alert("CAD-007", "Shadow file read", priority: "warning", output: "read", at: 1)
        try Self.write(
            [good, "{\"ruleId\":\"CAD-001\",\"rule\":", good].joined(separator: "\n") + "\n", "alerts.json",
            in: directory)
        let error = try #require(throws: ReportFileError.self) { try ReportData.load(from: directory.path) }
        #expect(error.path.hasSuffix("alerts.json") && error.line == 2, "\(error)")
        #expect(error.description.contains("alerts.json line 2: "), "\(error)")

        // Valid JSON that is not an alert: the missing member is named.
        try Self.write(good + "\n" + good + "\n{\"ruleId\":\"CAD-001\"}\n", "alerts.json", in: directory)
        let missing = try #require(throws: ReportFileError.self) { try ReportData.load(from: directory.path) }
        #expect(missing.line == 3 && missing.message == "rule is missing", "\(missing)")
    }

    @Test func malformedEventsAndOverheadNameTheirPlace() throws {
        let directory = try Self.resultsDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let event = Self.event("execve", at: 0, container: nil)
        try Self.write([event, event, "", "{\"timestamp\":1}"].joined(separator: "\n"), "events.json", in: directory)
        let eventsError = try #require(throws: ReportFileError.self) { try ReportData.load(from: directory.path) }
        #expect(eventsError.line == 4 && eventsError.path.hasSuffix("events.json"), "\(eventsError)")

        try FileManager.default.removeItem(at: directory.appendingPathComponent("events.json"))
        try Self.write(
            #"{"load":{"connections":1,"seconds":1,"runs":1},"configurations":[{"name":"none","throughput":{"min":1,"median":1,"max":1}}]}"#,
            "overhead.json", in: directory)
        let overheadError = try #require(throws: ReportFileError.self) { try ReportData.load(from: directory.path) }
        #expect(
            overheadError.description.hasSuffix("overhead.json: configurations[0].ratio is missing"), "\(overheadError)"
        )

        try Self.write("{\"load\":\n{\"connections\":1,,}}", "overhead.json", in: directory)
        let syntaxError = try #require(throws: ReportFileError.self) { try ReportData.load(from: directory.path) }
        #expect(syntaxError.line == 2, "\(syntaxError)")
    }

    @Test func theTimelineWidensItsBucketsForLongSpans() {
        var perSecond: [Int64: UInt64] = [:]
        for second in stride(from: Int64(1_000_003), to: 1_001_003, by: 7) { perSecond[second] = 2 }
        let timeline = EventTimeline(countsPerSecond: perSecond)
        #expect(timeline.intervalSeconds == 5)  // 1,000 s in at most 240 buckets
        #expect(timeline.startSeconds == 1_000_000)
        #expect(timeline.counts.count <= EventTimeline.maximumBuckets)
        #expect(timeline.counts.reduce(0, +) == perSecond.values.reduce(0, +))
        #expect(EventTimeline(countsPerSecond: [:]).counts.isEmpty)
    }
}

extension JSONValue {
    fileprivate var intValueForTest: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }
}
