import Foundation

/// Decodes one Tracee JSON line straight from its bytes into a `TraceEvent`, with
/// `TraceeJSONReader.event(from:)`'s mapping but no `JSONValue` tree in between (the tree parser
/// allocates a string and a node per member: about 115,000 lines per second).
///
/// It returns nil for every line it does not vouch for: any error, an escape in a string, a
/// quoted number, nesting past 64, member kinds the mapping rarely sees. The caller then reads
/// the line with the tree parser, so what this returns is always what the tree path returns
/// (`TraceeDirectDecoderTests` checks both on recordings and on hostile lines).
///
/// It keeps the last container, the last strings of a few members and the event names it has
/// seen, so that a recording's repeated values cost a comparison instead of an allocation.
/// One decoder per reading pass; not shared between threads.
struct TraceeDirectDecoder {
    var keys = KeyScratch()
    var strings = StringInterner()
    private var container = RecentString()
    private var containerObject: (bytes: [UInt8], info: ContainerInfo?) = ([], nil)
    private var containerId = RecentString()
    private var hostName = RecentString()
    private var processName = RecentString()
    var names = EventNameCache()

    /// The members `TraceeJSONReader` maps, in the order `JSONEventWriter` writes them (the
    /// search for a name starts after the previous one's), with the two it reads and ignores.
    enum Member: Int, CaseIterable {
        case timestamp, processId, threadId, parentProcessId, hostProcessId, hostThreadId, hostParentProcessId
        case userId, mountNamespace, pidNamespace, processName, hostName, containerId, container
        case eventId, eventName, argsNum, returnValue, stackAddresses, args, containerName, containerImage, processorId

        var name: StaticString {
            switch self {
            case .timestamp: "timestamp"
            case .processId: "processId"
            case .threadId: "threadId"
            case .parentProcessId: "parentProcessId"
            case .hostProcessId: "hostProcessId"
            case .hostThreadId: "hostThreadId"
            case .hostParentProcessId: "hostParentProcessId"
            case .userId: "userId"
            case .mountNamespace: "mountNamespace"
            case .pidNamespace: "pidNamespace"
            case .processName: "processName"
            case .hostName: "hostName"
            case .containerId: "containerId"
            case .container: "container"
            case .eventId: "eventId"
            case .eventName: "eventName"
            case .argsNum: "argsNum"
            case .returnValue: "returnValue"
            case .stackAddresses: "stackAddresses"
            case .args: "args"
            case .containerName: "containerName"
            case .containerImage: "containerImage"
            case .processorId: "processorId"
            }
        }

        static let count = allCases.count

        /// The member a name is, trying the one after `previous` first.
        static func find(_ key: JSONByteCursor.RawString, after previous: Int) -> Member? {
            for offset in 1...count {
                let member = Member(rawValue: (previous + offset) % count)!
                if key.equals(member.name) { return member }
            }
            return nil
        }
    }

    /// The event of one line, or nil when the tree parser must read it.
    mutating func event(_ line: UnsafeRawBufferPointer) -> TraceEvent? {
        var cursor = JSONByteCursor(line)
        let mark = keys.mark
        defer { keys.reset(to: mark) }
        return try? event(&cursor)
    }

    private mutating func event(_ cursor: inout JSONByteCursor) throws(NotDecodedDirectly) -> TraceEvent {
        cursor.skipWhitespace()
        try cursor.expect(UInt8(ascii: "{"))
        var event = TraceEvent(eventId: "", eventName: "")
        var seen: UInt32 = 0
        var previous = -1
        var eventId: String?
        var definition: [EventArgument]?
        var eventName: String?
        var containerId: String?
        var container: ContainerInfo?
        var flat = (name: "", image: "")
        let mark = keys.mark
        cursor.skipWhitespace()
        guard cursor.peek != UInt8(ascii: "}") else { throw NotDecodedDirectly() }  // no eventName
        repeat {
            cursor.skipWhitespace()
            let key = try cursor.string()
            cursor.skipWhitespace()
            try cursor.expect(UInt8(ascii: ":"))
            cursor.skipWhitespace()
            guard let member = Member.find(key, after: previous) else {
                try keys.insert(key, since: mark)
                try cursor.skipValue(depth: 1, keys: &keys)
                continue
            }
            guard seen & (1 << member.rawValue) == 0 else { throw NotDecodedDirectly() }  // a duplicate
            seen |= 1 << member.rawValue
            previous = member.rawValue
            switch member {
            case .timestamp: event.timestamp = try integer(&cursor)
            case .processId: event.processId = try integer(&cursor)
            case .threadId: event.threadId = try integer(&cursor)
            case .parentProcessId: event.parentProcessId = try integer(&cursor)
            case .hostProcessId: event.hostProcessId = try integer(&cursor)
            case .hostThreadId: event.hostThreadId = try integer(&cursor)
            case .hostParentProcessId: event.hostParentProcessId = try integer(&cursor)
            case .userId: event.userId = try integer(&cursor)
            case .mountNamespace: event.mountNamespace = try integer(&cursor)
            case .pidNamespace: event.pidNamespace = try integer(&cursor)
            case .returnValue: event.returnValue = try integer(&cursor)
            case .processorId: event.cpu = try integer(&cursor)
            case .processName: event.processName = try processName.read(&cursor)
            case .hostName: event.hostName = try hostName.read(&cursor)
            case .containerId: containerId = try self.containerId.read(&cursor)
            case .containerName: flat.name = try stringOrNull(&cursor)
            case .containerImage: flat.image = try stringOrNull(&cursor)
            case .container: container = try self.container(&cursor)
            case .eventId:
                switch cursor.peek {
                case UInt8(ascii: "\""): eventId = try cursor.string().string()
                case UInt8(ascii: "n"): try cursor.literal("null")
                default: eventId = try cursor.number().text
                }
            case .eventName:
                let name = try names.name(try cursor.string())
                eventName = name.name
                definition = name.arguments
                event.eventId = name.id
            case .args:
                if cursor.peek == UInt8(ascii: "n") {
                    try cursor.literal("null")
                } else {
                    // The arguments' meaning depends on the event: Caduceus and Tracee write the name first.
                    guard eventName != nil else { throw NotDecodedDirectly() }
                    event.args = try arguments(&cursor, definition: definition)
                }
            case .argsNum, .stackAddresses:
                try cursor.skipValue(depth: 1, keys: &keys)
            }
        } while try cursor.separator(close: UInt8(ascii: "}"))
        cursor.skipWhitespace()
        guard cursor.atEnd, let eventName else { throw NotDecodedDirectly() }
        event.eventName = eventName
        if let eventId { event.eventId = eventId }
        if let containerId, !containerId.isEmpty {
            event.containerId = containerId
            event.container = container ?? ContainerInfo(id: containerId, name: flat.name, image: flat.image)
        } else if let container {
            event.containerId = container.id
            event.container = container
        }
        return event
    }

    /// A whole number that fits, or null (0). Quoted numbers and the rest go to the tree parser.
    private func integer<Integer: FixedWidthInteger>(_ cursor: inout JSONByteCursor) throws(NotDecodedDirectly)
        -> Integer
    {
        if cursor.peek == UInt8(ascii: "n") {
            try cursor.literal("null")
            return 0
        }
        let number = try cursor.number()
        guard let magnitude = number.magnitude else { throw NotDecodedDirectly() }
        if !number.negative {
            guard let value = Integer(exactly: magnitude) else { throw NotDecodedDirectly() }
            return value
        }
        // -0 is left to the tree parser's Integer(text); the most negative value is -(magnitude - 1) - 1.
        guard Integer.isSigned, magnitude > 0, let value = Integer(exactly: magnitude - 1) else {
            throw NotDecodedDirectly()
        }
        return 0 &- value &- 1
    }

    private func stringOrNull(_ cursor: inout JSONByteCursor) throws(NotDecodedDirectly) -> String {
        if cursor.peek == UInt8(ascii: "n") {
            try cursor.literal("null")
            return ""
        }
        return try cursor.string().string()
    }

    /// A `container` object (nil for null or an empty id). The same bytes as the previous
    /// line's object are the same container: compared, not read again.
    private mutating func container(_ cursor: inout JSONByteCursor) throws(NotDecodedDirectly) -> ContainerInfo? {
        if cursor.peek == UInt8(ascii: "n") {
            try cursor.literal("null")
            return nil
        }
        let start = cursor.position
        let previous = containerObject.bytes
        if !previous.isEmpty, cursor.end - start >= previous.count,
            previous.withUnsafeBytes({ memcmp(start, $0.baseAddress!, $0.count) }) == 0
        {
            cursor.position += previous.count
            return containerObject.info
        }
        try cursor.expect(UInt8(ascii: "{"))
        var fields = (id: "", name: "", image: "", imageDigest: "")
        let mark = keys.mark
        defer { keys.reset(to: mark) }
        cursor.skipWhitespace()
        if cursor.peek == UInt8(ascii: "}") {
            cursor.position += 1
        } else {
            repeat {
                let key = try cursor.memberName(&keys, since: mark)
                if key.equals("id") {
                    fields.id = try self.containerId.read(&cursor)
                } else if key.equals("name") {
                    fields.name = try stringOrNull(&cursor)
                } else if key.equals("image") {
                    fields.image = try stringOrNull(&cursor)
                } else if key.equals("imageDigest") {
                    fields.imageDigest = try stringOrNull(&cursor)
                } else {
                    try cursor.skipValue(depth: 2, keys: &keys)
                }
            } while try cursor.separator(close: UInt8(ascii: "}"))
        }
        let info =
            fields.id.isEmpty
            ? nil
            : ContainerInfo(id: fields.id, name: fields.name, image: fields.image, imageDigest: fields.imageDigest)
        containerObject = (Array(UnsafeBufferPointer(start: start, count: cursor.position - start)), info)
        return info
    }
}

/// The last string read for one member, kept with its bytes: a recording repeats its process,
/// host and container names line after line.
struct RecentString {
    private var bytes: [UInt8] = []
    private var value = ""

    /// A string (or null, read as "") at the cursor.
    mutating func read(_ cursor: inout JSONByteCursor) throws(NotDecodedDirectly) -> String {
        if cursor.peek == UInt8(ascii: "n") {
            try cursor.literal("null")
            return ""
        }
        let raw = try cursor.string()
        let same = bytes.withUnsafeBufferPointer {
            $0.count == raw.count && memcmp($0.baseAddress ?? raw.start, raw.start, raw.count) == 0
        }
        if same { return value }
        value = try raw.string()
        bytes = Array(UnsafeBufferPointer(start: raw.start, count: raw.count))
        return value
    }
}
