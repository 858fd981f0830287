import Foundation
import Sensor

/// Which `action: kill` rules the kernel can decide itself, and the patterns it needs.
///
/// A rule qualifies when its condition (macros and exceptions expanded) is a conjunction of:
/// - `evt.type = X` / `evt.type in (...)` (required), `evt.dir` and `evt.res = SUCCESS` (ignored),
/// - `container.id != host` (the `container` macro): kill only outside the host,
/// - at most one subject: `fd.name` for open, openat, openat2, creat or security_file_open;
///   `proc.exepath` or `proc.name` for execve, execveat, sched_process_exec or
///   security_bprm_check; compared with `=`, `in (...)` or `startswith` (at most 127 bytes);
///   `fd.sip` (`=` or `in`, IPv4 or IPv6 addresses) for connect, security_socket_connect or
///   bind, and for sendto with sendmsg (a rule naming both: the cgroup program that refuses an
///   addressed datagram cannot tell them apart).
/// Other syscalls qualify with no subject at all (init_module, finit_module, ptrace, mount,
/// ...): any call is killed. Anything else (`not`, `or`, other fields) is enforced from user space.
///
/// Socket calls (connect, bind, addressed UDP sends) with an IPv4 or IPv6 address are refused
/// with EPERM by cgroup programs where the kernel lets them attach (`KillPattern.cgroupPrograms`);
/// every other pattern kills the process at the syscall's entry, and the syscall still runs.
public enum KernelEnforcement {
    static let openCalls: [String: Int32] = [
        "open": SyscallNumber.open, "creat": SyscallNumber.creat, "openat": SyscallNumber.openat,
        "openat2": SyscallNumber.openat2,
    ]
    /// Calls whose `fd.sip` is the address they pass (a pattern of `.connectAddress`).
    static let addressedCalls: [String: Int32] = [
        "connect": SyscallNumber.connect, "security_socket_connect": SyscallNumber.connect, "bind": SyscallNumber.bind,
        "sendto": SyscallNumber.sendto, "sendmsg": SyscallNumber.sendmsg,
    ]
    static let execTypes: Set<String> = ["execve", "execveat", "sched_process_exec", "security_bprm_check"]
    /// Syscalls a pattern cannot be checked at (they do not return, or are exec).
    static let unenforceable: Set<String> = ["execve", "execveat", "exit", "exit_group", "rt_sigreturn"]

    /// The kernel patterns for `rule` (slots 0), or nil when the kernel cannot evaluate it.
    public static func patterns(for rule: Rule) -> [KillPattern]? {
        var types: Set<String>?
        var containersOnly = false
        var subject: (field: String, op: ConditionOperator, operands: [String])?
        for term in conjuncts(rule.condition) {
            switch term {
            case .compare(let field, let op, let operands) where field.name == "evt.type" && field.argument == nil:
                guard op == .equal || op == .in else { return nil }
                types = (types ?? Set(operands)).intersection(operands)
            case .compare(let field, let op, let operands)
            where field.name == "evt.dir" || (field.name == "evt.res" && op == .equal && operands == ["SUCCESS"]):
                continue
            case .compare(let field, .notEqual, let operands)
            where field.name == "container.id" && operands == ["host"]:
                containersOnly = true
            case .compare(let field, let op, let operands)
            where ["fd.name", "proc.exepath", "proc.name", "fd.sip"].contains(field.name) && field.argument == nil
                && [.equal, .in, .startswith].contains(op):
                guard subject == nil, !operands.isEmpty,
                    operands.allSatisfy({ !$0.isEmpty && $0.utf8.count <= KillPattern.maxText }),
                    (field.name != "proc.name" && field.name != "fd.sip") || op != .startswith
                else { return nil }
                subject = (field.name, op, operands)
            default:
                return nil
            }
        }
        guard let types, !types.isEmpty else { return nil }
        var patterns: [KillPattern] = []
        func add(_ kind: KillPattern.Kind, _ syscall: Int32) {
            for text in subject?.operands ?? [""] {
                patterns.append(
                    KillPattern(
                        kind: kind, syscall: syscall, text: text, prefix: subject?.op == .startswith,
                        containersOnly: containersOnly))
            }
        }
        for type in types.sorted() {
            if let nr = openCalls[type] {
                guard let subject else {
                    add(.syscall, nr)
                    continue
                }
                guard subject.field == "fd.name" else { return nil }
                add(.openPath, nr)
            } else if let nr = addressedCalls[type] {
                guard let subject else {
                    add(.syscall, nr)
                    continue
                }
                guard subject.field == "fd.sip" else { return nil }
                if nr == SyscallNumber.sendto || nr == SyscallNumber.sendmsg {
                    guard types.isSuperset(of: ["sendto", "sendmsg"]) else { return nil }
                }
                for text in subject.operands {
                    guard let pattern = KillPattern.connect(to: text, syscall: nr, containersOnly: containersOnly)
                    else { return nil }
                    patterns.append(pattern)
                }
            } else if type == "security_file_open" {
                guard subject?.field == "fd.name" else { return nil }
                for nr in openCalls.values.sorted() { add(.openPath, nr) }
            } else if execTypes.contains(type) {
                guard let subject, subject.field == "proc.name" || subject.field == "proc.exepath" else { return nil }
                add(subject.field == "proc.name" ? .execName : .execPath, 0)
            } else {
                guard subject == nil, !unenforceable.contains(type),
                    let definition = EventTable.definition(named: type),
                    definition.id >= 0, definition.id < 512
                else { return nil }
                add(.syscall, definition.id)
            }
        }
        // An exec of a path and of a name both reach the same check: keep one of each.
        var unique: [KillPattern] = []
        for pattern in patterns where !unique.contains(pattern) { unique.append(pattern) }
        return unique
    }

    static func conjuncts(_ condition: Condition) -> [Condition] {
        if case .and(let a, let b) = condition { return conjuncts(a) + conjuncts(b) }
        return [condition]
    }
}

/// What the user turned on: `detect --enforce`, `--enforce-rule`, `--enforce-container`,
/// `--enforce-profile`, `--dry-run`.
public struct EnforcementOptions: Sendable {
    /// Every rule with an action.
    public var all = false
    /// Only these rules (ids or names), and these drift kinds of a learned profile
    /// (`PROFILE-EXEC`, ...); with `all` false and no rule named, every rule with an action
    /// (unless only the profile is enforced).
    public var rules: [String] = []
    /// Only in these containers (name, or id prefix); empty: anywhere.
    public var containers: [String] = []
    /// Say what would be killed; kill nothing.
    public var dryRun = false
    /// Kill for every kind of drift from the learned profile (`ProfileDriftDetector.ruleIds`).
    public var profile = false

    public init(
        all: Bool = false, rules: [String] = [], containers: [String] = [], dryRun: Bool = false, profile: Bool = false
    ) {
        self.all = all
        self.rules = rules
        self.containers = containers
        self.dryRun = dryRun
        self.profile = profile
    }

    /// Off unless the user asked for something.
    public var isOn: Bool { all || !rules.isEmpty || !containers.isEmpty || dryRun || profile }

    /// The profile drift kinds asked for: all with `profile`, else the `PROFILE-*` ids in `rules`.
    public var profileRules: Set<String> {
        profile ? Set(ProfileDriftDetector.ruleIds) : Set(rules.filter { $0.hasPrefix("PROFILE-") })
    }
}

/// What this kernel offers enforcement beyond a kill: whether the cgroup programs that refuse
/// socket calls load and attach (`KernelProbe`'s `cgroup` probe), and whether fanotify
/// permission events refuse opens and execs (a fanotify guard runs: `Enforcer.fanotifyStarted`;
/// probed by `current` for `rules list`). Both need root.
public struct EnforcementKernel: Sendable, Equatable {
    /// Connect, bind and addressed UDP sends can be refused by cgroup programs.
    public var cgroup: Bool
    /// Opens and execs in containers can be refused by fanotify permission events.
    public var fanotify: Bool
    /// Why not, when not.
    public var reason: String

    public init(cgroup: Bool, fanotify: Bool = false, reason: String = "") {
        self.cgroup = cgroup
        self.fanotify = fanotify
        self.reason = reason
    }

    /// This machine, probed once: an allow-everything cgroup/connect4 program attached to the
    /// cgroup v2 root and detached at once, and a fanotify group of the permission class.
    public static let current: EnforcementKernel = {
        let fanotify = FanotifyGuard.probe()
        guard let result = KernelProbe.run().results.first(where: { $0.name == "cgroup" }) else {
            return EnforcementKernel(cgroup: false, fanotify: fanotify.available, reason: "not probed")
        }
        let reasons = [
            result.available ? "" : "cgroup: \(result.reason)",
            fanotify.available ? "" : "fanotify: \(fanotify.reason)",
        ]
        return EnforcementKernel(
            cgroup: result.available, fanotify: fanotify.available,
            reason: reasons.filter { !$0.isEmpty }.joined(separator: "; "))
    }()
}

/// Carries out the rules' actions: gives the sensor the kernel's kill patterns, and for each
/// alert of an enforced rule says what happened, killing from user space when the kernel did not.
///
/// Which mechanism acts for a rule (`mechanism(for:)`): cgroup programs refuse its socket calls
/// where they attach (`"denied (cgroup)"`: the call never ran); other kernel patterns kill at the
/// syscall's entry (`"killed after the syscall (kernel)"`); anything else is killed from user
/// space when the alert fires (`"killed after the syscall (user space)"`). The alert's action is
/// read from what the kernel marked on the event (`actionInKernel`), so it says what did happen.
public final class Enforcer: @unchecked Sendable {
    public let options: EnforcementOptions
    /// Enforced rules by id: the kernel's patterns, or nil for user space.
    public let enforced: [String: [KillPattern]?]
    /// Every kernel pattern, slots set, for `SensorConfiguration.killPatterns` (empty on a dry run).
    public let killPatterns: [KillPattern]
    /// Rules the kernel could evaluate but had no room for (more than 16 patterns).
    public let overflow: [String]
    /// Drift kinds of the learned profile whose alerts kill (`PROFILE-EXEC`, ...).
    public let profileRules: Set<String>
    /// The profile's executables for the kernel to enforce (PROFILE-EXEC enforced, not a dry
    /// run, and the list fits): `SensorConfiguration.execAllowList`.
    public let execAllowList: ExecAllowList?
    private let slotRules: [String]
    /// Each enforced rule's own kernel patterns, including those the kernel had no room for.
    private let ownPatterns: [String: [KillPattern]]
    /// What the kernel offers, probed (only when a pattern could use it) or given; updated by
    /// `sensorStarted(cgroupDenial:)` with what did attach.
    public private(set) var kernel: EnforcementKernel

    /// `profile` (and `profileContainer`, the container it applies to; default: every
    /// container of its image) when drift from a learned profile is checked: needed for
    /// `PROFILE-*` in `options.rules` and for `options.profile`.
    /// `kernel`: what this kernel offers (default: probed, when a pattern could be refused by a cgroup program).
    public init(
        rules: [Rule], options: EnforcementOptions, profile: ContainerProfile? = nil, profileContainer: String? = nil,
        kernel: EnforcementKernel? = nil
    ) throws {
        self.options = options
        let withAction = rules.filter { $0.action != nil && $0.enabled }
        let profileRules = options.profileRules
        let ruleReferences = options.rules.filter { !$0.hasPrefix("PROFILE-") }
        for reference in profileRules where !ProfileDriftDetector.ruleIds.contains(reference) {
            throw RuleError(
                location: SourceLocation(),
                message:
                    "--enforce-rule \(reference): no such profile drift kind (\(ProfileDriftDetector.ruleIds.joined(separator: ", ")))"
            )
        }
        if !profileRules.isEmpty && profile == nil {
            let what =
                options.profile
                ? "--enforce-profile" : "--enforce-rule " + profileRules.sorted().joined(separator: ", ")
            throw RuleError(location: SourceLocation(), message: "\(what) needs a learned profile (--profile)")
        }
        // Only the profile asked for: the rules' actions stay off.
        var chosen = options.all || profileRules.isEmpty ? withAction : []
        if !ruleReferences.isEmpty {
            for reference in ruleReferences where !rules.contains(where: { $0.id == reference || $0.name == reference })
            {
                throw RuleError(
                    location: SourceLocation(),
                    message: "--enforce-rule \(reference): no enabled rule has that id or name")
            }
            for reference in ruleReferences
            where !withAction.contains(where: { $0.id == reference || $0.name == reference }) {
                throw RuleError(
                    location: SourceLocation(), message: "--enforce-rule \(reference): the rule has no action")
            }
            chosen = withAction.filter { rule in ruleReferences.contains { $0 == rule.id || $0 == rule.name } }
        }
        self.profileRules = options.isOn ? profileRules : []
        if let profile, profileRules.contains("PROFILE-EXEC"), !options.dryRun {
            let list = ExecAllowList(
                paths: profile.executables, containers: profileContainer.map { [$0] } ?? [],
                image: profileContainer == nil ? profile.image : nil)
            execAllowList = list.fitsTheKernel && !list.paths.isEmpty ? list : nil
        } else {
            execAllowList = nil
        }
        var enforced: [String: [KillPattern]?] = [:]
        var patterns: [KillPattern] = []
        var slotRules: [String] = []
        var overflow: [String] = []
        if options.isOn {
            for rule in chosen {
                var kernel = KernelEnforcement.patterns(for: rule)
                if let found = kernel, !options.dryRun {
                    if patterns.count + found.count > KillPattern.maxPatterns {
                        overflow.append(rule.id)
                        kernel = nil
                    } else {
                        let slot = UInt8(slotRules.count)
                        slotRules.append(rule.id)
                        patterns += found.map {
                            var p = $0; p.slot = slot; return p
                        }
                    }
                }
                enforced[rule.id] = .some(kernel)
            }
        }
        self.enforced = enforced
        killPatterns = patterns
        self.slotRules = slotRules
        self.overflow = overflow
        ownPatterns = Dictionary(
            uniqueKeysWithValues: chosen.compactMap { rule in
                KernelEnforcement.patterns(for: rule).map { (rule.id, $0) }
            })
        let couldRefuse = patterns.contains { !$0.cgroupPrograms.isEmpty }
        var probed = kernel ?? (couldRefuse ? .current : EnforcementKernel(cgroup: false, reason: "not probed"))
        // Fanotify acts only where a guard runs, which whoever runs the sensor says.
        if kernel == nil { probed.fanotify = false }
        self.kernel = probed
    }

    /// Whether a fanotify guard refuses the covered rules' opens and execs (`FanotifyEnforcement`
    /// started): `mechanism(for:)` and `summary` say `.fanotify` for those rules from now on.
    public func fanotifyStarted(_ running: Bool) {
        kernel.fanotify = running
    }

    /// The sensor's report of its cgroup programs: where they did not attach, their patterns are
    /// killed at the syscall's entry instead, and `mechanism(for:)` says so from now on.
    public func sensorStarted(cgroupDenial: CgroupDenial) {
        guard !cgroupDenial.programs.isEmpty || cgroupDenial.failure != nil else { return }
        // Only the cgroup side: whether fanotify acts was said by `fanotifyStarted`.
        kernel.cgroup = cgroupDenial.failure == nil
        kernel.reason = cgroupDenial.failure ?? ""
    }

    /// How an enforced rule's matching calls are met on this kernel, strongest mechanism first;
    /// nil when the rule is not enforced (or on a dry run). `.cgroup` needs every kernel pattern
    /// of the rule to be a socket call the cgroup programs refuse; for any connect or bind that
    /// means its IPv4/IPv6 calls, while a call of another family (AF_UNIX) is still killed at
    /// entry (`summary` and `rules list` say so). The mechanism that did act on a given call is
    /// the alert's `action`, read from the event (`actionInKernel`).
    public func mechanism(for ruleId: String) -> EnforcementMechanism? {
        guard !options.dryRun, let entry = enforced[ruleId] else {
            return profileRules.contains(ruleId) && !options.dryRun
                ? (ruleId == "PROFILE-EXEC" && execAllowList != nil ? .kernelKill : .userSpaceKill) : nil
        }
        if refusedByFanotify(ruleId) != nil { return .fanotify }
        guard let patterns = entry else { return .userSpaceKill }
        return kernel.cgroup && patterns.allSatisfy({ !$0.cgroupPrograms.isEmpty }) ? .cgroup : .kernelKill
    }

    /// The rule's own patterns when a running fanotify guard refuses its calls (including a
    /// rule the kernel had no slots for), else nil.
    private func refusedByFanotify(_ ruleId: String) -> [KillPattern]? {
        guard kernel.fanotify, let own = ownPatterns[ruleId], FanotifyRules.covers(own) else { return nil }
        return own
    }

    /// What the kernel already did to the event's call or process, from its marks: a refusal
    /// by a cgroup program, a kill at a pattern; nil when it did nothing (user space acts then).
    /// Another mechanism that marks events (fanotify's verdicts) answers here too.
    func actionInKernel(_ event: TraceEvent, ruleId: String) -> String? {
        func by(_ slot: UInt8) -> String {
            slot == ExecAllowList.slot ? "PROFILE-EXEC" : Int(slot) < slotRules.count ? slotRules[Int(slot)] : "?"
        }
        for (slot, mechanism) in [(event.deniedBySlot, EnforcementMechanism.cgroup), (event.killedBySlot, .kernelKill)]
        {
            guard let slot else { continue }
            let rule = by(slot)
            return rule == ruleId ? mechanism.actionText : "\(mechanism.actionText), by \(rule)"
        }
        return nil
    }

    /// Whether a rule's alerts are enforced in `container` (by name or id prefix).
    func applies(to alert: Alert) -> Bool {
        guard enforced[alert.ruleId] != nil || profileRules.contains(alert.ruleId) else { return false }
        if options.containers.isEmpty { return true }
        let container = alert.container
        return options.containers.contains {
            $0 == container.name || (container.id != "host" && container.id.hasPrefix($0))
        }
    }

    /// Carries out the alert's action and records it in `alert.action`; alerts of rules
    /// without one, or not enforced, are left alone.
    public func enforce(_ alert: inout Alert) {
        guard applies(to: alert), let event = alert.events.first else { return }
        if options.dryRun {
            alert.action = "would kill"
            return
        }
        if let action = actionInKernel(event, ruleId: alert.ruleId) {
            alert.action = action
            return
        }
        let pid = pid_t(bitPattern: event.hostProcessId)
        guard pid > 1, pid != getpid() else {
            alert.action = "not killed: pid \(pid)"
            return
        }
        if kill(pid, SIGKILL) == 0 {
            alert.action = EnforcementMechanism.userSpaceKill.actionText
        } else {
            let reason = errno == ESRCH ? "the process had already exited" : String(cString: strerror(errno))
            alert.action = "kill failed (user space): \(reason)"
        }
    }

    /// What happens on this kernel to a call the pattern matches: "deny (fanotify)" (an open or
    /// exec of a rule fanotify covers, refused before it completes), "deny (cgroup)" (refused
    /// with EPERM before it runs) or "kill after the syscall (kernel)".
    static func plan(_ pattern: KillPattern, kernel: EnforcementKernel, fanotifyCovers: Bool) -> String {
        if fanotifyCovers {
            // Opens on the host are not marked: a rule that covers the host kills there.
            return pattern.kind == .openPath && !pattern.containersOnly
                ? "deny (fanotify) in containers, kill after the syscall (kernel) on the host" : "deny (fanotify)"
        }
        guard kernel.cgroup, !pattern.cgroupPrograms.isEmpty else { return "kill after the syscall (kernel)" }
        // Any connect or bind: the cgroup programs see IPv4 and IPv6 calls only.
        return pattern.kind == .syscall
            ? "deny (cgroup) for IPv4/IPv6, kill after the syscall (kernel) for other families" : "deny (cgroup)"
    }

    /// Per pattern of a rule, what happens on this kernel.
    static func plans(_ patterns: [KillPattern], kernel: EnforcementKernel) -> [String] {
        let fanotify = kernel.fanotify && FanotifyRules.covers(patterns)
        return patterns.map { plan($0, kernel: kernel, fanotifyCovers: fanotify) }
    }

    /// What `rules list` says a rule's action does on this kernel (`kernel` probed or given):
    /// per kernel pattern "deny (fanotify)", "deny (cgroup)" or "kill after the syscall
    /// (kernel)", else "kill after the syscall (user space)".
    public static func plan(for rule: Rule, kernel: EnforcementKernel) -> String {
        guard let patterns = KernelEnforcement.patterns(for: rule) else { return "kill after the syscall (user space)" }
        let plans = plans(patterns, kernel: kernel)
        var unique: [String] = []
        for plan in plans where !unique.contains(plan) { unique.append(plan) }
        return unique.count == 1
            ? unique[0] : zip(patterns, plans).map { "\($0.description): \($1)" }.joined(separator: "; ")
    }

    /// One line per enforced rule or drift kind: what happens on this kernel and, for the
    /// kernel's patterns, which calls.
    public var summary: [String] {
        enforced.keys.sorted().map { id in
            let where_: String
            if options.dryRun {
                where_ = "dry run"
            } else if let patterns = enforced[id]! ?? refusedByFanotify(id) {
                where_ = zip(patterns, Self.plans(patterns, kernel: kernel)).map { "\($1): \($0.description)" }.joined(
                    separator: "; ")
            } else {
                where_ = "kill after the syscall (user space)"
            }
            return "\(id): \(where_)"
        }
            + profileRules.sorted().map { id in
                let where_ =
                    options.dryRun
                    ? "dry run"
                    : id == "PROFILE-EXEC" && execAllowList != nil
                        ? "kill after the syscall (kernel; before the new image runs an instruction): exec allow list of \(execAllowList!.paths.count) executables in the "
                            + "profiled containers running at start; kill after the syscall (user space) elsewhere"
                        : "kill after the syscall (user space)"
                return "\(id): \(where_)"
            }
    }
}
