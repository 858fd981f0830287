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
            discussion:
                "  caduceus rules check --rules my-rules.yaml    # built-in rules plus yours\n  caduceus rules check --no-builtin-rules --rules my-rules/"
        )

        @OptionGroup var rules: RuleOptions

        @Flag(
            help:
                "Refuse rule files that load with a warning of the loader (an undefined list-like name alone in in (...), which Falco compares as a value): exit 1 with its file:line:column."
        )
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
            print(
                "\(ruleSet.rules.count) rules (\(enabled) enabled), \(ruleSet.macros.count) macros, \(ruleSet.lists.count) lists: OK"
            )
            print("kernel events needed: " + engine.requiredEvents.sorted().joined(separator: " "))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "List the loaded rules: id, priority, MITRE technique, name; for rules with an action, what it does on this kernel (deny (fanotify), deny (cgroup), kill after the syscall (kernel) or (user space))."
        )

        @OptionGroup var rules: RuleOptions

        @Flag(
            help:
                "Refuse rule files that load with a warning of the loader (an undefined list-like name alone in in (...), which Falco compares as a value): exit 1 with its file:line:column."
        )
        var strict = false

        func run() throws {
            let ruleSet = try rules.load()
            // Probed only when a rule could use it (and as root; otherwise nothing is available).
            let refusable = ruleSet.rules.contains { rule in
                guard rule.action != nil, let patterns = KernelEnforcement.patterns(for: rule) else { return false }
                return FanotifyRules.covers(patterns) || patterns.contains { !$0.cgroupPrograms.isEmpty }
            }
            let kernel = refusable ? EnforcementKernel.current : EnforcementKernel(cgroup: false)
            for rule in ruleSet.rules {
                let mitre = rule.mitre.joined(separator: ",")
                var state = rule.enabled ? "" : " (disabled)"
                if let action = rule.action {
                    state += " [\(action.rawValue): \(Enforcer.plan(for: rule, kernel: kernel))]"
                }
                print(
                    "\(rule.id.padding(toLength: 8, withPad: " ", startingAt: 0)) \(rule.priority.rawValue.uppercased().padding(toLength: 13, withPad: " ", startingAt: 0)) \(mitre.padding(toLength: 22, withPad: " ", startingAt: 0)) \(rule.name)\(state)"
                )
            }
            if refusable && !(kernel.cgroup && kernel.fanotify) {
                let why =
                    geteuid() != 0 ? "probed without root; detect runs as root: run this as root to see" : kernel.reason
                let missing = [
                    kernel.cgroup ? nil : "cgroup programs", kernel.fanotify ? nil : "fanotify permission events",
                ].compactMap { $0 }
                print(
                    "\(missing.joined(separator: " and ")) not available here (\(why.isEmpty ? "probe refused" : why)): what they would refuse is killed after the syscall"
                )
            }
        }
    }
}
