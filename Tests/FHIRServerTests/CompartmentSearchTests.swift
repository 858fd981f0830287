import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// Compartment search, `GET Patient/[id]/Observation` and `Patient/[id]/*` (issue 17): the
/// search limited to the compartment by the R4 CompartmentDefinitions, with the client's
/// parameters on top, authorized as the equivalent search.
@Suite struct CompartmentSearchTests {
    static let backends = TestDatabases.backends

    static func ids(_ client: any TestClientProtocol, _ query: String, headers: [String: String] = [:]) async throws
        -> [String]
    {
        let response = try await client.fhir(
            .get, query, headers: ["Prefer": "handling=strict"].merging(headers) { $1 })
        #expect(response.status == .ok, "\(query): \(response.text.prefix(300))")
        return response.json?["entry"]?.arrayValue?.filter { $0["search"]?["mode"]?.stringValue == "match" }
            .compactMap { $0["resource"]?["id"]?.stringValue }.sorted() ?? []
    }

    /// AdvancedSearchTests' two patients, plus a Practitioner who performed one of bob's
    /// Observations, an Encounter-linked Observation, and a Group naming both patients.
    static func seed(_ client: any TestClientProtocol) async throws {
        try await AdvancedSearchTests.seed(client)
        let more = [
            #"{"resourceType":"Practitioner","id":"dr","name":[{"family":"Doe"}]}"#,
            #"{"resourceType":"Observation","id":"o4","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/ann"},"encounter":{"reference":"Encounter/e1"},"performer":[{"reference":"Practitioner/dr"}]}"#,
            #"{"resourceType":"Group","id":"g","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/ann"}},{"entity":{"reference":"Patient/bob"}}]}"#,
        ]
        for text in more {
            let value = try JSONParser.parse(text)
            let path = "\(value["resourceType"]!.stringValue!)/\(value["id"]!.stringValue!)"
            #expect(try await client.fhir(.put, path, body: text).status == .created, "\(path)")
        }
    }

    @Test(arguments: backends)
    func compartmentSearchFindsTheMembersWithTheClientsCriteria(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seed(client)
            #expect(try await Self.ids(client, "Patient/ann/Observation") == ["o1", "o4"])
            #expect(try await Self.ids(client, "Patient/bob/Observation") == ["o2", "o3"])
            #expect(try await Self.ids(client, "Patient/bob/Observation?code=2339-0") == ["o3"])
            #expect(try await Self.ids(client, "Patient/ann/Observation?date=lt2020-06-01&code=8867-4") == ["o1"])
            #expect(try await Self.ids(client, "Patient/ann/Encounter") == ["e1"])
            #expect(try await Self.ids(client, "Patient/ann/Group") == ["g"])
            // The owner is in its own compartment.
            #expect(try await Self.ids(client, "Patient/ann/Patient") == ["ann"])
            #expect(try await Self.ids(client, "Patient/nobody/Observation").isEmpty)
            // Other compartments of r4-core: Encounter, Practitioner.
            #expect(try await Self.ids(client, "Encounter/e1/Observation") == ["o4"])
            #expect(try await Self.ids(client, "Practitioner/dr/Observation") == ["o4"])
            #expect(try await Self.ids(client, "Practitioner/dr/Practitioner") == ["dr"])
            // Every member type at once, and `_type` among them.
            #expect(try await Self.ids(client, "Patient/ann/*") == ["ann", "e1", "g", "o1", "o4"])
            #expect(try await Self.ids(client, "Patient/ann/*?_type=Observation,Encounter") == ["e1", "o1", "o4"])
            #expect(try await Self.ids(client, "Patient/ann/*?_type=Organization").isEmpty)
            #expect(try await Self.ids(client, "Patient/ann/*?_lastUpdated=gt2000-01-01&_type=Encounter") == ["e1"])
            // POST .../_search takes the criteria as a form.
            let posted = try await client.fhir(
                .post, "Patient/bob/Observation/_search", body: "code=8867-4",
                contentType: "application/x-www-form-urlencoded")
            #expect(posted.status == .ok, "\(posted.text.prefix(300))")
            #expect(posted.json?["entry"]?.arrayValue?.first?["resource"]?["id"] == "o2")
            // Totals and paging stay within the compartment, and the links keep its path.
            let first = try await client.fhir(.get, "Patient/bob/Observation?_count=1&_total=accurate")
            #expect(first.json?["total"] == 2)
            let next = first.json?["link"]?.arrayValue?.first { $0["relation"] == "next" }?["url"]?.stringValue ?? ""
            #expect(next.contains("/Patient/bob/Observation?"), "\(next)")
            let second = try await client.fhir(.get, pathOf(next))
            let pages = [first, second].compactMap {
                $0.json?["entry"]?.arrayValue?.first?["resource"]?["id"]?.stringValue
            }
            #expect(Set(pages) == ["o2", "o3"])
        }
    }

    @Test(arguments: backends)
    func badCompartmentRequestsAreRefusedClearly(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seed(client)
            let cases: [(String, Int)] = [
                ("Organization/org/Patient", 404),  // Organization owns no compartment
                ("Patient/ann/Organization", 400),  // not a member type
                ("Patient/ann/Nonsense", 404),
                ("Patient/ann/Observation?nonsense=1", 400),  // strict, as the equivalent search
                ("Patient/a%20b/Observation", 400),
            ]
            for (path, status) in cases {
                let response = try await client.fhir(.get, path, headers: ["Prefer": "handling=strict"])
                #expect(Int(response.status.code) == status, "\(path): \(response.status) \(response.text.prefix(200))")
                #expect(response.json?["resourceType"] == "OperationOutcome", "\(path)")
            }
            // The routes it shares a shape with still answer as before.
            #expect(try await client.fhir(.get, "Patient/ann/_history").status == .ok)
            #expect(try await client.fhir(.get, "Patient/ann/$everything").status == .ok)
        }
    }

    /// Authorized exactly as the equivalent search: the member type's search scope, and a
    /// patient/ scope limits it to what that patient may see.
    @Test(arguments: backends)
    func compartmentSearchIsAuthorizedAsTheEquivalentSearch(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AccessControlTests.seed(harness)
            func ids(_ path: String, _ token: String) async throws -> [String]? {
                let response = try await harness.call(.get, path, token: token)
                guard response.status == .ok else { return nil }
                return response.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue }.sorted()
                    ?? []
            }
            let p1 = try await harness.token("patient/Observation.rs patient/Patient.rs", patient: "p1")
            #expect(try await ids("Patient/p1/Observation", p1) == ["o-p1"])
            // Another patient's compartment: nothing, as Observation?subject=Patient/p2 finds nothing.
            #expect(try await ids("Patient/p2/Observation", p1) == [])
            #expect(try await ids("Observation?subject=Patient/p2", p1) == [])
            #expect(try await ids("Practitioner/dr/Observation", p1) == ["o-p1"])
            #expect(try await ids("Patient/p1/*", p1) == ["o-p1", "p1"])
            // Without the member type's search scope: 403, as the search.
            let patientsOnly = try await harness.token("user/Patient.rs")
            #expect(try await harness.call(.get, "Patient/p1/Observation", token: patientsOnly).status == .forbidden)
            #expect(try await harness.call(.get, "Observation", token: patientsOnly).status == .forbidden)
            // `*` searches the member types the token may search.
            #expect(try await ids("Patient/p1/*", patientsOnly) == ["p1"])
            let observationsOnly = try await harness.token("user/Observation.rs")
            #expect(try await ids("Patient/p2/*", observationsOnly) == ["o-p2"])
            #expect(
                try await harness.call(.get, "Patient/p2/*?_type=Patient", token: observationsOnly).status == .forbidden
            )
            #expect(try await harness.call(.get, "Patient/p1/Observation", token: nil).status == .unauthorized)
        }
    }
}
