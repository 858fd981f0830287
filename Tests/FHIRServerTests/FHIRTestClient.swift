import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting

/// A response with its body parsed, for compact assertions.
struct FHIRTestResponse {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String
    var json: JSONValue? { try? JSONParser.parse(text) }

    func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
}

let basePath = "/fhir-server/api/v4"

/// Runs `body` against the FHIR router on a fresh store of `backend`, without a socket
/// (or on a real socket with `.live`).
func withFHIRApp(
    _ backend: TestBackend, setup: TestingSetup = .router, configuration: FHIRServerConfiguration = .init(),
    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
) async throws {
    let store = try await TestDatabases.makeStore(backend)
    let app = Application(router: FHIRApplication.buildRouter(store: store, configuration: configuration))
    do {
        try await app.test(setup) { client in try await body(client) }
        try await store.close()
    } catch {
        try? await store.close()
        throw error
    }
}

extension TestClientProtocol {
    func fhir(
        _ method: HTTPRequest.Method, _ path: String, body: String? = nil,
        contentType: String = "application/fhir+json",
        headers extra: [String: String] = [:]
    ) async throws -> FHIRTestResponse {
        var headers = HTTPFields()
        if body != nil { headers[.contentType] = contentType }
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        return try await execute(
            uri: path.hasPrefix("http") || path.hasPrefix("/") ? path : "\(basePath)/\(path)", method: method,
            headers: headers,
            body: body.map { ByteBuffer(string: $0) }
        ) { response in
            FHIRTestResponse(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}

/// Percent-encodes a query value the way a client library would.
func encodeQuery(_ value: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return value.addingPercentEncoding(withAllowedCharacters: allowed)!
}

/// The path and query of an absolute link, for the test client.
func pathOf(_ url: String) -> String {
    guard let components = URLComponents(string: url) else { return url }
    return components.percentEncodedPath + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
}

extension FHIRTestResponse {
    /// The three-digit status of each entry of a batch or transaction response.
    var entryStatusCodes: [String] {
        json?["entry"]?.arrayValue?.compactMap { $0["response"]?["status"]?.stringValue.map { String($0.prefix(3)) } }
            ?? []
    }
}
