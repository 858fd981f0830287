import ArgumentParser
import Detection
import Foundation
import Lab
import Sensor

/// `caduceus bench kill`: time from a syscall that matched an `action: kill` rule to the
/// process's death, enforced in the kernel against enforced from user space, alternating.
struct KillBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Syscall-to-kill time: kernel enforcement (bpf_send_signal) against user space (kill(2) when the alert fires).",
        discussion: """
            Needs root and Docker with the testbox image (Scripts/docker.sh testbox). In one container a
            subshell opens /tmp/kill-kernel (a rule the kernel evaluates) or /tmp/kill-user (the same
            rule plus proc.pname, which only user space can evaluate), alternating, then sleeps. Both
            times come from the sensor's own events: the openat record (at the syscall's return) and
            the process's sched_process_exit.
              caduceus bench kill --count 200
            """)

    @Option(help: "Opens of each kind.")
    var count = 100

    @Option(help: "The container image (busybox sh).")
    var image = "caduceus-testbox:latest"

    static let rules = """
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

    /// What the reading thread saw: the opens, the deaths, and (as the pipeline's output) the alerts' actions.
    final class Samples: AlertSink, @unchecked Sendable {
        var opened: [UInt32: (timestamp: UInt64, kernel: Bool)] = [:]
        var deaths: [UInt32: (timestamp: UInt64, signal: Int64)] = [:]
        var actions: [String: Int] = [:]

        func write(_ alert: Alert) { actions[alert.action ?? "none", default: 0] += 1 }
        func finish() -> [String] { [] }
    }

    func run() throws {
        guard geteuid() == 0 else { throw CommandFailure("bench kill needs root (the sensor)") }
        let ruleSet: RuleSet
        do {
            ruleSet = try RuleSet.load([("bench-kill.yaml", Self.rules)])
        } catch let error as RuleError { throw CommandFailure("\(error)") }
        let samples = Samples()
        let pipeline = try DetectionPipeline(
            ruleSet: ruleSet, options: DetectionPipelineOptions(enforcement: EnforcementOptions(all: true)), outputs: [samples])
        guard let enforcer = pipeline.enforcer, enforcer.killPatterns.count == 2, enforcer.enforced["BENCH-USER"] == .some(nil) else {
            throw CommandFailure("the bench's rules did not split into kernel and user space: \(pipeline.enforcer?.summary ?? [])")
        }

        // The container waits for the sensor, then opens each file `count` times, alternating.
        let script = """
            touch /tmp/kill-kernel /tmp/kill-user; sleep 3; i=0
            while [ $i -lt \(count) ]; do
              ( : < /tmp/kill-kernel; sleep 1 ); ( : < /tmp/kill-user; sleep 1 ); i=$((i+1))
            done
            """
        let (status, output) = ProcessRunner.run(["docker", "run", "-d", "--network", "none", image, "/bin/sh", "-c", script])
        guard status == 0 else { throw CommandFailure("docker run failed: \(output)") }
        let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = ProcessRunner.run(["docker", "rm", "-f", id]) }

        try pipeline.startSensor(SensorConfiguration())
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? pipeline.run { event in
                guard event.containerId == id else { return }
                if event.eventName == "openat" || event.eventName == "open", let path = event[argument: "pathname"]?.string,
                    path == "/tmp/kill-kernel" || path == "/tmp/kill-user"
                {
                    samples.opened[event.hostProcessId] = (event.timestamp, path == "/tmp/kill-kernel")
                } else if event.eventName == "sched_process_exit", event.hostThreadId == event.hostProcessId {
                    samples.deaths[event.hostProcessId] = (event.timestamp, event[argument: "signal"]?.integer ?? 0)
                }
            }
            done.signal()
        }
        writeStandardError("caduceus bench kill: \(count) opens of each kind in container \(id.prefix(12))")
        _ = ProcessRunner.run(["timeout", String(count * 3 + 60), "docker", "wait", id])
        Thread.sleep(forTimeInterval: 0.5)
        pipeline.stop()
        done.wait()

        var kernel: [Double] = [], user: [Double] = []
        var survived = (kernel: 0, user: 0)
        for (pid, open) in samples.opened {
            guard let death = samples.deaths[pid], death.signal == 9 else {
                if open.kernel { survived.kernel += 1 } else { survived.user += 1 }
                continue
            }
            let micros = Double(Int64(death.timestamp) - Int64(open.timestamp)) / 1000
            if open.kernel { kernel.append(micros) } else { user.append(micros) }
        }
        func figures(_ values: [Double]) -> (median: Double, p99: Double) {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return (0, 0) }
            return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))])
        }
        let k = figures(kernel), u = figures(user)
        print("Syscall-to-kill time (openat's return to sched_process_exit, both from the sensor), \(count) opens of each kind, alternating")
        print(String(format: "  kernel (bpf_send_signal at sys_enter):  %5d killed, %d survived, median %8.1f µs, p99 %8.1f µs", kernel.count, survived.kernel, k.median, k.p99))
        print(String(format: "  user space (kill(2) when alert fires):  %5d killed, %d survived, median %8.1f µs, p99 %8.1f µs", user.count, survived.user, u.median, u.p99))
        if k.median > 0 { print(String(format: "  ratio user space / kernel: median %.1fx, p99 %.1fx", u.median / k.median, u.p99 / max(k.p99, 0.001))) }
        print("  alert actions: " + samples.actions.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
    }
}
