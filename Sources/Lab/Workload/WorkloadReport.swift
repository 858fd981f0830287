import FHIR
import Foundation

/// The kinds of FHIR interaction a workload counts, in the order a report lists them.
public enum InteractionKind: String, CaseIterable, Sendable {
    /// `GET /metadata`.
    case capabilities
    case create
    /// `POST` with `If-None-Exist`.
    case conditionalCreate = "conditional-create"
    case read
    case vread
    /// The first page of a search.
    case search
    /// A later page, reached by following the Bundle's `next` link.
    case searchPage = "search-page"
    /// `PUT` with `If-Match`.
    case update
    case history
    /// A transaction Bundle posted to the base URL.
    case transaction
    /// `Patient/[id]/$everything`.
    case everything = "$everything"
    case delete
}

/// What a workload run did: interactions and failures by kind, and their latency.
public struct WorkloadReport: Sendable, CustomStringConvertible {
    /// One kind's figures.
    public struct KindFigure: Sendable {
        public var kind: InteractionKind
        public var interactions: Int
        /// Interactions answered with an unexpected status or content, or not answered at all.
        public var failures: Int
        public var medianMilliseconds: Double
        public var p99Milliseconds: Double
    }

    public var baseURL: String
    /// What the run was told to do: admission rounds, a count of interactions or a duration.
    public var limit: ClinicalWorkload.Limit
    /// The admission rounds asked for; 0 for the clinical mix.
    public var rounds: Int
    /// The patients the clinical mix drew on (0 for admission rounds, which register their own).
    public var patients: Int
    public var concurrency: Int
    /// Rounds that ran every step; a failing step ends its round.
    public var completedRounds: Int
    public var elapsedSeconds: Double
    /// Whether the CapabilityStatement offered `Patient/$everything` (the rounds use it only then).
    public var everythingSupported: Bool
    /// The kinds that were exercised, in `InteractionKind` order.
    public var kinds: [KindFigure]
    /// Over all interactions.
    public var medianMilliseconds: Double
    public var p99Milliseconds: Double
    public var failureCount: Int
    /// The first failures' messages (the count is `failureCount`).
    public var failureMessages: [String]

    public var interactions: Int { kinds.reduce(0) { $0 + $1.interactions } }

    /// Every round completed and no interaction failed.
    public var succeeded: Bool { failureCount == 0 && completedRounds == rounds }

    /// Interactions of `figure`'s kind per second of the whole run (the kinds share the run's
    /// connections, so these add up to the run's rate).
    public func perSecond(_ figure: KindFigure) -> Double {
        Double(figure.interactions) / max(elapsedSeconds, 1e-9)
    }

    /// How many interactions of `kind` were sent.
    public func count(of kind: InteractionKind) -> Int {
        kinds.first { $0.kind == kind }?.interactions ?? 0
    }

    public var description: String {
        var done = "clinical mix over \(patients) patients, limit \(limit)"
        if case .rounds = limit { done = "\(completedRounds)/\(rounds) rounds completed" }
        var lines = [
            "Clinical workload against \(baseURL)",
            "\(done), concurrency \(concurrency), "
                + String(
                    format: "%.2f s, %d interactions (%.0f/s), %d failed", elapsedSeconds, interactions,
                    Double(interactions) / max(elapsedSeconds, 1e-9), failureCount),
            "Patient/$everything: "
                + (everythingSupported ? "offered by the server, exercised" : "not offered, skipped"),
            "",
            "interaction          count    per s   failed  median ms  p99 ms",
        ]
        func row(_ name: String, _ count: Int, _ failed: Int, _ median: Double, _ p99: Double) -> String {
            name.padding(toLength: 20, withPad: " ", startingAt: 0)
                + String(
                    format: " %6d  %7.1f   %6d  %9.2f  %6.2f", count, Double(count) / max(elapsedSeconds, 1e-9), failed,
                    median, p99)
        }
        for figure in kinds {
            lines.append(
                row(
                    figure.kind.rawValue, figure.interactions, figure.failures, figure.medianMilliseconds,
                    figure.p99Milliseconds))
        }
        lines.append(row("all", interactions, failureCount, medianMilliseconds, p99Milliseconds))
        if !failureMessages.isEmpty {
            lines.append("")
            lines.append(
                failureCount > failureMessages.count
                    ? "First \(failureMessages.count) of \(failureCount) failures:" : "Failures:")
            lines += failureMessages.map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

extension WorkloadReport {
    /// The report as a JSON object, for `--json`: the same figures as `description`.
    public var json: JSONValue {
        let limitMember: JSONValue
        switch limit {
        case .rounds(let rounds): limitMember = ["rounds": .number(String(rounds))]
        case .interactions(let count): limitMember = ["interactions": .number(String(count))]
        case .seconds(let seconds): limitMember = ["seconds": Self.number(seconds)]
        }
        let kindMembers: [JSONValue] = kinds.map { figure in
            [
                "kind": .string(figure.kind.rawValue), "interactions": .number(String(figure.interactions)),
                "failures": .number(String(figure.failures)), "perSecond": Self.number(perSecond(figure)),
                "medianMilliseconds": Self.number(figure.medianMilliseconds),
                "p99Milliseconds": Self.number(figure.p99Milliseconds),
            ]
        }
        return [
            "baseURL": .string(baseURL), "limit": limitMember, "patients": .number(String(patients)),
            "concurrency": .number(String(concurrency)), "completedRounds": .number(String(completedRounds)),
            "elapsedSeconds": Self.number(elapsedSeconds), "interactions": .number(String(interactions)),
            "perSecond": Self.number(Double(interactions) / max(elapsedSeconds, 1e-9)),
            "everythingSupported": .bool(everythingSupported), "medianMilliseconds": Self.number(medianMilliseconds),
            "p99Milliseconds": Self.number(p99Milliseconds), "failureCount": .number(String(failureCount)),
            "failureMessages": .array(failureMessages.map { .string($0) }), "kinds": .array(kindMembers),
        ]
    }

    /// A JSON number to three decimals (a millisecond's microseconds).
    static func number(_ value: Double) -> JSONValue {
        .number(value.isFinite ? String(format: "%.3f", value) : "0")
    }
}

/// A failure already recorded against its interaction: it ends the round without being counted again.
struct WorkloadFailure: Error, CustomStringConvertible {
    var description: String
}

/// Collects timings and failures from every worker.
final class InteractionRecorder: @unchecked Sendable {
    static let keptMessages = 50

    private let lock = NSLock()
    private var milliseconds: [InteractionKind: [Double]] = [:]
    private var failures: [InteractionKind: Int] = [:]
    private var failureCount = 0
    private var messages: [String] = []
    private var completedRounds = 0
    private var interactions = 0

    func record(_ kind: InteractionKind, milliseconds elapsed: Double) {
        lock.lock()
        milliseconds[kind, default: []].append(elapsed)
        interactions += 1
        lock.unlock()
    }

    /// Counts a failure of the interaction of `kind` just recorded, and returns the error
    /// that ends the round.
    func fail(_ kind: InteractionKind, _ message: String) -> WorkloadFailure {
        lock.lock()
        failures[kind, default: 0] += 1
        failureCount += 1
        if messages.count < Self.keptMessages { messages.append("\(kind.rawValue): \(message)") }
        lock.unlock()
        return WorkloadFailure(description: message)
    }

    /// A round or step ended by something other than a recorded interaction (a bug in the
    /// workload itself); `context` says which.
    func abort(_ context: String, _ error: any Error) {
        lock.lock()
        failureCount += 1
        if messages.count < Self.keptMessages { messages.append("\(context): \(error)") }
        lock.unlock()
    }

    /// Interactions and failures so far.
    func progress(since start: ContinuousClock.Instant, finished: Bool) -> WorkloadProgress {
        lock.lock()
        defer { lock.unlock() }
        return WorkloadProgress(
            elapsedSeconds: FHIRHTTPSession.milliseconds(since: start) / 1000, interactions: interactions,
            failures: failureCount, finished: finished)
    }

    func completeRound() {
        lock.lock()
        completedRounds += 1
        lock.unlock()
    }

    func report(
        baseURL: String, limit: ClinicalWorkload.Limit, patients: Int, concurrency: Int, elapsedSeconds: Double,
        everythingSupported: Bool
    ) -> WorkloadReport {
        lock.lock()
        defer { lock.unlock() }
        let kinds = InteractionKind.allCases.compactMap { kind -> WorkloadReport.KindFigure? in
            guard let times = milliseconds[kind], !times.isEmpty else { return nil }
            let (median, p99) = Self.percentiles(times)
            return WorkloadReport.KindFigure(
                kind: kind, interactions: times.count, failures: failures[kind] ?? 0, medianMilliseconds: median,
                p99Milliseconds: p99)
        }
        let (median, p99) = Self.percentiles(milliseconds.values.flatMap { $0 })
        return WorkloadReport(
            baseURL: baseURL, limit: limit, rounds: { if case .rounds(let n) = limit { n } else { 0 } }(),
            patients: patients, concurrency: concurrency, completedRounds: completedRounds,
            elapsedSeconds: elapsedSeconds, everythingSupported: everythingSupported, kinds: kinds,
            medianMilliseconds: median, p99Milliseconds: p99, failureCount: failureCount, failureMessages: messages)
    }

    /// Median and 99th percentile (nearest rank), 0 for no samples.
    static func percentiles(_ samples: [Double]) -> (median: Double, p99: Double) {
        guard !samples.isEmpty else { return (0, 0) }
        let sorted = samples.sorted()
        let rank = Int((Double(sorted.count) * 0.99).rounded(.up)) - 1
        return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, max(0, rank))])
    }
}
