import Detection
import Foundation
import Sensor

/// The rule engine's throughput on a recorded trace, measured side by side with merely
/// reading the same file, and on events already in memory (the engine alone).
public struct DetectionBenchmark {
    public struct Figures: Sendable {
        public var events: Int
        public var rules: Int
        /// Reading and decoding the file only.
        public var parsePerSecond: Double
        /// Reading, decoding and the engine with every rule.
        public var parseAndDetectPerSecond: Double
        /// The engine alone on decoded events in memory (one core).
        public var detectPerSecond: Double
        public var evaluationsPerEvent: Double
        public var alerts: UInt64
        public var alertsByRule: [String: UInt64]
    }

    public let path: String
    public let ruleSet: RuleSet
    /// Passes of each measurement; the median is reported.
    public var passes = 3

    public init(path: String, ruleSet: RuleSet) {
        self.path = path
        self.ruleSet = ruleSet
    }

    public func run() throws -> Figures {
        var parse: [Double] = []
        var both: [Double] = []
        var events = 0
        var last = DetectionStatistics()
        // Alternate the two so drift on a shared machine hits both alike.
        for _ in 0..<passes {
            let started = Self.now()
            let counts = try TraceeJSONReader.forEach(path: path, onError: { _ in }) { _ in }
            parse.append(Double(counts.events) / (Self.now() - started))
            events = counts.events

            let engine = try DetectionEngine(ruleSet: ruleSet)
            let start = Self.now()
            try TraceeJSONReader.forEach(path: path, onError: { _ in }) { engine.process($0) { _ in } }
            both.append(Double(counts.events) / (Self.now() - start))
            last = engine.statistics
        }
        var decoded: [TraceEvent] = []
        decoded.reserveCapacity(events)
        try TraceeJSONReader.forEach(path: path, onError: { _ in }) { decoded.append($0) }
        // The engine alone: each pass replays the decoded events until a million have gone
        // through (a short file would otherwise time a few hundred milliseconds of noise).
        var alone: [Double] = []
        let rounds = max(1, 1_000_000 / max(decoded.count, 1))
        for _ in 0..<(passes + 2) {
            let engine = try DetectionEngine(ruleSet: ruleSet)
            let start = Self.now()
            decoded.withUnsafeBufferPointer { events in
                // Borrowed in place: copying each event out of the array would time the harness.
                for _ in 0..<rounds {
                    for index in events.indices { engine.process(events[index]) { _ in } }
                }
            }
            alone.append(Double(decoded.count * rounds) / (Self.now() - start))
        }
        return Figures(
            events: events, rules: ruleSet.rules.filter(\.enabled).count, parsePerSecond: Self.median(parse),
            parseAndDetectPerSecond: Self.median(both), detectPerSecond: Self.median(alone),
            evaluationsPerEvent: Double(last.evaluations) / Double(max(last.events, 1)), alerts: last.alerts,
            alertsByRule: last.alertsByRule)
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}

/// The delay from a kernel event to its alert in a live run: a container repeats a
/// behaviour a rule catches, and each alert's raise time minus its event's time is one sample.
public struct AlertDelayBenchmark {
    public struct Figures: Sendable {
        public var samples: Int
        public var medianMicroseconds: Double
        public var p99Microseconds: Double
        public var maximumMicroseconds: Double
        public var lost: UInt64
    }

    public let ruleSet: RuleSet
    public var image = "caduceus-testbox:latest"
    public var repetitions = 2000

    public init(ruleSet: RuleSet) {
        self.ruleSet = ruleSet
    }

    /// Needs root, BPF and Docker with the testbox image.
    public func run() throws -> Figures {
        let detector = try LiveDetector(ruleSet: ruleSet)
        // Each `cat /etc/shadow` is one sensitive-file read: one alert.
        let script = "i=0; while [ $i -lt \(repetitions) ]; do cat /etc/shadow >/dev/null; i=$((i+1)); done"
        try AttackLab.docker(["run", "--rm", "--network", "host", image, "/bin/sh", "-c", script])
        let (alerts, lost) = try detector.stop()
        let sorted = alerts.map { Double($0.raisedAt &- $0.timestamp) / 1000 }.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        return Figures(
            samples: sorted.count, medianMicroseconds: percentile(0.5), p99Microseconds: percentile(0.99),
            maximumMicroseconds: sorted.last ?? 0, lost: lost)
    }
}
