import SensorBPF

/// Which BPF programs the sensor loads for a configuration, and the settings that go with
/// them, computed without the kernel so tests can check the plan without root. `Sensor`
/// loads it: configure, load, fill the maps, attach.
struct SensorLoadPlan {
    /// The `const volatile` settings: the event selection applied, `lsm`, `cgroup_deny` and the
    /// per-syscall enforce flags set.
    private(set) var config: sensor_config
    /// Every program to load, the cgroup ones included.
    private(set) var programs: Set<String> = []
    /// The cgroup programs among them, attached to the cgroup v2 root instead of a tracepoint.
    let cgroupPrograms: [String]
    /// The kill patterns with `refusedInCgroup` set where a cgroup program refuses their calls.
    let kills: [KillPattern]

    /// `useLSM`: security events from BPF-LSM hooks (else derived from syscalls in the kernel);
    /// `refusesInCgroup`: the cgroup programs will be attached (a cgroup v2 root was found and
    /// the configuration allows them).
    init(configuration: SensorConfiguration, config initial: sensor_config, useLSM: Bool, refusesInCgroup: Bool) {
        var config = initial
        config.lsm = useLSM ? 1 : 0
        configuration.events.apply(to: &config, derivingSecurityEvents: !useLSM)
        var programs: Set<String> = []
        let events = configuration.events
        let ids = events.ids
        if events.needsSysEnter { programs.insert("on_sys_enter") }
        // One sys_exit program emits the syscalls' events and derives the security events from them.
        if events.needsSysExit || (events.needsDerivedSecurity && !useLSM) { programs.insert("on_sys_exit") }
        // Each event's own program, from its row: the lsm/ one where BPF-LSM is used, else its tracepoint's.
        for id in ids where id >= 1000 {
            guard let kernel = EventTable.definition(id: id)?.kernel else { continue }
            if useLSM, let lsm = kernel.lsmProgram {
                programs.insert(lsm)
            } else if let program = kernel.program {
                programs.insert(program)
            }
        }
        // Enforcement: the syscalls with kill patterns get a check at entry; exec patterns are
        // checked in on_sched_process_exec, which then must run.
        // Socket calls the cgroup programs refuse need no check at entry, unless an any-call
        // pattern must still kill for other socket families (AF_UNIX, ...).
        var kills = configuration.killPatterns
        let cgroupPrograms = refusesInCgroup ? CgroupDenial.programs(for: kills) : []
        for index in kills.indices {
            kills[index].refusedInCgroup = refusesInCgroup && !kills[index].cgroupPrograms.isEmpty
        }
        if !cgroupPrograms.isEmpty {
            config.cgroup_deny = 1
            programs.formUnion(cgroupPrograms)
        }
        let enforcedSyscalls = Set(
            kills.filter {
                $0.kind != .execPath && $0.kind != .execName && (!$0.refusedInCgroup || $0.kind == .syscall)
            }.map(\.syscall))
        if !enforcedSyscalls.isEmpty {
            programs.insert("on_sys_enter_enforce")
            withUnsafeMutableBytes(of: &config.syscalls) { raw in
                let rules = raw.bindMemory(to: sensor_syscall_rule.self)
                for nr in enforcedSyscalls where nr >= 0 && Int(nr) < rules.count {
                    rules[Int(nr)].flags |= UInt8(SENSOR_RULE_ENFORCE)
                }
            }
        }
        if kills.contains(where: { $0.kind == .execPath || $0.kind == .execName }) || config.exec_allow != 0 {
            programs.insert("on_sched_process_exec")
        }
        self.config = config
        self.programs = programs
        self.cgroupPrograms = cgroupPrograms
        self.kills = kills
    }

    /// Whether the enforce flag is set for syscall `nr`.
    func enforces(syscall nr: Int32) -> Bool {
        var config = config
        return withUnsafeBytes(of: &config.syscalls) { raw in
            let rules = raw.bindMemory(to: sensor_syscall_rule.self)
            return nr >= 0 && Int(nr) < rules.count && rules[Int(nr)].flags & UInt8(SENSOR_RULE_ENFORCE) != 0
        }
    }
}
