import Foundation

/// `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched), so
/// that it can be mailed, archived with the results, or opened offline.
extension ReportData {
    /// The page. Every string read from an input is escaped.
    public var html: String {
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Caduceus report: \(HTML.escape(host))</title>
            <style>\(Self.styleSheet)</style>
            </head>
            <body>
            <header>
            <h1>Caduceus report</h1>
            <p>Generated \(ReportFormat.timestamp(generatedAt)) on <b>\(HTML.escape(host))</b>
            from <code>\(HTML.escape(resultsDirectory))</code>.</p>
            \(inputList)
            </header>

            """
        page += section("events-per-name", "Events per name", input: .events, events.map(eventsPerNameSection))
        page += section("events-over-time", "Events over time", input: .events, events.map(eventsOverTimeSection))
        page += section("alerts", "Alerts", input: .alerts, alerts.map(alertsSection))
        page += section("detection-matrix", "Detection matrix", input: .matrix, matrix.map(matrixSection))
        page += section("overhead", "Overhead", input: .overhead, overhead.map(overheadSection))
        page += "</body>\n</html>\n"
        return page
    }

    static let styleSheet = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#212529;\
        background:#fff;max-width:1000px;margin:24px auto;padding:0 16px}
        h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 6px;padding-bottom:4px;border-bottom:2px solid #e9ecef}
        header p{margin:4px 0;color:#495057}code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
        ul.inputs{list-style:none;padding:0;margin:8px 0;display:flex;gap:16px;flex-wrap:wrap}
        ul.inputs li{padding:2px 8px;border-radius:4px;background:#e9ecef;font-size:12.5px}
        ul.inputs li.found{background:#d3f9d8}
        p.summary{margin:4px 0 10px;color:#343a40}p.not-measured{color:#868e96;font-style:italic}
        svg{display:block;max-width:100%;height:auto;margin:8px 0;font-family:inherit}
        table{border-collapse:collapse;width:100%;margin:10px 0;font-size:12.5px}
        th,td{border:1px solid #dee2e6;padding:3px 6px;text-align:left;vertical-align:top}
        th{background:#f1f3f5}td.number{text-align:right;font-variant-numeric:tabular-nums}
        td.time{white-space:nowrap}td.output{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
        .detected{color:#2b8a3e;font-weight:bold}.missed{color:#c92a2a;font-weight:bold}.prevented{color:#1864ab;font-weight:bold}.killed{color:#364fc7;font-weight:bold}.didnotrun{color:#d9480f;font-weight:bold}.na{color:#868e96}
        """

    /// Which inputs were found, so that a reader knows at once what the report covers.
    var inputList: String {
        let missing = Set(notMeasured)
        let items = Input.allCases.map { input in
            missing.contains(input)
                ? "<li>\(input.rawValue): not measured</li>"
                : "<li class=\"found\">\(input.rawValue)</li>"
        }
        return "<ul class=\"inputs\">" + items.joined() + "</ul>"
    }

    func section(_ id: String, _ title: String, input: Input, _ body: String?) -> String {
        let content =
            body ?? "<p class=\"not-measured\">Not measured: no \(input.rawValue) in the results directory.</p>"
        return "<section id=\"\(id)\">\n<h2>\(title)</h2>\n\(content)\n</section>\n"
    }

    // MARK: - Sections

    func eventsPerNameSection(_ events: EventStatistics) -> String {
        guard events.total > 0 else { return "<p class=\"not-measured\">events.json holds no events.</p>" }
        var html =
            "<p class=\"summary\">\(ReportFormat.count(events.total)) events of \(events.countsByName.count) kinds"
            + " from \(events.countsByContainer.count) \(events.countsByContainer.count == 1 ? "source" : "sources")"
            + " (the counts of <code>caduceus summary</code>).</p>\n"
        html += ReportCharts.eventsPerName(events, limit: Self.topEventNames)
        html += "\n<table><thead><tr><th>container</th><th>events</th><th>share</th></tr></thead><tbody>"
        for (container, count) in events.countsByContainer.prefix(20) {
            let share = Double(count) / Double(events.total) * 100
            html +=
                "<tr><td>\(HTML.escape(container))</td><td class=\"number\">\(ReportFormat.count(count))</td>"
                + "<td class=\"number\">\(ReportFormat.decimal(share, digits: 1))%</td></tr>"
        }
        if events.countsByContainer.count > 20 {
            html += "<tr><td colspan=\"3\">and \(events.countsByContainer.count - 20) more</td></tr>"
        }
        return html + "</tbody></table>"
    }

    func eventsOverTimeSection(_ events: EventStatistics) -> String {
        let timeline = events.timeline
        guard !timeline.counts.isEmpty else { return "<p class=\"not-measured\">events.json holds no events.</p>" }
        let peak = timeline.counts.max() ?? 0
        let interval = ReportFormat.duration(seconds: Double(timeline.intervalSeconds))
        return
            "<p class=\"summary\">From \(ReportFormat.timestamp(seconds: timeline.startSeconds)), in \(timeline.counts.count)"
            + " intervals of \(interval); the busiest held \(ReportFormat.count(peak)) events.</p>\n"
            + ReportCharts.eventsOverTime(timeline)
    }

    func alertsSection(_ alerts: AlertStatistics) -> String {
        guard alerts.total > 0 else { return "<p class=\"summary\">No alerts: alerts.json is empty.</p>" }
        let perPriority = alerts.byPriority.map { "\(ReportFormat.count($0.count)) \(HTML.escape($0.priority))" }
            .joined(separator: ", ")
        var html =
            "<p class=\"summary\">\(ReportFormat.count(alerts.total)) alerts from \(alerts.byRule.count) rules: \(perPriority).</p>\n"
        html += ReportCharts.alertsTimeline(alerts)
        let shown =
            alerts.firstAlerts.count < alerts.total
            ? "The first \(alerts.firstAlerts.count) of \(ReportFormat.count(alerts.total)) alerts." : "Every alert."
        html +=
            "\n<p class=\"summary\">\(shown)</p><table><thead><tr><th>time</th><th>priority</th><th>rule</th>"
            + "<th>MITRE</th><th>container</th><th>output</th></tr></thead><tbody>"
        for alert in alerts.firstAlerts {
            html +=
                "<tr><td class=\"time\">\(HTML.escape(alert.time))</td><td>\(HTML.escape(alert.priority))</td>"
                + "<td>\(HTML.escape(alert.ruleId)) \(HTML.escape(alert.rule))</td><td>\(HTML.escape(alert.mitre.joined(separator: ", ")))</td>"
                + "<td>\(HTML.escape(alert.container))</td><td class=\"output\">\(HTML.escape(alert.output))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    func matrixSection(_ matrix: DetectionMatrix) -> String {
        var html =
            "<p class=\"summary\">" + HTML.escape(MatrixCell.summary(matrix.scenarios.map(\.cell)))
            + (matrix.detectedByAuditTrailCount > 0
                ? " (\(matrix.detectedByAuditTrailCount) detected by the FHIR server's audit trail, which sees what the kernel cannot: who read which patients)"
                : "")
            + (matrix.watchedProfile
                ? "; the learned profile drifted in \(matrix.driftCount) of \(matrix.scenarios.count)" : "") + ". "
            + "Prevented means the refusal was observed (the sensor saw the call return EPERM or EACCES, or a mechanism denied it); "
            + "a scenario that failed any other way did not run, and counts as a failure. "
        html +=
            matrix.workloadInteractions > 0
            ? "False positives: <b>\(matrix.falsePositives)</b> alerts during \(ReportFormat.count(matrix.workloadInteractions)) interactions of the benign clinical workload.</p>\n"
            : "False positives: not measured (no benign workload ran).</p>\n"
        html += ReportCharts.detectionMatrix(matrix)
        html +=
            "\n<table><thead><tr><th>scenario</th><th>name</th><th>technique</th><th>expected</th><th>fired</th>"
            + (matrix.watchedProfile ? "<th>profile drift</th>" : "")
            + "<th>source</th><th>detection</th><th>seconds</th><th>what the attack achieved</th></tr></thead><tbody>"
        for row in matrix.scenarios {
            var outcome = "<span class=\"\(row.cell.htmlClass)\">\(row.cell.rawValue)</span>"
            if let problem = row.sourceProblem, row.cell == .missed {
                outcome = "<span class=\"missed\">not detected</span> (\(HTML.escape(problem)))"
            }
            html +=
                "<tr><td>\(HTML.escape(row.id))</td><td>\(HTML.escape(row.name))</td><td>\(HTML.escape(row.technique))</td>"
                + "<td>\(HTML.escape(row.expected.joined(separator: ", ")))</td><td>\(HTML.escape(row.fired.joined(separator: ", ")))</td>"
                + (matrix.watchedProfile
                    ? "<td>\(HTML.escape((row.drift ?? []).isEmpty ? "-" : row.drift!.joined(separator: ", ")))</td>"
                    : "")
                + "<td>\(row.detected == nil ? "-" : HTML.escape(row.source))</td><td>\(outcome)</td><td class=\"number\">\(row.secondsToDetect.map { ReportFormat.decimal($0, digits: 3) } ?? "-")</td>"
                + "<td>\(HTML.escape([row.result.isEmpty ? "exit \(row.exitStatus)" : row.result, row.verdict.reason].compactMap { $0 }.joined(separator: "; ")))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    func overheadSection(_ overhead: OverheadResults) -> String {
        var html =
            "<p class=\"summary\">The FHIR server under \(overhead.connections) connections for "
            + "\(ReportFormat.decimal(overhead.seconds, digits: overhead.seconds == overhead.seconds.rounded() ? 0 : 1)) s, "
            + "\(overhead.runsPerConfiguration) runs per configuration: throughput relative to no monitor, "
            + HTML.escape(
                overhead.ratioMethod
                    ?? "the median of each configuration's runs over the median of the unmonitored runs")
            + "; the bar is the median, its whisker spans the runs.</p>\n"
        for configuration in overhead.configurations {
            guard let goal = configuration.goal, let verdict = configuration.verdict else { continue }
            html +=
                "<p class=\"summary\">Goal, \(HTML.escape(configuration.label)): \(HTML.escape(goal))"
                + (configuration.verdictMethod.map { " (" + HTML.escape($0) + ")" } ?? "") + ": "
                + "<span class=\"\(verdict.met ? "detected" : "missed")\">\(HTML.escape(verdict.text))</span></p>\n"
        }
        html += ReportCharts.overhead(overhead)
        // The median, then the runs' range in small print.
        func spread(_ spread: OverheadResults.Spread?, digits: Int, unit: String = "") -> String {
            guard let spread else { return "-" }
            return
                "\(ReportFormat.decimal(spread.median, digits: digits))\(unit) <small>(\(ReportFormat.decimal(spread.min, digits: digits))–"
                + "\(ReportFormat.decimal(spread.max, digits: digits)))</small>"
        }
        html +=
            "\n<table><thead><tr><th>configuration</th><th>runs</th><th>requests/s</th><th>ratio</th>"
            + "<th>p50 ms</th><th>p99 ms</th><th>goal</th></tr></thead><tbody>"
        for configuration in overhead.configurations {
            let verdict = configuration.verdict.map {
                "<span class=\"\($0.met ? "detected" : "missed")\">\($0.met ? "met" : "NOT met")</span>"
            }
            let ratio = OverheadResults.Spread(
                min: configuration.ratio.min * 100, median: configuration.ratio.median * 100,
                max: configuration.ratio.max * 100)
            html +=
                "<tr><td>\(HTML.escape(configuration.label)) <code>\(HTML.escape(configuration.name))</code></td>"
                + "<td class=\"number\">\(configuration.runCount)</td>"
                + "<td class=\"number\">\(spread(configuration.throughput, digits: 0))</td>"
                + "<td class=\"number\">\(spread(ratio, digits: 1, unit: "%"))</td>"
                + "<td class=\"number\">\(spread(configuration.p50Milliseconds, digits: 2))</td>"
                + "<td class=\"number\">\(spread(configuration.p99Milliseconds, digits: 2))</td>"
                + "<td>\(verdict ?? "-")</td></tr>"
        }
        return html + "</tbody></table>"
    }

    // MARK: - Writing

    /// Writes `report.html` to `htmlPath` and `report.json` beside it (same name, `.json`);
    /// returns both paths.
    public func write(htmlPath: String) throws -> (html: String, json: String) {
        let jsonPath = Self.jsonPath(besides: htmlPath)
        do {
            try Data(html.utf8).write(to: URL(fileURLWithPath: htmlPath), options: .atomic)
            try Data(jsonText.utf8).write(to: URL(fileURLWithPath: jsonPath), options: .atomic)
        } catch {
            throw ReportFileError(
                path: htmlPath, line: nil, message: "cannot write the report: \(error.localizedDescription)")
        }
        return (htmlPath, jsonPath)
    }

    /// `report.html` → `report.json`; a name without `.html` gets `.json` appended.
    public static func jsonPath(besides htmlPath: String) -> String {
        let url = URL(fileURLWithPath: htmlPath)
        let base =
            ["html", "htm"].contains(url.pathExtension.lowercased())
            ? String(htmlPath.dropLast(url.pathExtension.count + 1)) : htmlPath
        return base + ".json"
    }
}
