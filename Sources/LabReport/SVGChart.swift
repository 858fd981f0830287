import Foundation

// The building blocks of the report's charts. They are drawn in Swift as inline SVG so that
// report.html is one file that opens anywhere, offline, with no script, font or image to fetch.

/// Escaping for text and attribute values in HTML and SVG: everything from an input file goes
/// through here (rule outputs hold `<`, `&` and quotes, and a hostile one could hold a script).
enum HTML {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            // Control characters other than tab and newline are not allowed in HTML text.
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}", "\u{7F}": escaped += "\u{FFFD}"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// At most `limit` characters, with an ellipsis when cut (labels beside a chart have a fixed width).
    static func truncate(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(max(limit - 1, 1))) + "…"
    }
}

/// Times, counts and durations as the report prints them; times in UTC, so that a report reads
/// the same wherever it is opened.
enum ReportFormat {
    static func timestamp(_ date: Date) -> String {
        timestamp(seconds: Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    static func timestamp(nanoseconds: UInt64) -> String {
        timestamp(seconds: Int64(nanoseconds / 1_000_000_000))
    }

    /// RFC 3339 in UTC, to the second: `2025-05-01T12:00:00Z`.
    static func timestamp(seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// `1,234,567`: counts of millions of events are read at a glance.
    static func count<N: BinaryInteger>(_ number: N) -> String {
        let digits = String(number.magnitude)
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return (number < 0 ? "-" : "") + grouped
    }

    static func decimal(_ number: Double, digits: Int) -> String {
        number.isFinite ? String(format: "%.\(digits)f", number) : "-"
    }

    /// A span as people say it: `45 s`, `2.5 min`, `3 h`, `2 d`.
    static func duration(seconds: Double) -> String {
        func trimmed(_ value: Double) -> String {
            value == value.rounded() ? String(Int64(value)) : String(format: "%.1f", value)
        }
        switch abs(seconds) {
        case ..<60: return trimmed(seconds) + " s"
        case ..<3600: return trimmed(seconds / 60) + " min"
        case ..<86400: return trimmed(seconds / 3600) + " h"
        default: return trimmed(seconds / 86400) + " d"
        }
    }
}

/// Maps a data interval onto a pixel interval.
struct LinearScale {
    let domain: (low: Double, high: Double)
    let range: (low: Double, high: Double)

    init(domain: (Double, Double), range: (Double, Double)) {
        // An empty domain (one value) would divide by zero: widen it so that the value sits at the start.
        self.domain = domain.1 > domain.0 ? domain : (domain.0, domain.0 + 1)
        self.range = range
    }

    func callAsFunction(_ value: Double) -> Double {
        range.low + (value - domain.low) / (domain.high - domain.low) * (range.high - range.low)
    }

    /// About `count` round tick values from 0 to at least `maximum` (steps of 1, 2 or 5 × 10^n,
    /// and at least `minimumStep`: counts have no ticks between whole numbers).
    static func ticks(upTo maximum: Double, count: Int, minimumStep: Double = 0) -> [Double] {
        guard maximum > 0, maximum.isFinite else { return [0, 1] }
        let rough = max(maximum / Double(max(count, 1)), minimumStep)
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough * (1 - 1e-9) } ?? 10 * magnitude
        let last = (maximum / step - 1e-9).rounded(.up)
        return (0...max(Int(last), 1)).map { Double($0) * step }
    }

    /// A tick's label with as many decimals as the step between ticks needs (0.5 → one, 2 → none).
    static func tickLabel(_ value: Double, ticks: [Double]) -> String {
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        let digits = step >= 1 ? 0 : Int((-log10(step)).rounded(.up))
        return ReportFormat.decimal(value, digits: digits)
    }

    /// Round tick values for a time span in seconds: 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 6, 12 h, days.
    static func timeTicks(span: Double, count: Int) -> [Double] {
        let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
        let rough = max(span, 1) / Double(max(count, 1))
        var step = steps.first { $0 >= rough } ?? 86400
        while span / step > Double(count) * 2 { step *= 2 }
        return stride(from: 0.0, through: span, by: step).map { $0 }
    }
}

/// An SVG drawing built element by element; every text it is given is escaped.
struct SVGCanvas {
    let width: Double
    let height: Double
    private(set) var elements: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// Coordinates to a tenth of a pixel: enough for crisp edges, short enough for big charts.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
    }

    private static func tooltip(_ title: String?) -> String {
        title.map { "<title>\(HTML.escape($0))</title>" } ?? ""
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, title: String? = nil) {
        let n = Self.number
        let shape =
            "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(width, 0)))\" height=\"\(n(max(height, 0)))\" fill=\"\(fill)\""
        elements.append(title == nil ? shape + "/>" : shape + ">\(Self.tooltip(title))</rect>")
    }

    mutating func line(
        x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1, dash: String? = nil
    ) {
        let n = Self.number
        let dashed = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        elements.append(
            "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\"\(dashed)/>"
        )
    }

    mutating func circle(cx: Double, cy: Double, radius: Double, fill: String, title: String? = nil) {
        let n = Self.number
        let shape = "<circle cx=\"\(n(cx))\" cy=\"\(n(cy))\" r=\"\(n(radius))\" fill=\"\(fill)\""
        elements.append(title == nil ? shape + "/>" : shape + ">\(Self.tooltip(title))</circle>")
    }

    /// A closed or open path through `points`.
    mutating func path(
        _ points: [(Double, Double)], fill: String, stroke: String, strokeWidth: Double = 1, closed: Bool
    ) {
        guard let first = points.first else { return }
        let n = Self.number
        var data = "M\(n(first.0)) \(n(first.1))"
        for point in points.dropFirst() { data += "L\(n(point.0)) \(n(point.1))" }
        if closed { data += "Z" }
        elements.append(
            "<path d=\"\(data)\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"\(n(strokeWidth))\"/>")
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(
        _ text: String, x: Double, y: Double, anchor: Anchor = .start, size: Double = 12, fill: String = "#212529",
        bold: Bool = false, title: String? = nil
    ) {
        let n = Self.number
        let weight = bold ? " font-weight=\"bold\"" : ""
        elements.append(
            "<text x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"\(anchor.rawValue)\" font-size=\"\(n(size))\" fill=\"\(fill)\"\(weight)>"
                + Self.tooltip(title) + HTML.escape(text) + "</text>")
    }

    /// The finished `<svg>`, with an id for the page (and its tests) and a title for screen readers.
    func svg(id: String, title: String) -> String {
        let n = Self.number
        return "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" "
            + "viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
            + "<title>\(HTML.escape(title))</title>" + elements.joined() + "</svg>"
    }
}
