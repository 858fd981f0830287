import AsyncHTTPClient
import FHIR
import Foundation

/// FHIR over HTTP for the workload: each call is one timed interaction whose status is
/// checked, and whose failure is recorded before it is thrown.
struct FHIRHTTPSession: Sendable {
    enum Method: String, Sendable { case GET, POST, PUT, DELETE }

    /// An answer, body parsed.
    struct Reply: Sendable {
        var status: Int
        var location: String?
        var etag: String?
        /// `nil` for an empty body.
        var body: JSONValue?
    }

    let client: HTTPClient
    /// Without a trailing slash.
    let baseURL: String
    let recorder: InteractionRecorder
    let timeoutSeconds: Int64

    /// Sends one request to `path` under the base URL (the base itself when empty, as is
    /// `path` when absolute), and fails unless the status is one of `expect`.
    func send(
        _ kind: InteractionKind, _ method: Method, _ path: String, body: String? = nil,
        headers: [(String, String)] = [], expect: Set<Int>
    ) async throws -> Reply {
        let url =
            path.isEmpty
            ? baseURL : path.hasPrefix("http://") || path.hasPrefix("https://") ? path : "\(baseURL)/\(path)"
        let what = "\(method.rawValue) \(url)"
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method.rawValue)
        request.headers.add(name: "Accept", value: "application/fhir+json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/fhir+json")
            request.body = .bytes(Array(body.utf8))
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        // Writes answer with an empty body, as when the workload's figures (BENCHMARKS.md) were
        // taken: the server's default was IBM's minimal then and is the resource now.
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "prefer" }) {
            request.headers.add(name: "Prefer", value: "return=minimal")
        }

        let start = ContinuousClock.now
        let status: Int
        let location: String?
        let etag: String?
        let bytes: [UInt8]
        do {
            let response = try await client.execute(request, timeout: .seconds(timeoutSeconds))
            status = Int(response.status.code)
            location = response.headers.first(name: "Location")
            etag = response.headers.first(name: "ETag")
            bytes = Array(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        } catch {
            recorder.record(kind, milliseconds: Self.milliseconds(since: start))
            throw recorder.fail(kind, "\(what): no answer: \(error)")
        }
        recorder.record(kind, milliseconds: Self.milliseconds(since: start))

        var parsed: JSONValue?
        if !bytes.isEmpty {
            do {
                parsed = try JSONParser.parse(bytes)
            } catch {
                throw recorder.fail(kind, "\(what) answered \(status) with a body that is not JSON: \(error)")
            }
        }
        guard expect.contains(status) else {
            let expected = expect.sorted().map(String.init).joined(separator: " or ")
            throw recorder.fail(kind, "\(what) answered \(status), expected \(expected)\(Self.diagnostics(parsed))")
        }
        return Reply(status: status, location: location, etag: etag, body: parsed)
    }

    /// Fails the interaction of `kind` just sent unless `condition` holds.
    func check(_ condition: Bool, _ kind: InteractionKind, _ message: @autoclosure () -> String) throws {
        if !condition { throw recorder.fail(kind, message()) }
    }

    /// The id in a `Location` (`.../Type/id/_history/n`), checked to name `type` and version `version`.
    func createdId(_ reply: Reply, type: String, version: String = "1", _ kind: InteractionKind) throws -> String {
        let parts = (reply.location ?? "").split(separator: "/").map(String.init)
        guard parts.count >= 4, parts[parts.count - 4] == type, parts[parts.count - 2] == "_history",
            FHIRResourceType.isValidId(parts[parts.count - 3])
        else {
            throw recorder.fail(
                kind, "\(type): Location '\(reply.location ?? "none")' is not .../\(type)/[id]/_history/[version]")
        }
        try check(
            parts[parts.count - 1] == version, kind,
            "\(type): Location '\(reply.location ?? "")' is not version \(version)")
        try check(
            reply.etag == "W/\"\(version)\"", kind, "\(type): ETag '\(reply.etag ?? "none")', expected W/\"\(version)\""
        )
        return parts[parts.count - 3]
    }

    /// The OperationOutcome's diagnostics, if the body is one.
    static func diagnostics(_ body: JSONValue?) -> String {
        guard let body, body["resourceType"] == "OperationOutcome" else { return "" }
        let texts = (body["issue"]?.arrayValue ?? []).compactMap { $0["diagnostics"]?.stringValue }
        return texts.isEmpty ? "" : ": " + texts.joined(separator: "; ")
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}

/// Reading searchset, history and transaction-response Bundles.
enum BundleReading {
    static func entries(_ bundle: JSONValue?) -> [JSONValue] {
        bundle?["entry"]?.arrayValue ?? []
    }

    static func total(_ bundle: JSONValue?) -> Int? {
        guard case .number(let text)? = bundle?["total"] else { return nil }
        return Int(text)
    }

    /// `Type/id` of each entry's resource with search mode `mode` (`match`, `include`).
    static func keys(_ bundle: JSONValue?, mode: String) -> [String] {
        entries(bundle).compactMap { entry in
            guard entry["search"]?["mode"]?.stringValue == mode, let resource = entry["resource"] else { return nil }
            return key(resource)
        }
    }

    /// `Type/id` of a resource.
    static func key(_ resource: JSONValue) -> String? {
        guard let type = resource["resourceType"]?.stringValue, let id = resource["id"]?.stringValue else { return nil }
        return "\(type)/\(id)"
    }

    static func link(_ bundle: JSONValue?, _ relation: String) -> String? {
        bundle?["link"]?.arrayValue?.first { $0["relation"]?.stringValue == relation }?["url"]?.stringValue
    }
}

/// Query strings with values percent-encoded (`|` in tokens, `:` kept for modifiers' sake).
enum QueryString {
    static let valueCharacters: CharacterSet = {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&+=#?")
        return allowed
    }()

    static func make(_ parameters: [(String, String)]) -> String {
        parameters.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: valueCharacters) ?? value)"
        }.joined(separator: "&")
    }
}
