import Detection
import Foundation
import KernelTestSupport
import Lab
import Testing

extension LiveDetectionSuites {
    /// Learned profiles and the generated seccomp profile against the attack lab, in the FHIR
    /// server's real container: a profile learned from the clinical workload is quiet when it runs
    /// again and sees drift in every scenario that runs something in the container; the seccomp
    /// profile committed for the deployment lets the server serve and the lab in, and refuses the
    /// scenarios that need a syscall outside it. Needs root, BPF, Docker and the images.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveProfileLabTests {
        /// profiles/caduceus-fhir.seccomp.json of this checkout (Scripts/fhir-seccomp-profile.sh).
        static let committedSeccompProfile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("profiles/caduceus-fhir.seccomp.json").path

        @Test func aLearnedProfileIsQuietOnItsWorkloadAndSeesDriftInEveryScenarioInTheContainer() async throws {
            try LiveProfileEnforcementTests.requireImage()
            let port = Int.random(in: 20000..<30000)
            let base = "http://127.0.0.1:\(port)/fhir-server/api/v4"
            // Learned from the lab server's start through the clinical workload, as LiveProfileTests does.
            // AttackLab.startServer names its container so.
            let recorder = try LiveProfileRecorder(containerName: "caduceus-lab-fhir-\(port)")
            let id: String
            do {
                id = try AttackLab.startServer(port: port, image: LiveProfileTests.image)
            } catch {
                _ = try? recorder.stop()
                throw error
            }
            defer { LiveDetection.removeContainers([id]) }
            let ready = try await LiveProfileTests.waitReady(base)
            #expect(ready, "the FHIR server answered /metadata")
            let learning = try await ClinicalWorkload(baseURL: base, rounds: 10, concurrency: 4).run()
            #expect(learning.succeeded, "\(learning)")
            let (profile, recordLost) = try recorder.stop()
            #expect(recordLost == 0 && profile.image == LiveProfileTests.image && profile.events > 1000)

            let full = try SensorTestEnvironment.run(["docker", "inspect", "-f", "{{.Id}}", id])
            let scenarios = AttackScenario.all.filter { if case .container = $0.play { true } else { false } }
            let detector = try LiveDetector(
                ruleSet: BuiltinRuleTests.ruleSet(), profile: profile, profileContainer: full,
                watchingRefusalsOf: AttackScenario.guardedSyscalls(of: scenarios))
            let again = try await ClinicalWorkload(baseURL: base, rounds: 10, concurrency: 4).run()
            #expect(again.succeeded, "\(again)")
            try await Task.sleep(for: .milliseconds(500))
            let quiet = detector.alertsSoFar.filter { $0.ruleId.hasPrefix("PROFILE-") }
            #expect(quiet.isEmpty, "drift under the workload it was learned from: \(quiet.map(\.output))")

            // Every scenario of kind .container: each runs the lab's busybox (and more) in the
            // container, none of which the server ever ran. No exclusion: the fork bomb (kind
            // .forkBomb) and the attacks through the API (from the host) are not of this kind.
            let lab = AttackLab(container: id, baseURL: base)
            try lab.installToolkit()
            let outcomes = try await lab.run(scenarios, detector: detector, listenPort: 1)
            lab.cleanUp()
            _ = try detector.stop()
            #expect(outcomes.count == scenarios.count && outcomes.count >= 20)
            let withoutDrift = outcomes.filter { ($0.drift ?? []).isEmpty }.map(\.scenario.id)
            #expect(
                withoutDrift.isEmpty,
                "scenarios that ran something new in the container but raised no PROFILE-* alert: \(withoutDrift)")
            let withoutExec = outcomes.filter { !($0.drift ?? []).contains("PROFILE-EXEC") }.map(\.scenario.id)
            #expect(
                withoutExec.isEmpty, "every scenario execs the toolkit's busybox, not in the profile: \(withoutExec)")
            // Drift is kept apart from the rules' column, and the matrix shows it.
            #expect(outcomes.allSatisfy { !$0.firedRules.contains { $0.hasPrefix("PROFILE-") } })
            let matrix = AttackLab.matrix(outcomes)
            #expect(
                matrix.contains("profile drift")
                    && matrix.contains("profile drift (PROFILE-*) in \(outcomes.count) of \(outcomes.count) scenarios"),
                "\(matrix)")
        }

        @Test func theServerServesUnderTheCommittedSeccompProfileAndScenariosOutsideItAreRefused() async throws {
            try LiveProfileEnforcementTests.requireImage()
            guard FileManager.default.fileExists(atPath: Self.committedSeccompProfile) else {
                throw FixtureError("\(Self.committedSeccompProfile) is missing: run Scripts/fhir-seccomp-profile.sh")
            }
            let suffix = UInt32.random(in: 0..<UInt32.max)
            let port = Int.random(in: 20000..<30000)
            // As docker-compose.yml starts it, and beside it one under Docker's default profile.
            let confined = try LiveProfileTests.startServer(
                name: "caduceus-seccomp-\(suffix)", port: port,
                dockerArguments: ["--pids-limit", "512", "--security-opt", "seccomp=\(Self.committedSeccompProfile)"])
            let plain = try LiveProfileTests.startServer(
                name: "caduceus-default-\(suffix)", port: port + 1, dockerArguments: ["--pids-limit", "512"])
            defer { LiveDetection.removeContainers([confined, plain]) }
            let base = "http://127.0.0.1:\(port)/fhir-server/api/v4"
            let ready = try await LiveProfileTests.waitReady(base)
            #expect(ready, "the FHIR server under its seccomp profile answered /metadata")
            let workload = try await ClinicalWorkload(baseURL: base, rounds: 5, concurrency: 4).run()
            #expect(workload.succeeded, "the clinical workload under the seccomp profile: \(workload)")

            // The lab gets in (docker exec of its busybox toolkit) and plays: /etc/shadow read
            // (nothing refused), ptrace and PTRACE_TRACEME (ptrace is not in the profile) and
            // memfd (memfd_create is not).
            let chosen = AttackScenario.all.filter { ["shadow", "ptrace", "anti-debug", "memfd"].contains($0.id) }
            let detector = try LiveDetector(
                ruleSet: BuiltinRuleTests.ruleSet(), watchingRefusalsOf: AttackScenario.guardedSyscalls(of: chosen))
            var results: [String: [String: AttackLab.Outcome]] = [:]
            for (container, label) in [(confined, "seccomp"), (plain, "default")] {
                let lab = AttackLab(container: container)
                try lab.installToolkit()
                let outcomes = try await lab.run(chosen, detector: detector, listenPort: 1)
                lab.cleanUp()
                results[label] = Dictionary(uniqueKeysWithValues: outcomes.map { ($0.scenario.id, $0) })
            }
            let (_, lost) = try detector.stop()
            let seccomp = try #require(results["seccomp"])
            let docker = try #require(results["default"])
            #expect(
                seccomp["shadow"]?.exitStatus == 0 && seccomp["shadow"]?.detected == true,
                "\(String(describing: seccomp["shadow"]))")
            for id in ["ptrace", "anti-debug", "memfd"] {
                #expect(
                    seccomp[id]?.result == "blocked (EPERM)",
                    "\(id) under the generated profile: \(seccomp[id]?.result ?? "not played")")
                #expect(
                    docker[id]?.result == "succeeded",
                    "\(id) under Docker's default profile: \(docker[id]?.result ?? "not played")")
                // Prevented because the sensor saw the call return EPERM, not because the command failed.
                #expect(
                    seccomp[id]?.verdict.name == "prevented"
                        && seccomp[id]?.verdict.reason?.contains("returned EPERM") == true,
                    "\(id) under the generated profile: \(String(describing: seccomp[id]?.verdict)); \(lost) events lost"
                )
                #expect(
                    docker[id]?.verdict == .ran,
                    "\(id) under Docker's default profile: \(String(describing: docker[id]?.verdict))")
            }
            // Refused by seccomp, the attempt is still seen: the sensor reads ptrace at its exit.
            #expect(seccomp["ptrace"]?.detected == true, "fired \(seccomp["ptrace"]?.firedRules ?? [])")
        }
    }
}
