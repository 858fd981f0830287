import FHIR
import Hummingbird
import NIOCore

/// The input parameters of an operation: the URL's query for GET, and for POST the
/// `Parameters` resource of the body followed by the URL's query. Each value is kept as the
/// JSON of its `value[x]` (or `resource`); query values are strings.
struct OperationParameters {
    /// The most parameters one request may pass: the terminology operations take at most a
    /// dozen, so a body of thousands of parameters is refused before any is looked at.
    static let maximumCount = 64

    let operation: String
    private(set) var values: [(name: String, value: JSONValue)] = []

    /// Reads the request's parameters; a POST body must be a Parameters resource (or empty).
    static func read(_ operation: String, request: Request, exchange: FHIRExchange, context: FHIRRequestContext)
        async throws -> OperationParameters
    {
        var parameters = OperationParameters(operation: operation)
        if request.method == .post {
            var body = try await exchange.body()
            if body.readableBytes > 0 {
                guard
                    ["application/fhir+json", "application/json", "application/json+fhir"].contains(exchange.mediaType)
                else {
                    throw FHIRError(
                        status: 415, code: "not-supported",
                        "\(operation) takes a Parameters resource as application/fhir+json")
                }
                if body.readableBytesView.starts(with: [0xEF, 0xBB, 0xBF]) { body.moveReaderIndex(forwardBy: 3) }
                let resource: JSONValue
                do {
                    resource = try body.withUnsafeReadableBytes {
                        try JSONParser.parse(buffer: $0.bindMemory(to: UInt8.self))
                    }
                } catch let error as JSONParseError {
                    throw FHIRError.badRequest("The body is not valid JSON: \(error)")
                }
                guard resource["resourceType"]?.stringValue == "Parameters" else {
                    throw FHIRError.badRequest("\(operation) takes a Parameters resource in a POST body")
                }
                for parameter in resource["parameter"]?.arrayValue ?? [] {
                    guard let object = parameter.objectValue, let name = object["name"]?.stringValue else {
                        throw FHIRError.badRequest("Each parameter of \(operation) needs a name")
                    }
                    let value = object.first { $0.key.hasPrefix("value") || $0.key == "resource" }?.value
                    guard let value else {
                        throw FHIRError.badRequest("The parameter '\(name)' of \(operation) has no value")
                    }
                    parameters.values.append((name, value))
                    try parameters.checkCount()
                }
            }
        }
        for (name, value) in exchange.query where !["_format", "_pretty"].contains(name) {
            parameters.values.append((name, .string(value)))
            try parameters.checkCount()
        }
        return parameters
    }

    private func checkCount() throws {
        guard values.count <= Self.maximumCount else {
            throw FHIRError(
                status: 400, code: "too-costly", "\(operation) takes at most \(Self.maximumCount) parameters")
        }
    }

    /// Refuses parameters the operation does not define (a typo would otherwise be ignored).
    func allowOnly(_ names: Set<String>) throws {
        if let unknown = values.first(where: { !names.contains($0.name) }) {
            let name = String(unknown.name.prefix(64))
            throw FHIRError.badRequest(
                "\(operation) does not take the parameter '\(name)' (it takes \(names.sorted().joined(separator: ", ")))"
            )
        }
    }

    /// The value given once at most: a repeated parameter is a 400, not a silent choice.
    func single(_ name: String) throws -> JSONValue? {
        let matching = values.filter { $0.name == name }
        guard matching.count <= 1 else { throw FHIRError.badRequest("\(operation) takes '\(name)' once") }
        return matching.first?.value
    }

    /// A string-like value (string, uri, code, canonical; a number or boolean as its text).
    func string(_ name: String, maximumLength: Int = 4096) throws -> String? {
        guard let value = try single(name) else { return nil }
        let text: String
        switch value {
        case .string(let string): text = string
        case .number(let number): text = number
        case .bool(let flag): text = flag ? "true" : "false"
        default:
            throw FHIRError.badRequest(
                "The parameter '\(name)' of \(operation) must be a simple value, not \(value.kindDescription)")
        }
        guard text.utf8.count <= maximumLength else {
            throw FHIRError(
                status: 400, code: "too-long",
                "The parameter '\(name)' of \(operation) is longer than \(maximumLength) bytes")
        }
        return text
    }

    /// A whole number from 0 to `maximum`; `nil` when absent.
    func integer(_ name: String, maximum: Int) throws -> Int? {
        guard let text = try string(name, maximumLength: 32) else { return nil }
        guard let number = Int(text), number >= 0 else {
            throw FHIRError.badRequest(
                "The parameter '\(name)' of \(operation) must be a whole number from 0, not '\(text.prefix(32))'")
        }
        return min(number, maximum)
    }

    /// `true` or `false`; `nil` when absent.
    func boolean(_ name: String) throws -> Bool? {
        guard let text = try string(name, maximumLength: 8) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw FHIRError.badRequest("The parameter '\(name)' of \(operation) must be true or false")
        }
    }

    /// A Coding (POST only); `nil` when absent.
    func coding(_ name: String) throws -> (system: String?, code: String, display: String?)? {
        guard let value = try single(name) else { return nil }
        guard let object = value.objectValue, let code = object["code"]?.stringValue else {
            throw FHIRError.badRequest("The parameter '\(name)' of \(operation) must be a Coding with a code")
        }
        return (object["system"]?.stringValue, code, object["display"]?.stringValue)
    }

    /// The codings of a CodeableConcept (POST only); `nil` when absent.
    func codeableConcept(_ name: String) throws -> [(system: String?, code: String, display: String?)]? {
        guard let value = try single(name) else { return nil }
        guard let codings = value["coding"]?.arrayValue, !codings.isEmpty, codings.count <= Self.maximumCount else {
            throw FHIRError.badRequest(
                "The parameter '\(name)' of \(operation) must be a CodeableConcept with 1 to \(Self.maximumCount) codings"
            )
        }
        return try codings.map { coding in
            guard let code = coding["code"]?.stringValue else {
                throw FHIRError.badRequest("Each coding of '\(name)' needs a code")
            }
            return (coding["system"]?.stringValue, code, coding["display"]?.stringValue)
        }
    }
}
