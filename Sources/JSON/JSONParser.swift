/// A JSON syntax error, located by byte offset, line and column (both from 1).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int

    public var description: String { "\(message) at line \(line), column \(column)" }
}

/// Reads RFC 8259 JSON into ``JSONValue``, keeping member order and number text.
///
/// Hand-written because Foundation's parser loses both, and because it is on the hot path of
/// every write. Nesting is capped so that hostile input cannot exhaust the stack.
public struct JSONParser {
    public static let maximumDepth = 256
    /// Objects up to this many members find a duplicate key by scanning, larger ones by hashing.
    static let keyScanLimit = 16

    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Array(text.utf8))
    }

    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        if let value = try bytes.withContiguousStorageIfAvailable({ try parse(buffer: $0) }) {
            return value
        }
        return try Array(bytes).withUnsafeBufferPointer { try parse(buffer: $0) }
    }

    /// Parses the bytes in `buffer`.
    public static func parse(buffer: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var reader = Reader(bytes: buffer)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.position == buffer.count else { throw reader.error("Unexpected text after the JSON value") }
        return value
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func error(_ message: String) -> JSONParseError {
            var line = 1
            var column = 1
            for index in 0..<min(position, bytes.count) {
                if bytes[index] == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else if bytes[index] & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return JSONParseError(message: message, line: line, column: column)
        }

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        mutating func readValue(depth: Int) throws -> JSONValue {
            guard position < bytes.count else { throw error("Unexpected end of JSON") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try readObject(depth: depth + 1)
            case UInt8(ascii: "["): return try readArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try readString())
            case UInt8(ascii: "t"): try readLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try readLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try readLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try readNumber())
            default: throw error("Unexpected character '\(Character(Unicode.Scalar(bytes[position])))'")
            }
        }

        mutating func readLiteral(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw error("Invalid literal") }
            for offset in 0..<count where bytes[position + offset] != literal.utf8Start[offset] {
                throw error("Invalid literal")
            }
            position += count
        }

        mutating func readObject(depth: Int) throws -> JSONValue {
            guard depth <= JSONParser.maximumDepth else { throw error("JSON nested too deeply") }
            position += 1
            var members: [(key: String, value: JSONValue)] = []
            // Past a few members, keys are checked against a set: a scan of all earlier keys
            // would make an object of n members cost n² (and it runs before authentication,
            // on a token's header).
            var keys = Set<String>()
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(JSONObject(members))
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("Expected a property name")
                }
                let keyStart = position
                let key = try readString()
                let duplicate: Bool
                if members.count < JSONParser.keyScanLimit {
                    duplicate = members.contains { $0.key == key }
                } else {
                    if keys.isEmpty { keys = Set(members.lazy.map(\.key)) }
                    duplicate = !keys.insert(key).inserted
                }
                if duplicate {
                    position = keyStart
                    throw error("Duplicate property '\(key)'")
                }
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("Expected ':'") }
                position += 1
                skipWhitespace()
                let value = try readValue(depth: depth)
                members.append((key, value))
                skipWhitespace()
                guard position < bytes.count else { throw error("Unexpected end of JSON in an object") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(JSONObject(members))
                } else {
                    throw error("Expected ',' or '}'")
                }
            }
        }

        mutating func readArray(depth: Int) throws -> JSONValue {
            guard depth <= JSONParser.maximumDepth else { throw error("JSON nested too deeply") }
            position += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try readValue(depth: depth))
                skipWhitespace()
                guard position < bytes.count else { throw error("Unexpected end of JSON in an array") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                } else {
                    throw error("Expected ',' or ']'")
                }
            }
        }

        mutating func readNumber() throws -> String {
            let start = position
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("Invalid number") }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard position < bytes.count, isDigit(bytes[position]) else { throw error("Invalid number") }
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
                {
                    position += 1
                }
                guard position < bytes.count, isDigit(bytes[position]) else { throw error("Invalid number") }
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func readString() throws -> String {
            position += 1
            let start = position
            // Fast path: no escapes, valid UTF-8.
            var highBits: UInt8 = 0  // the top bit is set when a byte is not ASCII
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
                    position += 1
                    // ASCII needs no validating: String(validating:) looks up generic metadata on
                    // every call, a quarter of the time of reading a trace file back.
                    if highBits < 0x80 { return String(decoding: slice, as: UTF8.self) }
                    guard let string = String(validating: slice, as: UTF8.self) else {
                        throw error("Invalid UTF-8 in a string")
                    }
                    return string
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw error("Unescaped control character in a string") }
                highBits |= byte
                position += 1
            }
            var scratch = Array(UnsafeBufferPointer(rebasing: bytes[start..<position]))
            while position < bytes.count {
                let byte = bytes[position]
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    guard let string = String(validating: scratch, as: UTF8.self) else {
                        throw error("Invalid UTF-8 in a string")
                    }
                    return string
                case UInt8(ascii: "\\"):
                    position += 1
                    guard position < bytes.count else { break }
                    let escaped = bytes[position]
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(escaped)
                    case UInt8(ascii: "b"): scratch.append(0x08)
                    case UInt8(ascii: "f"): scratch.append(0x0C)
                    case UInt8(ascii: "n"): scratch.append(0x0A)
                    case UInt8(ascii: "r"): scratch.append(0x0D)
                    case UInt8(ascii: "t"): scratch.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try readHex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                                bytes[position + 1] == UInt8(ascii: "u")
                            else { throw error("Unpaired surrogate in a string") }
                            position += 2
                            let low = try readHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("Unpaired surrogate in a string") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            throw error("Unpaired surrogate in a string")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw error("Invalid \\u escape") }
                        scratch.append(contentsOf: String(Character(unicode)).utf8)
                    default:
                        position -= 1
                        throw error("Invalid escape in a string")
                    }
                default:
                    if byte < 0x20 { throw error("Unescaped control character in a string") }
                    scratch.append(byte)
                    position += 1
                }
            }
            throw error("Unterminated string")
        }

        mutating func readHex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("Invalid \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw error("Invalid \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }
    }
}
