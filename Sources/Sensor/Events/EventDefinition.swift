import SensorBPF

/// How an argument travels from the kernel and how it is shown (mirrors `enum sensor_arg_kind`).
public enum ArgumentKind: UInt8, Sendable, CaseIterable {
    case none = 0
    case s32 = 1
    case u32 = 2
    case s64 = 3
    case u64 = 4
    case string = 5
    case sockaddr = 6
    case stringArray = 7
}

/// One argument of an event: Tracee's name and C type, and its wire kind.
public struct EventArgument: Sendable, Equatable {
    public let name: String
    public let type: String
    public let kind: ArgumentKind

    public init(_ name: String, _ type: String, _ kind: ArgumentKind) {
        self.name = name
        self.type = type
        self.kind = kind
    }
}

/// Named groups of events, selectable with `--events` (`syscalls fs net proc security default all`).
public struct EventSets: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let `default` = EventSets(rawValue: 1 << 0)
    public static let syscalls = EventSets(rawValue: 1 << 1)
    public static let fs = EventSets(rawValue: 1 << 2)
    public static let net = EventSets(rawValue: 1 << 3)
    public static let proc = EventSets(rawValue: 1 << 4)
    public static let ipc = EventSets(rawValue: 1 << 5)
    public static let signals = EventSets(rawValue: 1 << 6)
    public static let time = EventSets(rawValue: 1 << 7)
    public static let system = EventSets(rawValue: 1 << 8)
    public static let security = EventSets(rawValue: 1 << 9)

    /// The names accepted on the command line, in the order they are documented.
    public static let named: [(String, EventSets)] = [
        ("default", .default), ("syscalls", .syscalls), ("fs", .fs), ("net", .net), ("proc", .proc),
        ("ipc", .ipc), ("signals", .signals), ("time", .time), ("system", .system), ("security", .security),
    ]
}

/// Where the kernel takes an event from: the docs table in README is generated from this.
public enum EventSource: Sendable, Equatable {
    /// `raw_syscalls:sys_exit` (or `sys_enter` for calls that do not return), arguments from the saved registers.
    case syscall
    /// A scheduler or capability tracepoint of its own.
    case tracepoint(String)
    /// Derived in the kernel from the named syscalls' results, where BPF-LSM is refused.
    case derived([String])
}

/// What the kernel side needs for an event that is not a syscall of its own: the bit of
/// `sensor_config.events` that asks for it, the program that emits it from a tracepoint (or,
/// for a derived security event, the syscalls of `EventSource.derived`), and the `lsm/`
/// program that emits it instead where BPF-LSM is allowed.
public struct KernelSide: Sendable, Equatable {
    /// A `SENSOR_WANT_*` bit; 0 for syscalls.
    public let want: UInt32
    /// The tracepoint program (sensor.bpf.c) that emits the event, where one does.
    public let program: String?
    /// The `lsm/` program that emits it where BPF-LSM is allowed.
    public let lsmProgram: String?

    public init(want: UInt32 = 0, program: String? = nil, lsm: String? = nil) {
        self.want = want
        self.program = program
        self.lsmProgram = lsm
    }
}

/// Everything the sensor knows about one event: one row of the declarative event table, what
/// it means (name, sets, arguments) and what the kernel needs for it (source, kernel side).
public struct EventDefinition: Sendable {
    public let id: Int32
    public let name: String
    public let sets: EventSets
    public let arguments: [EventArgument]
    public let source: EventSource
    public let kernel: KernelSide

    public init(
        id: Int32, name: String, sets: EventSets, arguments: [EventArgument], source: EventSource,
        kernel: KernelSide = KernelSide()
    ) {
        self.id = id
        self.name = name
        self.sets = sets
        self.arguments = arguments
        self.source = source
        self.kernel = kernel
    }

    /// The syscalls a derived security event comes from; empty for the others.
    public var derivedFrom: [String] {
        if case .derived(let syscalls) = source { return syscalls }
        return []
    }

    /// A syscall row, as the generated table writes it.
    static func syscall(_ id: Int32, _ name: String, _ sets: EventSets, _ arguments: [EventArgument]) -> EventDefinition
    {
        EventDefinition(id: id, name: name, sets: sets.union(.syscalls), arguments: arguments, source: .syscall)
    }
}
