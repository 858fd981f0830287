import Foundation

extension TraceeDirectDecoder {
    /// The `args` array, mapped as `TraceeJSONReader.FieldReader.argument` maps each element.
    mutating func arguments(
        _ cursor: inout JSONByteCursor, definition: [EventArgument]?
    ) throws(NotDecodedDirectly) -> [TraceArgument] {
        try cursor.expect(UInt8(ascii: "["))
        cursor.skipWhitespace()
        if cursor.peek == UInt8(ascii: "]") {
            cursor.position += 1
            return []
        }
        var arguments: [TraceArgument] = []
        arguments.reserveCapacity(definition?.count ?? 4)
        repeat {
            cursor.skipWhitespace()
            arguments.append(try argument(&cursor, index: arguments.count, definition: definition))
        } while try cursor.separator(close: UInt8(ascii: "]"))
        return arguments
    }

    private mutating func argument(
        _ cursor: inout JSONByteCursor, index: Int, definition: [EventArgument]?
    ) throws(NotDecodedDirectly) -> TraceArgument {
        try cursor.expect(UInt8(ascii: "{"))
        let mark = keys.mark
        defer { keys.reset(to: mark) }
        var name: String?
        var type: String?
        var value: ArgumentValue?
        var deferredValue: UnsafePointer<UInt8>?  // a value written before its name or type
        cursor.skipWhitespace()
        if cursor.peek == UInt8(ascii: "}") {
            cursor.position += 1
        } else {
            repeat {
                let key = try cursor.memberName(&keys, since: mark)
                if key.equals("name") {
                    name = try text(&cursor)
                } else if key.equals("type") {
                    type = try text(&cursor)
                } else if key.equals("value") {
                    if let name, let type {
                        value = try argumentValue(
                            &cursor, type: type, kind: Self.kind(of: name, at: index, in: definition))
                    } else {
                        deferredValue = cursor.position
                        try cursor.skipValue(depth: 3, keys: &keys)
                    }
                } else {
                    try cursor.skipValue(depth: 3, keys: &keys)
                }
            } while try cursor.separator(close: UInt8(ascii: "}"))
        }
        let argumentName = name ?? "arg\(index)"
        let argumentType = type ?? "unknown"
        if value == nil {
            let kind = Self.kind(of: argumentName, at: index, in: definition)
            if let deferredValue {
                var again = cursor
                again.position = deferredValue
                value = try argumentValue(&again, type: argumentType, kind: kind)
            } else {
                value = TraceeJSONReader.emptyValue(type: argumentType, kind: kind)
            }
        }
        return TraceArgument(name: argumentName, type: argumentType, value: value!)
    }

    /// The sensor's own declaration of an argument: it says whether a number is unsigned.
    static func kind(of name: String, at index: Int, in definition: [EventArgument]?) -> ArgumentKind? {
        guard let definition else { return nil }
        if index < definition.count, definition[index].name == name { return definition[index].kind }
        return definition.first { $0.name == name }?.kind
    }

    /// A name, type, array element or sockaddr field: a string, or a number's or literal's text.
    private mutating func text(_ cursor: inout JSONByteCursor) throws(NotDecodedDirectly) -> String {
        switch cursor.peek {
        case UInt8(ascii: "\""): return try strings.string(try cursor.string())
        case UInt8(ascii: "n"):
            try cursor.literal("null")
            return ""
        case UInt8(ascii: "t"):
            try cursor.literal("true")
            return "true"
        case UInt8(ascii: "f"):
            try cursor.literal("false")
            return "false"
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            throw NotDecodedDirectly()  // JSON text of a nested value: the tree path writes it
        default:
            return try cursor.number().text
        }
    }

    private mutating func argumentValue(
        _ cursor: inout JSONByteCursor, type: String, kind: ArgumentKind?
    ) throws(NotDecodedDirectly) -> ArgumentValue {
        switch cursor.peek {
        case UInt8(ascii: "\""):
            return .string(try strings.string(try cursor.string()))
        case UInt8(ascii: "t"):
            try cursor.literal("true")
            return .int(1)
        case UInt8(ascii: "f"):
            try cursor.literal("false")
            return .int(0)
        case UInt8(ascii: "n"):
            try cursor.literal("null")
            return TraceeJSONReader.emptyValue(type: type, kind: kind)
        case UInt8(ascii: "["):
            cursor.position += 1
            var elements: [String] = []
            cursor.skipWhitespace()
            if cursor.peek == UInt8(ascii: "]") {
                cursor.position += 1
                return .strings([])
            }
            repeat {
                cursor.skipWhitespace()
                elements.append(try text(&cursor))
            } while try cursor.separator(close: UInt8(ascii: "]"))
            return .strings(elements)
        case UInt8(ascii: "{"):
            cursor.position += 1
            let mark = keys.mark
            defer { keys.reset(to: mark) }
            var fields: [ArgumentValue.SocketField] = []
            cursor.skipWhitespace()
            if cursor.peek == UInt8(ascii: "}") {
                cursor.position += 1
                return .fields([])
            }
            repeat {
                let key = try cursor.memberName(&keys, since: mark)
                fields.append(ArgumentValue.SocketField(key: try strings.string(key), value: try text(&cursor)))
            } while try cursor.separator(close: UInt8(ascii: "}"))
            return .fields(fields)
        default:
            let number = try cursor.number()
            // As the tree path: UInt64 first for the sensor's unsigned arguments, then Int64, then
            // UInt64; a fraction, an exponent or more than 64 bits keep the text.
            guard let magnitude = number.magnitude else { return .string(number.text) }
            if !number.negative {
                let unsigned = kind.map { $0 == .u32 || $0 == .u64 || $0 == .none } ?? false
                return unsigned || magnitude > UInt64(Int64.max) ? .uint(magnitude) : .int(Int64(magnitude))
            }
            guard magnitude > 0 else { throw NotDecodedDirectly() }  // -0: left to Int64/UInt64(text)
            guard magnitude <= UInt64(Int64.max) + 1 else { return .string(number.text) }
            return .int(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
    }
}

/// Event names seen, with the sensor's definition and id of each: a name costs a comparison,
/// not a string and a dictionary lookup. Direct-mapped; a name displaces the one in its slot.
struct EventNameCache {
    struct Entry {
        let name: String
        let id: String
        let arguments: [EventArgument]?
    }

    private var slots: [Entry?] = []
    static let slotCount = 256

    mutating func name(_ raw: JSONByteCursor.RawString) throws(NotDecodedDirectly) -> Entry {
        let slot = Int(StringInterner.hash(raw) >> 56)
        if slots.isEmpty { slots = Array(repeating: nil, count: Self.slotCount) }
        if let entry = slots[slot], StringInterner.equal(entry.name, raw) { return entry }
        let name = try raw.string()
        let definition = EventTable.definition(named: name)
        let entry = Entry(name: name, id: definition.map { String($0.id) } ?? "", arguments: definition?.arguments)
        slots[slot] = entry
        return entry
    }
}

/// Strings of 16 to 64 bytes seen before (argument types such as `struct sockaddr*`, paths a
/// program opens again and again): a hit returns the stored string instead of allocating a
/// new one. Direct-mapped and fixed in size, so hostile variety only displaces entries.
struct StringInterner {
    private var slots: [String] = []
    static let slotCount = 4096

    mutating func string(_ raw: JSONByteCursor.RawString) throws(NotDecodedDirectly) -> String {
        // Shorter strings are stored inline in the String (no allocation to save); longer ones are rare.
        guard raw.count >= 16, raw.count <= 64 else { return try raw.string() }
        let slot = Int(Self.hash(raw) >> 52)
        if slots.isEmpty { slots = Array(repeating: "", count: Self.slotCount) }
        if Self.equal(slots[slot], raw) { return slots[slot] }
        let text = try raw.string()
        slots[slot] = text
        return text
    }

    /// Length and three 8-byte words (first, middle, last) mixed: enough to tell paths apart.
    static func hash(_ raw: JSONByteCursor.RawString) -> UInt64 {
        var hash = UInt64(raw.count) &* 0x9E37_79B9_7F4A_7C15
        if raw.count >= 8 {
            let base = UnsafeRawPointer(raw.start)
            func mix(_ offset: Int) {
                hash = (hash ^ base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
                hash ^= hash >> 29
            }
            mix(0)
            mix((raw.count - 8) / 2)
            mix(raw.count - 8)
        } else {
            for index in 0..<raw.count { hash = (hash ^ UInt64(raw.start[index])) &* 0xFF51_AFD7_ED55_8CCD }
            hash ^= hash >> 29
        }
        return hash
    }

    static func equal(_ text: String, _ raw: JSONByteCursor.RawString) -> Bool {
        guard text.utf8.count == raw.count else { return false }
        return raw.count == 0
            || (text.utf8.withContiguousStorageIfAvailable { memcmp($0.baseAddress!, raw.start, raw.count) == 0 }
                ?? false)
    }
}
