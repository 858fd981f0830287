import Foundation

/// The direct decoder met something it does not vouch for (an escape, a quoted number, an error of
/// any kind): the line goes to the tree parser, whose answer is the reference.
struct NotDecodedDirectly: Error {}

/// A position in one line's bytes, read token by token without building values. Every read
/// either accepts exactly what `JSONParser` accepts or throws `NotDecodedDirectly`; it may throw
/// on valid JSON it does not handle (escapes, nesting past `maximumDepth`), never accept
/// invalid JSON.
struct JSONByteCursor {
    var position: UnsafePointer<UInt8>
    let end: UnsafePointer<UInt8>

    /// Nesting beyond this goes to the tree parser (whose own limit is deeper).
    static let maximumDepth = 64

    /// A string's bytes between its quotes, without escapes; `ascii` when no byte is above 0x7F.
    struct RawString {
        let start: UnsafePointer<UInt8>
        let count: Int
        let ascii: Bool

        /// The string, or a throw when its bytes are not UTF-8 (the tree parser refuses those).
        func string() throws(NotDecodedDirectly) -> String {
            let buffer = UnsafeBufferPointer(start: start, count: count)
            if ascii { return String(decoding: buffer, as: UTF8.self) }
            guard let text = String(validating: buffer, as: UTF8.self) else { throw NotDecodedDirectly() }
            return text
        }

        func validate() throws(NotDecodedDirectly) {
            if !ascii { _ = try string() }
        }

        func equals(_ text: StaticString) -> Bool {
            count == text.utf8CodeUnitCount && memcmp(start, text.utf8Start, count) == 0
        }

        func equals(_ other: RawString) -> Bool {
            count == other.count && memcmp(start, other.start, count) == 0
        }
    }

    /// A number's text and, when it is a whole number without fraction or exponent, its magnitude.
    struct RawNumber {
        let start: UnsafePointer<UInt8>
        let count: Int
        let negative: Bool
        /// Nil when the number has a fraction or exponent or does not fit 64 bits.
        let magnitude: UInt64?

        var text: String { String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self) }
    }

    init(_ line: UnsafeRawBufferPointer) {
        let base = line.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? UnsafePointer(bitPattern: 1)!
        position = base
        end = base + line.count
    }

    /// The next byte, or 0 at the end (0 is nowhere valid outside a string, and inside one it is
    /// an unescaped control character: both refused).
    var peek: UInt8 { position < end ? position.pointee : 0 }

    var atEnd: Bool { position >= end }

    mutating func skipWhitespace() {
        while position < end {
            switch position.pointee {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(NotDecodedDirectly) {
        guard position < end, position.pointee == byte else { throw NotDecodedDirectly() }
        position += 1
    }

    /// Whitespace, then `,` (true: another member follows) or `close` (false).
    mutating func separator(close: UInt8) throws(NotDecodedDirectly) -> Bool {
        skipWhitespace()
        guard position < end else { throw NotDecodedDirectly() }
        let byte = position.pointee
        position += 1
        if byte == UInt8(ascii: ",") { return true }
        if byte == close { return false }
        throw NotDecodedDirectly()
    }

    mutating func literal(_ text: StaticString) throws(NotDecodedDirectly) {
        let count = text.utf8CodeUnitCount
        guard end - position >= count, memcmp(position, text.utf8Start, count) == 0 else { throw NotDecodedDirectly() }
        position += count
    }

    /// A string at the cursor, opening quote included. Eight bytes at a time: a quote, a
    /// backslash or a control character stops the word loop, and the bytes are then looked at one by one.
    mutating func string() throws(NotDecodedDirectly) -> RawString {
        try expect(UInt8(ascii: "\""))
        let start = position
        var high: UInt64 = 0
        let ones: UInt64 = 0x0101_0101_0101_0101
        let tops: UInt64 = 0x8080_8080_8080_8080
        while end - position >= 8 {
            let word = UnsafeRawPointer(position).loadUnaligned(as: UInt64.self)
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let special =
                ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
            if special & tops != 0 { break }
            high |= word
            position += 8
        }
        var highByte = UInt8(truncatingIfNeeded: (high & tops) != 0 ? 0x80 : 0)
        while position < end {
            let byte = position.pointee
            if byte == UInt8(ascii: "\"") {
                let raw = RawString(start: start, count: position - start, ascii: highByte < 0x80)
                position += 1
                return raw
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { throw NotDecodedDirectly() }
            highByte |= byte
            position += 1
        }
        throw NotDecodedDirectly()
    }

    /// A number at the cursor, in JSON's grammar.
    mutating func number() throws(NotDecodedDirectly) -> RawNumber {
        let start = position
        let negative = peek == UInt8(ascii: "-")
        if negative { position += 1 }
        guard isDigit(peek) else { throw NotDecodedDirectly() }
        var magnitude: UInt64? = 0
        if position.pointee == UInt8(ascii: "0") {
            position += 1
        } else {
            var value: UInt64 = 0
            var overflow = false
            while position < end, isDigit(position.pointee) {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(position.pointee &- 0x30))
                overflow = overflow || o1 || o2
                value = sum
                position += 1
            }
            magnitude = overflow ? nil : value
        }
        if peek == UInt8(ascii: ".") {
            position += 1
            guard isDigit(peek) else { throw NotDecodedDirectly() }
            while position < end, isDigit(position.pointee) { position += 1 }
            magnitude = nil
        }
        if peek | 0x20 == UInt8(ascii: "e") {
            position += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { position += 1 }
            guard isDigit(peek) else { throw NotDecodedDirectly() }
            while position < end, isDigit(position.pointee) { position += 1 }
            magnitude = nil
        }
        return RawNumber(start: start, count: position - start, negative: negative, magnitude: magnitude)
    }

    /// An object member's name and its colon, checked against the object's other names.
    mutating func memberName(_ keys: inout KeyScratch, since mark: Int) throws(NotDecodedDirectly) -> RawString {
        skipWhitespace()
        let key = try string()
        try keys.insert(key, since: mark)
        skipWhitespace()
        try expect(UInt8(ascii: ":"))
        skipWhitespace()
        return key
    }

    func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    /// Checks one value of any kind and steps over it; `keys` finds duplicate members in objects.
    mutating func skipValue(depth: Int, keys: inout KeyScratch) throws(NotDecodedDirectly) {
        switch peek {
        case UInt8(ascii: "\""): try string().validate()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try number()
        case UInt8(ascii: "["):
            guard depth < Self.maximumDepth else { throw NotDecodedDirectly() }
            position += 1
            skipWhitespace()
            if peek == UInt8(ascii: "]") {
                position += 1
                return
            }
            repeat {
                skipWhitespace()
                try skipValue(depth: depth + 1, keys: &keys)
            } while try separator(close: UInt8(ascii: "]"))
        case UInt8(ascii: "{"):
            guard depth < Self.maximumDepth else { throw NotDecodedDirectly() }
            position += 1
            let mark = keys.mark
            defer { keys.reset(to: mark) }
            skipWhitespace()
            if peek == UInt8(ascii: "}") {
                position += 1
                return
            }
            repeat {
                _ = try memberName(&keys, since: mark)
                try skipValue(depth: depth + 1, keys: &keys)
            } while try separator(close: UInt8(ascii: "}"))
        default:
            throw NotDecodedDirectly()
        }
    }
}

/// The member names of the objects being read, innermost last, to refuse a duplicate as the tree
/// parser does. Fixed capacity: an object with more names than fit goes to the tree parser.
struct KeyScratch {
    private var keys: [JSONByteCursor.RawString] = []
    static let capacity = 256

    init() { keys.reserveCapacity(Self.capacity) }

    var mark: Int { keys.count }

    mutating func reset(to mark: Int) { keys.removeSubrange(mark...) }

    /// Adds a member name of the object whose names start at `mark`; throws on a duplicate, on a
    /// name that is not UTF-8, or past capacity.
    mutating func insert(_ key: JSONByteCursor.RawString, since mark: Int) throws(NotDecodedDirectly) {
        try key.validate()
        guard keys.count < Self.capacity else { throw NotDecodedDirectly() }
        for index in mark..<keys.count where keys[index].equals(key) { throw NotDecodedDirectly() }
        keys.append(key)
    }
}
