import ArgumentParser
import Benchmarks
import Foundation
import JSON
import LabSupport
import Lab

/// `caduceus bench overhead`: what monitoring the FHIR container costs its throughput and latency.
struct OverheadBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overhead",
        abstract:
            "FHIR throughput and p50/p99 latency with no monitor, Caduceus capturing, Caduceus detecting, auditd, strace -f, and the generated seccomp profile.",
        discussion: """
            Needs root and Docker (caduceus up, or caduceus images, builds the server image). A second process \
            (caduceus bench load) drives a fixed closed-loop load; each configuration runs --runs times, taking \
            turns within each round. Each run's throughput is divided by the unmonitored run of the same round; \
            the table prints min / median / max of those per-round ratios. The capture's goal (median >= 0.95, \
            every ratio > 0.90, at least 5 runs, no event lost) is judged on --runs runs of its own afterwards, \
            the capture and no monitor in turns of --verdict-turns seconds on one server for 2 x --verdict-seconds \
            (as --interleave), and \
            printed as "met" or "NOT met" with the reasons.

            The seccomp configuration is the server under --seccomp-profile with no monitor; every other \
            configuration's server runs under Docker's default seccomp profile.
            """)

    @Option(help: "Runs per configuration (the capture's goal needs at least 5).")
    var runs = OverheadBenchCommand.defaultRuns

    @Option(help: "Seconds of measured load per run.")
    var seconds = OverheadBenchCommand.defaultSeconds

    @Option(help: "Seconds of load before each measurement.")
    var warmup = 2.0

    @Option(
        help:
            "Unmeasured rounds of every configuration before the measured ones (their figures are printed, not counted)."
    )
    var warmupRounds = 1

    @Option(help: "Concurrent connections of the load.")
    var connections = 8

    @Option(
        name: .customLong("configuration"),
        help: "Only this configuration (repeatable): none, capture, detect, auditd, strace, seccomp.")
    var configurations: [String] = []

    @Option(help: "The seccomp profile of the seccomp configuration (docker-compose.yml's).")
    var seccompProfile = OverheadBenchCommand.defaultSeccompProfile

    @Option(help: "Write the figures as JSON here (the report's overhead.json).")
    var json: String?

    @Flag(
        help:
            "Capture against no monitor only, on one server container for every run: each round measures the two back to back, the recording attached before its run and stopped after it, order alternating."
    )
    var paired = false

    @Option(
        help:
            "Capture against no monitor only, on one server container, in turns of this many seconds within each run of 2 x --seconds: the trace paused and resumed (SIGUSR1, SIGUSR2) at every turn."
    )
    var interleave: Double?

    @Option(
        help:
            "Without --paired or --interleave: judge the capture's goal on runs of its own after the rounds, the capture and no monitor in turns of about this many seconds on one server (0: on the rounds' fresh-server runs)."
    )
    var verdictTurns = 1.0

    @Option(help: "Seconds of each side in a run of the capture's own verdict runs (the load lasts twice as long).")
    var verdictSeconds = 20.0

    func validate() throws {
        guard runs >= 1, seconds > 0, connections >= 1 else {
            throw ValidationError("--runs, --seconds and --connections must be positive")
        }
        guard (0...10).contains(warmupRounds) else { throw ValidationError("--warmup-rounds must be 0 to 10") }
        if paired && !configurations.allSatisfy({ $0 == "capture" || $0 == "none" }) {
            throw ValidationError("--paired measures the capture against no monitor only")
        }
        guard verdictSeconds > 0 else { throw ValidationError("--verdict-seconds must be positive") }
        guard verdictTurns == 0 || (verdictTurns >= 0.5 && verdictTurns <= verdictSeconds) else {
            throw ValidationError("--verdict-turns must be 0, or from 0.5 s to --verdict-seconds")
        }
        if let interleave {
            guard !paired else { throw ValidationError("--paired and --interleave are two ways: choose one") }
            guard configurations.allSatisfy({ $0 == "capture" || $0 == "none" }) else {
                throw ValidationError("--interleave measures the capture against no monitor only")
            }
            guard interleave >= 0.5, interleave <= seconds else {
                throw ValidationError("--interleave must be from 0.5 s to --seconds")
            }
            // 2 x seconds / interleave turns, an even number: as many of each side.
            let turns = seconds / interleave
            guard abs(turns - turns.rounded()) < 1e-9 else {
                throw ValidationError("--seconds must be a whole number of --interleave turns")
            }
        }
        for name in configurations where OverheadBenchmark.Configuration(rawValue: name) == nil {
            throw ValidationError(
                "no configuration '\(name)': "
                    + OverheadBenchmark.Configuration.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    func run() async throws {
        try await Self.measure(
            runs: runs, seconds: seconds, warmup: warmup, warmupRounds: warmupRounds, connections: connections,
            configurations: paired || interleave != nil
                ? [.capture] : configurations.compactMap(OverheadBenchmark.Configuration.init(rawValue:)),
            seccompProfile: seccompProfile, json: json,
            pairing: interleave.map { .interleaved(sliceSeconds: $0) } ?? (paired ? .backToBack : .freshServers),
            verdictTurnSeconds: verdictTurns > 0 ? verdictTurns : nil, verdictSeconds: verdictSeconds)
    }

    /// Five runs: the fewest the capture's goal is judged on.
    static let defaultRuns = 5
    static let defaultSeconds = 8.0
    static let defaultSeccompProfile = "profiles/caduceus-fhir.seccomp.json"

    /// Runs the benchmark and prints its table with the goal's verdict (the demo calls this too).
    /// Without `configurations`, every one; the seccomp configuration is then left out, with a
    /// note, when its profile is not there (asked for by name, its absence is an error).
    @discardableResult
    static func measure(
        runs: Int, seconds: Double, warmup: Double, warmupRounds: Int = 1, connections: Int,
        configurations: [OverheadBenchmark.Configuration], seccompProfile: String = defaultSeccompProfile,
        json: String?, pairing: OverheadBenchmark.Pairing = .freshServers, verdictTurnSeconds: Double? = 1,
        verdictSeconds: Double = 20
    ) async throws -> OverheadBenchmark {
        try DockerEngine.ensureRunning(withCompose: false) { writeStandardError("caduceus bench overhead: " + $0) }
        try ImageBuilder { writeStandardError("caduceus bench overhead: " + $0) }.buildServerImage()
        let benchmark = try OverheadBenchmark { writeStandardError("caduceus bench overhead: " + $0) }
        benchmark.runs = runs
        benchmark.seconds = seconds
        benchmark.warmupSeconds = warmup
        benchmark.warmupRounds = warmupRounds
        benchmark.connections = connections
        benchmark.seccompProfile = seccompProfile
        benchmark.pairing = pairing
        benchmark.verdictTurnSeconds = verdictTurnSeconds
        benchmark.verdictSeconds = verdictSeconds
        if configurations.isEmpty && !FileManager.default.isReadableFile(atPath: seccompProfile) {
            writeStandardError(
                "caduceus bench overhead: no seccomp profile at \(seccompProfile): the seccomp configuration is left out"
            )
            benchmark.configurations.removeAll { $0 == .seccomp }
        }
        if !configurations.isEmpty {
            // The ratios need the unmonitored runs.
            benchmark.configurations = [.none] + configurations.filter { $0 != .none }
        }
        let statisticsNote = OverheadBenchmark.bpfStatisticsNote()
        if let statisticsNote { writeStandardError("caduceus bench overhead: " + statisticsNote) }
        try await benchmark.run()
        print(benchmark.table)
        if let statisticsNote = statisticsNote ?? OverheadBenchmark.bpfStatisticsNote() { print(statisticsNote) }
        if let json {
            try JSONWriter(pretty: true).string(benchmark.json).write(toFile: json, atomically: true, encoding: .utf8)
        }
        return benchmark
    }
}

/// `caduceus bench load`: the overhead benchmark's load, in its own process.
struct LoadBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "A closed-loop FHIR load on seeded patients; prints one JSON line of figures.")

    @Option(help: "The FHIR base URL.")
    var baseURL: String

    @Option(help: "Seconds of measured load.")
    var seconds = 10.0

    @Option(help: "Seconds of load before measuring.")
    var warmup = 0.0

    @Option(help: "Concurrent connections.")
    var connections = 8

    @Option(help: "Also count the answers of each interval of this many seconds (intervalRequests, startNanoseconds).")
    var interval: Double?

    @Option(
        help:
            "A file of patient ids, one per line (made by `caduceus bench overhead`); without it, 20 patients are created first."
    )
    var patientsFile: String?

    /// Before any request: a bad --interval must not cost the warm-up first.
    func validate() throws {
        if let interval, !(interval > 0) { throw ValidationError("--interval must be more than 0 seconds") }
    }

    func run() async throws {
        let ids: [String]
        if let patientsFile {
            ids = try String(contentsOfFile: patientsFile, encoding: .utf8).split(separator: "\n").map(String.init)
        } else {
            ids = try await LoadGenerator.seed(baseURL: baseURL, patients: 20)
        }
        if warmup > 0 {
            _ = try await LoadGenerator(baseURL: baseURL, connections: connections, seconds: warmup, patientIDs: ids)
                .run()
        }
        // On stderr, which is not buffered: `bench overhead --interleave` times its turns from it.
        writeStandardError("caduceus bench load: measuring from \(MonotonicTime.nanoseconds())")
        let result = try await LoadGenerator(
            baseURL: baseURL, connections: connections, seconds: seconds, patientIDs: ids, intervalSeconds: interval
        ).run()
        print(JSONWriter().string(result.json))
    }
}
