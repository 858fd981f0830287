import JSON
import SensorBPF

/// An argument's decoded value.
public enum ArgumentValue: Sendable, Equatable {
    case int(Int64)
    case uint(UInt64)
    case string(String)
    case strings([String])
    /// A sockaddr's fields in Tracee's order (`sa_family`, then address and port or path).
    case fields([SocketField])

    public struct SocketField: Sendable, Equatable {
        public let key: String
        public let value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The value as a string when it is one.
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The value as a signed integer when it is one.
    public var integer: Int64? {
        switch self {
        case .int(let v): return v
        case .uint(let v): return Int64(bitPattern: v)
        default: return nil
        }
    }
    /// A sockaddr field by name.
    public func field(_ key: String) -> String? {
        if case .fields(let fields) = self { return fields.first { $0.key == key }?.value }
        return nil
    }

    init(_ argument: RawArgument) {
        switch argument.kind {
        case .s32, .s64: self = .int(Int64(bitPattern: argument.integer))
        case .u32, .u64, .none: self = .uint(argument.integer)
        case .string: self = .string(String(decoding: argument.stringBytes, as: UTF8.self))
        case .stringArray:
            var parts = argument.payload.split(separator: 0, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            if argument.payload.last == 0 { parts.removeLast() }
            self = .strings(parts)
        case .sockaddr:
            self = .fields(SocketAddress.fields(argument.payload).map { SocketField(key: $0.0, value: $0.1) })
        }
    }
}

/// One named, typed argument of an event.
public struct TraceArgument: Sendable, Equatable {
    public let name: String
    public let type: String
    public let value: ArgumentValue

    public init(name: String, type: String, value: ArgumentValue) {
        self.name = name
        self.type = type
        self.value = value
    }
}

/// When a syscall's record was taken (Falco's `evt.dir`: `>` entry, `<` exit).
public enum EventDirection: Sendable, Equatable {
    /// As the call began: the calls that do not return to their caller's image (`EventTable.emittedAtEntry`).
    case entry
    /// As the call returned, with its result: every other record.
    case exit
}

/// A decoded event with Tracee's fields: for rules, tests and the table view. The JSON
/// output does not go through it (see `JSONEventWriter`), but must encode identically.
public struct TraceEvent: Sendable, Equatable {
    public var timestamp: UInt64
    public var processId: UInt32
    public var threadId: UInt32
    public var parentProcessId: UInt32
    public var hostProcessId: UInt32
    public var hostThreadId: UInt32
    public var hostParentProcessId: UInt32
    public var userId: UInt32
    public var mountNamespace: UInt32
    public var pidNamespace: UInt32
    public var processName: String
    public var hostName: String
    public var containerId: String
    public var container: ContainerInfo?
    public var eventId: String
    public var eventName: String
    public var returnValue: Int64
    public var args: [TraceArgument]
    /// The CPU that recorded the event (not part of Tracee's v0.6 JSON).
    public var cpu: Int
    /// `sensor_event_header.flags`: whether the kernel killed this process (`killedBySlot`), refused
    /// the call (`deniedBySlot`), or took a failed exec's record at its exit (`direction`).
    /// Not part of Tracee's JSON.
    public var enforcementFlags: UInt32 = 0

    public var argsNum: Int { args.count }

    /// `.entry` for the record of a call reported as it begins (execve, execveat, exit, exit_group);
    /// `.exit` for every other record, among them the second record of a failed execve/execveat,
    /// which carries the error in `returnValue`. The sensor marks that one (SENSOR_EVENT_EXIT);
    /// Tracee JSON has no such mark, so there an exec record with a negative `returnValue` is the
    /// exit (the entry's is always 0). Events that are not syscalls read `.exit`.
    public var direction: EventDirection {
        if enforcementFlags & UInt32(SENSOR_EVENT_EXIT) != 0 { return .exit }
        guard EventTable.emittedAtEntry.contains(eventName) else { return .exit }
        return returnValue < 0 && EventTable.reportedAgainWhenFailed.contains(eventName) ? .exit : .entry
    }

    /// An argument's value by name.
    public subscript(argument name: String) -> ArgumentValue? {
        let count = name.utf8.count  // lengths first: String's == calls into the runtime for every pair that differs
        return args.first { $0.name.utf8.count == count && $0.name == name }?.value
    }

    /// An event built field by field (the detection engine's tests, `TraceeJSONReader`).
    /// `containerId` defaults to the container's id, as the sensor fills it.
    public init(
        timestamp: UInt64 = 0, processId: UInt32 = 0, threadId: UInt32 = 0, parentProcessId: UInt32 = 0,
        hostProcessId: UInt32 = 0, hostThreadId: UInt32 = 0, hostParentProcessId: UInt32 = 0,
        userId: UInt32 = 0, mountNamespace: UInt32 = 0, pidNamespace: UInt32 = 0,
        processName: String = "", hostName: String = "", containerId: String? = nil,
        container: ContainerInfo? = nil, eventId: String, eventName: String, returnValue: Int64 = 0,
        args: [TraceArgument] = [], cpu: Int = 0
    ) {
        self.timestamp = timestamp
        self.processId = processId
        self.threadId = threadId
        self.parentProcessId = parentProcessId
        self.hostProcessId = hostProcessId
        self.hostThreadId = hostThreadId
        self.hostParentProcessId = hostParentProcessId
        self.userId = userId
        self.mountNamespace = mountNamespace
        self.pidNamespace = pidNamespace
        self.processName = processName
        self.hostName = hostName
        self.containerId = containerId ?? container?.id ?? ""
        self.container = container
        self.eventId = eventId
        self.eventName = eventName
        self.returnValue = returnValue
        self.args = args
        self.cpu = cpu
    }

    public init(_ event: RawEvent, bootTimeOffset: UInt64, containers: ContainerResolver?) {
        let header = event.header
        timestamp = header.timestamp &+ bootTimeOffset
        processId = header.pid
        threadId = header.tid
        parentProcessId = header.ppid
        hostProcessId = header.host_pid
        hostThreadId = header.host_tid
        hostParentProcessId = header.host_ppid
        userId = header.uid
        mountNamespace = header.mnt_ns
        pidNamespace = header.pid_ns
        processName = sensor_event_header.withCString(header.comm) { String(decoding: $0, as: UTF8.self) }
        hostName = sensor_event_header.withCString(header.uts_name) { String(decoding: $0, as: UTF8.self) }
        container = containers?.container(cgroupID: header.cgroup_id)
        containerId = container?.id ?? ""
        let id = Int32(bitPattern: header.event_id)
        let definition = EventTable.definition(id: id)
        eventId = String(id)
        eventName = definition?.name ?? "unknown_\(id)"
        returnValue = header.return_value
        cpu = Int(header.cpu)
        enforcementFlags = header.flags
        args = event.arguments.map { argument in
            let spec = definition.flatMap { argument.index < $0.arguments.count ? $0.arguments[argument.index] : nil }
            return TraceArgument(
                name: spec?.name ?? "arg\(argument.index)", type: spec?.type ?? "unknown",
                value: ArgumentValue(argument))
        }
    }
}

extension TraceEvent: Encodable {
    enum CodingKeys: String, CodingKey {
        case timestamp, processId, threadId, parentProcessId, hostProcessId, hostThreadId, hostParentProcessId
        case userId, mountNamespace, pidNamespace, processName, hostName, containerId, container
        case eventId, eventName, argsNum, returnValue, stackAddresses, args
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(timestamp, forKey: .timestamp)
        try c.encode(processId, forKey: .processId)
        try c.encode(threadId, forKey: .threadId)
        try c.encode(parentProcessId, forKey: .parentProcessId)
        try c.encode(hostProcessId, forKey: .hostProcessId)
        try c.encode(hostThreadId, forKey: .hostThreadId)
        try c.encode(hostParentProcessId, forKey: .hostParentProcessId)
        try c.encode(userId, forKey: .userId)
        try c.encode(mountNamespace, forKey: .mountNamespace)
        try c.encode(pidNamespace, forKey: .pidNamespace)
        try c.encode(processName, forKey: .processName)
        try c.encode(hostName, forKey: .hostName)
        try c.encode(containerId, forKey: .containerId)
        if let container { try c.encode(container, forKey: .container) }
        try c.encode(eventId, forKey: .eventId)
        try c.encode(eventName, forKey: .eventName)
        try c.encode(argsNum, forKey: .argsNum)
        try c.encode(returnValue, forKey: .returnValue)
        try c.encodeNil(forKey: .stackAddresses)
        try c.encode(args, forKey: .args)
    }
}

extension TraceArgument: Encodable {
    enum CodingKeys: String, CodingKey { case name, type, value }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(type, forKey: .type)
        switch value {
        case .int(let v): try c.encode(v, forKey: .value)
        case .uint(let v): try c.encode(v, forKey: .value)
        case .string(let v): try c.encode(v, forKey: .value)
        case .strings(let v): try c.encode(v, forKey: .value)
        case .fields(let fields): try c.encode(OrderedFields(fields: fields), forKey: .value)
        }
    }

    private struct OrderedFields: Encodable {
        let fields: [ArgumentValue.SocketField]
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for field in fields { try c.encode(field.value, forKey: Key(stringValue: field.key)) }
        }
    }
}

extension TraceEvent {
    /// The event as a JSON value in Tracee's field order (JSONEncoder on Linux does not keep
    /// the order of keys; alerts embed their events this way).
    public var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("timestamp", .number(String(timestamp))), ("processId", .number(String(processId))),
            ("threadId", .number(String(threadId))), ("parentProcessId", .number(String(parentProcessId))),
            ("hostProcessId", .number(String(hostProcessId))), ("hostThreadId", .number(String(hostThreadId))),
            ("hostParentProcessId", .number(String(hostParentProcessId))), ("userId", .number(String(userId))),
            ("mountNamespace", .number(String(mountNamespace))), ("pidNamespace", .number(String(pidNamespace))),
            ("processName", .string(processName)), ("hostName", .string(hostName)),
            ("containerId", .string(containerId)),
        ]
        if let container {
            members.append(
                (
                    "container",
                    .object(
                        JSONObject([
                            ("id", .string(container.id)), ("name", .string(container.name)),
                            ("image", .string(container.image)),
                            ("imageDigest", .string(container.imageDigest)),
                        ]))
                ))
        }
        members += [
            ("eventId", .string(eventId)), ("eventName", .string(eventName)), ("argsNum", .number(String(argsNum))),
            ("returnValue", .number(String(returnValue))), ("stackAddresses", .null),
            (
                "args",
                .array(
                    args.map { argument in
                        let value: JSONValue
                        switch argument.value {
                        case .int(let v): value = .number(String(v))
                        case .uint(let v): value = .number(String(v))
                        case .string(let v): value = .string(v)
                        case .strings(let v): value = .array(v.map { .string($0) })
                        case .fields(let fields):
                            value = .object(JSONObject(fields.map { ($0.key, .string($0.value)) }))
                        }
                        return .object(
                            JSONObject([
                                ("name", .string(argument.name)), ("type", .string(argument.type)), ("value", value),
                            ]))
                    })
            ),
        ]
        return .object(JSONObject(members))
    }
}
