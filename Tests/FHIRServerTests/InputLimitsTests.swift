import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Hostile bodies and ids through the API (issue 13): the body limit, JSON Patch budgets, the
/// narrative check, the byte-order mark and dot-segment ids; every refusal an OperationOutcome.
@Suite struct InputLimitsTests {
    static let backends = TestDatabases.backends

    static func isOutcome(_ response: FHIRTestResponse) -> Bool { response.json?["resourceType"] == "OperationOutcome" }

    @Test(arguments: backends)
    func bodiesBeyondTheLimitAre413(backend: TestBackend) async throws {
        #expect(FHIRServerConfiguration().maximumBodySize == 16 << 20)
        try await withFHIRApp(backend, configuration: FHIRServerConfiguration(maximumBodySize: 4096)) { client in
            let padding = String(repeating: "x", count: 5000)
            let large = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","gender":"\#(padding)"}"#)
            #expect(large.status == .contentTooLarge && Self.isOutcome(large))
            #expect(try await client.fhir(.post, "Patient", body: #"{"resourceType":"Patient"}"#).status == .created)
        }
    }

    /// A 2.2 KB patch of `copy` operations once stored a 402 MB resource (1.4 GB of memory).
    @Test(arguments: backends)
    func patchesCannotGrowAResourcePastTheBodyLimit(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration(maximumBodySize: 64 << 10)
        configuration.validator.patchLimits.operations = 100
        try await withFHIRApp(backend, configuration: configuration) { client in
            let original =
                #"{"resourceType":"Patient","id":"p","extension":[{"url":"http://example.org/x","valueString":"\#(String(repeating: "x", count: 200))"}]}"#
            #expect(try await client.fhir(.put, "Patient/p", body: original).status == .created)
            let copies = (0..<30).map { _ in #"{"op":"copy","from":"/extension","path":"/extension/-"}"# }
            let patch = "[" + copies.joined(separator: ",") + "]"
            let patched = try await client.fhir(
                .patch, "Patient/p", body: patch, contentType: "application/json-patch+json")
            #expect(patched.status == .unprocessableContent && Self.isOutcome(patched))
            #expect(patched.json?["issue"]?.arrayValue?.first?["code"] == "too-costly")
            let stored = try await client.fhir(.get, "Patient/p")
            #expect(stored.header("ETag") == #"W/"1""#)
            #expect(stored.text.utf8.count < 1024)
            let tooMany =
                "[" + Array(repeating: #"{"op":"test","path":"/id","value":"p"}"#, count: 101).joined(separator: ",")
                + "]"
            let refused = try await client.fhir(
                .patch, "Patient/p", body: tooMany, contentType: "application/json-patch+json")
            #expect(refused.status == .badRequest && Self.isOutcome(refused))
        }
    }

    /// Stored XSS: a narrative with a script or an event attribute is refused (422), even with
    /// structure validation off.
    @Test(arguments: backends)
    func unsafeNarrativesAreRefused(backend: TestBackend) async throws {
        let lenient = FHIRServerConfiguration(validator: ResourceValidator(checksStructure: false))
        try await withFHIRApp(backend, configuration: lenient) { client in
            for div in [
                #"<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"x\" onerror=\"alert(1)\"/></div>"#,
                #"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"#,
                #"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"javascript:alert(1)\">x</a></div>"#,
            ] {
                let body = #"{"resourceType":"Patient","text":{"status":"generated","div":"\#(div)"}}"#
                let created = try await client.fhir(.post, "Patient", body: body)
                #expect(created.status == .unprocessableContent && Self.isOutcome(created))
                let put = try await client.fhir(
                    .put, "Patient/x",
                    body: body.replacingOccurrences(of: #""Patient","#, with: #""Patient","id":"x","#))
                #expect(put.status == .unprocessableContent)
            }
            let safe =
                #"{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Doe</p></div>"}}"#
            #expect(try await client.fhir(.post, "Patient", body: safe).status == .created)
            #expect(try await client.fhir(.get, "Patient?_count=100").json?["total"] == 1)
        }
    }

    @Test(arguments: backends)
    func aByteOrderMarkIsAccepted(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let created = try await client.fhir(
                .post, "Patient", body: "\u{FEFF}" + #"{"resourceType":"Patient","gender":"male"}"#)
            #expect(created.status == .created)
            let bundle = "\u{FEFF}" + #"{"resourceType":"Bundle","type":"batch","entry":[]}"#
            #expect(try await client.fhir(.post, "", body: bundle).status == .ok)
        }
    }

    @Test(arguments: backends)
    func dotSegmentIdsAreRefused(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            for id in [".", ".."] {
                let put = try await client.fhir(
                    .put, "Patient/\(id)", body: #"{"resourceType":"Patient","id":"\#(id)"}"#)
                #expect(put.status.code >= 400 && put.status.code < 500)
                let created = try await client.fhir(
                    .post, "Patient", body: #"{"resourceType":"Patient","id":"\#(id)"}"#)
                #expect(created.status == .unprocessableContent && Self.isOutcome(created))
            }
            let bundle =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":".."},"request":{"method":"PUT","url":"Patient/.."}}]}"#
            let transaction = try await client.fhir(.post, "", body: bundle)
            #expect(transaction.status == .badRequest && Self.isOutcome(transaction))
        }
    }
}
