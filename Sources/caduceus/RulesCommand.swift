import ArgumentParser
import Detection
import Foundation

/// `caduceus rules`: check and list rule files without running anything.
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check and list detection rules.",
        subcommands: [Check.self, List.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load rule files as detect would; print file:line:column and the reason for the first error.",
            discussion: "  caduceus rules check --rules my-rules.yaml    # built-in rules plus yours\n  caduceus rules check --no-builtin-rules --rules my-rules/")

        @OptionGroup var rules: RuleOptions

        @Flag(help: "Refuse rule files that load with a warning of the loader (an undefined list-like name alone in in (...), which Falco compares as a value): exit 1 with its file:line:column.")
        var strict = false

        func run() throws {
            let ruleSet = try rules.load()
            let engine: DetectionEngine
            do {
                engine = try DetectionEngine(ruleSet: ruleSet)
            } catch let error as RuleError {
                throw CommandFailure("\(error)")
            }
            for warning in engine.warnings { writeStandardError("warning: " + warning) }
            if strict, let first = ruleSet.warnings.first { throw CommandFailure("\(first) (--strict)") }
            let enabled = ruleSet.rules.filter(\.enabled).count
            print("\(ruleSet.rules.count) rules (\(enabled) enabled), \(ruleSet.macros.count) macros, \(ruleSet.lists.count) lists: OK")
            print("kernel events needed: " + engine.requiredEvents.sorted().joined(separator: " "))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the loaded rules: id, priority, MITRE technique, name; for rules with an action, the action and whether the kernel can enforce it.")

        @OptionGroup var rules: RuleOptions

        @Flag(help: "Refuse rule files that load with a warning of the loader (an undefined list-like name alone in in (...), which Falco compares as a value): exit 1 with its file:line:column.")
        var strict = false

        func run() throws {
            let ruleSet = try rules.load()
            for rule in ruleSet.rules {
                let mitre = rule.mitre.joined(separator: ",")
                var state = rule.enabled ? "" : " (disabled)"
                if let action = rule.action {
                    state += KernelEnforcement.patterns(for: rule) != nil ? " [\(action.rawValue): kernel]" : " [\(action.rawValue): user space]"
                }
                print("\(rule.id.padding(toLength: 8, withPad: " ", startingAt: 0)) \(rule.priority.rawValue.uppercased().padding(toLength: 13, withPad: " ", startingAt: 0)) \(mitre.padding(toLength: 22, withPad: " ", startingAt: 0)) \(rule.name)\(state)")
            }
        }
    }
}
