import Detection
import Foundation
import Lab
import Sensor

/// The reader's and the rule engine's throughput on a recorded trace, per core: each rate is
/// events per second of the measuring thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so that
/// other work on a shared machine lengthens the wall clock but not the figure. Every figure is
/// a range over repeated passes.
public struct DetectionBenchmark {
    /// The lowest and highest rate of the passes.
    public struct Spread: Sendable {
        public var minimum: Double
        public var maximum: Double
        public var median: Double

        init(_ rates: [Double]) {
            let sorted = rates.sorted()
            minimum = sorted.first ?? 0
            maximum = sorted.last ?? 0
            median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        }

        /// "met" only when every pass cleared the goal, "not met" when none did.
        public func verdict(goal: Double) -> String {
            minimum >= goal ? "met" : maximum < goal ? "not met" : "not shown: the passes straddle it"
        }
    }

    public struct Figures: Sendable {
        public var events: Int
        public var rules: Int
        /// Reading and decoding the file with the direct decoder, per core.
        public var readPerCore: Spread
        /// The same with the tree parser alone (the reference decoder), per core.
        public var treeReadPerCore: Spread
        /// Reading, decoding and the engine with every rule, per core.
        public var readAndDetectPerCore: Spread
        /// The engine alone on decoded events in memory, per core.
        public var enginePerCore: Spread
        public var evaluationsPerEvent: Double
        public var alerts: UInt64
        public var alertsByRule: [String: UInt64]
    }

    /// The goal for both the reader and the engine: a million per second per core.
    public static let goal = 1_000_000.0

    public let path: String
    public let ruleSet: RuleSet
    /// Passes of each measurement.
    public var passes = 5
    /// Each pass of the reader goes over the file until it has read this many lines, and each
    /// pass of the engine replays the events until this many have gone through: a short file
    /// would otherwise time a few milliseconds of noise.
    public var linesPerPass = 300_000
    public var eventsPerPass = 1_000_000

    public init(path: String, ruleSet: RuleSet) {
        self.path = path
        self.ruleSet = ruleSet
    }

    public func run() throws -> Figures {
        var direct: [Double] = []
        var tree: [Double] = []
        var both: [Double] = []
        let events = try TraceeJSONReader.forEach(path: path, onError: { _ in }) { _ in }.events
        guard events > 0 else { throw SensorConfigurationError(description: "\(path) holds no events") }
        let rounds = max(1, linesPerPass / events)
        var last = DetectionStatistics()
        // The three alternate, so that drift on a shared machine hits them alike.
        for _ in 0..<passes {
            direct.append(
                try Self.perCore(events * rounds) {
                    for _ in 0..<rounds { try TraceeJSONReader.forEach(path: path, onError: { _ in }) { _ in } }
                })
            tree.append(
                try Self.perCore(events * rounds) {
                    for _ in 0..<rounds {
                        try TraceeJSONReader.forEach(path: path, decoding: .tree, onError: { _ in }) { _ in }
                    }
                })
            let engine = try DetectionEngine(ruleSet: ruleSet)
            both.append(
                try Self.perCore(events * rounds) {
                    for _ in 0..<rounds {
                        try TraceeJSONReader.forEach(path: path, onError: { _ in }) { engine.process($0) { _ in } }
                    }
                })
            last = engine.statistics
        }
        var decoded: [TraceEvent] = []
        decoded.reserveCapacity(events)
        try TraceeJSONReader.forEach(path: path, onError: { _ in }) { decoded.append($0) }
        var alone: [Double] = []
        let replays = max(1, eventsPerPass / decoded.count)
        for _ in 0..<passes {
            let engine = try DetectionEngine(ruleSet: ruleSet)
            alone.append(
                try Self.perCore(decoded.count * replays) {
                    decoded.withUnsafeBufferPointer { events in
                        // Borrowed in place: copying each event out of the array would time the harness.
                        for _ in 0..<replays {
                            for index in events.indices { engine.process(events[index]) { _ in } }
                        }
                    }
                })
        }
        return Figures(
            events: events, rules: ruleSet.rules.filter(\.enabled).count, readPerCore: Spread(direct),
            treeReadPerCore: Spread(tree), readAndDetectPerCore: Spread(both), enginePerCore: Spread(alone),
            evaluationsPerEvent: Double(last.evaluations) / Double(max(last.events, 1)), alerts: last.alerts,
            alertsByRule: last.alertsByRule)
    }

    /// `count` divided by the CPU time this thread spent in `work`.
    static func perCore(_ count: Int, _ work: () throws -> Void) rethrows -> Double {
        let start = threadCPUTime()
        try work()
        return Double(count) / max(threadCPUTime() - start, 1e-9)
    }

    static func threadCPUTime() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
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
        return Figures(
            samples: sorted.count, medianMicroseconds: Percentile.median(sorted),
            p99Microseconds: Percentile.nearestRank(sorted, 0.99),
            maximumMicroseconds: sorted.last ?? 0, lost: lost)
    }
}
