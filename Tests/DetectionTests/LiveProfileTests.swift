import Detection
import Foundation
import KernelTestSupport
import Lab
import LabSupport
import Testing

extension LiveDetectionSuites {
    /// Learned profiles against the real kernel: the FHIR server's container recorded from its
    /// start through a clinical workload, then watched with that profile through the same
    /// workload (no drift), then made to run a program it never ran (drift). Needs root, BPF,
    /// Docker and the image `caduceus images` builds.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveProfileTests {
        static let image = "caduceus-fhir:latest"

        static func startServer(name: String, port: Int, dockerArguments: [String] = []) throws -> String {
            try SensorTestEnvironment.run(
                ["docker", "run", "-d", "--name", name, "--network", "host"] + dockerArguments + [
                    image, "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite",
                ])
        }

        /// The testbox's busybox copied into `container` at /busybox: a program the FHIR image lacks.
        static func copyBusybox(into container: String) throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent(
                "caduceus-profile-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            let source = try SensorTestEnvironment.run(["docker", "create", SensorTestEnvironment.image])
            defer { _ = try? SensorTestEnvironment.run(["docker", "rm", source]) }
            _ = try SensorTestEnvironment.run([
                "docker", "cp", "\(source):/bin/busybox", work.appendingPathComponent("busybox").path,
            ])
            _ = try SensorTestEnvironment.run([
                "docker", "cp", work.appendingPathComponent("busybox").path, "\(container):/busybox",
            ])
        }

        static func waitReady(_ base: String) async throws -> Bool {
            for _ in 0..<60 {
                if (try? await ClinicalWorkload(baseURL: base, rounds: 0, timeoutSeconds: 1).run())?.failureCount == 0 {
                    return true
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            return false
        }

        @Test func aRecordedProfileIsQuietUnderTheSameWorkloadAndFlagsANewProgram() async throws {
            try SensorTestEnvironment.require()
            guard (try? SensorTestEnvironment.run(["docker", "image", "inspect", Self.image])) != nil else {
                throw FixtureError("the image \(Self.image) is needed: run caduceus images")
            }
            let name = "caduceus-profile-test-\(UInt32.random(in: 0..<UInt32.max))"
            let port = Int.random(in: 20000..<30000)
            let base = "http://127.0.0.1:\(port)/fhir-server/api/v4"

            // Record from the container's start.
            let recorder = try LiveProfileRecorder(containerName: name)
            let id: String
            do {
                id = try Self.startServer(name: name, port: port)
            } catch {
                _ = try? recorder.stop()
                throw error
            }
            defer { LiveDetection.removeContainers([id]) }
            let ready = try await Self.waitReady(base)
            #expect(ready, "the FHIR server answered /metadata")
            let recording = try await ClinicalWorkload(baseURL: base, rounds: 10, concurrency: 4).run()
            #expect(recording.succeeded, "\(recording)")
            let (profile, recordLost) = try recorder.stop()
            #expect(recordLost == 0)
            #expect(profile.image == Self.image)
            #expect(profile.events > 1000)
            #expect(profile.listenPorts.contains(port))
            #expect(profile.executables.contains("/usr/local/bin/caduceus") && profile.syscalls.contains("accept4"))
            let text = try profile.yaml()
            let reread = try ContainerProfile(yaml: text)
            #expect(reread == profile, "\(text)")

            // The same workload under the profile: no drift.
            let live = try LiveDetection(ruleSet: BuiltinRuleTests.ruleSet(), profile: profile, profileContainer: name)
            let again = try await ClinicalWorkload(baseURL: base, rounds: 10, concurrency: 4).run()
            #expect(again.succeeded, "\(again)")
            try await Task.sleep(for: .milliseconds(500))
            let quiet = live.alertsSoFar.filter { $0.ruleId.hasPrefix("PROFILE-") }
            #expect(quiet.isEmpty, "drift under the recorded workload: \(quiet.map(\.output))")

            // A program the profile never saw.
            try Self.copyBusybox(into: id)
            _ = try SensorTestEnvironment.run(["docker", "exec", id, "/busybox", "true"])
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            let drift = alerts.filter { $0.ruleId.hasPrefix("PROFILE-") && $0.container.id == id }
            #expect(
                drift.contains {
                    $0.ruleId == "PROFILE-EXEC" && $0.output.contains("exec of /busybox not in profile executables")
                },
                "\(drift.map(\.output))")
            #expect(Set(drift.map { "\($0.ruleId) \($0.output)" }).count == drift.count, "each deviation alerts once")

            // The recorded seccomp profile lets a fresh container of the image start and serve.
            let seccomp = FileManager.default.temporaryDirectory.appendingPathComponent(
                "caduceus-seccomp-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: seccomp) }
            try profile.seccompJSON().write(to: seccomp)
            let confinedPort = LoopbackPort.unused()
            let confined = try Self.startServer(
                name: name + "-seccomp", port: confinedPort,
                dockerArguments: ["--security-opt", "seccomp=\(seccomp.path)"])
            defer { LiveDetection.removeContainers([confined]) }
            let confinedBase = "http://127.0.0.1:\(confinedPort)/fhir-server/api/v4"
            let confinedReady = try await Self.waitReady(confinedBase)
            #expect(confinedReady, "the FHIR server under the recorded seccomp profile answered /metadata")
            if confinedReady {
                let report = try await ClinicalWorkload(baseURL: confinedBase, rounds: 5, concurrency: 4).run()
                #expect(report.succeeded, "\(report)")
            }
        }
    }
}
