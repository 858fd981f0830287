import SensorBPF

/// A word of `--events` that names no event and no set.
public struct UnknownEventError: Error, CustomStringConvertible {
    public let word: String
    public var description: String {
        let sets = EventSets.named.map(\.0).joined(separator: " ")
        return
            "unknown event or set '\(word)': use an event name (openat, sched_process_exec, ...) or a set (\(sets) all)"
    }
}

/// The events a trace asks for, resolved to ids, and how they become kernel rules.
public struct EventSelection: Sendable, Equatable {
    public private(set) var ids: Set<Int32>

    public init(ids: Set<Int32>) { self.ids = ids }

    /// Tracee v0.6's default set: the syscalls and other events EventTable marks `.default`.
    public static let `default` = EventSelection(sets: .default)

    public init(sets: EventSets) {
        ids = Set(EventTable.all.filter { !$0.sets.isDisjoint(with: sets) }.map(\.id))
    }

    /// Parses names, set names and `all`; comma-separated or separate words.
    /// A leading `-` removes an event or set from what came before (`default,-close`).
    public init(parsing words: [String]) throws {
        ids = []
        for word in words.flatMap({ $0.split(separator: ",").map(String.init) }) {
            let removing = word.hasPrefix("-")
            let name = removing ? String(word.dropFirst()) : word
            let matched: Set<Int32>
            if name == "all" {
                matched = Set(EventTable.all.map(\.id))
            } else if let set = EventSets.named.first(where: { $0.0 == name })?.1 {
                matched = EventSelection(sets: set).ids
            } else if let definition = EventTable.definition(named: name) {
                matched = [definition.id]
            } else {
                throw UnknownEventError(word: word)
            }
            if removing { ids.subtract(matched) } else { ids.formUnion(matched) }
        }
    }

    /// Writes the per-syscall rules and the wanted-event bits into the kernel settings.
    /// Without `derivingSecurityEvents` (BPF-LSM supplies them), no syscall gets a derive rule.
    func apply(to config: inout sensor_config, derivingSecurityEvents: Bool = true) {
        var wants: UInt32 = 0
        var derivedFrom: Set<String> = []
        for id in ids where id >= 1000 {
            guard let want = EventTable.wantBits[id] else { continue }
            wants |= want.bit
            if derivingSecurityEvents { derivedFrom.formUnion(want.syscalls) }
        }
        config.events = wants
        withUnsafeMutableBytes(of: &config.syscalls) { raw in
            let rules = raw.bindMemory(to: sensor_syscall_rule.self)
            for definition in EventTable.syscallDefinitions {
                let nr = Int(definition.id)
                guard nr < rules.count else { continue }
                var rule = sensor_syscall_rule()
                if ids.contains(definition.id) { rule.flags |= UInt8(SENSOR_RULE_EMIT) }
                if derivedFrom.contains(definition.name) { rule.flags |= UInt8(SENSOR_RULE_DERIVE) }
                if EventTable.emittedAtEntry.contains(definition.name) && ids.contains(definition.id) {
                    rule.flags |= UInt8(SENSOR_RULE_AT_ENTER)
                    if EventTable.reportedAgainWhenFailed.contains(definition.name) {
                        rule.flags |= UInt8(SENSOR_RULE_FAILED_AT_EXIT)
                    }
                }
                withUnsafeMutableBytes(of: &rule.kinds) { kinds in
                    for (index, argument) in definition.arguments.prefix(Int(SENSOR_MAX_ARGS)).enumerated() {
                        kinds[index] = argument.kind.rawValue
                    }
                }
                rules[nr] = rule
            }
        }
    }

    /// Whether the kernel programs for syscalls are needed at all.
    var needsSysEnter: Bool {
        ids.contains { id in
            id < 1000 && EventTable.definition(id: id).map { EventTable.emittedAtEntry.contains($0.name) } == true
        }
    }
    /// A failed exec's result comes from sys_exit too.
    var needsSysExit: Bool {
        ids.contains { id in
            id < 1000
                && EventTable.definition(id: id).map {
                    !EventTable.emittedAtEntry.contains($0.name) || EventTable.reportedAgainWhenFailed.contains($0.name)
                } == true
        }
    }
    var needsDerivedSecurity: Bool {
        ids.contains { !(EventTable.wantBits[$0]?.syscalls.isEmpty ?? true) }
    }
}
