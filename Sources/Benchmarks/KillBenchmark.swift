import Detection
import Foundation
import LabSupport
import Sensor

/// Time from a syscall that matched an `action: kill` rule to the process's death, enforced in
/// the kernel against enforced from user space, alternating (`caduceus bench kill`). Needs root
/// and Docker with the testbox image. In one container a subshell opens /tmp/kill-kernel (a
/// rule the kernel evaluates) or /tmp/kill-user (the same rule plus proc.pname, which only user
/// space can evaluate), alternating, then sleeps. Both times come from the sensor's own events:
/// the openat record (at the syscall's return) and the process's sched_process_exit.
public struct KillBenchmark: Sendable {
    /// Opens of each kind.
    public var count: Int
    /// The container image (busybox sh).
    public var image: String

    /// A run of `count` opens of each kind (1 to 100,000) in containers of `image`.
    public init(count: Int = 100, image: String = "caduceus-testbox:latest") {
        self.count = min(max(1, count), 100_000)
        self.image = image
    }

    /// The two rules: the same open, one the kernel can decide and one only user space can.
    public static let rules = """
        - rule: Kernel-enforced open
          id: BENCH-KERNEL
          desc: fd.name and the container, so the kernel decides.
          condition: evt.type in (open, openat) and fd.name = /tmp/kill-kernel and container.id != host
          output: "open %fd.name"
          priority: WARNING
          action: kill
        - rule: User-space-enforced open
          id: BENCH-USER
          desc: proc.pname is known only to user space.
          condition: evt.type in (open, openat) and fd.name = /tmp/kill-user and container.id != host and proc.pname exists
          output: "open %fd.name"
          priority: WARNING
          action: kill
        """

    /// The syscall-to-kill times, in microseconds, of the opens whose process died of SIGKILL.
    public struct Figures: Sendable {
        /// Kernel enforcement (bpf_send_signal at sys_enter).
        public var kernel: [Double] = []
        /// User-space enforcement (kill(2) when the alert fires).
        public var user: [Double] = []
        /// Kernel-rule opens whose process was not killed by SIGKILL.
        public var kernelSurvived = 0
        /// User-space-rule opens whose process was not killed by SIGKILL.
        public var userSurvived = 0
        /// The alerts' enforcement actions, counted ("none" for an alert without one).
        public var actions: [String: Int]

        /// The median and 99th percentile of `values` (0 and 0 for none).
        public static func medianAndP99(_ values: [Double]) -> (median: Double, p99: Double) {
            let sorted = values.sorted()
            return (Percentile.median(sorted), Percentile.nearestRank(sorted, 0.99))
        }
    }

    /// What the reading thread saw: the opens, the deaths, and (as the pipeline's output) the alerts' actions.
    final class Samples: AlertSink, @unchecked Sendable {
        var opened: [UInt32: (timestamp: UInt64, kernel: Bool)] = [:]
        var deaths: [UInt32: (timestamp: UInt64, signal: Int64)] = [:]
        var actions: [String: Int] = [:]

        func write(_ alert: Alert) { actions[alert.action ?? "none", default: 0] += 1 }
        func finish() -> [String] { [] }
    }

    /// Runs the container and the sensor until every open was made; `progress` hears what runs.
    /// Throws `LabError` when the rules, Docker or the sensor fail.
    public func run(progress: (String) -> Void = { _ in }) throws -> Figures {
        let count = self.count
        let ruleSet: RuleSet
        do {
            ruleSet = try RuleSet.load([("bench-kill.yaml", Self.rules)])
        } catch let error as RuleError { throw LabError("\(error)") }
        let samples = Samples()
        let pipeline = try DetectionPipeline(
            ruleSet: ruleSet, options: DetectionPipelineOptions(enforcement: EnforcementOptions(all: true)),
            outputs: [samples])
        guard let enforcer = pipeline.enforcer, enforcer.killPatterns.count == 2,
            enforcer.enforced["BENCH-USER"] == .some(nil)
        else {
            throw LabError(
                "the bench's rules did not split into kernel and user space: \(pipeline.enforcer?.summary ?? [])")
        }

        // The container waits for the sensor, then opens each file `count` times, alternating.
        let script = """
            touch /tmp/kill-kernel /tmp/kill-user; sleep 3; i=0
            while [ $i -lt \(count) ]; do
              ( : < /tmp/kill-kernel; sleep 1 ); ( : < /tmp/kill-user; sleep 1 ); i=$((i+1))
            done
            """
        let (status, output) = ProcessRunner.run([
            "docker", "run", "-d", "--network", "none", image, "/bin/sh", "-c", script,
        ])
        guard status == 0 else { throw LabError("docker run failed: \(output)") }
        let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = ProcessRunner.run(["docker", "rm", "-f", id]) }

        try pipeline.startSensor(SensorConfiguration())
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? pipeline.run { event in
                guard event.containerId == id else { return }
                if event.eventName == "openat" || event.eventName == "open",
                    let path = event[argument: "pathname"]?.string,
                    path == "/tmp/kill-kernel" || path == "/tmp/kill-user"
                {
                    samples.opened[event.hostProcessId] = (event.timestamp, path == "/tmp/kill-kernel")
                } else if event.eventName == "sched_process_exit", event.hostThreadId == event.hostProcessId {
                    samples.deaths[event.hostProcessId] = (event.timestamp, event[argument: "signal"]?.integer ?? 0)
                }
            }
            done.signal()
        }
        progress("\(count) opens of each kind in container \(id.prefix(12))")
        _ = ProcessRunner.run(["timeout", String(count * 3 + 60), "docker", "wait", id])
        Thread.sleep(forTimeInterval: 0.5)
        pipeline.stop()
        done.wait()

        var figures = Figures(actions: samples.actions)
        for (pid, open) in samples.opened {
            guard let death = samples.deaths[pid], death.signal == 9 else {
                if open.kernel { figures.kernelSurvived += 1 } else { figures.userSurvived += 1 }
                continue
            }
            let micros = Double(Int64(death.timestamp) - Int64(open.timestamp)) / 1000
            if open.kernel { figures.kernel.append(micros) } else { figures.user.append(micros) }
        }
        return figures
    }
}
