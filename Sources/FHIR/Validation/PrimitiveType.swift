/// The FHIR R4 primitive data types, with the JSON kind that carries each one and the
/// lexical rules of the specification's regular expressions.
///
/// The checks are hand-written scans over the UTF-8 bytes rather than regular expressions:
/// they run for every primitive of every resource written, and allocate nothing.
enum PrimitiveType: String, Sendable, CaseIterable {
    case base64Binary, boolean, canonical, code, date, dateTime, decimal, id, instant, integer
    case markdown, oid, positiveInt, string, time, unsignedInt, uri, url, uuid, xhtml

    /// The JSON value kinds FHIR primitives can have.
    enum JSONKind: String, Sendable {
        case string, number, boolean
    }

    /// FHIR JSON writes booleans as JSON booleans, the numeric types as JSON numbers and
    /// everything else (dates and 64-bit values included) as strings.
    var jsonKind: JSONKind {
        switch self {
        case .boolean: return .boolean
        case .decimal, .integer, .positiveInt, .unsignedInt: return .number
        default: return .string
        }
    }

    /// The expected form, for diagnostics.
    var formDescription: String {
        switch self {
        case .date: return "YYYY, YYYY-MM or YYYY-MM-DD"
        case .dateTime: return "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)"
        case .instant: return "YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)"
        case .time: return "hh:mm:ss[.fff]"
        case .id: return "1 to 64 letters, digits, '-' or '.'"
        case .code: return "non-empty, without leading, trailing or repeated whitespace"
        case .uri, .url, .canonical: return "non-empty, without whitespace"
        case .oid: return "urn:oid: followed by a dotted number"
        case .uuid: return "urn:uuid: followed by a lower-case UUID"
        case .integer: return "a whole number from -2147483648 to 2147483647"
        case .positiveInt: return "a whole number from 1 to 2147483647"
        case .unsignedInt: return "a whole number from 0 to 2147483647"
        case .base64Binary: return "base64 characters"
        case .string, .markdown, .xhtml: return "non-empty"
        case .decimal: return "a number"
        case .boolean: return "true or false"
        }
    }

    /// Whether a JSON string has this type's lexical form (for types carried as strings).
    func accepts(string text: String) -> Bool {
        var text = text
        // Native strings are contiguous already, so this neither copies nor allocates.
        return text.withUTF8 { bytes in accepts(utf8: bytes) }
    }

    /// Whether a JSON number's text has this type's form (for types carried as numbers).
    func accepts(number text: String) -> Bool {
        switch self {
        case .decimal: return true  // the JSON parser only produces valid numbers
        case .integer, .positiveInt, .unsignedInt:
            var text = text
            return text.withUTF8 { bytes in
                guard let value = PrimitiveType.wholeNumber(bytes) else { return false }
                switch self {
                case .integer: return value >= -2_147_483_648 && value <= 2_147_483_647
                case .positiveInt: return value >= 1 && value <= 2_147_483_647
                default: return value >= 0 && value <= 2_147_483_647
                }
            }
        default: return false
        }
    }

    /// The R4 regular expressions let `2020-02-30` through; a date must also exist.
    static func isCalendarDate(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        FHIRDateRange(parsing: String(decoding: bytes, as: UTF8.self)) != nil
    }

    private func accepts(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // Every FHIR primitive has a value or is left out: an empty string is no value.
        guard !bytes.isEmpty else { return false }
        var scanner = ByteScanner(bytes: bytes)
        switch self {
        // FHIR strings are `[ \r\n\t\S]+`: no other control characters.
        case .string, .markdown: return !bytes.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        case .xhtml: return scanner.skipWhitespace() && scanner.literal("<div")
        case .code: return PrimitiveType.isCode(bytes)
        case .id: return bytes.count <= 64 && bytes.allSatisfy(PrimitiveType.isIdByte)
        case .uri, .url, .canonical: return !bytes.contains(where: PrimitiveType.isWhitespace)
        case .base64Binary:
            return bytes.allSatisfy { PrimitiveType.isBase64Byte($0) || PrimitiveType.isWhitespace($0) }
        case .oid: return scanner.literal("urn:oid:") && scanner.oid() && scanner.atEnd
        case .uuid: return scanner.literal("urn:uuid:") && scanner.uuid() && scanner.atEnd
        case .date: return scanner.date(full: false) && scanner.atEnd && PrimitiveType.isCalendarDate(bytes)
        case .dateTime:
            guard scanner.date(full: false) else { return false }
            if scanner.atEnd { return PrimitiveType.isCalendarDate(bytes) }
            // A time may only follow a full date, and then needs its time zone.
            return bytes.count >= 10 && scanner.literal("T") && scanner.time() && scanner.timeZone() && scanner.atEnd
                && PrimitiveType.isCalendarDate(bytes)
        case .instant:
            return scanner.date(full: true) && scanner.literal("T") && scanner.time() && scanner.timeZone()
                && scanner.atEnd && PrimitiveType.isCalendarDate(bytes)
        case .time: return scanner.time() && scanner.atEnd
        case .boolean, .decimal, .integer, .positiveInt, .unsignedInt: return false
        }
    }

    /// The value of a JSON number without fraction or exponent, or nil (also when it
    /// has more digits than any 32-bit value).
    private static func wholeNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        let digits = bytes.count - index
        guard digits >= 1, digits <= 11 else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int64(byte - 0x30)
            index += 1
        }
        return negative ? -value : value
    }

    /// `[^\s]+(\s[^\s]+)*`: words separated by single whitespace characters.
    private static func isCode(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var previousWasSpace = true  // so that leading whitespace fails
        for byte in bytes {
            let space = isWhitespace(byte)
            if space && previousWasSpace { return false }
            previousWasSpace = space
        }
        return !previousWasSpace
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }

    private static func isIdByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x2E
    }

    private static func isBase64Byte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2B || byte == 0x2F || byte == 0x3D
    }
}

/// A forward-only reader of the parts of dates, times and identifiers.
private struct ByteScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    var atEnd: Bool { index == bytes.count }

    mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
        index += count
        return true
    }

    mutating func skipWhitespace() -> Bool {
        while index < bytes.count, PrimitiveType.isWhitespace(bytes[index]) { index += 1 }
        return true
    }

    /// Exactly `count` decimal digits, as their value.
    mutating func value(digits count: Int) -> Int? {
        guard bytes.count - index >= count else { return nil }
        var value = 0
        for offset in 0..<count {
            let byte = bytes[index + offset]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        index += count
        return value
    }

    /// Exactly `count` digits, as a number within `range`.
    mutating func number(digits count: Int, in range: ClosedRange<Int>) -> Bool {
        guard let value = value(digits: count) else { return false }
        return range.contains(value)
    }

    /// `YYYY(-MM(-DD)?)?`, or with `full` exactly `YYYY-MM-DD`; the year is not 0000.
    mutating func date(full: Bool) -> Bool {
        guard number(digits: 4, in: 1...9999) else { return false }
        if !full && atEnd { return true }
        guard literal("-"), number(digits: 2, in: 1...12) else { return false }
        if !full && atEnd { return true }
        return literal("-") && number(digits: 2, in: 1...31)
    }

    /// `hh:mm:ss(.f+)?`, allowing a leap second.
    mutating func time() -> Bool {
        guard number(digits: 2, in: 0...23), literal(":"), number(digits: 2, in: 0...59), literal(":"),
            number(digits: 2, in: 0...60)
        else { return false }
        if literal(".") {
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index > start
        }
        return true
    }

    /// `Z` or `(+|-)hh:mm` from -14:00 to +14:00.
    mutating func timeZone() -> Bool {
        if literal("Z") { return true }
        guard literal("+") || literal("-"), let hours = value(digits: 2), literal(":"),
            let minutes = value(digits: 2)
        else { return false }
        return minutes <= 59 && (hours < 14 || (hours == 14 && minutes == 0))
    }

    /// `[0-2](\.(0|[1-9][0-9]*))+`
    mutating func oid() -> Bool {
        guard number(digits: 1, in: 0...2) else { return false }
        var arcs = 0
        while literal(".") {
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard index > start, bytes[start] != UInt8(ascii: "0") || index == start + 1 else { return false }
            arcs += 1
        }
        return arcs > 0
    }

    /// `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
    mutating func uuid() -> Bool {
        hex(8) && literal("-") && hex(4) && literal("-") && hex(4) && literal("-") && hex(4) && literal("-")
            && hex(12)
    }

    /// Exactly `count` lower-case hexadecimal digits.
    mutating func hex(_ count: Int) -> Bool {
        guard bytes.count - index >= count else { return false }
        for _ in 0..<count {
            let byte = bytes[index]
            guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) else { return false }
            index += 1
        }
        return true
    }
}
