import Detection
import Foundation
import KernelTestSupport
import LabSupport
import Sensor
import Testing

extension LiveDetectionSuites {
    /// A learned profile enforced against the real kernel, in the FHIR server's real container:
    /// an exec outside the profile's executables is killed at the exec (in the kernel for a
    /// container running when the detector started, from user space for one started after),
    /// the profile's own program still runs, and a dry run kills nothing. Needs root, BPF,
    /// Docker and the images.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveProfileEnforcementTests {
        /// What the FHIR image runs, written as a person would write the profile.
        static let profile = ContainerProfile(image: LiveProfileTests.image, executables: ["/usr/local/bin/caduceus"])

        /// A FHIR server container with the testbox's busybox copied in at /busybox; its full id.
        static func startServer(name: String) throws -> String {
            let id = try LiveProfileTests.startServer(name: name, port: Int.random(in: 20000..<30000))
            try LiveProfileTests.copyBusybox(into: id)
            return try SensorTestEnvironment.run(["docker", "inspect", "-f", "{{.Id}}", id])
        }

        static func exec(_ id: String, _ arguments: [String]) -> (status: Int32, output: String) {
            ProcessRunner.run(["docker", "exec", "-u", "0", id] + arguments)
        }

        static func requireImage() throws {
            try SensorTestEnvironment.require()
            guard (try? SensorTestEnvironment.run(["docker", "image", "inspect", LiveProfileTests.image])) != nil else {
                throw FixtureError("the image \(LiveProfileTests.image) is needed: run caduceus images")
            }
        }

        @Test func anExecOutsideTheProfileIsKilledInTheKernel() throws {
            try Self.requireImage()
            let name = "caduceus-enforce-\(UInt32.random(in: 0..<UInt32.max))"
            let id = try Self.startServer(name: name)
            defer { LiveDetection.removeContainers([id]) }
            let live = try LiveDetection(
                ruleSet: BuiltinRuleTests.ruleSet(), enforcement: EnforcementOptions(rules: ["PROFILE-EXEC"]),
                profile: Self.profile,
                profileContainer: name)
            #expect(live.sensor.execAllowCgroups > 0, "the container was running: the kernel enforces its allow list")
            // The profile's own program runs; busybox is killed before it prints, every time.
            let allowed = Self.exec(id, ["/usr/local/bin/caduceus", "help"])
            let first = Self.exec(id, ["/busybox", "echo", "ran"])
            let second = Self.exec(id, ["/busybox", "sh", "-c", "echo ran"])
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            #expect(allowed.status == 0, "\(allowed.output)")
            for run in [first, second] {
                #expect(
                    run.status == 137 && !run.output.contains("ran"), "SIGKILL (128 + 9) before the program ran: \(run)"
                )
            }
            let killed = alerts.filter { $0.ruleId == "PROFILE-EXEC" && $0.container.id == id }
            #expect(killed.count == 2, "each exec alerts: \(killed.map(\.output))")
            #expect(
                killed.allSatisfy {
                    $0.action == "killed after the syscall (kernel)"
                        && $0.output.hasPrefix("exec of /busybox not in profile executables")
                },
                "\(killed.map { "\($0.action ?? "-"): \($0.output)" })")
        }

        @Test func aContainerStartedLaterIsEnforcedFromUserSpaceAndADryRunKillsNothing() throws {
            try Self.requireImage()
            let name = "caduceus-enforce-\(UInt32.random(in: 0..<UInt32.max))"
            // Not running yet: the kernel has no cgroup for it, user space kills.
            let live = try LiveDetection(
                ruleSet: BuiltinRuleTests.ruleSet(), enforcement: EnforcementOptions(rules: ["PROFILE-EXEC"]),
                profile: Self.profile,
                profileContainer: name)
            #expect(live.sensor.execAllowCgroups == 0)
            let id: String
            do {
                id = try Self.startServer(name: name)
            } catch {
                _ = try? live.stop()
                throw error
            }
            defer { LiveDetection.removeContainers([id]) }
            // Lives long enough for the kill from user space to find it.
            let slow = Self.exec(id, ["/busybox", "sh", "-c", "sleep 3; echo survived"])
            let (alerts, _) = try live.stop()
            #expect(slow.status == 137 && !slow.output.contains("survived"), "\(slow)")
            let killed = alerts.filter { $0.ruleId == "PROFILE-EXEC" && $0.container.id == id }
            #expect(
                !killed.isEmpty && killed.allSatisfy { $0.action == "killed after the syscall (user space)" },
                "\(killed.map(\.action))")

            // Dry run: the alert says what would have happened, the program runs to its end.
            let dry = try LiveDetection(
                ruleSet: BuiltinRuleTests.ruleSet(), enforcement: EnforcementOptions(dryRun: true, profile: true),
                profile: Self.profile,
                profileContainer: name)
            #expect(dry.sensor.execAllowCgroups == 0, "a dry run gives the kernel nothing")
            let spared = Self.exec(id, ["/busybox", "echo", "spared"])
            let (dryAlerts, _) = try dry.stop()
            #expect(spared.status == 0 && spared.output.contains("spared"), "\(spared)")
            let would = dryAlerts.filter { $0.ruleId == "PROFILE-EXEC" && $0.container.id == id }
            #expect(!would.isEmpty && would.allSatisfy { $0.action == "would kill" }, "\(would.map(\.action))")
        }
    }
}
