import ArgumentParser
import Benchmarks
import Detection
import Foundation
import Lab
import Sensor

/// `caduceus bench prevent`: the cost of each enforcement mechanism on the call it guards and on
/// calls it does not, as ratios to the same sensor with enforcement off, measured in one run.
struct PreventBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prevent",
        abstract:
            "Per-call cost of fanotify and cgroup denial and of the kernel kill, against enforcement off, side by side.",
        discussion: """
            Needs root, BPF and Docker with the testbox image (Scripts/docker.sh testbox). One container
            runs `behave time-open|time-exec|time-connect` for a guarded target (a file, a dropped
            executable, 127.0.0.2) and one no rule names, under: no sensor; the sensor with enforcement
            off; fanotify refusing the open and exec rules; cgroup programs refusing the connect rule; and
            kills at the syscall's entry (fanotify and cgroup denial off). The order of the modes rotates
            each round; each ratio is per round against enforcement off, reported as median [min-max].
              caduceus bench prevent --rounds 5 --calls 20000
            """)

    @Option(help: "Rounds; each runs every mode once.")
    var rounds = 5

    @Option(help: "Opens and connects timed per mode and round (execs: --execs).")
    var calls = 20_000

    @Option(help: "Execs timed per mode and round (each forks).")
    var execs = 300

    @Option(help: "The container image (busybox sh and behave).")
    var image = "caduceus-testbox:latest"

    func run() throws {
        guard geteuid() == 0 else {
            throw CommandFailure("bench prevent needs root (the sensor, fanotify, cgroup programs)")
        }
        guard rounds >= 1, calls >= 1, execs >= 1 else {
            throw ValidationError("--rounds, --calls and --execs must be at least 1")
        }
        var benchmark = PreventionBenchmark(startDetector: Self.detector)
        benchmark.image = image
        benchmark.rounds = rounds
        benchmark.callsPerRun = calls
        benchmark.execsPerRun = execs
        benchmark.progress = { writeStandardError("caduceus bench prevent: " + $0) }
        let figures = try benchmark.run()
        print(
            "Per-call cost in a container, \(rounds) rounds, \(calls) opens and connects and \(execs) execs per mode and round;"
        )
        print("ratio = ns per call / ns per call with enforcement off in the same round, median [min-max]")
        for call in PreventionBenchmark.calls {
            print("\(call.name):")
            for figure in figures where figure.call == call {
                var line = "  " + figure.mode.rawValue.padding(toLength: 34, withPad: " ", startingAt: 0)
                line += String(
                    format: " %9.0f ns [%.0f-%.0f]", figure.nanoseconds.median, figure.nanoseconds.min,
                    figure.nanoseconds.max)
                if let ratio = figure.ratioToEnforcementOff {
                    line += String(format: "  ratio %.2f [%.2f-%.2f]", ratio.median, ratio.min, ratio.max)
                }
                line += "  refused \(figure.refused)/\(figure.calls)"
                print(line)
            }
        }
        // A mechanism that refused nothing of its own guarded call measured something else.
        for figure in figures
        where figure.call.guardedBy.map({ $0.actionText == figure.mode.rawValue }) == true
            && figure.refused != figure.calls
        {
            throw CommandFailure(
                "\(figure.mode.rawValue) refused \(figure.refused) of \(figure.calls) '\(figure.call.name)' calls: not all"
            )
        }
    }

    /// The detector of a mode, checked to use the mechanism the mode names.
    static func detector(_ mode: PreventionBenchmark.Mode, _ ruleSet: RuleSet) throws -> LiveDetector? {
        let open = ["BENCH-PREVENT-OPEN", "BENCH-PREVENT-EXEC"], connect = ["BENCH-PREVENT-CONNECT"]
        let detector: LiveDetector
        let expected: [String: EnforcementMechanism]
        switch mode {
        case .noSensor:
            return nil
        case .enforcementOff:
            return try LiveDetector(ruleSet: ruleSet)
        case .fanotify:
            detector = try LiveDetector(
                ruleSet: ruleSet, enforcement: EnforcementOptions(rules: open), fanotify: FanotifyGuardOptions())
            expected = Dictionary(uniqueKeysWithValues: open.map { ($0, .fanotify) })
        case .cgroup:
            detector = try LiveDetector(ruleSet: ruleSet, enforcement: EnforcementOptions(rules: connect))
            expected = [connect[0]: .cgroup]
        case .kernelKill:
            detector = try LiveDetector(
                ruleSet: ruleSet, enforcement: EnforcementOptions(all: true), refusesSocketCalls: false)
            expected = Dictionary(uniqueKeysWithValues: (open + connect).map { ($0, .kernelKill) })
        }
        for (rule, mechanism) in expected where detector.enforcer?.mechanism(for: rule) != mechanism {
            _ = try? detector.stop()
            throw CommandFailure(
                "\(mode.rawValue): \(rule) is enforced by \(detector.enforcer?.mechanism(for: rule)?.rawValue ?? "nothing"), not \(mechanism.rawValue)"
            )
        }
        return detector
    }
}
