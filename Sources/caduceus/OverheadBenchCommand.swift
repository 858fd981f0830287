import ArgumentParser
import Foundation
import JSON
import Lab

/// `caduceus bench overhead`: what monitoring the FHIR container costs its throughput and latency.
struct OverheadBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overhead",
        abstract: "FHIR throughput and p50/p99 latency with no monitor, Caduceus capturing, Caduceus detecting, auditd and strace -f.",
        discussion: """
            Needs root and Docker (caduceus up, or caduceus images, builds the server image). A second process
            (caduceus bench load) drives a fixed closed-loop load; each configuration runs --runs times, taking
            turns, and is printed as a ratio to the unmonitored throughput with min / median / max.
            """)

    @Option(help: "Runs per configuration.")
    var runs = 3

    @Option(help: "Seconds of measured load per run.")
    var seconds = 10.0

    @Option(help: "Seconds of load before each measurement.")
    var warmup = 2.0

    @Option(help: "Concurrent connections of the load.")
    var connections = 8

    @Option(name: .customLong("configuration"), help: "Only this configuration (repeatable): none, capture, detect, auditd, strace.")
    var configurations: [String] = []

    @Option(help: "Write the figures as JSON here (the report's overhead.json).")
    var json: String?

    func validate() throws {
        guard runs >= 1, seconds > 0, connections >= 1 else { throw ValidationError("--runs, --seconds and --connections must be positive") }
        for name in configurations where OverheadBenchmark.Configuration(rawValue: name) == nil {
            throw ValidationError("no configuration '\(name)': none, capture, detect, auditd, strace")
        }
    }

    func run() async throws {
        try await Self.measure(runs: runs, seconds: seconds, warmup: warmup, connections: connections,
                               configurations: configurations.compactMap(OverheadBenchmark.Configuration.init(rawValue:)), json: json)
    }

    /// Runs the benchmark and prints its table (the demo calls this too).
    @discardableResult
    static func measure(runs: Int, seconds: Double, warmup: Double, connections: Int,
                        configurations: [OverheadBenchmark.Configuration], json: String?) async throws -> OverheadBenchmark {
        try DockerEngine.ensureRunning(withCompose: false) { writeStandardError("caduceus bench overhead: " + $0) }
        try ImageBuilder { writeStandardError("caduceus bench overhead: " + $0) }.buildServerImage()
        let benchmark = try OverheadBenchmark { writeStandardError("caduceus bench overhead: " + $0) }
        benchmark.runs = runs
        benchmark.seconds = seconds
        benchmark.warmupSeconds = warmup
        benchmark.connections = connections
        if !configurations.isEmpty {
            // The ratios need the unmonitored runs.
            benchmark.configurations = [.none] + configurations.filter { $0 != .none }
        }
        try await benchmark.run()
        print(benchmark.table)
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

    @Option(help: "A file of patient ids, one per line (made by `caduceus bench overhead`); without it, 20 patients are created first.")
    var patientsFile: String?

    func run() async throws {
        let ids: [String]
        if let patientsFile {
            ids = try String(contentsOfFile: patientsFile, encoding: .utf8).split(separator: "\n").map(String.init)
        } else {
            ids = try await LoadGenerator.seed(baseURL: baseURL, patients: 20)
        }
        if warmup > 0 {
            _ = try await LoadGenerator(baseURL: baseURL, connections: connections, seconds: warmup, patientIDs: ids).run()
        }
        let result = try await LoadGenerator(baseURL: baseURL, connections: connections, seconds: seconds, patientIDs: ids).run()
        print(JSONWriter().string(result.json))
    }
}
