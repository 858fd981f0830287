import Detection
import Foundation
import Lab
import LabSupport
import Sensor

/// `caduceus bench prevent`: what each enforcement mechanism costs on the call it guards and on
/// calls it does not, measured side by side in one run against the same sensor with enforcement
/// off, in a container of the testbox image, with rotating order over several rounds.
///
/// In each round every mode runs once: no sensor, the sensor with enforcement off, then each
/// mechanism alone. In each mode `behave time-*` times `calls` opens, connects and execs of a
/// guarded target and of one no rule names, from inside the container (`docker exec`), so the
/// figure is the call as the container sees it, denial included. A kill ends the process on its
/// first guarded call, so under `kernel kill` only the unguarded calls are timed.
public struct PreventionBenchmark {
    /// What guards the calls in a run.
    public enum Mode: String, CaseIterable, Sendable {
        case noSensor = "no sensor"
        case enforcementOff = "enforcement off"
        case cgroup = "denied (cgroup)"
        case fanotify = "denied (fanotify)"
        case kernelKill = "killed after the syscall (kernel)"
    }

    /// One timed call: what `behave` runs, and which mechanism guards it when it is guarded.
    public struct Call: Sendable, Hashable {
        public var name: String
        public var arguments: [String]
        public var guardedBy: EnforcementMechanism?
        /// Execs cost a fork each: fewer of them.
        public var isExec: Bool { arguments.first == "time-exec" }
    }

    public static let guardedFile = "/tmp/prevent-guarded"
    public static let guardedExecutable = "/tmp/prevent-guarded-exe"
    /// A loopback address no service uses: connects to a closed port answer ECONNREFUSED, so
    /// an allowed connect runs the whole TCP path without a listener.
    public static let guardedAddress = "127.0.0.2"

    public static let calls: [Call] = [
        Call(name: "open, guarded", arguments: ["time-open", guardedFile], guardedBy: .fanotify),
        Call(name: "open, not guarded", arguments: ["time-open", "/etc/passwd"], guardedBy: nil),
        Call(name: "exec, guarded", arguments: ["time-exec", guardedExecutable], guardedBy: .fanotify),
        Call(name: "exec, not guarded", arguments: ["time-exec", "/bin/true"], guardedBy: nil),
        Call(name: "connect, guarded", arguments: ["time-connect", guardedAddress, "9"], guardedBy: .cgroup),
        Call(name: "connect, not guarded", arguments: ["time-connect", "127.0.0.1", "9"], guardedBy: nil),
    ]

    /// The rules: one per guarded call, each `action: kill`; the mechanism is the enforcer's choice.
    public static let rules = """
        - rule: Bench prevent open
          id: BENCH-PREVENT-OPEN
          desc: An open of one file in a container.
          condition: evt.type in (open, openat) and fd.name = \(guardedFile) and container.id != host
          output: "open %fd.name"
          priority: WARNING
          action: kill
        - rule: Bench prevent exec
          id: BENCH-PREVENT-EXEC
          desc: An exec of one dropped file in a container.
          condition: evt.type = execve and proc.exepath = \(guardedExecutable) and container.id != host
          output: "exec %proc.exepath"
          priority: WARNING
          action: kill
        - rule: Bench prevent connect
          id: BENCH-PREVENT-CONNECT
          desc: A connect to one loopback address from a container.
          condition: evt.type = connect and fd.sip = \(guardedAddress) and container.id != host
          output: "connect %fd.sip"
          priority: WARNING
          action: kill
        """

    /// One measurement: nanoseconds per call, and how many of the calls were refused.
    public struct Sample: Sendable {
        public var nanosecondsPerCall: Double
        public var calls: Int
        public var refused: Int
    }

    /// A mode's figures for one call over the rounds: ns per call, and its ratio to
    /// `enforcement off` in the same round.
    public struct Figure: Sendable {
        public var mode: Mode
        public var call: Call
        public var nanoseconds: OverheadBenchmark.Spread
        public var ratioToEnforcementOff: OverheadBenchmark.Spread?
        public var refused: Int
        public var calls: Int
    }

    public var image = "caduceus-testbox:latest"
    public var rounds = 5
    public var callsPerRun = 20_000
    public var execsPerRun = 300
    /// Starts the detector for a mode (nil for no sensor); the command wires in the enforcer's
    /// mechanism choice so the benchmark stays apart from how a mechanism is selected.
    public var startDetector: (Mode, RuleSet) throws -> LiveDetector?
    public var progress: (String) -> Void = { _ in }

    public init(startDetector: @escaping (Mode, RuleSet) throws -> LiveDetector?) {
        self.startDetector = startDetector
    }

    /// Whether `call` is timed under `mode`: a kill ends `behave` at its first guarded call.
    public static func measures(_ call: Call, under mode: Mode) -> Bool {
        !(mode == .kernelKill && call.guardedBy != nil)
    }

    /// Runs every mode in every round (the order rotated each round) and returns the figures,
    /// by mode then call. Needs root, BPF and Docker with the testbox image.
    public func run() throws -> [Figure] {
        let ruleSet = try RuleSet.load([("bench-prevent.yaml", Self.rules)])
        let container = try AttackLab.docker(["run", "-d", "--network", "host", image, "/bin/sh", "-c", "sleep 100000"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? AttackLab.docker(["rm", "-f", container], check: false) }
        _ = try AttackLab.docker([
            "exec", container, "/bin/sh", "-c",
            "echo data > \(Self.guardedFile) && cp /bin/busybox \(Self.guardedExecutable) && chmod 755 \(Self.guardedExecutable)",
        ])
        var samples: [Mode: [Call: [Sample]]] = [:]
        let modes = Mode.allCases
        for round in 0..<rounds {
            for offset in 0..<modes.count {
                let mode = modes[(round + offset) % modes.count]
                progress("round \(round + 1)/\(rounds): \(mode.rawValue)")
                let detector = try startDetector(mode, ruleSet)
                // The sensor's programs and the guard's marks are in place once the detector
                // returns; a short wait lets its reader settle before timing.
                Thread.sleep(forTimeInterval: detector == nil ? 0 : 1)
                defer { _ = try? detector?.stop() }
                for call in Self.calls where Self.measures(call, under: mode) {
                    let count = call.isExec ? execsPerRun : callsPerRun
                    let output = try AttackLab.docker(
                        ["exec", container, "/usr/local/bin/behave"] + call.arguments + [String(count)])
                    guard let sample = Self.parse(output) else {
                        throw LabError("behave \(call.arguments.joined(separator: " ")) printed no timing: \(output)")
                    }
                    samples[mode, default: [:]][call, default: []].append(sample)
                }
            }
        }
        return Self.figures(samples, rounds: rounds)
    }

    /// `behave: time-open PATH calls=N ns_per_call=X refused=K errno=E` → a sample.
    static func parse(_ output: String) -> Sample? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("behave: time-") }) else {
            return nil
        }
        var fields: [String: String] = [:]
        for part in line.split(separator: " ") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let ns = fields["ns_per_call"].flatMap(Double.init), let calls = fields["calls"].flatMap(Int.init),
            let refused = fields["refused"].flatMap(Int.init)
        else { return nil }
        return Sample(nanosecondsPerCall: ns, calls: calls, refused: refused)
    }

    /// Per mode and call: the spread of ns per call, and of the per-round ratio to `enforcement off`.
    static func figures(_ samples: [Mode: [Call: [Sample]]], rounds: Int) -> [Figure] {
        var figures: [Figure] = []
        for mode in Mode.allCases {
            for call in calls {
                guard let runs = samples[mode]?[call], !runs.isEmpty else { continue }
                let baseline = samples[.enforcementOff]?[call] ?? []
                let ratios =
                    mode == .enforcementOff || baseline.count != runs.count
                    ? nil : zip(runs, baseline).map { $0.nanosecondsPerCall / max($1.nanosecondsPerCall, 0.001) }
                figures.append(
                    Figure(
                        mode: mode, call: call, nanoseconds: .init(runs.map(\.nanosecondsPerCall)),
                        ratioToEnforcementOff: ratios.map { .init($0) }, refused: runs.map(\.refused).reduce(0, +),
                        calls: runs.map(\.calls).reduce(0, +)))
            }
        }
        return figures
    }
}
