import ArgumentParser
import Benchmarks
import Foundation
import Lab
import LabReport
import LabSupport

/// `caduceus demo`: everything, in order, on one machine: the deployment up, patients loaded and
/// the clinical workload run, the attack lab played under detection, the overhead measured, the
/// event summary, the alerts and the matrix printed, and the report written.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Deploy, load, attack, measure and report: the whole of Caduceus in one run.",
        discussion: """
            Needs root (it installs Docker, docker-compose and auditd when missing). Results go to --results:
            events.json (the FHIR container's syscalls), alerts.json (the deployed sensor's alerts),
            workload.json, matrix.json, overhead.json, and report.html with report.json. Without a Docker
            engine it says so and runs the server as a host process with the workload only.
            """)

    @OptionGroup var stackOptions: StackOptions

    @Flag(help: "Store resources in PostgreSQL (its own container) instead of SQLite.")
    var postgres = false

    @Option(help: "Synthea bundles to load (the directory's first --synthea-patients).")
    var synthea = "../shared/fhir/synthea"

    @Option(help: "Synthea patients to load.")
    var syntheaPatients = 10

    @Option(help: "Generated patients to load.")
    var generatedPatients = 40

    @Option(help: "Seconds of clinical workload.")
    var workloadSeconds = 60.0

    @Option(help: "Runs per configuration of the overhead benchmark (0 skips it; the capture's goal needs at least 5).")
    var benchRuns = OverheadBenchCommand.defaultRuns

    @Option(help: "Seconds of load per overhead run.")
    var benchSeconds = OverheadBenchCommand.defaultSeconds

    @Flag(help: "Leave the deployment running at the end (default: caduceus down, data kept).")
    var keepRunning = false

    @Flag(
        help:
            "Do without Docker: the server as a host process, the workload and the report only (what happens when no engine can be had)."
    )
    var hostOnly = false

    func run() async throws {
        let results = URL(fileURLWithPath: stackOptions.results).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        // A new run's files: the sensor appends alerts, and the report must not mix runs.
        for name in [
            "alerts.json", "events.json", "workload.json", "matrix.json", "overhead.json", "report.html", "report.json",
        ] {
            try? FileManager.default.removeItem(atPath: results + "/" + name)
        }
        let progress = DemoProgress()
        progress.step("Docker engine")
        do {
            if hostOnly { throw LabError("--host-only") }
            try DockerEngine.ensureRunning { progress.note($0) }
        } catch {
            progress.note("no Docker engine (\(error)): running the FHIR server as a host process, the workload only")
            try await runOnHost(results: results, progress: progress)
            return
        }
        let stack = stackOptions.stack(postgres: postgres)
        progress.step("deployment: images, FHIR server (\(postgres ? "PostgreSQL" : "SQLite")), sensor, recorder")
        try await stack.up(progress: { progress.note($0) })
        var stopped = false
        defer { if !stopped && !keepRunning { try? stack.down() } }

        progress.step("patients and the clinical workload (\(Int(workloadSeconds)) s)")
        try await runWorkload(baseURL: stack.baseURL, results: results)

        progress.step("attack lab under detection")
        let lab = try LabAttackCommand.parse([
            "--container", Stack.serverContainer, "--base-url", stack.baseURL, "--json", results + "/matrix.json",
        ])
        try await lab.run()

        progress.step("stopping the sensor and the recorder (their files complete)")
        try stack.stopSensors()

        if benchRuns > 0 {
            progress.step(
                "overhead: \(benchRuns) run\(benchRuns == 1 ? "" : "s") x \(OverheadBenchmark.Configuration.allCases.count) configurations x \(String(format: "%g", benchSeconds)) s"
            )
            try await OverheadBenchCommand.measure(
                runs: benchRuns, seconds: benchSeconds, warmup: 2, connections: 8, configurations: [],
                seccompProfile: Stack.seccompProfile(composeFile: stackOptions.composeFile),
                json: results + "/overhead.json")
        }

        progress.step("summary")
        // One pass over the results serves the printed summary and the report.
        let figures = try ReportCommand.load(from: results)
        printSummary(figures)
        try ReportCommand.write(figures, htmlPath: results + "/report.html")
        if keepRunning {
            progress.note(
                "the server still answers on \(stack.baseURL); the sensors are stopped (caduceus up restarts them); caduceus down stops it all"
            )
        } else {
            try stack.down()
            stopped = true
            progress.note("deployment stopped (data kept: caduceus down --volumes --images removes everything)")
        }
        progress.done()
    }

    func runWorkload(baseURL: String, results: String) async throws {
        var arguments = [
            "--base-url", baseURL, "--generate", String(generatedPatients), "--duration", String(workloadSeconds),
            "--json", results + "/workload.json",
        ]
        if FileManager.default.fileExists(atPath: synthea) {
            arguments += ["--synthea", synthea, "--patients", String(syntheaPatients)]
        } else {
            writeStandardError("caduceus demo: no Synthea bundles at \(synthea): generated patients only")
        }
        let workload = try WorkloadCommand.parse(arguments)
        try await workload.run()
    }

    /// Without Docker: the server as a child process on 127.0.0.1, the workload, the report.
    func runOnHost(results: String, progress: DemoProgress) async throws {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: ImageBuilder.currentExecutable)
        server.arguments = [
            "serve", "--host", "127.0.0.1", "--port", String(stackOptions.fhirPort), "--database",
            results + "/fhir.sqlite", "--log-level", "warning",
        ]
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        let baseURL = "http://127.0.0.1:\(stackOptions.fhirPort)/fhir-server/api/v4"
        progress.step("FHIR server on the host: \(baseURL)")
        for _ in 0..<60 where !(await Stack.answers(baseURL + "/metadata")) {
            try await Task.sleep(for: .milliseconds(500))
        }
        progress.step("patients and the clinical workload (\(Int(workloadSeconds)) s)")
        try await runWorkload(baseURL: baseURL, results: results)
        progress.note("the attack lab, the sensor and the overhead benchmark need Docker: not run")
        try ReportCommand.write(ReportCommand.load(from: results), htmlPath: results + "/report.html")
        progress.done()
    }

    /// The recorded events per name (the seed project's `jq | awk` count) and the deployed
    /// sensor's alerts per rule, from the report's figures.
    func printSummary(_ figures: ReportData) {
        print(
            "\nEvents of the FHIR container in trace's default set (Tracee v0.6's), recorded by caduceus-recorder (\(figures.resultsDirectory)/events.json):"
        )
        if let events = figures.events {
            print(SummaryCommand.table(Array(events.countsByName.prefix(25))))
            if events.countsByName.count > 25 { print("... \(events.countsByName.count - 25) more event names") }
        } else {
            print("  (no events file)")
        }
        print("\nAlerts raised by the deployed sensor (caduceus-sensor, \(figures.resultsDirectory)/alerts.json):")
        for rule in figures.alerts?.byRule.sorted(by: { $0.ruleId < $1.ruleId }) ?? [] {
            print(
                "  \(String(rule.count).padding(toLength: 6, withPad: " ", startingAt: 0)) \(rule.ruleId) \(rule.rule)")
        }
        print("  \(figures.alerts?.total ?? 0) alerts in all\n")
        // The overhead's verdicts again, last, where a reader of the demo looks for them.
        for configuration in figures.overhead?.configurations ?? [] {
            guard let goal = configuration.goal, let verdict = configuration.verdict else { continue }
            let method = configuration.verdictMethod.map { " (\($0))" } ?? ""
            print("Overhead goal, \(configuration.label): \(goal)\(method): \(verdict.text)")
        }
    }
}

/// The demo's progress: numbered steps with the time since the start.
final class DemoProgress {
    let start = ContinuousClock.now
    var number = 0

    var elapsed: String {
        let seconds = start.duration(to: .now).components.seconds
        return String(format: "%02d:%02d", seconds / 60, seconds % 60)
    }

    func step(_ text: String) {
        number += 1
        writeStandardError("\n[\(elapsed)] caduceus demo: step \(number): \(text)")
    }

    func note(_ text: String) { writeStandardError("[\(elapsed)]   \(text)") }

    func done() { writeStandardError("[\(elapsed)] caduceus demo: done") }
}
