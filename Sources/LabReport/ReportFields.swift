import Foundation
import JSON

/// A file of the report that cannot be read (or written): the file, the line when one is known
/// (JSON lines, or a syntax error), and what is wrong. The report stops at the first one rather
/// than draw charts from half a file.
public struct ReportFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let line: Int?
    public let message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path) line \(line): \(message)" }
        return "\(path): \(message)"
    }
}

/// Typed access to a member of a parsed input, throwing a ``ReportFileError`` that names
/// the file, the line (for JSON lines) and the member's path (`scenarios[3].detected`), so
/// that a hand-edited or truncated results file says exactly where it went wrong.
struct ReportField {
    let value: JSONValue
    let path: String
    let line: Int?
    /// Where in the document: `configurations[1].ratio.median`; empty at the root.
    let location: String

    init(_ value: JSONValue, path: String, line: Int? = nil, location: String) {
        self.value = value
        self.path = path
        self.line = line
        self.location = location
    }

    /// Parses one JSON document; a syntax error names the file, line and column.
    static func parseDocument(_ bytes: some Collection<UInt8>, path: String, line: Int? = nil) throws -> JSONValue {
        do {
            return try JSONParser.parse(bytes)
        } catch let error as JSONParseError {
            // In a JSON-lines file the parser's line is always 1: report the file's line instead.
            if let line {
                throw ReportFileError(path: path, line: line, message: "\(error.message) at column \(error.column)")
            }
            throw ReportFileError(path: path, line: error.line, message: "\(error.message) at column \(error.column)")
        }
    }

    func failure(_ message: String) -> ReportFileError {
        ReportFileError(path: path, line: line, message: location.isEmpty ? message : "\(location) \(message)")
    }

    func member(_ key: String) throws -> ReportField {
        guard let object = value.objectValue else { throw failure("must be an object, not \(value.kindDescription)") }
        let location = self.location.isEmpty ? key : "\(self.location).\(key)"
        guard let member = object[key] else {
            throw ReportFileError(path: path, line: line, message: "\(location) is missing")
        }
        return ReportField(member, path: path, line: line, location: location)
    }

    /// The member, or `nil` when it is absent or null.
    func optionalMember(_ key: String) throws -> ReportField? {
        guard let object = value.objectValue else { throw failure("must be an object, not \(value.kindDescription)") }
        guard let member = object[key], member != .null else { return nil }
        return ReportField(member, path: path, line: line, location: location.isEmpty ? key : "\(location).\(key)")
    }

    func string() throws -> String {
        guard let text = value.stringValue else { throw failure("must be a string, not \(value.kindDescription)") }
        return text
    }

    func double() throws -> Double {
        guard case .number(let text) = value, let number = Double(text), number.isFinite else {
            throw failure("must be a number, not \(value.kindDescription)")
        }
        return number
    }

    func int() throws -> Int {
        guard case .number(let text) = value, let number = Int(text) else {
            throw failure("must be an integer, not \(value == .null ? "null" : describe(value))")
        }
        return number
    }

    func uint64() throws -> UInt64 {
        guard case .number(let text) = value, let number = UInt64(text) else {
            throw failure("must be a non-negative integer, not \(describe(value))")
        }
        return number
    }

    func array() throws -> [ReportField] {
        guard let elements = value.arrayValue else { throw failure("must be an array, not \(value.kindDescription)") }
        return elements.enumerated().map { ReportField($1, path: path, line: line, location: "\(location)[\($0)]") }
    }

    func string(_ key: String) throws -> String { try member(key).string() }
    func double(_ key: String) throws -> Double { try member(key).double() }
    func int(_ key: String) throws -> Int { try member(key).int() }
    func uint64(_ key: String) throws -> UInt64 { try member(key).uint64() }
    func array(_ key: String) throws -> [ReportField] { try member(key).array() }
    func optionalDouble(_ key: String) throws -> Double? { try optionalMember(key)?.double() }
    func optionalString(_ key: String) throws -> String? { try optionalMember(key)?.string() }

    /// true, false, or `nil` for null (or absent).
    func optionalBool(_ key: String) throws -> Bool? {
        guard let member = try optionalMember(key) else { return nil }
        guard case .bool(let flag) = member.value else {
            throw member.failure("must be true, false or null, not \(member.value.kindDescription)")
        }
        return flag
    }

    private func describe(_ value: JSONValue) -> String {
        if case .number(let text) = value { return text }
        return value.kindDescription
    }
}

/// Numbers as the report's JSON writes them.
enum ReportNumber {
    /// A finite number as JSON (see `JSONValue.number`): rounded to a millionth, null for NaN
    /// or infinity.
    static func json(_ number: Double) -> JSONValue { .number(number) }

    static func json<N: BinaryInteger>(_ number: N) -> JSONValue { .number(String(number)) }
}
