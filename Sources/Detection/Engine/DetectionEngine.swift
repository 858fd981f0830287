import Foundation
import Sensor

/// Counters of one engine run.
public struct DetectionStatistics: Sendable {
    public var events: UInt64 = 0
    /// Rule conditions evaluated (an event is checked only against the rules of its type).
    public var evaluations: UInt64 = 0
    public var alerts: UInt64 = 0
    public var alertsByRule: [String: UInt64] = [:]

    public init() {}
}

/// The rule engine: keeps the process and descriptor state from every event, checks each
/// event against the rules indexed under its type, and raises alerts.
///
/// Not thread-safe: one engine belongs to the thread that reads the events.
public final class DetectionEngine {
    /// A rule's condition compiled for one event type: `evt.type` and `evt.dir`, known from
    /// the index, are folded away. A class: evaluating a rule must not copy it.
    final class CompiledRule {
        let rule: Rule
        let condition: CompiledCondition
        /// `condition` without reference counting (this rule keeps it alive).
        private let root: Unmanaged<CompiledCondition>

        init(rule: Rule, condition: CompiledCondition) {
            self.rule = rule
            self.condition = condition
            root = Unmanaged.passUnretained(condition)
        }

        func evaluate(_ view: EventView) -> Bool {
            root._withUnsafeGuaranteedRef { $0.evaluate(view) }
        }
    }

    /// Per event name: its facts and the rules to check, built on first sight. A class: the
    /// struct it was cost a dozen reference-count operations per event to copy out of the table.
    final class TypeEntry {
        let name: String
        let facts: EventTypeFacts
        let rules: [CompiledRule]
        /// `rules` and `execveRules` without reference counting, for the per-event loop (the
        /// entry keeps them alive).
        let ruleReferences: [Unmanaged<CompiledRule>]
        let execveRuleReferences: [Unmanaged<CompiledRule>]
        /// For sched_process_exec: rules that want it as execve's exit (Falco's spawned_process).
        let execveRules: [CompiledRule]
        /// An entry-reported call whose failure is reported again at its exit (execve).
        let reportedAgainAtExit: Bool

        init(
            name: String, facts: EventTypeFacts, rules: [CompiledRule], execveRules: [CompiledRule],
            reportedAgainAtExit: Bool
        ) {
            self.name = name
            self.facts = facts
            self.rules = rules
            self.execveRules = execveRules
            ruleReferences = rules.map { Unmanaged.passUnretained($0) }
            execveRuleReferences = execveRules.map { Unmanaged.passUnretained($0) }
            self.reportedAgainAtExit = reportedAgainAtExit
        }
    }

    public let rules: [Rule]
    public let state: SystemState
    private let typesByRule: [Set<String>?]
    /// Rules whose condition tests `evt.dir`: the only ones that see events reported at
    /// syscall entry (execve's '>'), since Falco evaluates exit events only and its
    /// `evt.type in (execve, execveat)` must match each exec once, at the exit.
    private let readsDirection: [Bool]
    private var entries: [String: TypeEntry] = [:]
    /// The entries of the last few event names, looked up before `entries`: a name from the
    /// same decoder is the same string, so comparing is a pointer comparison, not a hash.
    private var recentEntries: [TypeEntry] = []
    private var nextRecent = 0
    private let view: EventView
    /// Rules whose matches are counted or paired before they alert (Detectors/RuleDetectors).
    private let detectors = RuleDetectors()
    public private(set) var statistics = DetectionStatistics()
    /// Things a user should know about the rules (an event type the sensor never emits).
    public let warnings: [String]

    /// Compiles the enabled rules of `ruleSet`. Throws a `RuleError` for a rule whose
    /// operands cannot be prepared (an invalid regex).
    public init(ruleSet: RuleSet, state: SystemState = SystemState()) throws {
        self.state = state
        rules = ruleSet.rules.filter(\.enabled)
        var warnings: [String] = ruleSet.warnings.map(\.description)  // the loader's first
        for rule in rules {
            do {
                _ = try CompiledCondition(rule.condition)  // refuse an invalid regex now, not at the first event
            } catch let error as ConditionError {
                throw RuleError(location: rule.location, message: "rule '\(rule.name)': \(error.message)")
            }
            if let types = rule.condition.eventTypes {
                for type in types.sorted() where EventTable.definition(named: type) == nil {
                    warnings.append(
                        "\(rule.location): rule '\(rule.name)' names evt.type '\(type)', which the sensor never emits")
                }
            } else {
                warnings.append(
                    "\(rule.location): rule '\(rule.name)' does not restrict evt.type, so every event is checked against it"
                )
            }
        }
        typesByRule = rules.map(\.condition.eventTypes)
        readsDirection = rules.map { $0.condition.fields.contains { $0.name == "evt.dir" } }
        self.warnings = warnings
        view = EventView(state: state)
        state.readsEnvironment = rules.contains { rule in rule.condition.fields.contains { $0.name == "proc.env" } }
    }

    /// The event names the sensor must send: what the rules name, plus what keeps the
    /// process and descriptor tables right.
    public var requiredEvents: Set<String> {
        var names: Set<String> = ["sched_process_fork", "sched_process_exec", "sched_process_exit"]
        var fields: Set<String> = []
        for (index, rule) in rules.enumerated() {
            fields.formUnion(rule.condition.fields.map(\.name))
            fields.formUnion(rule.output.fields.map(\.name))
            guard let types = typesByRule[index] else { return Set(EventTable.all.map(\.name)) }
            names.formUnion(types)
        }
        if fields.contains(where: { $0.hasPrefix("fd.") }) {
            names.formUnion([
                "open", "openat", "openat2", "creat", "close", "dup", "dup2", "dup3", "socket", "connect", "bind",
                "listen",
                "accept", "accept4", "memfd_create",
            ])
        }
        if fields.contains("proc.is_exe_upper_layer") {
            names.formUnion(["security_file_open", "rename", "renameat", "renameat2", "link", "linkat"])
        }
        return names.filter { EventTable.definition(named: $0) != nil }
    }

    /// Checks one event; `raise` gets each alert, in rule order.
    public func process(_ event: TraceEvent, raise: (Alert) -> Void) {
        statistics.events += 1
        var entry = recentEntry(event.eventName)
        // A failed exec's second record (at its exit) is its own entry: Falco's execve exit.
        if entry.reportedAgainAtExit && event.direction == .exit { entry = self.entry(event.eventName, atExit: true) }
        let process = state.process(for: event)
        state.applyBefore(event, entry.facts.action, process)
        view.number = statistics.events
        if !entry.rules.isEmpty || !entry.execveRules.isEmpty {
            // The view borrows the event for the evaluation instead of copying its strings.
            withUnsafePointer(to: event) { pointer in
                if !entry.rules.isEmpty {
                    view.reset(pointer, facts: entry.facts, process: process)
                    check(entry.ruleReferences, raise)
                }
                if !entry.execveRules.isEmpty {
                    view.reset(pointer, facts: entry.facts, process: process)
                    view.viewAsExecveExit()
                    check(entry.execveRuleReferences, raise)
                }
                view.release()
            }
        }
        state.applyAfter(event, entry.facts.action, process)
    }

    private func check(_ rules: [Unmanaged<CompiledRule>], _ raise: (Alert) -> Void) {
        statistics.evaluations += UInt64(rules.count)
        for reference in rules {
            if reference._withUnsafeGuaranteedRef({ $0.evaluate(view) }) {
                let rule = reference.takeUnretainedValue()
                var note: String?
                if let gate = detectors.gate(rule.rule.id) {
                    guard let answer = gate(view) else { continue }
                    note = answer
                }
                statistics.alerts += 1
                statistics.alertsByRule[rule.rule.id, default: 0] += 1
                raise(alert(rule.rule, note: note))
            }
        }
    }

    private func recentEntry(_ name: String) -> TypeEntry {
        let found = recentEntries.withUnsafeBufferPointer { recent -> TypeEntry? in
            for index in recent.indices where recent[index].name == name { return recent[index] }
            return nil
        }
        if let found { return found }
        let entry = self.entry(name)
        if recentEntries.count < 8 {
            recentEntries.append(entry)
        } else {
            recentEntries[nextRecent] = entry
            nextRecent = (nextRecent + 1) % 8
        }
        return entry
    }

    private func entry(_ name: String, atExit: Bool = false) -> TypeEntry {
        let key = atExit ? name + "\u{0}<" : name
        if let known = entries[key] { return known }
        let facts = EventTypeFacts(name, atExit: atExit)
        let matchers = MatcherInterner()
        func compile(type: String, direction: String, where wanted: (Set<String>?) -> Bool) -> [CompiledRule] {
            rules.indices.compactMap { index in
                guard wanted(typesByRule[index]), direction == "<" || readsDirection[index] else { return nil }
                let condition = rules[index].condition.specialized(eventType: type, direction: direction)
                if case .constant(false) = condition { return nil }
                // Operands were checked in init: compiling again cannot fail.
                return (try? CompiledCondition(condition, sharing: matchers)).map {
                    CompiledRule(rule: rules[index], condition: $0)
                }
            }
        }
        let entry = TypeEntry(
            name: name, facts: facts,
            rules: compile(type: name, direction: facts.direction) { $0?.contains(name) ?? true },
            execveRules: name == "sched_process_exec"
                ? compile(type: "execve", direction: "<") { $0?.contains("execve") == true } : [],
            reportedAgainAtExit: !atExit && EventTable.reportedAgainWhenFailed.contains(name))
        entries[key] = entry
        return entry
    }

    private func alert(_ rule: Rule, note: String? = nil) -> Alert {
        let event = view.event.pointee
        let process = view.process
        let info = event.container
        let container = Alert.Container(
            id: event.containerId.isEmpty ? "host" : event.containerId, name: info?.name ?? "", image: info?.image ?? ""
        )
        let user = state.userName(uid: event.userId, process: process)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Alert(
            ruleId: rule.id, rule: rule.name, priority: rule.priority.rawValue,
            output: rule.output.render(view) + (note.map { $0.isEmpty ? "" : " (\($0))" } ?? ""),
            time: EventView.rfc3339(event.timestamp), timestamp: event.timestamp,
            raisedAt: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec), mitre: rule.mitre, tags: rule.tags,
            container: container,
            process: Alert.Process(
                process, name: view.value(CompiledField(FieldReference(name: "proc.name")))?.text, uid: event.userId,
                user: user),
            ancestors: state.ancestors(of: process).map { Alert.Process($0, uid: nil, user: nil) },
            events: [event])
    }
}
