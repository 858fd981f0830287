import Foundation

/// The five charts of `report.html`, as inline SVG.
///
/// Each chart draws its marks in fill colours that no other chart uses, so that a screenshot
/// test (Tests/report) can tell from the pixels that every chart rendered:
///
///     chart-events-per-name    bars #4263eb ("other" #91a7ff)
///     chart-events-over-time   area #cc5de8, outline #862e9c
///     chart-alerts-timeline    markers by priority: emergency, alert, critical #c2255c; error #e8590c;
///                              warning #f59f00; notice and below #74b816
///     chart-detection-matrix   detected #2f9e44, missed #e03131, prevented #1c7ed6, killed after the syscall
///                              #5f3dc4, did not run #f76707, no rule expected #ced4da;
///                              time-to-detect bars #1098ad
///     chart-overhead           median throughput ratio bars #7950f2; min–max whiskers #343a40;
///                              95% goal line #212529, dashed; 90% floor #212529, dotted
///
/// Axes, grid and labels are greys (#dee2e6, #868e96, #495057) shared by all.
enum ReportCharts {
    enum Colour {
        static let eventBar = "#4263eb"
        static let otherEventBar = "#91a7ff"
        static let eventArea = "#cc5de8"
        static let eventLine = "#862e9c"
        static let criticalAlert = "#c2255c"
        static let errorAlert = "#e8590c"
        static let warningAlert = "#f59f00"
        static let lowerAlert = "#74b816"
        static let detected = "#2f9e44"
        static let prevented = "#1c7ed6"
        static let missed = "#e03131"
        static let killed = "#5f3dc4"
        static let didNotRun = "#f76707"
        static let notApplicable = "#ced4da"
        static let timeToDetect = "#1098ad"
        static let overheadBar = "#7950f2"
        static let whisker = "#343a40"
        static let goal = "#212529"
        static let grid = "#dee2e6"
        static let axis = "#868e96"
        static let label = "#495057"
    }

    static let width = 960.0

    /// Vertical grid lines with their labels under the plot, for a horizontal axis.
    static func verticalGrid(
        _ canvas: inout SVGCanvas, scale: LinearScale, ticks: [Double], top: Double, bottom: Double,
        label: (Double) -> String
    ) {
        for tick in ticks {
            let x = scale(tick)
            canvas.line(x1: x, y1: top, x2: x, y2: bottom, stroke: Colour.grid)
            canvas.text(label(tick), x: x, y: bottom + 14, anchor: .middle, size: 11, fill: Colour.label)
        }
    }

    // MARK: - Events

    /// Horizontal bars: the most frequent event names, then the rest folded into "other".
    static func eventsPerName(_ events: EventStatistics, limit: Int) -> String {
        let (top, otherNames, otherCount) = events.topNames(limit)
        var rows = top.map { (label: $0.name, count: $0.count, fill: Colour.eventBar) }
        if otherNames > 0 { rows.append(("other (\(otherNames) names)", otherCount, Colour.otherEventBar)) }
        let rowHeight = 22.0, labelWidth = 210.0, top0 = 8.0
        let plotRight = width - 90
        let height = top0 + Double(rows.count) * rowHeight + 30
        var canvas = SVGCanvas(width: width, height: height)
        let ticks = LinearScale.ticks(upTo: Double(rows.map(\.count).max() ?? 1), count: 6, minimumStep: 1)
        let scale = LinearScale(domain: (0, ticks.last ?? 1), range: (labelWidth, plotRight))
        let bottom = top0 + Double(rows.count) * rowHeight
        verticalGrid(&canvas, scale: scale, ticks: ticks, top: top0, bottom: bottom) { ReportFormat.count(Int64($0)) }
        for (index, row) in rows.enumerated() {
            let y = top0 + Double(index) * rowHeight
            canvas.text(
                HTML.truncate(row.label, 30), x: labelWidth - 8, y: y + 15, anchor: .end, fill: Colour.label,
                title: row.label)
            let barWidth = scale(Double(row.count)) - labelWidth
            canvas.rect(
                x: labelWidth, y: y + 3, width: max(barWidth, 1), height: rowHeight - 6, fill: row.fill,
                title: "\(row.label): \(ReportFormat.count(row.count))")
            canvas.text(
                ReportFormat.count(row.count), x: labelWidth + max(barWidth, 1) + 6, y: y + 15, size: 11,
                fill: Colour.label)
        }
        return canvas.svg(id: "chart-events-per-name", title: "Events per name")
    }

    /// A step area: events in each bucket of the timeline, over the seconds since its start.
    static func eventsOverTime(_ timeline: EventTimeline) -> String {
        let left = 80.0, right = width - 20, top = 30.0, bottom = 270.0
        var canvas = SVGCanvas(width: width, height: bottom + 40)
        let span = Double(timeline.counts.count) * Double(timeline.intervalSeconds)
        let x = LinearScale(domain: (0, span), range: (left, right))
        let yTicks = LinearScale.ticks(upTo: Double(timeline.counts.max() ?? 1), count: 5, minimumStep: 1)
        let y = LinearScale(domain: (0, yTicks.last ?? 1), range: (bottom, top))
        for tick in yTicks {
            canvas.line(x1: left, y1: y(tick), x2: right, y2: y(tick), stroke: Colour.grid)
            canvas.text(
                ReportFormat.count(Int64(tick)), x: left - 6, y: y(tick) + 4, anchor: .end, size: 11, fill: Colour.label
            )
        }
        for tick in LinearScale.timeTicks(span: span, count: 8) {
            canvas.line(x1: x(tick), y1: bottom, x2: x(tick), y2: bottom + 4, stroke: Colour.axis)
            canvas.text(
                "+" + ReportFormat.duration(seconds: tick), x: x(tick), y: bottom + 17, anchor: .middle, size: 11,
                fill: Colour.label)
        }
        var outline: [(Double, Double)] = []
        for (index, count) in timeline.counts.enumerated() {
            let start = Double(index) * Double(timeline.intervalSeconds)
            outline.append((x(start), y(Double(count))))
            outline.append((x(start + Double(timeline.intervalSeconds)), y(Double(count))))
        }
        canvas.path(
            [(left, bottom)] + outline + [(right, bottom)], fill: Colour.eventArea, stroke: "none", closed: true)
        canvas.path(outline, fill: "none", stroke: Colour.eventLine, strokeWidth: 1.5, closed: false)
        canvas.line(x1: left, y1: bottom, x2: right, y2: bottom, stroke: Colour.axis)
        canvas.text(
            "events per \(ReportFormat.duration(seconds: Double(timeline.intervalSeconds)))", x: 4, y: 12, size: 11,
            fill: Colour.label)
        return canvas.svg(id: "chart-events-over-time", title: "Events over time")
    }

    // MARK: - Alerts

    static func alertColour(_ priority: String) -> String {
        switch AlertStatistics.severityRank(priority) {
        case 0...2: return Colour.criticalAlert
        case 3: return Colour.errorAlert
        case 4: return Colour.warningAlert
        default: return Colour.lowerAlert
        }
    }

    /// One row per rule, one marker per alert at its time (alerts that fall on the same pixel
    /// of the same row share a marker, so a flood of alerts stays a small drawing).
    static func alertsTimeline(_ alerts: AlertStatistics) -> String {
        let labelWidth = 300.0, right = width - 20, top = 30.0, rowHeight = 24.0
        let bottom = top + Double(alerts.byRule.count) * rowHeight
        var canvas = SVGCanvas(width: width, height: bottom + 40)
        let first = alerts.timeline.map(\.timestamp).min() ?? 0
        let last = alerts.timeline.map(\.timestamp).max() ?? 0
        let span = max(Double(last - first) / 1e9, 1)
        let x = LinearScale(domain: (0, span), range: (labelWidth + 10, right - 10))
        // Legend: the priorities present, most severe first.
        var legendX = labelWidth + 10
        for (priority, count) in alerts.byPriority {
            canvas.circle(cx: legendX + 6, cy: 12, radius: 6, fill: alertColour(priority))
            let text = "\(priority) (\(ReportFormat.count(count)))"
            canvas.text(text, x: legendX + 16, y: 16, size: 11, fill: Colour.label)
            legendX += 30 + Double(text.count) * 6.5
        }
        for tick in LinearScale.timeTicks(span: span, count: 8) {
            canvas.line(x1: x(tick), y1: top, x2: x(tick), y2: bottom, stroke: Colour.grid)
            canvas.text(
                "+" + ReportFormat.duration(seconds: tick), x: x(tick), y: bottom + 14, anchor: .middle, size: 11,
                fill: Colour.label)
        }
        for (index, rule) in alerts.byRule.enumerated() {
            let label = "\(rule.ruleId) \(rule.rule)"
            canvas.text(
                HTML.truncate(label, 44), x: labelWidth - 8, y: top + Double(index) * rowHeight + 16, anchor: .end,
                size: 11,
                fill: Colour.label, title: "\(label): \(rule.count) alerts")
        }
        var drawn = Set<[Int]>()
        for point in alerts.timeline {
            let seconds = Double(point.timestamp - first) / 1e9
            let pixel = Int(x(seconds).rounded())
            let severity = AlertStatistics.severityRank(point.priority)
            guard drawn.insert([point.ruleIndex, pixel, severity]).inserted else { continue }
            canvas.circle(
                cx: Double(pixel), cy: top + Double(point.ruleIndex) * rowHeight + 12, radius: 6,
                fill: alertColour(point.priority),
                title:
                    "\(alerts.byRule[point.ruleIndex].ruleId) at \(ReportFormat.timestamp(nanoseconds: point.timestamp))"
            )
        }
        canvas.text(
            "from \(ReportFormat.timestamp(nanoseconds: first))", x: labelWidth + 10, y: bottom + 30, size: 11,
            fill: Colour.label)
        return canvas.svg(id: "chart-alerts-timeline", title: "Alerts over time, per rule")
    }

    // MARK: - Detection matrix

    /// The matrix as a coloured grid: one row per scenario, its outcome as a cell, and a bar for
    /// the seconds from the scenario's start to its first expected alert.
    static func detectionMatrix(_ matrix: DetectionMatrix) -> String {
        let rowHeight = 22.0, top = 26.0, cellX = 430.0, cellWidth = 96.0, barLeft = 560.0, barRight = width - 70
        let bottom = top + Double(matrix.scenarios.count) * rowHeight
        var canvas = SVGCanvas(width: width, height: bottom + 30)
        let headers: [(String, Double)] = [
            ("scenario", 4), ("tactic", 190), ("technique", 340), ("outcome", cellX), ("seconds to detect", barLeft),
        ]
        for (header, x) in headers { canvas.text(header, x: x, y: 16, size: 12, fill: Colour.label, bold: true) }
        let ticks = LinearScale.ticks(upTo: matrix.scenarios.compactMap(\.secondsToDetect).max() ?? 1, count: 5)
        let seconds = LinearScale(domain: (0, ticks.last ?? 1), range: (barLeft, barRight))
        verticalGrid(&canvas, scale: seconds, ticks: ticks, top: top, bottom: bottom) {
            LinearScale.tickLabel($0, ticks: ticks)
        }
        for (index, row) in matrix.scenarios.enumerated() {
            let y = top + Double(index) * rowHeight
            canvas.text(HTML.truncate(row.id, 26), x: 4, y: y + 15, fill: Colour.label, title: row.name)
            canvas.text(HTML.truncate(row.tactic, 22), x: 190, y: y + 15, size: 11, fill: Colour.label)
            canvas.text(row.technique, x: 340, y: y + 15, size: 11, fill: Colour.label)
            let (fill, text, ink) =
                switch row.cell {
                case .detected: (Colour.detected, "detected", "#ffffff")
                case .prevented: (Colour.prevented, "prevented", "#ffffff")
                case .killed: (Colour.killed, "killed", "#ffffff")
                case .missed: (Colour.missed, "missed", "#ffffff")
                case .didNotRun: (Colour.didNotRun, "did not run", "#ffffff")
                case .notApplicable: (Colour.notApplicable, "n/a", "#212529")
                }
            canvas.rect(
                x: cellX, y: y + 2, width: cellWidth, height: rowHeight - 4, fill: fill,
                title:
                    "expected \(row.expected.joined(separator: ", ")); fired \(row.fired.joined(separator: ", ")); source \(row.source)"
                    + (row.sourceProblem.map { " (\($0))" } ?? "")
                    + (row.verdict.reason.map { "; \(row.verdict.name): \($0)" } ?? ""))
            canvas.text(text, x: cellX + cellWidth / 2, y: y + 15, anchor: .middle, size: 11, fill: ink, bold: true)
            if let time = row.secondsToDetect {
                let barWidth = max(seconds(time) - barLeft, 2)
                canvas.rect(x: barLeft, y: y + 4, width: barWidth, height: rowHeight - 8, fill: Colour.timeToDetect)
                canvas.text(
                    ReportFormat.decimal(time, digits: 3) + " s", x: barLeft + barWidth + 5, y: y + 15, size: 11,
                    fill: Colour.label)
            }
        }
        return canvas.svg(id: "chart-detection-matrix", title: "Detection matrix")
    }

    // MARK: - Overhead

    /// Per monitor, the median throughput ratio to the unmonitored server as a bar, the runs'
    /// range as a whisker, against the 95% goal.
    static func overhead(_ overhead: OverheadResults) -> String {
        let rowHeight = 30.0, labelWidth = 210.0, top = 24.0, right = width - 80
        let bottom = top + Double(overhead.configurations.count) * rowHeight
        var canvas = SVGCanvas(width: width, height: bottom + 30)
        let largest = max(1.0, overhead.configurations.map(\.ratio.max).max() ?? 1)
        let ticks = LinearScale.ticks(upTo: largest, count: 6)
        let x = LinearScale(domain: (0, ticks.last ?? 1), range: (labelWidth, right))
        verticalGrid(&canvas, scale: x, ticks: ticks, top: top, bottom: bottom) { "\(Int(($0 * 100).rounded()))%" }
        for (index, configuration) in overhead.configurations.enumerated() {
            let y = top + Double(index) * rowHeight
            let middle = y + rowHeight / 2
            canvas.text(
                HTML.truncate(configuration.label, 30), x: labelWidth - 8, y: middle + 4, anchor: .end,
                fill: Colour.label,
                title: configuration.name)
            let ratio = configuration.ratio
            canvas.rect(
                x: labelWidth, y: y + 5, width: max(x(ratio.median) - labelWidth, 1), height: rowHeight - 10,
                fill: Colour.overheadBar,
                title: "\(configuration.label): median \(ReportFormat.decimal(ratio.median * 100, digits: 1))%")
            canvas.line(x1: x(ratio.min), y1: middle, x2: x(ratio.max), y2: middle, stroke: Colour.whisker, width: 1.5)
            for end in [ratio.min, ratio.max] {
                canvas.line(x1: x(end), y1: middle - 6, x2: x(end), y2: middle + 6, stroke: Colour.whisker, width: 1.5)
            }
            canvas.text(
                ReportFormat.decimal(ratio.median * 100, digits: 1) + "%", x: x(ratio.max) + 8, y: middle + 4, size: 11,
                fill: Colour.label)
        }
        let goal = x(OverheadResults.goalRatio)
        canvas.line(x1: goal, y1: top - 6, x2: goal, y2: bottom, stroke: Colour.goal, width: 1.5, dash: "6 4")
        canvas.text("95% goal", x: goal, y: top - 10, anchor: .middle, size: 11, fill: Colour.goal, bold: true)
        let floor = x(OverheadResults.floorRatio)
        canvas.line(x1: floor, y1: top - 6, x2: floor, y2: bottom, stroke: Colour.goal, width: 1, dash: "2 4")
        canvas.text("90%", x: floor, y: bottom + 14, anchor: .middle, size: 10, fill: Colour.goal)
        return canvas.svg(id: "chart-overhead", title: "Throughput under each monitor, relative to none")
    }
}
