import Detection
import Foundation
import KernelTestSupport
import LabSupport
import Testing

extension LiveDetectionSuites {
    /// Every built-in rule against the real kernel: its `live` command from its test file runs
    /// in a real container while the sensor and the engine watch, and the rule must fire in
    /// that container (and not for the `quiet` command). Needs root, BPF and Docker; with
    /// CI=true a missing one fails the test.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveRuleTests {
        @Test func everyBuiltinRuleFiresInARealContainer() throws {
            try SensorTestEnvironment.require()
            let tests = try RuleTestFile.all()
            let listener = try LoopbackListener()
            let live = try LiveDetection(ruleSet: BuiltinRuleTests.ruleSet())
            var fired: [(RuleTestFile, String)] = []
            var quiet: [(RuleTestFile, String)] = []
            var containers: [String] = []
            defer { LiveDetection.removeContainers(containers) }
            for test in tests {
                guard let reproduction = test.live else { continue }
                let environment = reproduction.listener ? ["LISTEN_PORT": String(listener.port)] : [:]
                let id = try LiveDetection.runContainer(
                    reproduction.fires, dockerArguments: reproduction.dockerArguments, environment: environment)
                fired.append((test, id))
                containers.append(id)
                if let command = reproduction.quiet {
                    let quietID = try LiveDetection.runContainer(
                        command, dockerArguments: reproduction.dockerArguments, environment: environment)
                    quiet.append((test, quietID))
                    containers.append(quietID)
                }
            }
            let (alerts, lost) = try live.stop()
            withExtendedLifetime(listener) {}
            #expect(lost == 0, "the kernel lost \(lost) events")
            for (test, id) in fired {
                let here = alerts.filter { $0.container.id == id }
                #expect(
                    here.contains { $0.ruleId == test.ruleId },
                    "\(test.ruleId) fires for `\(test.live!.fires)` (alerts there: \(here.map(\.ruleId)); \(live.eventCount(container: id)) events seen there)"
                )
            }
            for (test, id) in quiet {
                let here = alerts.filter { $0.container.id == id }
                #expect(
                    !here.contains { $0.ruleId == test.ruleId }, "\(test.ruleId) stays quiet for `\(test.live!.quiet!)`"
                )
            }
            #expect(fired.count >= 30)
        }
    }
}
