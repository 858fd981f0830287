import Detection
import Foundation
import KernelTestSupport
import Lab
import LabSupport
import Testing

extension LiveDetectionSuites {
    /// The attack lab against the FHIR server's real container: three scenarios played under
    /// live detection are each detected by their rules, and the lab leaves nothing behind in the
    /// container. Needs root, BPF, Docker and the images; with CI=true a missing one fails.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveAttackLabTests {
        @Test func scenariosInTheFHIRContainerAreDetectedAndCleanedUp() async throws {
            try SensorTestEnvironment.require()
            let port = Int.random(in: 20000..<30000)
            let id = try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", LiveDetectionSuites.LiveQuietTests.image,
                "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite",
            ])
            defer { LiveDetection.removeContainers([id]) }
            let listener = try LoopbackListener()
            let chosen = AttackScenario.all.filter { ["reverse-shell", "shadow", "memfd"].contains($0.id) }
            let detector = try LiveDetector(
                ruleSet: BuiltinRuleTests.ruleSet(), watchingRefusalsOf: AttackScenario.guardedSyscalls(of: chosen))
            let lab = AttackLab(container: id)
            try lab.installToolkit()
            let outcomes = try await lab.run(chosen, detector: detector, listenPort: Int(listener.port))
            lab.cleanUp()
            _ = try detector.stop()
            withExtendedLifetime(listener) {}
            #expect(outcomes.count == 3)
            for outcome in outcomes {
                #expect(
                    outcome.detected,
                    "\(outcome.scenario.id): expected \(outcome.scenario.expectedRules), fired \(outcome.firedRules)")
                #expect((outcome.secondsToDetect ?? 99) < 5)
                #expect(
                    outcome.verdict == .ran && outcome.cell == .detected, "\(outcome.scenario.id): \(outcome.verdict)")
            }
            #expect(AttackLab.matrix(outcomes).contains("3 scenarios: 3 detected; 0 failures"))
            // Nothing of the toolkit or its bait is left in the container.
            let leftovers = (try? SensorTestEnvironment.run(["docker", "exec", id, "/opt/lab/busybox", "true"])) != nil
            #expect(!leftovers, "the toolkit was removed")
            let export = try SensorTestEnvironment.run(["sh", "-c", "docker export \(id) | tar -t"])
            #expect(
                !export.contains("opt/lab") && !export.contains("etc/shadow") && !export.contains("root/.ssh"),
                "\(export)")
        }

        /// Without its toolkit in the container (docker exec finds no /opt/lab/busybox) a
        /// scenario cannot run: it is "did not run", a failure of the matrix, never "prevented",
        /// although it exited non-zero. A judged escape whose refusal the sensor saw (unshare under
        /// Docker's seccomp profile) is prevented.
        @Test func aScenarioThatCannotRunIsAFailureNotAPrevention() async throws {
            try SensorTestEnvironment.require()
            let (id, _) = try Self.startServer(audit: false)
            defer { LiveDetection.removeContainers([id]) }
            let chosen = AttackScenario.all.filter { ["shadow", "unshare"].contains($0.id) }
            let detector = try LiveDetector(
                ruleSet: BuiltinRuleTests.ruleSet(), watchingRefusalsOf: AttackScenario.guardedSyscalls(of: chosen))
            let lab = AttackLab(container: id)
            let missing = try await lab.run(chosen, detector: detector, listenPort: 1)
            try lab.installToolkit()
            let played = try await lab.run(chosen, detector: detector, listenPort: 1)
            lab.cleanUp()
            _ = try detector.stop()
            for outcome in missing {
                #expect(
                    outcome.exitStatus != 0 && outcome.cell == .didNotRun,
                    "\(outcome.scenario.id): exit \(outcome.exitStatus), \(outcome.verdict)")
            }
            #expect(
                AttackLab.matrix(missing).contains("2 scenarios: 0 detected, 2 did not run; 2 failures"),
                "\(AttackLab.matrix(missing))")
            let byID = Dictionary(uniqueKeysWithValues: played.map { ($0.scenario.id, $0) })
            #expect(byID["shadow"]?.cell == .detected, "\(String(describing: byID["shadow"]?.verdict))")
            #expect(
                byID["unshare"]?.cell == .prevented && byID["unshare"]?.detected == true,
                "\(String(describing: byID["unshare"]?.verdict))")
        }

        /// The lab under enforcement (`lab attack --enforce`): a rule that kills on the /etc/shadow
        /// open. The scenario is then what the mechanism said: "killed after the syscall" when a
        /// kill acted (the open ran), "prevented" when a mechanism denied it; either way the alert's
        /// own action, never "did not run" and never a guess from exit 137.
        @Test func underEnforcementTheMechanismsWordIsTheVerdict() async throws {
            try SensorTestEnvironment.require()
            let (id, _) = try Self.startServer(audit: false)
            defer { LiveDetection.removeContainers([id]) }
            // LiveEnforcementTests' kill rules: KILL-SHADOW kills on the /etc/shadow open.
            let ruleSet = try RuleSet.load([("kill.yaml", LiveEnforcementTests.rules)])
            let chosen = AttackScenario.all.filter { $0.id == "shadow" }
            // The toolkit first: planting the bait /etc/shadow opens it too.
            let lab = AttackLab(container: id)
            try lab.installToolkit()
            let detector = try LiveDetector(
                ruleSet: ruleSet, enforcement: EnforcementOptions(all: true, containers: [id]),
                watchingRefusalsOf: AttackScenario.guardedSyscalls(of: chosen))
            let outcomes = try await lab.run(chosen, detector: detector, listenPort: 1)
            lab.cleanUp()
            let (alerts, _) = try detector.stop()
            let shadow = try #require(outcomes.first)
            let actions = alerts.filter { $0.ruleId == "KILL-SHADOW" }.compactMap(\.action)
            #expect(shadow.exitStatus != 0 && !actions.isEmpty, "exit \(shadow.exitStatus), actions \(actions)")
            #expect(shadow.cell == .killed || shadow.cell == .prevented, "\(shadow.verdict)")
            if case .killed(let action) = shadow.verdict {
                #expect(action.hasPrefix("killed") && actions.contains(action))
            }
            if case .prevented(let how) = shadow.verdict {
                #expect(how.hasPrefix("denied") || how.contains("returned E"))
            }
        }

        /// The fork bomb in a container with the compose deployment's pids limit: held there (its
        /// forks refused with EAGAIN and CAD-048 raised), unwound within seconds with no process
        /// or zombie left, and the server answers afterwards.
        @Test func forkBombIsHeldByThePidsLimitAndLeavesNothing() async throws {
            try SensorTestEnvironment.require()
            let (id, base) = try Self.startServer()
            defer { LiveDetection.removeContainers([id]) }
            let detector = try LiveDetector(ruleSet: BuiltinRuleTests.ruleSet())
            let lab = AttackLab(container: id, baseURL: base)
            try lab.installToolkit()
            let outcomes = try await lab.run(
                AttackScenario.all.filter { $0.id == "fork-bomb" }, detector: detector, listenPort: 1)
            lab.cleanUp()
            _ = try detector.stop()
            let bomb = try #require(outcomes.first)
            #expect(bomb.detected, "fired \(bomb.firedRules); \(bomb.result)")
            #expect(bomb.figures["max"] == 512 && (bomb.figures["peak"] ?? 999) <= 512, "\(bomb.result)")
            #expect((bomb.figures["refused"] ?? 0) > 0, "forks were refused: \(bomb.result)")
            #expect(bomb.figures["leftover"] == 0 && (bomb.figures["unwindSeconds"] ?? 99) < 10, "\(bomb.result)")
            #expect(bomb.figures["after"] == bomb.figures["before"], "\(bomb.result)")
            #expect(bomb.figures["serverAnswered"] == 1, "\(bomb.result)")
            // Only the server is left in the container: no bomb process and no zombie.
            let server = try SensorTestEnvironment.run(["docker", "inspect", "-f", "{{.State.Pid}}", id])
            let full = try SensorTestEnvironment.run(["docker", "inspect", "-f", "{{.Id}}", id])
            let pids = try SensorTestEnvironment.run([
                "sh", "-c", "grep -l \(full) /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3",
            ])
            #expect(pids.split(separator: "\n").map(String.init) == [server], "processes in the container: \(pids)")
        }

        /// The bulk read through the API pulls every patient the server holds: on an empty server
        /// the 60 it plants (deleted afterwards), with their observations. No kernel rule sees it;
        /// the audited server's bulk-read detector records CAD-API-001 in its audit trail, and the
        /// matrix says the detection came from there. Against a server that does not audit, the
        /// row says so instead of failing.
        @Test func exfiltrationIsDetectedByTheAuditTrailNotTheKernel() async throws {
            try SensorTestEnvironment.require()
            let (id, base) = try Self.startServer()
            let (unaudited, unauditedBase) = try Self.startServer(audit: false)
            defer { LiveDetection.removeContainers([id, unaudited]) }
            let detector = try LiveDetector(ruleSet: BuiltinRuleTests.ruleSet())
            let scenario = AttackScenario.all.filter { $0.id == "fhir-exfiltration" }
            let outcomes = try await AttackLab(container: id, baseURL: base).run(
                scenario, detector: detector, listenPort: 1)
            let blind = try await AttackLab(container: unaudited, baseURL: unauditedBase).run(
                scenario, detector: detector, listenPort: 1)
            _ = try detector.stop()
            let pulled = try #require(outcomes.first)
            let population = Double(AttackLab.exfiltrationPopulation)
            #expect(
                pulled.figures["patients"] == pulled.figures["present"] && pulled.figures["patients"] == population,
                "\(pulled.result)")
            #expect(
                pulled.figures["observations"] == 2 * population && pulled.figures["seeded"] == population,
                "\(pulled.result)")
            // Detected, by the audit trail alone: the only rule fired is the audit detector's.
            #expect(pulled.scenario.expectedRules == ["CAD-API-001"] && pulled.source == .auditTrail)
            #expect(
                pulled.detected && pulled.firedRules == ["CAD-API-001"], "fired \(pulled.firedRules); \(pulled.result)")
            #expect(pulled.figures["auditAlerts"] == 1, "one alert for one client and window")
            #expect((pulled.secondsToDetect ?? 99) < 10 && pulled.sourceProblem == nil)
            let matrix = AttackLab.matrix(outcomes)
            #expect(
                matrix.contains("1 scenarios: 1 detected; 0 failures")
                    && matrix.contains("1 detected by the FHIR audit trail, not the kernel"), "\(matrix)")
            #expect(matrix.contains("audit trail"))
            let json = AttackLab.matrixJSON(outcomes, falsePositives: 0, workloadInteractions: 0)
            #expect(
                json.contains(#""source" : "audit trail""#) || json.contains(#""source": "audit trail""#), "\(json)")
            // The same scenario against a server without an audit trail: pulled all the same, not detected, and why.
            let missed = try #require(blind.first)
            #expect(missed.figures["patients"] == population && !missed.detected, "\(missed.result)")
            #expect(missed.sourceProblem == "server not auditing: serve --audit on")
            #expect(AttackLab.matrix(blind).contains("fhir-exfiltration: not detected (server not auditing"))
            for server in [base, unauditedBase] {
                let left = try SensorTestEnvironment.run(["curl", "-sf", "\(server)/Patient?_count=1"])
                #expect(
                    left.contains("\"total\":0") || left.contains("\"total\": 0"),
                    "the planted patients are deleted: \(left)")
            }
        }

        /// The same escape in an ordinary and a privileged container (SYS_ADMIN, seccomp
        /// unconfined): refused there, through here, detected both times, and the host's
        /// core_pattern and release_agent values are the same afterwards.
        @Test func privilegesChangeTheOutcomeNotTheHost() async throws {
            try SensorTestEnvironment.require()
            let (plain, _) = try Self.startServer()
            let (privileged, _) = try Self.startServer(privileged: true)
            defer { LiveDetection.removeContainers([plain, privileged]) }
            let host = AttackLab.hostSettings()
            let chosen = AttackScenario.all.filter { ["unshare", "core-pattern", "release-agent"].contains($0.id) }
            let detector = try LiveDetector(
                ruleSet: BuiltinRuleTests.ruleSet(), watchingRefusalsOf: AttackScenario.guardedSyscalls(of: chosen))
            var outcomes: [AttackLab.Outcome] = []
            for (container, scenarios) in [(plain, chosen), (privileged, chosen.map { $0.withPrivileges() })] {
                let lab = AttackLab(container: container)
                try lab.installToolkit()
                outcomes += try await lab.run(scenarios, detector: detector, listenPort: 1)
                lab.cleanUp()
            }
            _ = try detector.stop()
            #expect(AttackLab.hostSettings() == host, "the host's settings are unchanged")
            #expect(outcomes.count == 6)
            for outcome in outcomes {
                #expect(outcome.detected, "\(outcome.scenario.id): fired \(outcome.firedRules)")
                if outcome.scenario.privileged {
                    #expect(
                        outcome.result == "succeeded" && outcome.figures["hostChanged"] == 0,
                        "\(outcome.scenario.id): \(outcome.result)")
                } else {
                    #expect(outcome.result == "blocked (EPERM)", "\(outcome.scenario.id): \(outcome.result)")
                    // Prevented because the sensor saw Docker's seccomp profile refuse the call, not because it exited 1.
                    #expect(
                        outcome.verdict.name == "prevented"
                            && outcome.verdict.reason?.contains("returned EPERM (seen by the sensor)") == true,
                        "\(outcome.scenario.id): \(outcome.verdict)")
                }
            }
            #expect(AttackLab.matrix(outcomes).contains("unshare+sys_admin"))
        }

        /// A lab server container (the compose deployment's pids limit, an audit trail unless `audit`
        /// is false) once it answers; its id and base URL.
        static func startServer(privileged: Bool = false, audit: Bool = true) throws -> (String, String) {
            let port = Int.random(in: 20000..<30000)
            let id = try AttackLab.startServer(
                port: port, privileged: privileged, image: LiveDetectionSuites.LiveQuietTests.image, audit: audit)
            let base = "http://127.0.0.1:\(port)/fhir-server/api/v4"
            do {
                _ = try SensorTestEnvironment.run([
                    "curl", "-sf", "-o", "/dev/null", "--retry", "40", "--retry-connrefused", "--retry-delay", "1",
                    base + "/metadata",
                ])
            } catch {
                LiveDetection.removeContainers([id])
                throw error
            }
            return (id, base)
        }
    }
}
