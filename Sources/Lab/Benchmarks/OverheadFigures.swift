import Foundation
import JSON

extension OverheadBenchmark {
    /// Minimum, median and maximum of a configuration's runs.
    public struct Spread: Sendable {
        public var min: Double
        public var median: Double
        public var max: Double

        init(_ values: [Double]) {
            let sorted = values.sorted()
            min = sorted.first ?? 0
            max = sorted.last ?? 0
            median = sorted.isEmpty ? 0 : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }

        func scaled(by divisor: Double) -> Spread {
            var spread = self
            spread.min /= divisor
            spread.median /= divisor
            spread.max /= divisor
            return spread
        }

        var json: JSONValue { .object(JSONObject([("min", .number(min)), ("median", .number(median)), ("max", .number(max))])) }
    }

    /// A configuration's figures: throughput, its ratio to the unmonitored median, latencies.
    public struct Summary: Sendable {
        public var configuration: Configuration
        public var runs: [Run]
        public var throughput: Spread
        public var ratio: Spread
        public var p50Ms: Spread
        public var p99Ms: Spread
    }

    /// The summaries, in the order the configurations were given.
    public var summaries: [Summary] {
        let baseline = Spread((results[.none] ?? []).map(\.load.throughput)).median
        return configurations.compactMap { configuration in
            guard let runs = results[configuration], !runs.isEmpty else { return nil }
            let throughput = Spread(runs.map(\.load.throughput))
            return Summary(
                configuration: configuration, runs: runs, throughput: throughput,
                ratio: baseline > 0 ? throughput.scaled(by: baseline) : Spread([]),
                p50Ms: Spread(runs.map(\.load.p50Ms)), p99Ms: Spread(runs.map(\.load.p99Ms)))
        }
    }

    /// The figures as the report reads them (overhead.json).
    public var json: JSONValue {
        let configurations: [JSONValue] = summaries.map { summary in
            let runs: [JSONValue] = summary.runs.map { run in
                var fields: [(key: String, value: JSONValue)] = [
                    ("throughput", .number(run.load.throughput)), ("p50Ms", .number(run.load.p50Ms)), ("p99Ms", .number(run.load.p99Ms)),
                    ("requests", .number(run.load.requests)),
                ]
                if let written = run.eventsWritten { fields.append(("eventsWritten", .number(written))) }
                if let lost = run.eventsLost { fields.append(("eventsLost", .number(lost))) }
                return .object(JSONObject(fields))
            }
            return .object(JSONObject([
                ("name", .string(summary.configuration.rawValue)), ("label", .string(summary.configuration.label)), ("runs", .array(runs)),
                ("throughput", summary.throughput.json), ("ratio", summary.ratio.json), ("p50Ms", summary.p50Ms.json), ("p99Ms", summary.p99Ms.json),
            ]))
        }
        return .object(JSONObject([
            ("load", .object(JSONObject([
                ("connections", .number(connections)), ("seconds", .number(seconds)), ("runs", .number(runs)),
                ("patients", .number(patients)), ("mix", .string("40% Patient read, 20% Patient search by name, 30% Observation search by patient and code, 10% Observation create")),
            ]))),
            ("configurations", .array(configurations)),
        ]))
    }

    /// The figures as a table, ratios first.
    public var table: String {
        var lines = [
            "FHIR server under \(connections) closed-loop connections for \(Int(seconds)) s per run, \(runs) runs per configuration (min / median / max)",
            "configuration                          ratio               requests/s              p50 ms              p99 ms",
        ]
        func spread(_ s: Spread, _ format: String) -> String {
            "\(String(format: format, s.min)) / \(String(format: format, s.median)) / \(String(format: format, s.max))"
        }
        for summary in summaries {
            func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: Swift.max(width, text.count + 1), withPad: " ", startingAt: 0) }
            lines.append(
                pad(summary.configuration.label, 39) + pad(spread(summary.ratio, "%.2f"), 20) + pad(spread(summary.throughput, "%.0f"), 24)
                    + pad(spread(summary.p50Ms, "%.2f"), 20) + spread(summary.p99Ms, "%.2f"))
            let lost = summary.runs.compactMap(\.eventsLost).reduce(0, +)
            let written = summary.runs.compactMap(\.eventsWritten).reduce(0, +)
            if summary.configuration == .capture {
                lines.append("    captured \(written) events in \(summary.runs.count) runs, \(lost) lost in the kernel")
            }
        }
        if let capture = summaries.first(where: { $0.configuration == .capture }) {
            lines.append(String(format: "goal: capturing everything keeps >= 95%% of the unmonitored throughput: median %.1f%% (%@)",
                                capture.ratio.median * 100, capture.ratio.median >= 0.95 ? "met" : "NOT met"))
        }
        return lines.joined(separator: "\n")
    }
}
