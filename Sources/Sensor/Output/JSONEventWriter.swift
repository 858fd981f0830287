import SensorBPF

/// Writes records as Tracee's JSON, one object per line, straight from the ring buffer
/// bytes. Every constant part (event names, argument names and types, a container's
/// fields) is encoded once and copied; integers and strings are written in place.
/// `JSONWriterTests` checks the output byte for byte against `JSONEncoder` on `TraceEvent`.
public struct JSONEventWriter {
    /// An upper bound of one event's JSON: an 8 KiB record with every byte escaped as \u00XX.
    public static let maximumEventBytes = 8192 * 6 + 4096

    let bootTimeOffset: UInt64
    /// The container of a cgroup, asked once per cgroup (a live resolver, or a recording's frames).
    let containerOf: (UInt64) -> ContainerInfo?
    private var containerFragments: [UInt64: UnsafeRawBufferPointer] = [:]
    private var lastCgroup: (id: UInt64, fragment: UnsafeRawBufferPointer)?
    private let fragments = Fragments.shared

    /// The constant JSON of every event and argument, encoded once into memory that lives as
    /// long as the process: reading it on the hot path costs no reference counting.
    final class Fragments: @unchecked Sendable {
        static let shared = Fragments()
        let events: UnsafeMutableBufferPointer<UnsafeRawBufferPointer>
        let arguments: UnsafeMutableBufferPointer<UnsafeBufferPointer<UnsafeRawBufferPointer>>

        init() {
            let table = EventTable.byIndex
            events = .allocate(capacity: table.count)
            arguments = .allocate(capacity: table.count)
            for (slot, definition) in table.enumerated() {
                let event =
                    definition.map { "\"eventId\":\"\($0.id)\",\"eventName\":\"\($0.name)\",\"argsNum\":" } ?? ""
                events[slot] = Self.immortal(event)
                let names = (definition?.arguments ?? []).map { argument in
                    Self.immortal("{\"name\":\"\(argument.name)\",\"type\":\"\(argument.type)\",\"value\":")
                }
                let list = UnsafeMutableBufferPointer<UnsafeRawBufferPointer>.allocate(capacity: names.count)
                _ = list.initialize(from: names)
                arguments[slot] = UnsafeBufferPointer(list)
            }
        }

        static func immortal(_ text: String) -> UnsafeRawBufferPointer {
            immortal(Array(text.utf8))
        }

        static func immortal(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
            let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            bytes.withUnsafeBytes { memory.copyMemory(from: $0) }
            return UnsafeRawBufferPointer(rebasing: memory[0..<bytes.count])
        }
    }

    public init(bootTimeOffset: UInt64, containers: ContainerResolver) {
        self.bootTimeOffset = bootTimeOffset
        containerOf = { containers.container(cgroupID: $0) }
    }

    /// Containers from somewhere else than a live resolver (a recording's container frames).
    public init(bootTimeOffset: UInt64, containerOf: @escaping (UInt64) -> ContainerInfo?) {
        self.bootTimeOffset = bootTimeOffset
        self.containerOf = containerOf
    }

    /// Bytes of JSON an event of `recordBytes` bytes can take at most, whatever its bytes say
    /// (a recording is input too): the fixed fields, the largest container fragment a recording
    /// can describe, every byte escaped as `\u00XX` and an argument's name for every 4 bytes.
    public static func bound(recordBytes: Int) -> Int {
        1024 + 4 * Recording.maximumStringBytes * 6 + 64 * recordBytes
    }

    public mutating func write(_ event: RawEvent, to out: OutputBuffer) {
        let header = event.header
        out.append("{\"timestamp\":" as StaticString)
        out.append(decimal: header.timestamp &+ bootTimeOffset)
        out.append(",\"processId\":" as StaticString)
        out.append(decimal: UInt64(header.pid))
        out.append(",\"threadId\":" as StaticString)
        out.append(decimal: UInt64(header.tid))
        out.append(",\"parentProcessId\":" as StaticString)
        out.append(decimal: UInt64(header.ppid))
        out.append(",\"hostProcessId\":" as StaticString)
        out.append(decimal: UInt64(header.host_pid))
        out.append(",\"hostThreadId\":" as StaticString)
        out.append(decimal: UInt64(header.host_tid))
        out.append(",\"hostParentProcessId\":" as StaticString)
        out.append(decimal: UInt64(header.host_ppid))
        out.append(",\"userId\":" as StaticString)
        out.append(decimal: UInt64(header.uid))
        out.append(",\"mountNamespace\":" as StaticString)
        out.append(decimal: UInt64(header.mnt_ns))
        out.append(",\"pidNamespace\":" as StaticString)
        out.append(decimal: UInt64(header.pid_ns))
        out.append(",\"processName\":" as StaticString)
        sensor_event_header.withCString(header.comm) { out.append(jsonString: $0) }
        out.append(",\"hostName\":" as StaticString)
        sensor_event_header.withCString(header.uts_name) { out.append(jsonString: $0) }
        out.append(UInt8(ascii: ","))
        out.append(containerFragment(header.cgroup_id))

        let id = Int32(bitPattern: header.event_id)
        let slot = EventTable.slot(id)
        if let slot, fragments.events[slot].count > 0 {
            out.append(fragments.events[slot])
        } else {
            out.append(Array("\"eventId\":\"\(id)\",\"eventName\":\"unknown_\(id)\",\"argsNum\":".utf8))
        }
        out.append(decimal: UInt64(header.argc))
        out.append(",\"returnValue\":" as StaticString)
        out.append(decimal: header.return_value)
        out.append(",\"stackAddresses\":null,\"args\":[" as StaticString)
        let names = slot.map { fragments.arguments[$0] } ?? UnsafeBufferPointer(start: nil, count: 0)
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
        out.append("]}\n" as StaticString)
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
            if SocketAddress.writeIPv4(argument.payload, to: out) { return }
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
    private mutating func containerFragment(_ cgroupID: UInt64) -> UnsafeRawBufferPointer {
        if let last = lastCgroup, last.id == cgroupID { return last.fragment }
        if let fragment = containerFragments[cgroupID] {
            lastCgroup = (cgroupID, fragment)
            return fragment
        }
        let container = containerOf(cgroupID)
        let name = String(container?.name.prefix(1000) ?? ""), image = String(container?.image.prefix(1000) ?? "")
        let digest = String(container?.imageDigest.prefix(1000) ?? "")
        // Sized from its content: a recording's container strings are input (up to 16 KiB each),
        // and an escaped byte takes up to 6 (`\u00XX`); OutputBuffer's appends are unchecked.
        let id = container?.id ?? ""
        let out = OutputBuffer(
            capacity: 128 + 6 * (2 * id.utf8.count + name.utf8.count + image.utf8.count + digest.utf8.count))
        out.append(Array("\"containerId\":".utf8))
        if container != nil {
            out.append(jsonString: id)
            out.append(Array(",\"container\":{\"id\":".utf8))
            out.append(jsonString: id)
            out.append(Array(",\"name\":".utf8))
            out.append(jsonString: name)
            out.append(Array(",\"image\":".utf8))
            out.append(jsonString: image)
            out.append(Array(",\"imageDigest\":".utf8))
            out.append(jsonString: digest)
            out.append(UInt8(ascii: "}"))
        } else {
            out.append(Array("\"\"".utf8))
        }
        out.append(UInt8(ascii: ","))
        let fragment = Fragments.immortal(Array(out.bytes))  // one per cgroup, kept for the process
        containerFragments[cgroupID] = fragment
        lastCgroup = (cgroupID, fragment)
        return fragment
    }
}
