import SensorBPF

/// The declarative table of every event the sensor can emit: syscalls (generated from the
/// kernel's tracepoint formats) and the process-lifecycle and security events below.
public enum EventTable {
    /// Events that are not syscalls, with Tracee's ids, names, argument names and types.
    static let otherDefinitions: [EventDefinition] = [
        EventDefinition(
            id: Int32(SENSOR_EVENT_SCHED_PROCESS_FORK.rawValue), name: "sched_process_fork", sets: [.default, .proc],
            arguments: [
                .init("parent_tid", "int", .s32), .init("parent_ns_tid", "int", .s32),
                .init("parent_pid", "int", .s32), .init("parent_ns_pid", "int", .s32),
                .init("child_tid", "int", .s32), .init("child_ns_tid", "int", .s32),
                .init("child_pid", "int", .s32), .init("child_ns_pid", "int", .s32),
            ], source: .tracepoint("sched:sched_process_fork"),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_FORK), program: "on_sched_process_fork")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SCHED_PROCESS_EXEC.rawValue), name: "sched_process_exec", sets: [.default, .proc],
            arguments: [
                .init("cmdpath", "const char*", .string), .init("pathname", "const char*", .string),
                .init("dev", "dev_t", .u32), .init("inode", "unsigned long", .u64),
                .init("argv", "const char**", .stringArray), .init("interp", "const char*", .string),
                .init("tty", "dev_t", .u32),
                // The new image's context (exec_events.bpf.h): what Falco's execve exit carries.
                .init("gid", "gid_t", .u32), .init("cap_permitted", "u64", .u64), .init("cap_effective", "u64", .u64),
                .init("loginuid", "uid_t", .u32), .init("sid", "pid_t", .s32), .init("pgid", "pid_t", .s32),
                .init("exe_ctime", "u64", .u64), .init("exe_mtime", "u64", .u64), .init("cwd", "const char*", .string),
            ], source: .tracepoint("sched:sched_process_exec"),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_EXEC), program: "on_sched_process_exec")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SCHED_PROCESS_EXIT.rawValue), name: "sched_process_exit", sets: [.default, .proc],
            arguments: [.init("exit_code", "long", .s64), .init("signal", "int", .s32)],
            source: .tracepoint("sched:sched_process_exit"),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_EXIT), program: "on_sched_process_exit")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_CAP_CAPABLE.rawValue), name: "cap_capable", sets: [.default, .security],
            arguments: [.init("cap", "int", .s32), .init("syscall", "int", .s32)],
            source: .tracepoint("capability:cap_capable"),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_CAP_CAPABLE), program: "on_cap_capable")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_BPRM_CHECK.rawValue), name: "security_bprm_check",
            sets: [.default, .security, .proc],
            arguments: [
                .init("pathname", "const char*", .string), .init("dev", "dev_t", .u32),
                .init("inode", "unsigned long", .u64),
            ],
            source: .tracepoint("sched:sched_process_exec"),
            kernel: KernelSide(
                want: UInt32(SENSOR_WANT_BPRM_CHECK), program: "on_sched_process_exec", lsm: "lsm_bprm_check")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_FILE_OPEN.rawValue), name: "security_file_open",
            sets: [.default, .security, .fs],
            arguments: [
                .init("pathname", "const char*", .string), .init("flags", "int", .s32),
                .init("dev", "dev_t", .u32), .init("inode", "unsigned long", .u64),
            ], source: .derived(["open", "openat", "openat2", "creat"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_FILE_OPEN), lsm: "lsm_file_open")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_INODE_UNLINK.rawValue), name: "security_inode_unlink",
            sets: [.default, .security, .fs],
            arguments: [.init("pathname", "const char*", .string)], source: .derived(["unlink", "unlinkat"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_INODE_UNLINK), lsm: "lsm_inode_unlink")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_SOCKET_CREATE.rawValue), name: "security_socket_create",
            sets: [.default, .security, .net],
            arguments: [
                .init("family", "int", .s32), .init("type", "int", .s32), .init("protocol", "int", .s32),
                .init("kern", "int", .s32),
            ],
            source: .derived(["socket"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_SOCKET_CREATE), lsm: "lsm_socket_create")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_SOCKET_LISTEN.rawValue), name: "security_socket_listen",
            sets: [.default, .security, .net],
            arguments: [
                .init("sockfd", "int", .s32), .init("local_addr", "struct sockaddr*", .sockaddr),
                .init("backlog", "int", .s32),
            ],
            source: .derived(["listen"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_SOCKET_LISTEN), lsm: "lsm_socket_listen")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_SOCKET_CONNECT.rawValue), name: "security_socket_connect",
            sets: [.default, .security, .net],
            arguments: [.init("sockfd", "int", .s32), .init("remote_addr", "struct sockaddr*", .sockaddr)],
            source: .derived(["connect"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_SOCKET_CONNECT), lsm: "lsm_socket_connect")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_SOCKET_ACCEPT.rawValue), name: "security_socket_accept",
            sets: [.default, .security, .net],
            arguments: [.init("sockfd", "int", .s32), .init("local_addr", "struct sockaddr*", .sockaddr)],
            source: .derived(["accept", "accept4"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_SOCKET_ACCEPT), lsm: "lsm_socket_accept")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_SOCKET_BIND.rawValue), name: "security_socket_bind",
            sets: [.default, .security, .net],
            arguments: [.init("sockfd", "int", .s32), .init("local_addr", "struct sockaddr*", .sockaddr)],
            source: .derived(["bind"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_SOCKET_BIND), lsm: "lsm_socket_bind")),
        EventDefinition(
            id: Int32(SENSOR_EVENT_SECURITY_SB_MOUNT.rawValue), name: "security_sb_mount",
            sets: [.default, .security, .fs],
            arguments: [
                .init("dev_name", "const char*", .string), .init("path", "const char*", .string),
                .init("type", "const char*", .string), .init("flags", "unsigned long", .u64),
            ], source: .derived(["mount"]),
            kernel: KernelSide(want: UInt32(SENSOR_WANT_SB_MOUNT), lsm: "lsm_sb_mount")),
    ]

    /// The `SENSOR_WANT_*` bit and the syscalls each non-syscall event needs in the kernel,
    /// read from its row.
    static let wantBits: [Int32: (bit: UInt32, syscalls: [String])] = Dictionary(
        uniqueKeysWithValues: otherDefinitions.map { ($0.id, ($0.kernel.want, $0.derivedFrom)) })

    /// The events BPF-LSM programs can emit, by id.
    static let lsmPrograms: [Int32: String] = Dictionary(
        uniqueKeysWithValues: otherDefinitions.compactMap { definition in
            definition.kernel.lsmProgram.map { (definition.id, $0) }
        })

    /// Syscalls whose event is emitted at entry: they never return to the caller's image.
    public static let emittedAtEntry: Set<String> = ["execve", "execveat", "exit", "exit_group"]

    /// Calls of `emittedAtEntry` that are reported a second time, at exit, when they fail (a
    /// refused exec returns to its caller): that record has `TraceEvent.direction == .exit` and
    /// the error in `returnValue`.
    public static let reportedAgainWhenFailed: Set<String> = ["execve", "execveat"]

    /// Every event, syscalls first.
    public static let all: [EventDefinition] = syscallDefinitions + otherDefinitions

    /// Lookup by id without hashing: syscalls at their number, the others at 512 + (id - 1000).
    static let byIndex: [EventDefinition?] = {
        var table = [EventDefinition?](repeating: nil, count: Int(SENSOR_MAX_SYSCALLS) + 128)
        for definition in all {
            if let index = slot(definition.id) { table[index] = definition }
        }
        return table
    }()

    @inline(__always)
    static func slot(_ id: Int32) -> Int? {
        if id >= 0 && id < SENSOR_MAX_SYSCALLS { return Int(id) }
        if id >= 1000 && id < 1128 { return Int(SENSOR_MAX_SYSCALLS) + Int(id - 1000) }
        return nil
    }

    /// The definition of an event id, if the sensor knows it.
    public static func definition(id: Int32) -> EventDefinition? {
        guard let index = slot(id) else { return nil }
        return byIndex[index]
    }

    /// The definition of an event name, if the sensor knows it.
    public static func definition(named name: String) -> EventDefinition? { byName[name] }

    static let byName: [String: EventDefinition] = Dictionary(
        all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
}
