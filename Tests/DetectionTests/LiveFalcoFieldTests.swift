import Detection
import Foundation
import KernelTestSupport
import Testing

extension LiveDetectionSuites {
    /// The Falco fields the exec event and Docker's metadata feed, against the real kernel and a
    /// real container: what a rule's output shows for a `cat` the container runs.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveFalcoFieldTests {
        @Test func execContextAndContainerMetadata() throws {
            let rules = """
                - rule: Probe
                  desc: a cat in a container
                  condition: evt.type = execve and proc.name = cat and container.id != host
                  output: "%proc.cwd|%thread.cap_effective|%group.gid|%proc.is_vpgid_leader|%container.privileged|%container.start_ts|%proc.exe_ino.mtime|%user.loginuid|%k8s.pod.name|%container.mount.dest[/etc/hostname]"
                  priority: NOTICE
                """
            let live = try LiveDetection(ruleSet: RuleSet.load([("probe.yaml", rules)]))
            var containers: [String] = []
            defer { LiveDetection.removeContainers(containers) }
            let before = UInt64(Date().timeIntervalSince1970 * 1e9)
            let id = try LiveDetection.runContainer(
                "cd /tmp && /bin/cat /etc/hostname >/dev/null; true",
                dockerArguments: [
                    "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--user", "0:1234", "-v",
                    "/etc/hostname:/etc/hostname:ro",
                ])
            containers.append(id)
            // Exec'd by sh itself (pid 1, the group's leader): the leader.
            let leader = try LiveDetection.runContainer("exec /bin/cat /etc/hostname >/dev/null")
            containers.append(leader)
            let (alerts, lost) = try live.stop()
            #expect(
                alerts.first { $0.container.id == leader }?.output.split(separator: "|").dropFirst(3).first == "true")
            #expect(lost == 0)
            let output = try #require(
                alerts.first { $0.container.id == id }?.output, "the probe fires for the container's cat")
            let parts = output.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            try #require(parts.count == 10, "\(output)")
            #expect(parts[0] == "/tmp/", "cwd from the exec event after cd")
            #expect(parts[1] == "CAP_NET_ADMIN", "--cap-drop ALL --cap-add NET_ADMIN")
            #expect(parts[2] == "1234", "--user 0:1234")
            #expect(parts[3] == "false", "cat, forked by sh, runs in sh's process group")
            #expect(parts[4] == "false")
            let started = try #require(UInt64(parts[5]))
            #expect(
                started + 5_000_000_000 >= before && started <= UInt64(Date().timeIntervalSince1970 * 1e9),
                "Docker's StartedAt, ns")
            #expect((UInt64(parts[6]) ?? 0) > 0, "the executable's mtime from the kernel")
            #expect(Int64(parts[7]) != nil)
            #expect(parts[8] == "<NA>", "not in Kubernetes")
            #expect(parts[9] == "/etc/hostname", "the bind mount of /etc/hostname")
        }

        /// An exec the kernel refuses (a noexec mount) matches `evt.type = execve` once, at its
        /// exit, with its errno and the old image, as Falco reports it; a successful exec once too.
        @Test func refusedExecMatchesAtItsExit() throws {
            let rules = """
                - rule: Exec
                  desc: every exec in a container, Falco's way
                  condition: evt.type in (execve, execveat) and container.id != host and evt.arg.filename startswith /mnt/
                  output: "%evt.dir %evt.res %proc.name %evt.arg.filename"
                  priority: NOTICE
                """
            let live = try LiveDetection(ruleSet: RuleSet.load([("exec.yaml", rules)]))
            var containers: [String] = []
            defer { LiveDetection.removeContainers(containers) }
            let refused = try LiveDetection.runContainer(
                "cp /bin/busybox /mnt/x && /mnt/x true; true", dockerArguments: ["--tmpfs", "/mnt:rw,noexec"])
            containers.append(refused)
            let allowed = try LiveDetection.runContainer(
                "cp /bin/busybox /mnt/x && /mnt/x true; true", dockerArguments: ["--tmpfs", "/mnt:rw,exec"])
            containers.append(allowed)
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            #expect(alerts.filter { $0.container.id == refused }.map(\.output) == ["< EACCES sh /mnt/x"])
            #expect(alerts.filter { $0.container.id == allowed }.map(\.output) == ["< SUCCESS x /mnt/x"])
        }
    }
}
