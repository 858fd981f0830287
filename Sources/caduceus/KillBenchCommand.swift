import ArgumentParser
import Benchmarks
import Foundation
import LabSupport

/// `caduceus bench kill`: time from a syscall that matched an `action: kill` rule to the
/// process's death, enforced in the kernel against enforced from user space (``KillBenchmark``).
struct KillBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract:
            "Syscall-to-kill time: kernel enforcement (bpf_send_signal) against user space (kill(2) when the alert fires).",
        discussion: """
            Needs root and Docker with the testbox image (Scripts/docker.sh testbox). In one container a
            subshell opens /tmp/kill-kernel (a rule the kernel evaluates) or /tmp/kill-user (the same
            rule plus proc.pname, which only user space can evaluate), alternating, then sleeps. Both
            times come from the sensor's own events: the openat record (at the syscall's return) and
            the process's sched_process_exit.
              caduceus bench kill --count 200
            """)

    @Option(help: "Opens of each kind (1 to 100000).")
    var count = 100

    @Option(help: "The container image (busybox sh).")
    var image = "caduceus-testbox:latest"

    func run() throws {
        guard geteuid() == 0 else { throw CommandFailure("bench kill needs root (the sensor)") }
        let benchmark = KillBenchmark(count: count, image: image)
        let figures: KillBenchmark.Figures
        do {
            figures = try benchmark.run { writeStandardError("caduceus bench kill: \($0)") }
        } catch let error as LabError { throw CommandFailure(error.description) }
        let k = KillBenchmark.Figures.medianAndP99(figures.kernel), u = KillBenchmark.Figures.medianAndP99(figures.user)
        print(
            "Syscall-to-kill time (openat's return to sched_process_exit, both from the sensor), \(benchmark.count) opens of each kind, alternating"
        )
        print(
            String(
                format:
                    "  kernel (bpf_send_signal at sys_enter):  %5d killed, %d survived, median %8.1f µs, p99 %8.1f µs",
                figures.kernel.count,
                figures.kernelSurvived, k.median, k.p99))
        print(
            String(
                format:
                    "  user space (kill(2) when alert fires):  %5d killed, %d survived, median %8.1f µs, p99 %8.1f µs",
                figures.user.count,
                figures.userSurvived, u.median, u.p99))
        if k.median > 0 {
            print(
                String(
                    format: "  ratio user space / kernel: median %.1fx, p99 %.1fx", u.median / k.median,
                    u.p99 / max(k.p99, 0.001)))
        }
        print(
            "  alert actions: "
                + figures.actions.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
    }
}
