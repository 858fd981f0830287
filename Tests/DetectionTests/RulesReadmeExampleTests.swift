import Detection
import Foundation
import Testing

/// rules/README.md's example of refusing what two built-in rules detect: its YAML loads, and the
/// kill modes the README states for it (and for an action added to the detector-gated rules) are
/// what `caduceus rules list` computes for a kernel with cgroup programs and fanotify.
@Suite struct RulesReadmeExampleTests {
    static let kernel = EnforcementKernel(cgroup: true, fanotify: true)

    static func readmeExample() throws -> String {
        let readme = try String(contentsOfFile: RuleTestFile.rulesDirectory + "/README.md", encoding: .utf8)
        let blocks = readme.components(separatedBy: "```yaml\n").dropFirst().map {
            $0.components(separatedBy: "```").first ?? ""
        }
        return try #require(blocks.first { $0.contains("LOCAL-052") }, "the README's refusal example")
    }

    @Test func theRefusalExampleLoadsAndIsRefusedBeforeTheCall() throws {
        // A user's file loads after the built-in macros (spawned_process, container).
        let macros = try String(contentsOfFile: RuleTestFile.rulesDirectory + "/00-macros.yaml", encoding: .utf8)
        let rules = try RuleSet.load([("00-macros.yaml", macros), ("local.yaml", try Self.readmeExample())]).rules
        let plans = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, Enforcer.plan(for: $0, kernel: Self.kernel)) })
        #expect(plans == ["LOCAL-052": "deny (fanotify)", "LOCAL-053": "deny (cgroup)"])
    }

    @Test func anActionOnADetectorGatedRuleActsFromUserSpace() throws {
        let builtin = try BuiltinRuleTests.ruleSet().rules
        for id in ["CAD-051", "CAD-065", "CAD-049", "CAD-053"] {
            let rule = try #require(builtin.first { $0.id == id })
            #expect(Enforcer.plan(for: rule, kernel: Self.kernel) == "kill after the syscall (user space)", "\(id)")
        }
    }
}
