import Foundation
import Sensor

/// A field as a compiled rule reads it: its kind, and its argument (`evt.arg.NAME`'s
/// name, `proc.aname[N]`'s level).
struct CompiledField: Sendable, Equatable {
    let kind: FieldKind
    let type: FieldType
    let argument: String?
    /// `[N]` as a number (-1 when absent: "any ancestor").
    let level: Int

    init(_ reference: FieldReference) {
        let definition = FieldTable.byName[reference.name]
        kind = definition?.kind ?? .eventType
        type = definition?.type ?? .charbuf
        argument = reference.argument
        level = reference.argument.flatMap { Int($0) } ?? -1
    }
}

/// Where the "current descriptor" (fd.*) of an event comes from.
enum DescriptorSource: Sendable {
    case none
    /// The descriptor the syscall returned (open, socket, accept, dup, memfd_create).
    case returned
    /// The descriptor an argument names, and the address argument that describes its far end.
    case argument(String, address: String?)
    /// security_file_open: the path it reports.
    case openedPath
}

/// Per event type, what the engine needs to know: resolved once, looked up once per event. A
/// class, so that handing it to the view per event is one reference, not a copy of its tables.
final class EventTypeFacts: Sendable {
    let action: StateAction
    /// `evt.dir`: '>' for the events reported at syscall entry.
    let direction: String
    /// Its arguments that also read as names (ptrace's request, open's flags, ...).
    let symbols: [String: ArgumentDecoding]
    let descriptor: DescriptorSource
    /// Argument names for fs.path.name / source / target.
    let path: (name: String?, source: String?, target: String?)
    /// Falco's argument names that differ from the sensor's (`evt.arg.name` of an open).
    let aliases: [String: String]
    /// Its arguments that are user ids (matched by number or name).
    let userArguments: Set<String>

    /// `atExit`: the record of an entry-reported call taken at its exit (a failed exec).
    init(_ name: String, atExit: Bool = false) {
        action = atExit ? .none : StateAction.of(name)
        direction = EventTable.emittedAtEntry.contains(name) && !atExit ? ">" : "<"
        symbols = ArgumentSymbols.byEvent[name] ?? [:]
        aliases = FalcoArgumentNames.byEvent[name] ?? [:]
        userArguments = FalcoArgumentNames.userIDArguments[name] ?? []
        switch name {
        case "open", "openat", "openat2", "creat", "socket", "accept", "accept4", "memfd_create", "dup", "dup2", "dup3":
            descriptor = .returned
        case "security_file_open":
            descriptor = .openedPath
        case "security_socket_connect":
            descriptor = .argument("sockfd", address: "remote_addr")
        case "security_socket_bind", "security_socket_listen", "security_socket_accept":
            descriptor = .argument("sockfd", address: nil)
        default:
            let arguments = EventTable.definition(named: name)?.arguments.map(\.name) ?? []
            if let argument = ["fd", "sockfd", "oldfd"].first(where: arguments.contains) {
                descriptor = .argument(argument, address: ["addr", "dest_addr"].first(where: arguments.contains))
            } else {
                descriptor = .none
            }
        }
        switch name {
        case "rename", "renameat", "renameat2", "link", "linkat": path = ("newname", "oldname", "newname")
        case "symlink", "symlinkat": path = ("linkpath", "target", "linkpath")
        case "mount": path = ("target", "source", "target")
        case "security_sb_mount": path = ("path", "dev_name", "path")
        case "truncate": path = ("path", nil, nil)
        case "chdir": path = ("filename", nil, nil)
        default:
            let arguments = EventTable.definition(named: name)?.arguments.map(\.name) ?? ["pathname"]
            path = (arguments.contains("pathname") ? "pathname" : nil, nil, nil)
        }
    }
}

/// One event as rules see it: the event, its process, its descriptor, computed lazily
/// and reused across events so evaluating a rule allocates nothing it does not show.
final class EventView {
    let state: SystemState
    /// The event under evaluation, valid between `reset` and `release` only.
    private(set) var event: UnsafePointer<TraceEvent>
    private(set) var facts: EventTypeFacts
    /// `evt.type`: the event's name, or `execve` for a sched_process_exec seen as execve's exit.
    private(set) var type: String
    private(set) var direction: String
    private(set) var process: ProcessRecord
    private var descriptorResolved = false
    private var descriptorCache: (number: Int32?, descriptor: FileDescriptor?) = (nil, nil)
    /// The descriptor as the process table holds it, before this event's address is applied
    /// (fd.connected, fd.name_changed).
    private(set) var storedDescriptor: FileDescriptor?
    /// `evt.num`: the event's number in the engine's stream.
    var number: UInt64 = 0

    // Written once, at first use, and only read after: a view points at it before its first event.
    private nonisolated(unsafe) static let placeholder: UnsafeMutablePointer<TraceEvent> = {
        let pointer = UnsafeMutablePointer<TraceEvent>.allocate(capacity: 1)
        pointer.initialize(to: TraceEvent(eventId: "0", eventName: ""))
        return pointer
    }()

    init(state: SystemState) {
        self.state = state
        event = UnsafePointer(Self.placeholder)
        facts = EventTypeFacts("")
        type = ""
        direction = "<"
        process = ProcessRecord(pid: 0, ppid: 0, name: "")
    }

    func reset(_ event: UnsafePointer<TraceEvent>, facts: EventTypeFacts, process: ProcessRecord) {
        self.event = event
        self.facts = facts
        self.process = process
        type = event.pointee.eventName
        direction = facts.direction
        descriptorResolved = false
        generation &+= 1
    }

    /// Forgets the borrowed event.
    func release() {
        event = UnsafePointer(Self.placeholder)
        descriptorCache = (nil, nil)
        generation &+= 1
    }

    /// The same event as the exit of execve (Falco's `spawned_process`).
    func viewAsExecveExit() {
        type = "execve"
        direction = "<"
        generation &+= 1
    }

    var descriptor: (number: Int32?, descriptor: FileDescriptor?) {
        if descriptorResolved { return descriptorCache }
        descriptorResolved = true
        storedDescriptor = nil
        switch facts.descriptor {
        case .none:
            descriptorCache = (nil, nil)
        case .returned:
            let number = event.pointee.returnValue >= 0 ? Int32(truncatingIfNeeded: event.pointee.returnValue) : nil
            descriptorCache = (number, number.flatMap { process.descriptors[$0] })
            storedDescriptor = descriptorCache.descriptor
        case .openedPath:
            descriptorCache = (nil, argumentValue("pathname")?.string.map { FileDescriptor(kind: .file, path: $0) })
        case .argument(let name, let address):
            let number = argumentValue(name)?.integer.map { Int32(truncatingIfNeeded: $0) }
            var descriptor = number.flatMap { process.descriptors[$0] }
            storedDescriptor = descriptor
            if let address, let value = argumentValue(address), case let endpoint = SystemState.endpoint(value),
                !endpoint.ip.isEmpty
            {
                var described = descriptor ?? FileDescriptor(kind: SystemState.kind(of: value))
                if described.kind == .unix {
                    described.path = endpoint.ip
                } else if !described.isServer {
                    described.remoteIP = endpoint.ip
                    described.remotePort = endpoint.port
                }
                descriptor = described
            }
            descriptorCache = (number, descriptor)
        }
        return descriptorCache
    }

    /// An argument of the borrowed event, found without copying the event (calling
    /// `TraceEvent`'s subscript through `pointee` copied all of it, every time).
    func argumentValue(_ name: String) -> ArgumentValue? {
        event.pointee.args.withUnsafeBufferPointer { arguments in
            // Lengths first: String's == calls into the runtime for every pair that differs.
            let count = name.utf8.count
            for index in arguments.indices
            where arguments[index].name.utf8.count == count && arguments[index].name == name {
                return arguments[index].value
            }
            return nil
        }
    }

    // MARK: - Fields

    /// Field values already computed for this event: rules on one event type read the same
    /// few fields (the path, the open flags), so each is computed once per event. Fields with
    /// an argument (`evt.arg.X`, `proc.aname[N]`) are not kept.
    /// Kept in raw memory that the view owns: matching reads a cached value in place, where
    /// an array's element would be copied out, retained and released per comparison.
    private let cached: UnsafeMutablePointer<FieldValue?> = {
        let slots = UnsafeMutablePointer<FieldValue?>.allocate(capacity: FieldKind.allCases.count)
        slots.initialize(repeating: nil, count: FieldKind.allCases.count)
        return slots
    }()
    private let cachedIn: UnsafeMutablePointer<UInt64> = {
        let generations = UnsafeMutablePointer<UInt64>.allocate(capacity: FieldKind.allCases.count)
        generations.initialize(repeating: 0, count: FieldKind.allCases.count)
        return generations
    }()
    /// Changes whenever what the view shows changes (a new event, execve's view of it).
    private(set) var generation: UInt64 = 1

    deinit {
        cached.deinitialize(count: FieldKind.allCases.count)
        cached.deallocate()
        cachedIn.deallocate()
    }

    func value(_ field: CompiledField) -> FieldValue? {
        guard field.argument == nil else { return compute(field) }
        let slot = field.kind.rawValue
        if cachedIn[slot] == generation { return cached[slot] }
        let value = compute(field)
        cached[slot] = value
        cachedIn[slot] = generation
        return value
    }

    /// Whether the field `matcher` reads exists and matches, the value read where it is cached.
    func matches(_ matcher: Matcher) -> Bool {
        let field = matcher.field
        guard field.argument == nil else {
            guard let value = compute(field) else { return false }
            return matcher.matches(value)
        }
        let slot = field.kind.rawValue
        if cachedIn[slot] != generation {
            cached[slot] = compute(field)
            cachedIn[slot] = generation
        }
        return Self.matches(matcher, cached + slot)
    }

    private static func matches(_ matcher: Matcher, _ slot: UnsafeMutablePointer<FieldValue?>) -> Bool {
        switch slot.pointee {
        case .none: return false
        case .some(let value): return matcher.matches(value)
        }
    }

    private func compute(_ field: CompiledField) -> FieldValue? {
        switch field.kind {
        case .eventType: return .string(type)
        case .eventDirection: return .string(direction)
        case .eventResult:
            let result = event.pointee.returnValue
            if result >= 0 || type == "execve" && direction == ">" { return .string("SUCCESS") }
            return .string(ArgumentSymbols.errnoNames[-result] ?? "E\(-result)")
        case .eventRawResult: return .number(event.pointee.returnValue)
        case .eventTime: return .string(Self.rfc3339(event.pointee.timestamp))
        case .eventRawTime: return .number(Int64(clamping: event.pointee.timestamp))
        case .eventArgument: return argument(field.argument ?? "")
        case .eventIsOpenRead, .eventIsOpenWrite, .eventIsOpenExec:
            switch facts.action {
            case .open, .securityFileOpen: return openFlag(field.kind)
            default: return nil
            }
        case .processName:
            if case .exec = facts.action { return .string(process.name) }
            return .string(event.pointee.processName)
        case .processExePath: return .string(process.exePath)
        case .processExe: return process.argv.first.map { .string($0) } ?? .string(process.name)
        case .processCmdline: return .string(process.cmdline)
        case .processArgs: return .list(process.arguments)
        case .processPid: return .number(Int64(event.pointee.hostProcessId))
        case .processVpid: return .number(Int64(event.pointee.processId))
        case .processPpid: return .number(Int64(process.ppid))
        case .processParentName: return state.ancestor(of: process, level: 1).map { .string($0.name) }
        case .processParentExePath: return state.ancestor(of: process, level: 1).map { .string($0.exePath) }
        case .processParentCmdline: return state.ancestor(of: process, level: 1).map { .string($0.cmdline) }
        case .ancestorName:
            if field.level >= 0 { return state.ancestor(of: process, level: field.level).map { .string($0.name) } }
            return .list(state.ancestors(of: process).map(\.name))
        case .ancestorPid:
            if field.level >= 0 {
                return state.ancestor(of: process, level: field.level).map { .number(Int64($0.pid)) }
            }
            return .list(state.ancestors(of: process).map { String($0.pid) })
        case .processTty: return .number(process.tty)
        case .processExeUpperLayer: return .string(process.exeWrittenInContainer ? "true" : "false")
        case .processEnv: return process.environment.map { .list($0) }
        case .processStartTime: return .number(Int64(clamping: process.startTime))
        case .userId: return .number(Int64(event.pointee.userId))
        case .userName: return .string(state.userName(uid: event.pointee.userId, process: process) ?? "<NA>")
        case .fdNumber: return descriptor.number.map { .number(Int64($0)) }
        case .fdName: return descriptor.descriptor.map { .string($0.name) }
        case .fdDirectory:
            guard let d = descriptor.descriptor, d.kind == .file || d.kind == .directory else { return nil }
            if d.kind == .directory { return .string(d.path) }
            // Byte searches: Character-wise String indexing was a tenth of the engine's time.
            guard let slash = d.path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return .string("") }
            return .string(slash == d.path.startIndex ? "/" : String(d.path[..<slash]))
        case .fdFilename:
            guard let d = descriptor.descriptor, d.kind == .file || d.kind == .directory else { return nil }
            var path = Substring(d.path)
            while path.utf8.last == UInt8(ascii: "/") { path = path.dropLast() }
            guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return .string(String(path)) }
            return .string(String(path[path.utf8.index(after: slash)...]))
        case .fdType: return descriptor.descriptor.map { .string($0.kind.rawValue) }
        case .fdTypeChar: return descriptor.descriptor.map { .string($0.kind.typeChar) }
        case .fdSocketFamily:
            guard let d = descriptor.descriptor else { return nil }
            return d.kind == .ipv4 || d.kind == .ipv6 ? .string("ip") : d.kind == .unix ? .string("unix") : nil
        case .fdL4Protocol: return descriptor.descriptor?.l4proto.map { .string($0) }
        case .fdServerIP: return descriptor.descriptor?.serverIP.map { .string($0) }
        case .fdServerPort: return descriptor.descriptor?.serverPort.map { .number(Int64($0)) }
        case .fdClientIP: return descriptor.descriptor?.clientIP.map { .string($0) }
        case .fdClientPort: return descriptor.descriptor?.clientPort.map { .number(Int64($0)) }
        case .fdRemoteIP: return descriptor.descriptor?.remoteIP.map { .string($0) }
        case .fdRemotePort: return descriptor.descriptor?.remotePort.map { .number(Int64($0)) }
        case .fdLocalIP: return descriptor.descriptor?.localIP.map { .string($0) }
        case .fdLocalPort: return descriptor.descriptor?.localPort.map { .number(Int64($0)) }
        case .pathName: return facts.path.name.flatMap { argumentValue($0)?.string }.map { .string($0) }
        case .pathSource: return facts.path.source.flatMap { argumentValue($0)?.string }.map { .string($0) }
        case .pathTarget: return facts.path.target.flatMap { argumentValue($0)?.string }.map { .string($0) }
        case .containerId:
            return .string(event.pointee.containerId.isEmpty ? "host" : String(event.pointee.containerId.prefix(12)))
        case .containerName: return event.pointee.container.map { .string($0.name) }
        case .containerImage: return event.pointee.container.map { .string($0.image) }
        case .containerImageRepository:
            return event.pointee.container.map { .string(Self.splitImage($0.image).repository) }
        case .containerImageTag: return event.pointee.container.map { .string(Self.splitImage($0.image).tag) }
        default: return computeFalcoField(field)
        }
    }

    private func openFlag(_ kind: FieldKind) -> FieldValue {
        let flags = argumentValue("flags")?.integer ?? (event.pointee.eventName == "creat" ? 0o1101 : 0)
        let result: Bool
        switch kind {
        case .eventIsOpenRead: result = flags & 3 != 1  // O_RDONLY or O_RDWR
        case .eventIsOpenWrite: result = SystemState.isWrite(flags)
        default: result = flags & 0o100 != 0 && (argumentValue("mode")?.integer ?? 0) & 0o111 != 0
        }
        return .string(result ? "true" : "false")
    }

    /// `evt.arg.NAME`: the sensor's argument, or the one Falco's name stands for.
    func argument(_ given: String) -> FieldValue? {
        var name = given
        var found = argumentValue(name)
        if found == nil, let alias = facts.aliases[given] {
            if alias == FalcoArgumentNames.result { return .number(event.pointee.returnValue) }
            name = alias
            found = argumentValue(alias)
        }
        guard let value = found else { return nil }
        if !facts.userArguments.isEmpty, facts.userArguments.contains(name), let uid = value.integer, uid >= 0,
            uid < UInt32.max,
            let user = state.userName(uid: UInt32(uid), process: process)
        {
            return .list([user, String(uid)])
        }
        switch value {
        case .int(let n):
            return symbolic(name, n)
        case .uint(let n):
            return symbolic(name, Int64(bitPattern: n))
        case .string(let s): return .string(s)
        case .strings(let values): return .list(values)
        case .fields:
            let endpoint = SystemState.endpoint(value)
            if let port = endpoint.port { return .string("\(endpoint.ip):\(port)") }
            return .string(endpoint.ip)
        }
    }

    private func symbolic(_ name: String, _ number: Int64) -> FieldValue {
        guard !facts.symbols.isEmpty, let decoding = facts.symbols[name] else { return .number(number) }
        return .symbolic(number, decoding)
    }

    static func splitImage(_ image: String) -> (repository: String, tag: String) {
        let slash = image.lastIndex(of: "/") ?? image.startIndex
        if let at = image.firstIndex(of: "@") {
            return (String(image[..<at]), String(image[image.index(after: at)...]))
        }
        if let colon = image[slash...].lastIndex(of: ":") {
            return (String(image[..<colon]), String(image[image.index(after: colon)...]))
        }
        return (image, image.isEmpty ? "" : "latest")
    }

    static func rfc3339(_ nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(width - digits.count, 0)) + digits
        }
        return padded(Int(parts.tm_year) + 1900, 4) + "-" + padded(Int(parts.tm_mon) + 1, 2) + "-"
            + padded(Int(parts.tm_mday), 2)
            + "T" + padded(Int(parts.tm_hour), 2) + ":" + padded(Int(parts.tm_min), 2) + ":"
            + padded(Int(parts.tm_sec), 2)
            + "." + padded(Int(nanoseconds % 1_000_000_000), 9) + "Z"
    }
}
