import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// What a request asks of the response: format, pretty printing, `Prefer` settings, and
/// the absolute base URL to write into links.
struct FHIRExchange {
    let request: Request
    let configuration: FHIRServerConfiguration
    /// The query string's pairs, decoded, in order.
    let query: [(name: String, value: String)]
    let pretty: Bool
    let contentType: String
    /// `Prefer: return=...` (the last known value), else the server's
    /// ``FHIRServerConfiguration/defaultReturn``.
    let returnPreference: ReturnPreference
    /// `Prefer: handling=strict`.
    let strict: Bool
    let baseURL: String

    static let fhirJSON = "application/fhir+json; charset=utf-8"

    init(request: Request, configuration: FHIRServerConfiguration) throws {
        self.request = request
        self.configuration = configuration
        query = FHIRQueryString.parse(Substring(request.uri.query ?? ""))
        let format = query.last(where: { $0.name == "_format" })?.value
        let accept = request.headers[.accept] ?? "*/*"
        contentType = try FHIRExchange.negotiate(format: format, accept: accept)
        pretty = query.last(where: { $0.name == "_pretty" })?.value == "true"
        var returnPreference = configuration.defaultReturn
        var strict = false
        for prefer in request.headers[values: .prefer] {
            for token in prefer.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                if token.hasPrefix("return="), let value = ReturnPreference(rawValue: String(token.dropFirst(7))) {
                    returnPreference = value
                }
                if token == "handling=strict" { strict = true }
                if token == "handling=lenient" { strict = false }
            }
        }
        self.returnPreference = returnPreference
        self.strict = strict
        baseURL = Self.origin(authority: request.head.authority, configuration: configuration) + configuration.basePath
    }

    /// The scheme and authority of absolute URLs: `publicURL` when configured, else the
    /// request's Host when it names this machine or an allowed host, else the configured
    /// fallback. A Host header alone never decides where clients are sent next.
    static func origin(authority: String?, configuration: FHIRServerConfiguration) -> String {
        if let publicURL = configuration.publicURL { return publicURL }
        guard let authority, let host = hostName(authority: authority) else { return configuration.fallbackOrigin }
        let allowed = isLoopback(host) || configuration.allowedHosts.contains { $0.lowercased() == host }
        return allowed ? "http://" + authority : configuration.fallbackOrigin
    }

    /// The host of `host[:port]` or `[v6]:port`, lower-cased; `nil` unless well formed.
    static func hostName(authority: String) -> String? {
        var host = Substring(authority.lowercased())
        var port: Substring = ""
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            port = host[host.index(after: close)...]
            host = host[...close]
            guard host.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return nil
            }
        } else {
            if let colon = host.firstIndex(of: ":") {
                port = host[colon...]
                host = host[..<colon]
            }
            guard !host.isEmpty,
                host.utf8.allSatisfy({ byte in
                    (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2D || byte == 0x2E
                })
            else { return nil }
        }
        if !port.isEmpty {
            guard port.hasPrefix(":"), port.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }),
                UInt16(port.dropFirst()) != nil
            else { return nil }
        }
        return String(host)
    }

    /// Names of this machine: `localhost`, 127.0.0.0/8 and `[::1]`.
    static func isLoopback(_ host: String) -> Bool {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return host == "localhost" || host == "[::1]"
            || (octets.count == 4 && octets[0] == "127" && octets.allSatisfy { $0.count <= 3 && UInt8($0) != nil })
    }

    /// Picks the response media type; XML and anything else not JSON is refused with 406.
    static func negotiate(format: String?, accept: String) throws -> String {
        if let format {
            switch format {
            case "json", "application/json": return "application/json; charset=utf-8"
            case "application/fhir+json", "application/json+fhir": return fhirJSON
            default:
                throw FHIRError(
                    status: 406, code: "not-supported", "_format=\(format) is not supported; this server speaks JSON")
            }
        }
        let ranges = accept.split(separator: ",").map {
            $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        }
        if ranges.contains(where: {
            ["application/fhir+json", "application/json+fhir", "*/*", "application/*", ""].contains($0)
        }) {
            return fhirJSON
        }
        if ranges.contains("application/json") { return "application/json; charset=utf-8" }
        if ranges.contains("text/html") || ranges.contains("text/plain") || ranges.contains("text/*") {
            return fhirJSON
        }
        throw FHIRError(
            status: 406, code: "not-supported",
            "None of '\(accept)' can be served; this server speaks application/fhir+json")
    }

    /// The request's media type, without parameters, lower-cased.
    var mediaType: String {
        (request.headers[.contentType] ?? "").split(separator: ";").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    }

    /// The whole request body, refused with 413 beyond the configured size: at once when its
    /// `Content-Length` says so, without waiting for bytes that would be thrown away (a client
    /// that sent `Expect: 100-continue` gets no 100 for it, and would otherwise wait a second).
    func body() async throws -> ByteBuffer {
        let tooLarge = FHIRError(
            status: 413, code: "too-costly", "The request body exceeds \(configuration.maximumBodySize) bytes")
        if let length = request.headers[.contentLength],
            Self.announcesTooLarge(length, maximumBodySize: configuration.maximumBodySize)
        {
            throw tooLarge
        }
        do {
            return try await request.body.collect(upTo: configuration.maximumBodySize)
        } catch {
            throw tooLarge
        }
    }

    /// Whether a `Content-Length` announces a body over `maximumBodySize`: also a length past
    /// Int's range (NIO's decoder takes up to UInt64's). The 413 and the 100's refusal agree on it.
    static func announcesTooLarge(_ contentLength: String, maximumBodySize: Int) -> Bool {
        (Int(contentLength) ?? .max) > maximumBodySize
    }

    /// The body parsed as JSON; `what` names it in the 400 for bad JSON.
    func jsonBody(_ what: String) async throws -> JSONValue {
        var buffer = try await body()
        // A UTF-8 byte-order mark is allowed before JSON text (RFC 8259 lets a parser ignore it).
        if buffer.readableBytesView.starts(with: [0xEF, 0xBB, 0xBF]) { buffer.moveReaderIndex(forwardBy: 3) }
        do {
            return try buffer.withUnsafeReadableBytes { try JSONParser.parse(buffer: $0.bindMemory(to: UInt8.self)) }
        } catch let error as JSONParseError {
            throw FHIRError.badRequest("\(what) is not valid JSON: \(error)")
        }
    }

    /// Reads and parses a JSON resource body, refusing other media types with 415.
    func resourceBody(context: FHIRRequestContext) async throws -> JSONValue {
        guard ["application/fhir+json", "application/json", "application/json+fhir"].contains(mediaType) else {
            throw FHIRError(
                status: 415, code: "not-supported",
                "Content-Type '\(request.headers[.contentType] ?? "")' is not supported; send application/fhir+json")
        }
        return try await jsonBody("The body")
    }

    /// The query string without the parameters about the response format: the criteria of
    /// a conditional interaction, or `nil` when there are none.
    var criteria: String? {
        let pairs = query.filter { !["_format", "_pretty"].contains($0.name) }
        return pairs.isEmpty ? nil : FHIRQueryString.encode(pairs)
    }

    /// Reads a JSON Patch body (`application/json-patch+json`).
    func jsonPatchBody() async throws -> JSONValue {
        guard mediaType == "application/json-patch+json" else {
            throw FHIRError(
                status: 415, code: "not-supported",
                "PATCH takes a JSON Patch document (application/json-patch+json), not '\(mediaType)'")
        }
        return try await jsonBody("The patch")
    }

    /// The form parameters of `POST _search` followed by those of its URL.
    func searchParameters(context: FHIRRequestContext) async throws -> [(name: String, value: String)] {
        guard request.method == .post else { return query }
        let buffer = try await body()
        guard buffer.readableBytes == 0 || mediaType == "application/x-www-form-urlencoded" else {
            throw FHIRError(status: 415, code: "not-supported", "POST _search takes application/x-www-form-urlencoded")
        }
        let text = String(buffer: buffer)
        let form = FHIRQueryString.parse(Substring(text))
        // The URL's query and patients reach the AuditEvent from the request line; the form's only from here.
        if !text.isEmpty { context.auditNote.form = text }
        if context.protectsAuditEvents {
            context.auditNote.patients += AuditRecord.patients(
                searchedIn: form, limit: Interaction.recordedPatientLimit)
        }
        return form + query
    }

    // MARK: Responses

    /// A response carrying JSON text (already serialised compactly).
    func json(_ text: String, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var bytes: [UInt8]
        if pretty, let value = try? JSONParser.parse(text) {
            bytes = JSONWriter(pretty: true).bytes(value)
        } else {
            bytes = Array(text.utf8)
        }
        if pretty { bytes.append(0x0A) }
        return respond(bytes, status: status, headers: headers)
    }

    func json(_ value: JSONValue, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var bytes = JSONWriter(pretty: pretty).bytes(value)
        if pretty { bytes.append(0x0A) }
        return respond(bytes, status: status, headers: headers)
    }

    func respond(_ bytes: [UInt8], status: HTTPResponse.Status, headers: HTTPFields) -> Response {
        var headers = headers
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Headers that describe a stored version.
    func versionHeaders(_ stored: StoredResourceHeaders) -> HTTPFields {
        var headers = HTTPFields()
        headers[.eTag] = "W/\"\(stored.versionId)\""
        headers[.lastModified] = FHIRDateRange.httpDateString(milliseconds: stored.lastUpdated)
        return headers
    }
}

/// The parts of a stored resource that become headers.
protocol StoredResourceHeaders {
    var versionId: Int { get }
    var lastUpdated: Int64 { get }
}

extension FHIRStoreProvider {
    /// The store of the request's tenant (`X-FHIR-TENANT-ID`, as IBM FHIR Server names it).
    func store(for request: Request) async throws -> any FHIRStore {
        try await store(tenant: request.headers[.tenant])
    }
}

extension HTTPField.Name {
    static let tenant = HTTPField.Name("X-FHIR-TENANT-ID")!
    static let prefer = HTTPField.Name("Prefer")!
    static let ifMatch = HTTPField.Name("If-Match")!
    static let ifNoneExist = HTTPField.Name("If-None-Exist")!
}
