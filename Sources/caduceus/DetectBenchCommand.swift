import ArgumentParser
import Detection
import Foundation
import Lab

/// `caduceus bench detect`: the engine's throughput on a recorded trace beside merely
/// reading it, and (with --live) the delay from kernel event to alert.
struct DetectBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Rule engine throughput on a recorded trace (vs parsing alone), and live event-to-alert delay.",
        discussion: "Scripts/bench.sh detect records a trace of the FHIR container under its workload and runs both.")

    @Option(help: "A recorded trace (Tracee JSON lines).")
    var events: String?

    @Flag(help: "Measure the live event-to-alert delay (root, Docker with the testbox image).")
    var live = false

    @Option(help: "Repetitions of the behaviour in the live run.")
    var repetitions = 2000

    @OptionGroup var rules: RuleOptions

    func run() throws {
        let ruleSet = try rules.load()
        if let events {
            let figures = try DetectionBenchmark(path: events, ruleSet: ruleSet).run()
            print("Rule engine on \(events): \(figures.events) events, \(figures.rules) rules, median of 3 passes")
            print(String(format: "  read + decode only:           %10.0f events/s", figures.parsePerSecond))
            print(String(format: "  read + decode + all rules:    %10.0f events/s  (ratio %.2f)", figures.parseAndDetectPerSecond, figures.parseAndDetectPerSecond / figures.parsePerSecond))
            print(String(format: "  engine alone (in memory):     %10.0f events/s on one core (median of 5 passes of at least 1M events)", figures.detectPerSecond))
            print(String(format: "  rule evaluations per event:   %10.2f (event-type index)", figures.evaluationsPerEvent))
            let byRule = figures.alertsByRule.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("  alerts: \(figures.alerts)" + (byRule.isEmpty ? "" : " (\(byRule))"))
        }
        if live {
            var benchmark = AlertDelayBenchmark(ruleSet: ruleSet)
            benchmark.repetitions = repetitions
            let figures = try benchmark.run()
            print("Live event-to-alert delay (\(figures.samples) alerts from \(repetitions) reads of /etc/shadow in a container)")
            print(String(format: "  median %.0f µs, p99 %.0f µs, max %.0f µs; %llu events lost", figures.medianMicroseconds, figures.p99Microseconds, figures.maximumMicroseconds, figures.lost))
        }
        if events == nil && !live { throw ValidationError("give --events FILE, --live, or both") }
    }
}
