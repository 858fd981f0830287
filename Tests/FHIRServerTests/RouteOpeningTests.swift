import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Testing

/// The type- and instance-level routes open a request in one place (`TypeCall`,
/// `InstanceCall`) in a fixed order: the resource type (404), the id (400), then the exchange
/// (406 for a format the server does not speak); a conditional PUT or DELETE without criteria
/// (405) comes after them. A request wrong in two ways is answered by the first check.
@Suite struct RouteOpeningTests {
    @Test(arguments: TestDatabases.backends)
    func aRequestWrongInTwoWaysIsAnsweredByTheFirstCheck(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let patient = #"{"resourceType":"Patient","id":"p-1"}"#
            let cases: [(response: FHIRTestResponse, status: Int, what: String)] = [
                (
                    try await client.fhir(.post, "NoSuchType?_format=xml", body: #"{"resourceType":"Basic"}"#), 404,
                    "create, type"
                ),
                (try await client.fhir(.post, "Patient?_format=xml", body: patient), 406, "create, exchange"),
                (try await client.fhir(.put, "NoSuchType?_format=xml", body: patient), 404, "conditional update, type"),
                (
                    try await client.fhir(.put, "Patient?_format=xml", body: patient), 406,
                    "conditional update, exchange"
                ),
                (try await client.fhir(.put, "Patient", body: patient), 405, "conditional update, criteria"),
                (try await client.fhir(.delete, "Patient?_format=xml"), 406, "conditional delete, exchange"),
                (try await client.fhir(.delete, "Patient"), 405, "conditional delete, criteria"),
                (try await client.fhir(.get, "NoSuchType/bad!id?_format=xml"), 404, "read, type"),
                (try await client.fhir(.get, "Patient/bad!id?_format=xml"), 400, "read, id"),
                (try await client.fhir(.get, "Patient/p-1?_format=xml"), 406, "read, exchange"),
                (try await client.fhir(.get, "Patient/p-1"), 404, "read, not stored"),
                (try await client.fhir(.put, "Patient/bad!id?_format=xml", body: patient), 400, "update, id"),
                (try await client.fhir(.delete, "NoSuchType/p-1?_format=xml"), 404, "delete, type"),
                (
                    try await client.fhir(
                        .patch, "Patient/bad!id?_format=xml", body: "[]", contentType: "application/json-patch+json"),
                    400, "patch, id"
                ),
            ]
            for (response, status, what) in cases {
                #expect(Int(response.status.code) == status, "\(what): \(response.text)")
            }
        }
    }
}
