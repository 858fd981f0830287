/// Falco's priorities, most severe first.
public enum RulePriority: String, Sendable, CaseIterable, Comparable {
    case emergency, alert, critical, error, warning, notice, informational, debug

    /// Accepts Falco's spellings in any case (`WARNING`, `Info`, `INFORMATIONAL`).
    public init?(falco text: String) {
        let lower = text.lowercased()
        if lower == "info" {
            self = .informational
            return
        }
        self.init(rawValue: lower)
    }

    public static func < (a: RulePriority, b: RulePriority) -> Bool {
        allCases.firstIndex(of: a)! > allCases.firstIndex(of: b)!
    }
}

/// One loaded rule: its condition parsed, macros, lists and exceptions expanded.
public struct Rule: Sendable {
    /// The stable id alerts carry (`id:` in the file; rules without one are known by name).
    public let id: String
    public let name: String
    public let description: String
    public let condition: Condition
    public let output: OutputTemplate
    public let priority: RulePriority
    public let tags: [String]
    /// MITRE ATT&CK technique ids (`mitre:` in the file, and tags such as `T1059.004`).
    public let mitre: [String]
    public let enabled: Bool
    /// Where the rule was (last) defined.
    public let location: SourceLocation
    /// What enforcement does when the rule fires (`action:` in the file), if it is turned on.
    public var action: RuleAction? = nil
}

/// A rule's `action:`: done only when the user turns enforcement on (`detect --enforce`).
public enum RuleAction: String, Sendable, CaseIterable {
    /// SIGKILL the process: from the kernel at the matching syscall where the kernel can
    /// evaluate the rule (`KernelEnforcement`), otherwise from user space when the alert fires.
    case kill
}

/// A rule file that cannot be loaded: where and why. Nothing of a failed load is kept.
public struct RuleError: Error, Equatable, CustomStringConvertible {
    public let location: SourceLocation
    public let message: String
    public var description: String { "\(location): \(message)" }
}
