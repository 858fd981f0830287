/// A JSON document as FHIR needs it: object members keep their order and numbers keep
/// their exact text, so a resource written back is the resource that was received
/// (FHIR decimals are significant to the last digit: `1.50` is not `1.5`).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number exactly as it appeared in the source text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The value's kind with its article, for error messages: "a string", "an object", "null".
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The object, when this value is one.
    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The array, when this value is one.
    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// The string, when this value is one.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// Member lookup; `nil` when this is not an object or has no such member.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Equality that ignores member order, and compares numbers by their decimal value
    /// (`1.0` equals `1.00`), as a round-trip test wants to see it.
    public func semanticallyEquals(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b || Double(a) == Double(b)
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.semanticallyEquals($1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let theirs = b[key], value.semanticallyEquals(theirs) else { return false }
            }
            return true
        default: return false
        }
    }
}

/// A JSON object whose members keep the order in which they were read or added.
public struct JSONObject: Sendable, Equatable, Sequence {
    public private(set) var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public var count: Int { members.count }
    public var keys: [String] { members.map(\.key) }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        members.makeIterator()
    }

    /// Reading finds the member by name; writing replaces it in place, appends it when new,
    /// and removes it when set to `nil`.
    public subscript(key: String) -> JSONValue? {
        get {
            // Resources have a few dozen members at most: a linear scan beats hashing here.
            for member in members where member.key == key { return member.value }
            return nil
        }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue {
                    members[index].value = newValue
                } else {
                    members.remove(at: index)
                }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    /// Sets a member, placing it right after the member named `after` when the key is new.
    public mutating func set(_ key: String, _ value: JSONValue, after: [String]) {
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].value = value
            return
        }
        let position = members.lastIndex(where: { after.contains($0.key) }).map { $0 + 1 } ?? members.count
        members.insert((key, value), at: position)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
}

extension JSONValue {
    /// The number's value, when this value is a number.
    public var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    /// The number's value, when this value is a number that is a whole number.
    public var intValue: Int? {
        if case .number(let text) = self {
            return Int(text) ?? Double(text).flatMap { $0 == $0.rounded() ? Int(exactly: $0) : nil }
        }
        return nil
    }

    /// A number for figures: rounded to a millionth (timings carry no more than that), whole
    /// numbers without a fraction, null for NaN or infinity, which JSON cannot carry.
    public static func number(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        let rounded = (value * 1e6).rounded() / 1e6
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return .number(String(Int64(rounded))) }
        return .number(String(rounded))
    }

    /// A whole number.
    public static func number(_ value: Int) -> JSONValue { .number(String(value)) }
}

extension JSONValue {
    /// The length of the value as compact JSON text (strings counted without their escapes) and
    /// its nesting depth (containers within containers; a scalar is 0), each counted only
    /// until it passes its cap: the cost is bounded by the caps, not by the value.
    public func measure(byteCap: Int, depthCap: Int) -> (bytes: Int, depth: Int) {
        var bytes = 0
        let depth = measure(&bytes, byteCap: byteCap, depthCap: depthCap, level: 0)
        return (bytes, depth)
    }

    /// Adds this value's length to `bytes`; returns its depth (at `level` containers down).
    private func measure(_ bytes: inout Int, byteCap: Int, depthCap: Int, level: Int) -> Int {
        switch self {
        case .null: bytes += 4; return 0
        case .bool(let value): bytes += value ? 4 : 5; return 0
        case .number(let text): bytes += text.utf8.count; return 0
        case .string(let text): bytes += text.utf8.count + 2; return 0
        case .array(let items):
            bytes += 2 + max(0, items.count - 1)
            guard level < depthCap else { return 1 }
            var deepest = 0
            for item in items where bytes <= byteCap {
                deepest = max(deepest, item.measure(&bytes, byteCap: byteCap, depthCap: depthCap, level: level + 1))
            }
            return 1 + deepest
        case .object(let object):
            bytes += 2 + max(0, object.count - 1)
            guard level < depthCap else { return 1 }
            var deepest = 0
            for member in object where bytes <= byteCap {
                bytes += member.key.utf8.count + 3
                deepest = max(
                    deepest, member.value.measure(&bytes, byteCap: byteCap, depthCap: depthCap, level: level + 1))
            }
            return 1 + deepest
        }
    }
}
