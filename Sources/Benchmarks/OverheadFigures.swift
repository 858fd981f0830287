import Foundation
import JSON

extension OverheadBenchmark {
    /// Minimum, median and maximum of a configuration's runs.
    public struct Spread: Sendable, Equatable {
        public var min: Double
        public var median: Double
        public var max: Double

        init(_ values: [Double]) {
            let sorted = values.sorted()
            min = sorted.first ?? 0
            max = sorted.last ?? 0
            median =
                sorted.isEmpty
                ? 0
                : sorted.count % 2 == 1
                    ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }

        var json: JSONValue {
            .object(JSONObject([("min", .number(min)), ("median", .number(median)), ("max", .number(max))]))
        }
    }

    /// How the ratios are taken, as the table header and overhead.json state it.
    public static let ratioMethod =
        "each run's throughput over the unmonitored run of the same round (no monitor: over the median of its own runs); min / median / max of those per-round ratios"

    /// A configuration's figures: throughput, its per-round ratios to the unmonitored runs,
    /// latencies, and the verdict on its goal when it has one.
    public struct Summary: Sendable {
        public var configuration: Configuration
        public var runs: [Run]
        public var throughput: Spread
        /// Each run's ratio, round by round (see ``ratioMethod``).
        public var ratios: [Double]
        public var ratio: Spread
        public var p50Ms: Spread
        public var p99Ms: Spread
        /// Events lost over every run (capture only; nil when no run reported a count).
        public var eventsLost: Int?
        public var eventsWritten: Int?
        /// Bytes of the capture's files over every run (nil unless every run reported them).
        public var bytesWritten: Int?
        public var goal: Goal?
        public var verdict: Verdict?
        /// The per-run ratios the verdict was judged on, when they come from runs of their own
        /// (`verdictRuns`) rather than from ``ratios``.
        public var verdictRatios: [Double]?
    }

    /// Per-round ratios: run `i` of a configuration against run `i` of the unmonitored
    /// configuration (the same round, so both sides share that moment's machine). Rounds
    /// without an unmonitored run give no ratio.
    ///
    /// A ratio of two medians would hide that both sides vary; the per-round ratio carries
    /// the variation of both into its spread, while cancelling drift that moves both alike.
    static func roundRatios(_ throughputs: [Double], baseline: [Double]) -> [Double] {
        zip(throughputs, baseline).compactMap { monitored, unmonitored in
            unmonitored > 0 ? monitored / unmonitored : nil
        }
    }

    /// The summaries of `results`, in the order of `configurations`.
    static func summarize(
        _ results: [Configuration: [Run]], configurations: [Configuration], verdictRuns: [Configuration: [Run]] = [:]
    ) -> [Summary] {
        let baseline = (results[.none] ?? []).map(\.load.throughput)
        let baselineMedian = Spread(baseline).median
        return configurations.compactMap { configuration in
            guard let runs = results[configuration], !runs.isEmpty else { return nil }
            let throughputs = runs.map(\.load.throughput)
            // The unmonitored runs against their own median: the baseline's own noise.
            let ratios =
                configuration == .none
                ? (baselineMedian > 0 ? throughputs.map { $0 / baselineMedian } : [])
                : roundRatios(throughputs, baseline: baseline)
            let lost = runs.compactMap(\.eventsLost)
            let written = runs.compactMap(\.eventsWritten)
            var summary = Summary(
                configuration: configuration, runs: runs, throughput: Spread(throughputs), ratios: ratios,
                ratio: Spread(ratios),
                p50Ms: Spread(runs.map(\.load.p50Ms)), p99Ms: Spread(runs.map(\.load.p99Ms)),
                eventsLost: lost.isEmpty ? nil : lost.reduce(0, +),
                eventsWritten: written.isEmpty ? nil : written.reduce(0, +),
                bytesWritten: runs.allSatisfy { $0.bytesWritten != nil }
                    ? runs.compactMap(\.bytesWritten).reduce(0, +) : nil,
                goal: Goal.of(configuration))
            if let goal = summary.goal {
                if let own = verdictRuns[configuration], !own.isEmpty, let baseline = verdictRuns[.none] {
                    let ratios = roundRatios(own.map(\.load.throughput), baseline: baseline.map(\.load.throughput))
                    summary.verdictRatios = ratios
                    summary.verdict = goal.judge(ratios: ratios, runs: own.map { ($0.eventsWritten, $0.eventsLost) })
                } else {
                    summary.verdict = goal.judge(ratios: ratios, runs: runs.map { ($0.eventsWritten, $0.eventsLost) })
                }
            }
            return summary
        }
    }

    /// The summaries, in the order the configurations were given.
    public var summaries: [Summary] {
        Self.summarize(results, configurations: configurations, verdictRuns: verdictRuns)
    }

    /// How runs of their own judge the capture (`verdictRuns`), in words.
    static func verdictMethod(runs: Int, turnSeconds: Double, runSeconds: Double) -> String {
        "judged on \(runs) run\(runs == 1 ? "" : "s") of its own after the rounds above: capture and no monitor in turns of \(String(format: "%g", turnSeconds)) s on one server (as --interleave), \(String(format: "%g", 2 * runSeconds)) s a run, each run's capture turns over its turns without capture that follow one without"
    }

    /// The figures as the report reads them (overhead.json).
    public var json: JSONValue {
        let configurations: [JSONValue] = summaries.map { summary in
            let runs: [JSONValue] = summary.runs.enumerated().map { index, run in
                var fields: [(key: String, value: JSONValue)] = [
                    ("throughput", .number(run.load.throughput)), ("p50Ms", .number(run.load.p50Ms)),
                    ("p99Ms", .number(run.load.p99Ms)),
                    ("requests", .number(run.load.requests)),
                ]
                if index < summary.ratios.count { fields.append(("ratio", .number(summary.ratios[index]))) }
                if let written = run.eventsWritten { fields.append(("eventsWritten", .number(written))) }
                if let lost = run.eventsLost { fields.append(("eventsLost", .number(lost))) }
                if let bytes = run.bytesWritten { fields.append(("bytesWritten", .number(bytes))) }
                return .object(JSONObject(fields))
            }
            var fields: [(key: String, value: JSONValue)] = [
                ("name", .string(summary.configuration.rawValue)), ("label", .string(summary.configuration.label)),
                ("runs", .array(runs)),
                ("throughput", summary.throughput.json), ("ratio", summary.ratio.json),
                ("p50Ms", summary.p50Ms.median.isNaN ? .null : summary.p50Ms.json),
                ("p99Ms", summary.p99Ms.median.isNaN ? .null : summary.p99Ms.json),
            ]
            if let goal = summary.goal, let verdict = summary.verdict {
                fields.append(("goal", .string(goal.description)))
                if let ratios = summary.verdictRatios, let turnSeconds = verdictSliceSeconds {
                    fields.append(("verdictRatios", .array(ratios.map { .number($0) })))
                    fields.append(
                        (
                            "verdictMethod",
                            .string(
                                Self.verdictMethod(
                                    runs: ratios.count, turnSeconds: turnSeconds, runSeconds: verdictSeconds))
                        ))
                }
                fields.append(
                    (
                        "verdict",
                        .object(
                            JSONObject([
                                ("met", .bool(verdict.met)), ("text", .string(verdict.text)),
                                ("reasons", .array(verdict.reasons.map { .string($0) })),
                            ]))
                    ))
            }
            return .object(JSONObject(fields))
        }
        return .object(
            JSONObject([
                (
                    "load",
                    .object(
                        JSONObject([
                            ("connections", .number(connections)), ("seconds", .number(seconds)),
                            ("runs", .number(runs)),
                            ("patients", .number(patients)),
                            (
                                "mix",
                                .string(
                                    "40% Patient read, 20% Patient search by name, 30% Observation search by patient and code, 10% Observation create"
                                )
                            ),
                        ]))
                ),
                ("ratioMethod", .string(Self.ratioMethod)),
                ("configurations", .array(configurations)),
            ]))
    }

    /// The figures as a table, ratios first, then each goal's verdict.
    public var table: String {
        Self.table(
            summaries, connections: connections, seconds: seconds, runs: runs, seccompProfile: seccompProfile,
            pairing: pairing, verdictSliceSeconds: verdictSliceSeconds, verdictSeconds: verdictSeconds)
            + (leftoverLine.map { "\n" + $0 } ?? "") + (warmupLine.map { "\n" + $0 } ?? "")
    }

    /// The unmeasured warm-up round's throughputs and ratios, so that what it leaves out shows.
    var warmupLine: String? {
        guard let baseline = warmupResults[.none]?.first?.load.throughput, baseline > 0 else { return nil }
        let parts = configurations.compactMap { configuration -> String? in
            guard let run = warmupResults[configuration]?.first else { return nil }
            let ratio = configuration == .none ? "" : String(format: " (%.2f)", run.load.throughput / baseline)
            return String(format: "%@ %.0f/s", configuration.label, run.load.throughput) + ratio
        }
        return "warm-up round, not counted: " + parts.joined(separator: ", ")
    }

    static func table(
        _ summaries: [Summary], connections: Int, seconds: Double, runs: Int, seccompProfile: String,
        pairing: Pairing = .freshServers, verdictSliceSeconds: Double? = nil, verdictSeconds: Double = 20
    ) -> String {
        func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
        let placement =
            switch pairing {
            case .freshServers:
                "configurations in turns within each round (min / median / max)"
            case .backToBack:
                "paired: one server container for every run, the two configurations back to back in each round, order alternating (min / median / max)"
            case .interleaved(let slice):
                "interleaved: one server container, each run \(String(format: "%g", 2 * seconds)) s of load with the trace paused and resumed every \(String(format: "%g", slice)) s; a side's rate counts the whole 100 ms intervals of its turns from \(String(format: "%g", settleSeconds)) s after each began: every capture turn, and for no monitor the turns that follow a turn without capture (min / median / max; no latencies: a run mixes both sides)"
            }
        var lines = [
            "FHIR server under \(connections) closed-loop connections for \(String(format: "%g", seconds)) s per run, \(plural(runs, "run")) per configuration, "
                + placement,
            "ratio: \(ratioMethod)",
        ]
        if summaries.contains(where: { $0.configuration == .seccomp }) {
            lines.append(
                "seccomp: every server runs under Docker's default seccomp profile, but '\(Configuration.seccomp.label)' under \(seccompProfile)"
            )
        }
        lines += [
            "configuration                          ratio               requests/s              p50 ms              p99 ms"
        ]
        func spread(_ s: Spread, _ format: String) -> String {
            if s.median.isNaN { return "-" }
            return
                "\(String(format: format, s.min)) / \(String(format: format, s.median)) / \(String(format: format, s.max))"
        }
        func pad(_ text: String, _ width: Int) -> String {
            text.padding(toLength: Swift.max(width, text.count + 1), withPad: " ", startingAt: 0)
        }
        for summary in summaries {
            lines.append(
                pad(summary.configuration.label, 39) + pad(spread(summary.ratio, "%.2f"), 20)
                    + pad(spread(summary.throughput, "%.0f"), 24)
                    + pad(spread(summary.p50Ms, "%.2f"), 20) + spread(summary.p99Ms, "%.2f"))
            if summary.configuration == .capture {
                let written = summary.eventsWritten.map(String.init) ?? "an unknown number of"
                let lost = summary.eventsLost.map(String.init) ?? "an unknown number"
                var line =
                    "    captured \(written) events in \(plural(summary.runs.count, "run")), \(lost) lost in the kernel"
                if let bytes = summary.bytesWritten, let events = summary.eventsWritten, events > 0 {
                    line += String(
                        format: ", %d bytes written (%.0f bytes an event)", bytes, Double(bytes) / Double(events))
                }
                lines.append(line)
            }
            if summary.ratios.count > 1 {
                lines.append(
                    "    per-round ratios: " + summary.ratios.map { String(format: "%.2f", $0) }.joined(separator: " "))
            }
        }
        for summary in summaries {
            guard let goal = summary.goal, let verdict = summary.verdict else { continue }
            if let ratios = summary.verdictRatios, let turnSeconds = verdictSliceSeconds {
                lines.append(
                    "\(summary.configuration.label): "
                        + verdictMethod(runs: ratios.count, turnSeconds: turnSeconds, runSeconds: verdictSeconds)
                        + "; per-run ratios: "
                        + ratios.map { String(format: "%.2f", $0) }.joined(separator: " "))
            }
            lines.append("goal, \(summary.configuration.label): \(goal.description): \(verdict.text)")
        }
        return lines.joined(separator: "\n")
    }
}
