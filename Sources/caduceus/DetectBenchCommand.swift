import ArgumentParser
import Benchmarks
import Detection
import Foundation

/// `caduceus bench detect`: the engine's throughput on a recorded trace beside merely
/// reading it, and (with --live) the delay from kernel event to alert.
struct DetectBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Reader and rule engine throughput per core on a recorded trace, and live event-to-alert delay.",
        discussion:
            "Scripts/benchmarks/bench.sh detect records a trace of the FHIR container under its workload and runs both."
    )

    @Option(help: "A recorded trace (Tracee JSON lines).")
    var events: String?

    @Flag(help: "Measure the live event-to-alert delay (root, Docker with the testbox image).")
    var live = false

    @Option(help: "Passes of each throughput measurement (the output gives their min-max).")
    var passes = 5

    @Option(help: "Repetitions of the behaviour in the live run.")
    var repetitions = 2000

    @OptionGroup var rules: RuleOptions

    func run() throws {
        let ruleSet = try rules.load()
        if let events {
            var benchmark = DetectionBenchmark(path: events, ruleSet: ruleSet)
            benchmark.passes = passes
            let figures = try benchmark.run()
            let goal = DetectionBenchmark.goal
            func range(_ spread: DetectionBenchmark.Spread, _ unit: String) -> String {
                String(format: "%9.0f-%9.0f ", spread.minimum, spread.maximum) + unit
                    + String(format: "/s per core (median %.0f)", spread.median)
            }
            print(
                "Reader and rule engine on \(events): \(figures.events) events, \(figures.rules) rules; \(passes) passes each, min-max"
            )
            print("  (per core: per second of the measuring thread's CPU time)")
            print(
                "  read + decode (direct decoder):  \(range(figures.readPerCore, "lines"))  goal 1M: \(figures.readPerCore.verdict(goal: goal))"
            )
            print("  read + decode (tree parser):     \(range(figures.treeReadPerCore, "lines"))  reference")
            print(
                String(
                    format: "  direct / tree, medians:          %.1fx",
                    figures.readPerCore.median / figures.treeReadPerCore.median))
            print("  read + decode + all rules:       \(range(figures.readAndDetectPerCore, "lines"))")
            print(
                "  engine alone (in memory):        \(range(figures.enginePerCore, "events"))  goal 1M: \(figures.enginePerCore.verdict(goal: goal))"
            )
            print(
                String(
                    format: "  rule evaluations per event:      %.2f (event-type index)", figures.evaluationsPerEvent))
            let byRule = figures.alertsByRule.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                separator: ", ")
            print("  alerts in one pass: \(figures.alerts)" + (byRule.isEmpty ? "" : " (\(byRule))"))
        }
        if live {
            var benchmark = AlertDelayBenchmark(ruleSet: ruleSet)
            benchmark.repetitions = repetitions
            let figures = try benchmark.run()
            print(
                "Live event-to-alert delay (\(figures.samples) alerts from \(repetitions) reads of /etc/shadow in a container)"
            )
            print(
                String(
                    format: "  median %.0f µs, p99 %.0f µs, max %.0f µs; %llu events lost", figures.medianMicroseconds,
                    figures.p99Microseconds, figures.maximumMicroseconds, figures.lost))
        }
        if events == nil && !live { throw ValidationError("give --events FILE, --live, or both") }
    }
}
