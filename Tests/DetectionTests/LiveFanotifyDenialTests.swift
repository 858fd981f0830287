import Detection
import Foundation
import KernelTestSupport
import LabSupport
import Sensor
import Testing

extension LiveDetectionSuites {
    /// `action: kill` rules on opens and execs refused by fanotify permission events, in a real
    /// container, checked by their effect: the truncating open leaves the file's bytes, the
    /// dropped program never writes its file, the caller gets EPERM and lives on; the rest of
    /// the container and the host are untouched; once the guard stops, the same open works.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveFanotifyDenialTests {
        static let victim = "/tmp/caduceus-fanotify-victim"
        static let rules = """
            - rule: Victim opened in a container
              id: DENY-VICTIM
              desc: An open of the victim file (kernel-enforceable shape).
              condition: evt.type in (open, openat, openat2, creat) and fd.name in (\(victim), /etc/hosts, /dev/shm/victim) and container.id != host
              output: "victim opened (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            - rule: Dropped program run in a container
              id: DENY-DROPPED
              desc: An exec of anything under /tmp/drop (kernel-enforceable shape).
              condition: evt.type = execve and proc.exepath startswith /tmp/drop and container.id != host
              output: "dropped program (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            """

        /// A testbox container that stays up with the victim written, a dropped script that
        /// writes /tmp/marker-script and a dropped copy of busybox (run as `touch`); its full id.
        static func startBox() throws -> String {
            let setup = """
                echo original > \(victim); printf '#!/bin/sh\\necho ran > /tmp/marker-script\\n' > /tmp/drop.sh; chmod +x /tmp/drop.sh; \
                cp /bin/busybox /tmp/droptouch; sleep 120
                """
            return try SensorTestEnvironment.run(
                ["docker", "run", "-d", "--network", "host", SensorTestEnvironment.image, "/bin/sh", "-c", setup]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func exec(_ id: String, _ command: String) -> (status: Int32, output: String) {
            LiveEnforcementTests.exec(id, command)
        }

        /// Runs `during` with the guard on (a detector enforcing every rule, fanotify on, in the
        /// test's container only, or `everywhere`: other containers on this engine are marked
        /// too, and their opens wait for the verdict), then `after` once it stopped; the container's alerts.
        static func withGuard(
            everywhere: Bool = false, during: (String) throws -> Void, after: (String) throws -> Void = { _ in }
        ) throws -> [Alert] {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleSet.load([("deny.yaml", rules)])
            let id = try startBox()
            defer { LiveDetection.removeContainers([id]) }
            Thread.sleep(forTimeInterval: 0.5)  // the files are written
            let live = try LiveDetection(
                ruleSet: ruleSet, enforcement: EnforcementOptions(all: true, containers: everywhere ? [] : [id]),
                fanotify: FanotifyGuardOptions())
            let guarded = try #require(live.fanotify)
            #expect(
                guarded.fanotifyGuard.guardedContainers.contains { $0.id == id },
                "the running container is marked at start")
            try during(id)
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            try after(id)
            return alerts.filter { $0.container.id == id }
        }

        @Test func truncatingOpenIsRefusedAndTheFileKeepsItsBytes() throws {
            var write: (status: Int32, output: String) = (0, "")
            var other: (status: Int32, output: String) = (0, "")
            var afterwards: (status: Int32, output: String) = (0, "")
            var kept = ""
            let alerts = try Self.withGuard(
                during: { id in
                    // O_WRONLY|O_CREAT|O_TRUNC from the shell's redirection; the shell lives on to say how it went.
                    write = Self.exec(id, "echo overwritten > \(Self.victim); echo \"redirect=$?\"")
                    other = Self.exec(id, "echo fine > /tmp/unrelated && cat /tmp/unrelated")
                },
                after: { id in
                    kept = Self.exec(id, "cat \(Self.victim)").output
                    afterwards = Self.exec(id, "echo again > \(Self.victim); echo \"redirect=$?\"; cat \(Self.victim)")
                })
            #expect(write.status == 0, "the shell survived: \(write.output)")
            #expect(
                write.output.contains("redirect=1") && write.output.contains("Operation not permitted"),
                "EPERM: \(write.output)")
            #expect(kept == "original", "the refused O_TRUNC left the bytes: \(kept)")
            #expect(
                other.status == 0 && other.output == "fine", "an unrelated open in the same container: \(other.output)")
            #expect(afterwards.output == "redirect=0\nagain", "marks gone with the guard: \(afterwards.output)")
            let denied = alerts.filter { $0.ruleId == "DENY-VICTIM" }
            #expect(
                !denied.isEmpty && denied.allSatisfy { $0.action == "denied (fanotify)" },
                "\(alerts.map { "\($0.ruleId) \($0.action ?? "-")" })")
            #expect(
                denied.contains {
                    $0.events.first?[argument: "pathname"]?.string == Self.victim && $0.process.name == "sh"
                },
                "\(denied.map { "\($0.process.name) \($0.process.pid) \($0.events.first?[argument: "pathname"]?.string ?? "-")" })"
            )
        }

        // The storm tests (400 processes flooding opens) are Tests/sensor_cli/test_fanotify_flood.py:
        // beside the parallel Swift suites they starved the timing-sensitive ones.

        @Test func droppedProgramsNeverRun() throws {
            var script: (status: Int32, output: String) = (0, "")
            var binary: (status: Int32, output: String) = (0, "")
            var markers = ""
            let alerts = try Self.withGuard(
                during: { id in
                    script = Self.exec(id, "/tmp/drop.sh; echo \"exec=$?\"")
                    binary = Self.exec(id, "/tmp/droptouch touch /tmp/marker-binary; echo \"exec=$?\"")
                },
                after: { id in
                    markers = Self.exec(id, "ls /tmp/marker-script /tmp/marker-binary 2>&1; true").output
                })
            // 126: the shell's "found but could not run", from execve's EPERM.
            #expect(
                script.output.contains("exec=126") && script.output.contains("Operation not permitted"),
                "\(script.output)")
            #expect(
                binary.output.contains("exec=126") && binary.output.contains("Operation not permitted"),
                "\(binary.output)")
            #expect(
                markers.contains("/tmp/marker-script: No such file")
                    && markers.contains("/tmp/marker-binary: No such file"), "\(markers)")
            let denied = alerts.filter { $0.ruleId == "DENY-DROPPED" }
            #expect(
                Set(denied.compactMap { $0.events.first?[argument: "pathname"]?.string }) == [
                    "/tmp/drop.sh", "/tmp/droptouch",
                ])
            #expect(
                denied.allSatisfy {
                    $0.action == "denied (fanotify)" && $0.events.first?.eventName == "security_bprm_check"
                })
            #expect(
                !alerts.contains { $0.action?.hasPrefix("killed") == true },
                "nothing was killed: \(alerts.map { $0.action ?? "-" })")
        }

        /// The engine's bind mount of /etc/hosts (a host file system) and the /dev/shm tmpfs are
        /// not the container's root file system: each gets a mount mark of its own.
        @Test func bindMountsAndTmpfsAreGuardedToo() throws {
            var hosts: (status: Int32, output: String) = (0, "")
            var shm: (status: Int32, output: String) = (0, "")
            var after = ""
            let alerts = try Self.withGuard(
                during: { id in
                    hosts = Self.exec(id, "echo intruder >> /etc/hosts; echo \"redirect=$?\"")
                    shm = Self.exec(id, "echo x > /dev/shm/victim; echo \"redirect=$?\"")
                },
                after: { id in
                    after = Self.exec(id, "grep -c intruder /etc/hosts; wc -c < /dev/shm/victim").output
                })
            #expect(
                hosts.output.contains("redirect=1") && shm.output.contains("redirect=1"),
                "\(hosts.output) / \(shm.output)")
            // The permission event comes after an O_CREAT made the file: a new file is left
            // empty (no byte written), an existing one keeps its bytes (O_TRUNC comes after).
            #expect(after == "0\n0", "nothing appended, nothing written: \(after)")
            let paths = Set(
                alerts.filter { $0.action == "denied (fanotify)" }.compactMap {
                    $0.events.first?[argument: "pathname"]?.string
                })
            #expect(paths == ["/etc/hosts", "/dev/shm/victim"])
        }

        @Test func aContainerStartedAfterTheGuardIsMarked() throws {
            var late = ""
            var kept = ""
            var logs = ""
            // --enforce-container takes containers running at start: this one is not yet.
            _ = try Self.withGuard(
                everywhere: true,
                during: { _ in
                    // The victim is put in place by a rename (no open of its path), then truncated 2 s later.
                    let command = """
                        echo original > /tmp/pre; mv /tmp/pre \(Self.victim); sleep 2; echo overwritten > \(Self.victim); \
                        echo "redirect=$?"; sleep 60
                        """
                    late = try SensorTestEnvironment.run(
                        [
                            "docker", "run", "-d", "--network", "host", SensorTestEnvironment.image, "/bin/sh", "-c",
                            command,
                        ]
                    ).trimmingCharacters(in: .whitespacesAndNewlines)
                    Thread.sleep(forTimeInterval: 3)
                    logs = ProcessRunner.run(["docker", "logs", late]).output
                },
                after: { _ in
                    kept = Self.exec(late, "cat \(Self.victim)").output
                })
            LiveDetection.removeContainers([late])
            #expect(logs.contains("redirect=1") && logs.contains("Operation not permitted"), "\(logs)")
            #expect(kept == "original", "\(kept)")
        }

        @Test func theHostIsUnaffected() throws {
            var host: (status: Int32, output: String) = (0, "")
            var throughRoot: (status: Int32, output: String) = (0, "")
            defer { unlink(Self.victim) }
            _ = try Self.withGuard(during: { id in
                // The host's own file of the same name, and the container's file through its root:
                // the rule is for processes in containers only.
                host = ProcessRunner.run(["/bin/sh", "-c", "echo host > \(Self.victim) && cat \(Self.victim)"])
                let pid = try SensorTestEnvironment.run(["docker", "inspect", "-f", "{{.State.Pid}}", id])
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                throughRoot = ProcessRunner.run(["cat", "/proc/\(pid)/root\(Self.victim)"])
            })
            #expect(host.status == 0 && host.output == "host", "\(host.output)")
            #expect(throughRoot.status == 0 && throughRoot.output == "original", "\(throughRoot.output)")
        }

        /// The deadline: a verdict that takes a second is answered by the operator's choice at
        /// the deadline: deny keeps the file, allow lets the open through; neither waits the second,
        /// nor does an open that comes while that verdict is stuck (the watchdog answers the queue).
        @Test(arguments: [FanotifyVerdict.deny, .allow])
        func lateVerdictsAnswerTheOperatorsChoice(_ choice: FanotifyVerdict) throws {
            try SensorTestEnvironment.require()
            let id = try Self.startBox()
            defer { LiveDetection.removeContainers([id]) }
            Thread.sleep(forTimeInterval: 0.5)
            let path = Self.victim
            // Only the test's container: a slow verdict holds up every other one's opens too.
            let guarded = try FanotifyGuard(
                options: FanotifyGuardOptions(timeoutMilliseconds: 100, timeoutVerdict: choice),
                shouldGuard: { $0.id == id }
            ) { access in
                if access.path == path { Thread.sleep(forTimeInterval: 1) }
                return .allow
            }
            #expect(guarded.guardedContainers.map(\.id) == [id])
            let started = Date()
            let write = Self.exec(
                id,
                "(echo late > \(path); echo \"redirect=$?\") & sleep 0.2; echo other > /tmp/other; echo \"other=$?\"; wait"
            )
            let elapsed = Date().timeIntervalSince(started)
            let counts = guarded.statistics
            guarded.stop()
            let content = Self.exec(id, "cat \(path)").output
            #expect(counts.timedOut >= 1, "\(counts)")
            #expect(write.output.contains(choice == .deny ? "redirect=1" : "redirect=0"), "\(write.output)")
            #expect(write.output.contains(choice == .deny ? "other=1" : "other=0"), "\(write.output)")
            let expected = choice == .deny ? "original" : "late"
            #expect(content == expected)
            #expect(elapsed < 0.9, "answered at the deadline, not after the slow verdict: \(elapsed) s")
        }
    }
}
