import Foundation
import JSON

/// Why one line of a Tracee JSON file is not an event.
public struct TraceeJSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The line's number in its file, from 1.
    public let lineNumber: Int
    public let message: String

    public init(lineNumber: Int, message: String) {
        self.lineNumber = lineNumber
        self.message = message
    }

    public var description: String { "line \(lineNumber): \(message)" }
}

/// Reads recorded events back from JSON lines as `caduceus trace` (`JSONEventWriter`) or Aqua
/// Tracee writes them: one compact object per line (Tracee's `--output json`, not the
/// pretty-printed `jq` view; `jq -c` turns that back into lines).
///
/// Lines are decoded straight from their bytes (`TraceeDirectDecoder`); a line that decoder
/// does not vouch for (an error, an escape, a quoted number) is read again with the JSON
/// module's tree parser and `event(from:)`, which define the mapping below. Both give the
/// same event or the same error for every line.
///
/// What it accepts and how it maps it:
/// - Tracee v0.6's fields, and the fields later Tracee added: `processorId` becomes `cpu`,
///   `container{id,name,image,imageDigest}` (or v0.7's flat `containerName`/`containerImage`)
///   becomes `container`; the rest (`kubernetes`, `matchedPolicies`, `cgroupId`, `executable`,
///   `syscall`, `contextFlags`, `metadata`, `stackAddresses`, ...) is ignored. `argsNum` is
///   ignored too: `TraceEvent` counts its `args`.
/// - `eventName` is required. `eventId` may be a string (`"257"`, v0.6) or a number; when it is
///   missing, the sensor's id for that name (or empty). Missing or `null` numbers are 0, missing
///   strings empty; a number that does not fit its field is an error.
/// - A non-empty `containerId` always comes with a `container` (with empty name and image when
///   the line has none), and a `container` without a `containerId` sets it, so the two agree
///   as they do in the sensor's own events. A `container` with an empty id (later Tracee writes
///   `{}` for host processes) is no container.
/// - `cpu` is 0 when the line has no `processorId`: Caduceus's own JSON, like Tracee v0.6's,
///   does not record it.
/// - Argument values: a whole number is `.int`, or `.uint` when the sensor's table declares the
///   argument unsigned (so events read back equal the events written) or when it exceeds
///   `Int64.max`; a fraction or exponent keeps its text as `.string`; `true`/`false` are
///   `.int(1)`/`.int(0)` as in C. A string is `.string`; an array is `.strings` (numbers and other
///   non-strings as their JSON text); an object (a sockaddr) is `.fields` in member order. `null`
///   is the empty value of the argument's kind: `.strings([])` for string arrays
///   (`const char**`, `const char*const*`, `[]string`), `.fields([])` for a sockaddr, `.int(0)` or
///   `.uint(0)` for a number the sensor's table knows, otherwise `.string("")`.
public enum TraceeJSONReader {
    /// What one pass over a file saw. Blank lines are neither events nor errors.
    public struct LineCounts: Sendable, Equatable {
        public var events = 0
        public var errors = 0

        public init(events: Int = 0, errors: Int = 0) {
            self.events = events
            self.errors = errors
        }
    }

    /// Which decoder reads a file's lines.
    public enum LineDecoding: Sendable {
        /// Straight from the bytes (`TraceeDirectDecoder`), with the tree parser for the lines it
        /// does not vouch for: the same events and errors as `.tree`, several times faster.
        case direct
        /// The JSON module's parser, then `event(from:)`: the reference, kept for comparison.
        case tree
    }

    /// One event from one line (without its newline); a line that is not an event throws
    /// with `lineNumber` and why.
    public static func event(fromLine line: UnsafeRawBufferPointer, lineNumber: Int = 1) throws(TraceeJSONError)
        -> TraceEvent
    {
        var decoder = TraceeDirectDecoder()
        return try decode(line, lineNumber: lineNumber, decoder: &decoder).get()
    }

    /// One event from the bytes of one line (`[UInt8]`, `Data`, a slice of either).
    public static func event(fromLine line: some Collection<UInt8>, lineNumber: Int = 1) throws(TraceeJSONError)
        -> TraceEvent
    {
        var decoder = TraceeDirectDecoder()
        let result =
            line.withContiguousStorageIfAvailable {
                decode(UnsafeRawBufferPointer($0), lineNumber: lineNumber, decoder: &decoder)
            }
            ?? Array(line).withUnsafeBytes { decode($0, lineNumber: lineNumber, decoder: &decoder) }
        return try result.get()
    }

    /// One event from one line of text.
    public static func event(fromLine line: String, lineNumber: Int = 1) throws(TraceeJSONError) -> TraceEvent {
        var line = line
        var decoder = TraceeDirectDecoder()
        return try line.withUTF8 { decode(UnsafeRawBufferPointer($0), lineNumber: lineNumber, decoder: &decoder) }.get()
    }

    /// Every event of the file at `path` (`-` for standard input), in order, streamed in large
    /// chunks (trace files run to gigabytes). A line that is not an event goes to `onError` and
    /// is counted; reading goes on. An error thrown by `body` stops the reading and is rethrown.
    @discardableResult
    public static func forEach(
        path: String, decoding: LineDecoding = .direct, onError: (TraceeJSONError) -> Void,
        _ body: (TraceEvent) throws -> Void
    ) throws -> LineCounts {
        if path == "-" { return try forEach(in: .standardInput, decoding: decoding, onError: onError, body) }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SensorConfigurationError(description: "cannot read \(path)")
        }
        defer { try? handle.close() }
        return try forEach(in: handle, decoding: decoding, onError: onError, body)
    }

    /// Every event read from an open file or pipe, as `forEach(path:onError:_:)`.
    @discardableResult
    public static func forEach(
        in handle: FileHandle, decoding: LineDecoding = .direct, onError: (TraceeJSONError) -> Void,
        _ body: (TraceEvent) throws -> Void
    ) throws -> LineCounts {
        var counts = LineCounts()
        var lineNumber = 0
        var decoder = TraceeDirectDecoder()
        try TraceLineChunks.forEach(fileDescriptor: handle.fileDescriptor) { line in
            lineNumber += 1
            guard line.contains(where: { !isWhitespace($0) }) else { return }
            let result =
                decoding == .direct
                ? decode(line, lineNumber: lineNumber, decoder: &decoder) : decodeWithTree(line, lineNumber: lineNumber)
            switch result {
            case .success(let event):
                counts.events += 1
                try body(event)
            case .failure(let error):
                counts.errors += 1
                onError(error)
            }
        }
        return counts
    }

    /// The event of an already parsed line.
    public static func event(from value: JSONValue, lineNumber: Int = 1) throws(TraceeJSONError) -> TraceEvent {
        guard case .object(let object) = value else {
            throw TraceeJSONError(
                lineNumber: lineNumber, message: "not an event: \(value.kindDescription), not an object")
        }
        let fields = FieldReader(lineNumber: lineNumber)
        var event = TraceEvent(eventId: "", eventName: "")
        var eventName: String?
        var eventId: String?
        var containerId: String?
        var container: ContainerInfo?
        var flatContainer = (name: "", image: "")
        var arguments: [JSONValue] = []
        for (key, member) in object.members {  // the array itself: iterating JSONObject is not specialized here
            switch key {
            case "timestamp": event.timestamp = try fields.integer(member, key)
            case "processId": event.processId = try fields.integer(member, key)
            case "threadId": event.threadId = try fields.integer(member, key)
            case "parentProcessId": event.parentProcessId = try fields.integer(member, key)
            case "hostProcessId": event.hostProcessId = try fields.integer(member, key)
            case "hostThreadId": event.hostThreadId = try fields.integer(member, key)
            case "hostParentProcessId": event.hostParentProcessId = try fields.integer(member, key)
            case "userId": event.userId = try fields.integer(member, key)
            case "mountNamespace": event.mountNamespace = try fields.integer(member, key)
            case "pidNamespace": event.pidNamespace = try fields.integer(member, key)
            case "processName": event.processName = try fields.string(member, key)
            case "hostName": event.hostName = try fields.string(member, key)
            case "containerId": containerId = try fields.string(member, key)
            case "containerName": flatContainer.name = try fields.string(member, key)
            case "containerImage": flatContainer.image = try fields.string(member, key)
            case "container": container = try fields.container(member)
            case "eventId":
                switch member {
                case .string(let text), .number(let text): eventId = text
                case .null: break
                default: throw fields.error("eventId is \(member.kindDescription), not a string or number")
                }
            case "eventName":
                guard case .string(let name) = member else {
                    throw fields.error("eventName is \(member.kindDescription), not a string")
                }
                eventName = name
            case "returnValue": event.returnValue = try fields.integer(member, key)
            case "processorId": event.cpu = try fields.integer(member, key)
            case "args":
                switch member {
                case .array(let elements): arguments = elements
                case .null: break  // Go writes an empty slice as null
                default: throw fields.error("args is \(member.kindDescription), not an array")
                }
            default: continue  // argsNum, stackAddresses, and the fields TraceEvent does not carry
            }
        }
        guard let eventName else { throw fields.error("not an event: no eventName") }
        event.eventName = eventName
        let definition = EventTable.definition(named: eventName)
        event.eventId = eventId ?? definition.map { String($0.id) } ?? ""
        if let containerId, !containerId.isEmpty {
            event.containerId = containerId
            event.container =
                container
                ?? ContainerInfo(id: containerId, name: flatContainer.name, image: flatContainer.image)
        } else if let container {
            event.containerId = container.id
            event.container = container
        }
        event.args.reserveCapacity(arguments.count)
        for (index, argument) in arguments.enumerated() {
            event.args.append(try fields.argument(argument, index: index, definition: definition))
        }
        return event
    }

    // MARK: - Parsing one line

    /// The line through the direct decoder, or through the tree parser when the direct decoder
    /// does not vouch for it (errors, escapes, unusual forms): the same result either way.
    static func decode(
        _ line: UnsafeRawBufferPointer, lineNumber: Int, decoder: inout TraceeDirectDecoder
    ) -> Result<TraceEvent, TraceeJSONError> {
        if let event = decoder.event(line) { return .success(event) }
        return decodeWithTree(line, lineNumber: lineNumber)
    }

    /// The reference path: the JSON module's parser, then `event(from:)`.
    static func decodeWithTree(_ line: UnsafeRawBufferPointer, lineNumber: Int) -> Result<TraceEvent, TraceeJSONError> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(buffer: line.assumingMemoryBound(to: UInt8.self))
        } catch let error as JSONParseError {
            return .failure(
                TraceeJSONError(lineNumber: lineNumber, message: "not JSON: \(error.message) at column \(error.column)")
            )
        } catch {
            return .failure(TraceeJSONError(lineNumber: lineNumber, message: "not JSON: \(error)"))
        }
        return Result { () throws(TraceeJSONError) in try event(from: value, lineNumber: lineNumber) }
    }

    /// `null` as an argument's value: the empty value of its kind (or, for an argument the
    /// sensor does not declare, of the kind its type names).
    static func emptyValue(type: String, kind: ArgumentKind?) -> ArgumentValue {
        guard let kind else {
            if type.hasSuffix("**") || type.hasSuffix("*const*") || type.hasPrefix("[]") { return .strings([]) }
            return type.contains("sockaddr") ? .fields([]) : .string("")
        }
        switch kind {
        case .stringArray: return .strings([])
        case .sockaddr: return .fields([])
        case .string: return .string("")
        case .s32, .s64: return .int(0)
        case .u32, .u64, .none: return .uint(0)
        }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// A value inside an argument's array or object as text: strings as they are, everything else as its JSON.
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text), .number(let text): return text
        case .null: return ""
        case .bool(let flag): return flag ? "true" : "false"
        case .array, .object: return JSONWriter().string(value)
        }
    }

    /// The typed reads of one line's members, each failing with the line number and the member's name.
    struct FieldReader {
        let lineNumber: Int

        func error(_ message: String) -> TraceeJSONError {
            TraceeJSONError(lineNumber: lineNumber, message: message)
        }

        func integer<Integer: FixedWidthInteger>(_ value: JSONValue, _ key: String) throws(TraceeJSONError) -> Integer {
            switch value {
            case .null:
                return 0
            case .number(let text), .string(let text):  // some exporters quote 64-bit numbers
                if let number = Integer(text) { return number }
                throw error("\(key) is \(text), not a whole number that fits \(Integer.self)")
            default:
                throw error("\(key) is \(value.kindDescription), not a number")
            }
        }

        func string(_ value: JSONValue, _ key: String) throws(TraceeJSONError) -> String {
            switch value {
            case .string(let text): return text
            case .null: return ""
            default: throw error("\(key) is \(value.kindDescription), not a string")
            }
        }

        func container(_ value: JSONValue) throws(TraceeJSONError) -> ContainerInfo? {
            switch value {
            case .null: return nil
            case .object(let object):
                guard let id = object["id"].map(text), !id.isEmpty else { return nil }
                return ContainerInfo(
                    id: id, name: object["name"].map(text) ?? "", image: object["image"].map(text) ?? "",
                    imageDigest: object["imageDigest"].map(text) ?? "")
            default: throw error("container is \(value.kindDescription), not an object")
            }
        }

        func argument(_ value: JSONValue, index: Int, definition: EventDefinition?) throws(TraceeJSONError)
            -> TraceArgument
        {
            guard case .object(let object) = value else {
                throw error("argument \(index + 1) is \(value.kindDescription), not an object")
            }
            let name = object["name"].map(text) ?? "arg\(index)"
            let type = object["type"].map(text) ?? "unknown"
            // The sensor's own declaration of this argument: it says whether a number is unsigned.
            let declared = definition.flatMap { definition in
                index < definition.arguments.count && definition.arguments[index].name == name
                    ? definition.arguments[index] : definition.arguments.first { $0.name == name }
            }
            return TraceArgument(
                name: name, type: type, value: argumentValue(object["value"] ?? .null, type: type, kind: declared?.kind)
            )
        }

        func argumentValue(_ value: JSONValue, type: String, kind: ArgumentKind?) -> ArgumentValue {
            let unsigned = kind.map { $0 == .u32 || $0 == .u64 || $0 == .none } ?? false
            switch value {
            case .number(let text):
                if unsigned, let number = UInt64(text) { return .uint(number) }
                if let number = Int64(text) { return .int(number) }
                if let number = UInt64(text) { return .uint(number) }
                return .string(text)
            case .string(let text): return .string(text)
            case .bool(let flag): return .int(flag ? 1 : 0)
            case .array(let elements): return .strings(elements.map(text))
            case .object(let object):
                return .fields(object.map { ArgumentValue.SocketField(key: $0.key, value: text($0.value)) })
            case .null: return TraceeJSONReader.emptyValue(type: type, kind: kind)
            }
        }
    }
}
