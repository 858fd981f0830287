import Detection
import Foundation
import KernelTestSupport
import Lab
import Testing

extension LiveDetectionSuites {
    /// The attack lab against the FHIR server's real container: three scenarios played under
    /// live detection are each detected by their rules, and the lab leaves nothing behind in the
    /// container. Needs root, BPF, Docker and the images; with CI=true a missing one fails.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveAttackLabTests {
        @Test func scenariosInTheFHIRContainerAreDetectedAndCleanedUp() throws {
            try SensorTestEnvironment.require()
            let port = Int.random(in: 20000..<30000)
            let id = try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", LiveDetectionSuites.LiveQuietTests.image,
                "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite",
            ])
            defer { LiveDetection.removeContainers([id]) }
            let listener = try LoopbackListener()
            let detector = try LiveDetector(ruleSet: BuiltinRuleTests.ruleSet())
            let lab = AttackLab(container: id)
            try lab.installToolkit()
            let chosen = AttackScenario.all.filter { ["reverse-shell", "shadow", "memfd"].contains($0.id) }
            let outcomes = try lab.run(chosen, detector: detector, listenPort: Int(listener.port))
            lab.cleanUp()
            _ = try detector.stop()
            withExtendedLifetime(listener) {}
            #expect(outcomes.count == 3)
            for outcome in outcomes {
                #expect(outcome.detected, "\(outcome.scenario.id): expected \(outcome.scenario.expectedRules), fired \(outcome.firedRules)")
                #expect((outcome.secondsToDetect ?? 99) < 5)
            }
            #expect(AttackLab.matrix(outcomes).contains("3 of 3 scenarios detected"))
            // Nothing of the toolkit or its bait is left in the container.
            let leftovers = (try? SensorTestEnvironment.run(["docker", "exec", id, "/opt/lab/busybox", "true"])) != nil
            #expect(!leftovers, "the toolkit was removed")
            let export = try SensorTestEnvironment.run(["sh", "-c", "docker export \(id) | tar -t"])
            #expect(!export.contains("opt/lab") && !export.contains("etc/shadow") && !export.contains("root/.ssh"), "\(export)")
        }
    }
}
