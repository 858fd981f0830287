import SensorBPF

/// Writes records as Tracee's JSON, one object per line, straight from the ring buffer
/// bytes. Every constant part (event names, argument names and types, a container's
/// fields) is encoded once and copied; integers and strings are written in place.
/// `JSONWriterTests` checks the output byte for byte against `JSONEncoder` on `TraceEvent`.
public struct JSONEventWriter {
    /// An upper bound of one event's JSON: an 8 KiB record with every byte escaped as \u00XX.
    public static let maximumEventBytes = 8192 * 6 + 4096

    let bootTimeOffset: UInt64
    let containers: ContainerResolver
    private var containerFragments: [UInt64: [UInt8]] = [:]
    private static let eventFragments: [[UInt8]?] = EventTable.byIndex.map { definition in
        definition.map { Array("\"eventId\":\"\($0.id)\",\"eventName\":\"\($0.name)\",\"argsNum\":".utf8) }
    }
    private static let argumentFragments: [[[UInt8]]] = EventTable.byIndex.map { definition in
        (definition?.arguments ?? []).map { argument in
            Array("{\"name\":\"\(argument.name)\",\"type\":\"\(argument.type)\",\"value\":".utf8)
        }
    }

    public init(bootTimeOffset: UInt64, containers: ContainerResolver) {
        self.bootTimeOffset = bootTimeOffset
        self.containers = containers
    }

    public mutating func write(_ event: RawEvent, to out: OutputBuffer) {
        let header = event.header
        out.append(Self.timestampKey)
        out.append(decimal: header.timestamp &+ bootTimeOffset)
        out.append(Self.processIdKey)
        out.append(decimal: UInt64(header.pid))
        out.append(Self.threadIdKey)
        out.append(decimal: UInt64(header.tid))
        out.append(Self.parentProcessIdKey)
        out.append(decimal: UInt64(header.ppid))
        out.append(Self.hostProcessIdKey)
        out.append(decimal: UInt64(header.host_pid))
        out.append(Self.hostThreadIdKey)
        out.append(decimal: UInt64(header.host_tid))
        out.append(Self.hostParentProcessIdKey)
        out.append(decimal: UInt64(header.host_ppid))
        out.append(Self.userIdKey)
        out.append(decimal: UInt64(header.uid))
        out.append(Self.mountNamespaceKey)
        out.append(decimal: UInt64(header.mnt_ns))
        out.append(Self.pidNamespaceKey)
        out.append(decimal: UInt64(header.pid_ns))
        out.append(Self.processNameKey)
        sensor_event_header.withCString(header.comm) { out.append(jsonString: $0) }
        out.append(Self.hostNameKey)
        sensor_event_header.withCString(header.uts_name) { out.append(jsonString: $0) }
        out.append(UInt8(ascii: ","))
        out.append(containerFragment(header.cgroup_id))

        let id = Int32(bitPattern: header.event_id)
        let slot = EventTable.slot(id)
        if let slot, let fragment = Self.eventFragments[slot] {
            out.append(fragment)
        } else {
            out.append(Array("\"eventId\":\"\(id)\",\"eventName\":\"unknown_\(id)\",\"argsNum\":".utf8))
        }
        out.append(decimal: UInt64(header.argc))
        out.append(Self.returnValueKey)
        out.append(decimal: header.return_value)
        out.append(Self.argsKey)
        let names = slot.map { Self.argumentFragments[$0] } ?? []
        var first = true
        for argument in event.arguments {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            if argument.index < names.count {
                out.append(names[argument.index])
            } else {
                out.append(Array("{\"name\":\"arg\(argument.index)\",\"type\":\"unknown\",\"value\":".utf8))
            }
            Self.writeValue(argument, to: out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(Self.end)
    }

    static func writeValue(_ argument: RawArgument, to out: OutputBuffer) {
        switch argument.kind {
        case .s32, .s64:
            out.append(decimal: Int64(bitPattern: argument.integer))
        case .u32, .u64, .none:
            out.append(decimal: argument.integer)
        case .string:
            out.append(jsonString: argument.stringBytes)
        case .stringArray:
            out.append(UInt8(ascii: "["))
            var first = true
            var start = 0
            let payload = argument.payload
            for index in 0..<payload.count where payload[index] == 0 {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.append(jsonString: UnsafeRawBufferPointer(rebasing: payload[start..<index]))
                start = index + 1
            }
            if start < payload.count {  // a last string cut off without its NUL
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(jsonString: UnsafeRawBufferPointer(rebasing: payload[start...]))
            }
            out.append(UInt8(ascii: "]"))
        case .sockaddr:
            out.append(UInt8(ascii: "{"))
            for (index, field) in SocketAddress.fields(argument.payload).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(jsonString: field.0)
                out.append(UInt8(ascii: ":"))
                out.append(jsonString: field.1)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `"containerId":"…",` plus the `container` object for container processes; cached per cgroup.
    private mutating func containerFragment(_ cgroupID: UInt64) -> [UInt8] {
        if let fragment = containerFragments[cgroupID] { return fragment }
        let out = OutputBuffer(capacity: 4096)
        out.append(Array("\"containerId\":".utf8))
        if let container = containers.container(cgroupID: cgroupID) {
            out.append(jsonString: container.id)
            out.append(Array(",\"container\":{\"id\":".utf8))
            out.append(jsonString: container.id)
            out.append(Array(",\"name\":".utf8))
            out.append(jsonString: String(container.name.prefix(1000)))
            out.append(Array(",\"image\":".utf8))
            out.append(jsonString: String(container.image.prefix(1000)))
            out.append(Array(",\"imageDigest\":".utf8))
            out.append(jsonString: String(container.imageDigest.prefix(1000)))
            out.append(UInt8(ascii: "}"))
        } else {
            out.append(Array("\"\"".utf8))
        }
        out.append(UInt8(ascii: ","))
        let fragment = Array(out.bytes)
        containerFragments[cgroupID] = fragment
        return fragment
    }

    private static let timestampKey = Array("{\"timestamp\":".utf8)
    private static let processIdKey = Array(",\"processId\":".utf8)
    private static let threadIdKey = Array(",\"threadId\":".utf8)
    private static let parentProcessIdKey = Array(",\"parentProcessId\":".utf8)
    private static let hostProcessIdKey = Array(",\"hostProcessId\":".utf8)
    private static let hostThreadIdKey = Array(",\"hostThreadId\":".utf8)
    private static let hostParentProcessIdKey = Array(",\"hostParentProcessId\":".utf8)
    private static let userIdKey = Array(",\"userId\":".utf8)
    private static let mountNamespaceKey = Array(",\"mountNamespace\":".utf8)
    private static let pidNamespaceKey = Array(",\"pidNamespace\":".utf8)
    private static let processNameKey = Array(",\"processName\":".utf8)
    private static let hostNameKey = Array(",\"hostName\":".utf8)
    private static let returnValueKey = Array(",\"returnValue\":".utf8)
    private static let argsKey = Array(",\"stackAddresses\":null,\"args\":[".utf8)
    private static let end = Array("]}\n".utf8)
}
