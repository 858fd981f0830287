import ArgumentParser
import Benchmarks
import Foundation

/// `caduceus bench auth`: FHIR throughput with access control and audit on, as a ratio to
/// the same server with both off, measured side by side in alternating rounds (``AuthBenchmark``).
struct AuthBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract:
            "FHIR throughput with SMART bearer tokens and an AuditEvent per request, as a ratio to both off (in-process router, SQLite)."
    )

    @Option(help: "Alternating rounds (each configuration runs once per round).")
    var rounds = 5

    @Option(help: "Seconds each configuration runs in a round.")
    var seconds = 3.0

    @Option(help: "Concurrent in-process clients.")
    var concurrency = 4

    @Option(help: "Seeded patients (3 Observations each).")
    var patients = 50

    func run() async throws {
        let benchmark = AuthBenchmark(rounds: rounds, seconds: seconds, concurrency: concurrency, patients: patients)
        let figures = try await benchmark.run { print("(\($0))") }
        print(
            "\(benchmark.rounds) alternating rounds x \(benchmark.seconds) s per configuration, \(benchmark.concurrency) in-process clients, SQLite, \(benchmark.patients) patients"
        )
        print("mix: \(AuthBenchmark.mix)")
        print(
            "configuration".padding(toLength: 30, withPad: " ", startingAt: 0)
                + "requests/s   errors   ratio to off   per round (min / median / max)")
        guard let base = figures.first else { return }
        for figure in figures {
            let spread = figure.ratios(to: base).map {
                String(format: "%.3f / %.3f / %.3f", $0.low, $0.median, $0.high)
            }
            print(
                figure.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                    + String(
                        format: "%-13.0f%-9d%-15.3f", figure.requestsPerSecond, figure.errors,
                        base.requestsPerSecond > 0 ? figure.requestsPerSecond / base.requestsPerSecond : 0)
                    + (spread ?? ""))
            if let firstError = figure.firstError { print("  first error: \(firstError)") }
        }
    }
}
