import Detection
import Foundation
import KernelTestSupport
import LabSupport
import Testing

extension LiveDetectionSuites {
    /// `action: kill` against the real kernel, in a real container: the kernel kills `cat
    /// /etc/shadow` before it reads a byte; a connect to 127.0.0.1 is refused (EPERM, nothing
    /// accepted); a dry run kills nothing; a rule the kernel cannot
    /// evaluate is enforced from user space; without enforcement nothing is killed.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveEnforcementTests {
        static let rules = """
            - rule: Shadow file opened in a container
              id: KILL-SHADOW
              desc: The password hashes opened (kernel-enforceable shape).
              condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow and container.id != host
              output: "shadow opened (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            - rule: Secret opened by a child process
              id: KILL-SECRET
              desc: proc.pname is not known to the kernel, so this is enforced from user space.
              condition: evt.type in (open, openat) and fd.name = /tmp/secret and container.id != host and proc.pname exists
              output: "secret opened (proc=%proc.name parent=%proc.pname)"
              priority: CRITICAL
              action: kill
            - rule: Loopback connect from a container
              id: KILL-CONNECT
              desc: A connect to 127.0.0.1 (kernel-enforceable shape).
              condition: evt.type = connect and fd.sip = 127.0.0.1 and container.id != host
              output: "connect (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            """

        /// A testbox container that stays up, with /tmp/secret written; its full id.
        static func startBox() throws -> String {
            try SensorTestEnvironment.run(
                [
                    "docker", "run", "-d", "--network", "host", SensorTestEnvironment.image, "/bin/sh", "-c",
                    "echo classified > /tmp/secret; sleep 120",
                ]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func exec(_ id: String, _ command: String) -> (status: Int32, output: String) {
            ProcessRunner.run(["docker", "exec", id, "/bin/sh", "-c", command])
        }

        /// Runs `body` with a detector (enforcing as asked) and a fresh container; the alerts in it.
        static func withDetector(_ enforcement: EnforcementOptions?, _ body: (String) throws -> Void) throws -> [Alert]
        {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleSet.load([("kill.yaml", rules)])
            let id = try startBox()
            defer { LiveDetection.removeContainers([id]) }
            Thread.sleep(forTimeInterval: 0.5)  // the secret is written
            let live = try LiveDetection(ruleSet: ruleSet, enforcement: enforcement)
            try body(id)
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            return alerts.filter { $0.container.id == id }
        }

        @Test func kernelKillsCatBeforeItReadsAByte() throws {
            var result: (status: Int32, output: String) = (0, "")
            let alerts = try Self.withDetector(EnforcementOptions(all: true)) { id in
                result = Self.exec(id, "cat /etc/shadow")
            }
            #expect(result.status == 137, "SIGKILL: 128 + 9 (output: \(result.output))")
            #expect(!result.output.contains("root:"), "no byte of /etc/shadow printed")
            let shadow = alerts.filter { $0.ruleId == "KILL-SHADOW" }
            #expect(!shadow.isEmpty)
            #expect(shadow.allSatisfy { $0.action == "killed after the syscall (kernel)" }, "\(shadow.map(\.action))")
        }

        /// The connect is refused (cgroup programs), not the process killed: nc survives to say
        /// so and the listener accepts nothing. LiveCgroupDenialTests has the rest.
        @Test func connectToAnAddressIsRefused() throws {
            var result: (status: Int32, output: String) = (0, "")
            let listener = try LoopbackListener()
            let alerts = try Self.withDetector(EnforcementOptions(all: true)) { id in
                result = Self.exec(id, "(nc 127.0.0.1 \(listener.port) </dev/null); echo \"subshell=$?\"")
            }
            #expect(
                result.output.contains("Operation not permitted") && !result.output.contains("subshell=137"),
                "output: \(result.output)")
            #expect(!listener.accepted)
            let connect = alerts.filter { $0.ruleId == "KILL-CONNECT" }
            #expect(
                !connect.isEmpty && connect.allSatisfy { $0.action == "denied (cgroup)" }, "\(connect.map(\.action))")
        }

        @Test func dryRunKillsNothing() throws {
            var result: (status: Int32, output: String) = (0, "")
            let alerts = try Self.withDetector(EnforcementOptions(dryRun: true)) { id in
                result = Self.exec(id, "cat /etc/shadow")
            }
            #expect(result.status == 0)
            #expect(result.output.contains("root:"))
            let shadow = alerts.filter { $0.ruleId == "KILL-SHADOW" }
            #expect(!shadow.isEmpty && shadow.allSatisfy { $0.action == "would kill" }, "\(shadow.map(\.action))")
        }

        @Test func userSpaceKillsWhatTheKernelCannotEvaluate() throws {
            var result: (status: Int32, output: String) = (0, "")
            // A subshell (its parent, the shell, is known to the process table) opens the file
            // itself (a redirection), then waits: the kill arrives first; the shell reports it.
            let alerts = try Self.withDetector(EnforcementOptions(all: true)) { id in
                result = Self.exec(id, "(true < /tmp/secret; sleep 3; echo survived); echo \"subshell=$?\"")
            }
            #expect(result.output.contains("subshell=137"), "SIGKILL: 128 + 9 (output: \(result.output))")
            #expect(!result.output.contains("survived"))
            let secret = alerts.filter { $0.ruleId == "KILL-SECRET" }
            #expect(
                !secret.isEmpty && secret.allSatisfy { $0.action == "killed after the syscall (user space)" },
                "\(secret.map(\.action))")
        }

        @Test func withoutEnforcementNothingIsKilled() throws {
            var shadow: (status: Int32, output: String) = (0, "")
            var secret: (status: Int32, output: String) = (0, "")
            let alerts = try Self.withDetector(nil) { id in
                shadow = Self.exec(id, "cat /etc/shadow")
                secret = Self.exec(id, "(cat /tmp/secret); echo \"subshell=$?\"")
            }
            #expect(shadow.status == 0 && shadow.output.contains("root:"))
            #expect(secret.output.contains("classified") && secret.output.contains("subshell=0"))
            #expect(alerts.contains { $0.ruleId == "KILL-SHADOW" })
            #expect(alerts.contains { $0.ruleId == "KILL-SECRET" })
            #expect(alerts.allSatisfy { $0.action == nil })
        }
    }
}
