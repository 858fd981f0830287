import FHIR
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// Chaining, reverse chaining, includes, sorting and result shaping (issue 3).
@Suite struct AdvancedSearchTests {
    static let backends = TestDatabases.backends

    /// Two patients with an organization, observations and an encounter.
    static func seed(_ client: any TestClientProtocol) async throws {
        let resources = [
            #"{"resourceType":"Organization","id":"org","name":"Good Health"}"#,
            #"{"resourceType":"Patient","id":"ann","name":[{"family":"Ash","given":["Ann"]}],"birthDate":"1950-01-01","managingOrganization":{"reference":"Organization/org"}}"#,
            #"{"resourceType":"Patient","id":"bob","name":[{"family":"Birch","given":["Bob"]}],"birthDate":"1990-01-01"}"#,
            #"{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/ann"},"effectiveDateTime":"2020-01-01","valueQuantity":{"value":80}}"#,
            #"{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/bob"},"effectiveDateTime":"2021-01-01","valueQuantity":{"value":60}}"#,
            #"{"resourceType":"Observation","id":"o3","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/bob"},"effectiveDateTime":"2019-01-01","valueQuantity":{"value":5}}"#,
            #"{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/ann"},"serviceProvider":{"reference":"Organization/org"}}"#,
        ]
        for text in resources {
            let value = try JSONParser.parse(text)
            let path = "\(value["resourceType"]!.stringValue!)/\(value["id"]!.stringValue!)"
            let response = try await client.fhir(.put, path, body: text)
            #expect(response.status == .created, "\(path): \(response.text)")
        }
    }

    static func ids(_ client: any TestClientProtocol, _ query: String, mode: String = "match") async throws -> [String]
    {
        let response = try await client.fhir(.get, query, headers: ["Prefer": "handling=strict"])
        #expect(response.status == .ok, "\(query): \(response.text)")
        return response.json?["entry"]?.arrayValue?.filter { $0["search"]?["mode"]?.stringValue == mode }
            .compactMap { $0["resource"]?["id"]?.stringValue } ?? []
    }

    @Test(arguments: backends)
    func chainsAndReverseChains(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seed(client)
            #expect(try await Self.ids(client, "Observation?subject:Patient.name=ash") == ["o1"])
            #expect(try await Self.ids(client, "Observation?subject.family=birch&_sort=_id") == ["o2", "o3"])
            #expect(try await Self.ids(client, "Observation?patient.organization.name=good") == ["o1"])
            #expect(try await Self.ids(client, "Observation?subject:Patient.birthdate=lt1960") == ["o1"])
            #expect(try await Self.ids(client, "Patient?_has:Observation:subject:code=2339-0") == ["bob"])
            #expect(
                try await Self.ids(client, "Patient?_has:Observation:patient:code=8867-4&_sort=_id") == ["ann", "bob"])
            #expect(
                try await Self.ids(
                    client, "Organization?_has:Patient:organization:_has:Observation:subject:code=8867-4") == ["org"])
            #expect(try await Self.ids(client, "Patient?_has:Encounter:subject:status=planned").isEmpty)
            let bad = try await client.fhir(.get, "Patient?_has:Observation:nonsense:code=1")
            #expect(bad.status == .badRequest)
        }
    }

    @Test(arguments: backends)
    func includesAndRevincludes(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seed(client)
            #expect(try await Self.ids(client, "Encounter?_include=Encounter:subject", mode: "include") == ["ann"])
            let both = try await Self.ids(
                client, "Encounter?_include=Encounter:subject&_include=Encounter:service-provider", mode: "include")
            #expect(Set(both) == ["ann", "org"])
            #expect(try await Self.ids(client, "Encounter?_include=Encounter:*", mode: "include").count == 2)
            #expect(try await Self.ids(client, "Encounter?_include=Encounter:subject:Group", mode: "include").isEmpty)
            let revincluded = try await Self.ids(
                client, "Patient?_id=bob&_revinclude=Observation:subject", mode: "include")
            #expect(Set(revincluded) == ["o2", "o3"])
            // Without :iterate the organization of the included patient is not followed; with it, it is.
            #expect(
                try await Self.ids(
                    client, "Observation?_id=o1&_include=Observation:subject&_include=Patient:organization",
                    mode: "include") == ["ann"])
            let iterated = try await Self.ids(
                client, "Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:organization",
                mode: "include")
            #expect(Set(iterated) == ["ann", "org"])
            #expect(try await client.fhir(.get, "Observation?_include=Observation:nope").status == .badRequest)
        }
    }

    @Test(arguments: backends)
    func sortsByAnyParameterAndShapesResults(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.seed(client)
            #expect(try await Self.ids(client, "Observation?_sort=date") == ["o3", "o1", "o2"])
            #expect(try await Self.ids(client, "Observation?_sort=-date") == ["o2", "o1", "o3"])
            #expect(try await Self.ids(client, "Observation?_sort=code,-value-quantity") == ["o3", "o1", "o2"])
            #expect(try await Self.ids(client, "Patient?_sort=-family") == ["bob", "ann"])

            let noTotal = try #require(try await client.fhir(.get, "Observation?_total=none&_count=2").json)
            #expect(noTotal["total"] == nil)
            #expect(noTotal["link"]?.arrayValue?.contains { $0["relation"] == "next" } == true)
            #expect(noTotal["link"]?.arrayValue?.contains { $0["relation"] == "last" } == false)

            let summary = try #require(try await client.fhir(.get, "Patient?_id=ann&_summary=true").json)
            let patient = try #require(summary["entry"]?.arrayValue?.first?["resource"])
            #expect(patient["name"] != nil && patient["managingOrganization"] != nil)
            #expect(patient["meta"]?["tag"]?.arrayValue?.contains { $0["code"] == "SUBSETTED" } == true)
            let elements = try #require(try await client.fhir(.get, "Patient?_id=ann&_elements=birthDate").json)
            let cut = try #require(elements["entry"]?.arrayValue?.first?["resource"])
            #expect(cut["birthDate"] == "1950-01-01" && cut["name"] == nil && cut["id"] == "ann")
            let data = try #require(try await client.fhir(.get, "Observation?_id=o1&_summary=data").json)
            #expect(data["entry"]?.arrayValue?.first?["resource"]?["valueQuantity"] != nil)
        }
    }

    @Test(arguments: backends)
    func tokenBelowAndAboveFollowCodeSystemHierarchies(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let actCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
            let clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
            for text in [
                #"{"resourceType":"Encounter","id":"inpatient","status":"finished","class":{"system":"\#(actCode)","code":"IMP"}}"#,
                #"{"resourceType":"Encounter","id":"acute","status":"finished","class":{"system":"\#(actCode)","code":"ACUTE"}}"#,
                #"{"resourceType":"Condition","id":"relapse","subject":{"reference":"Patient/x"},"clinicalStatus":{"coding":[{"system":"\#(clinical)","code":"relapse"}]}}"#,
            ] {
                let value = try JSONParser.parse(text)
                let path = "\(value["resourceType"]!.stringValue!)/\(value["id"]!.stringValue!)"
                #expect(try await client.fhir(.put, path, body: text).status == .created, "\(path)")
            }
            let encoded = { (text: String) in text.replacingOccurrences(of: "|", with: "%7C") }
            #expect(
                try await Self.ids(client, encoded("Encounter?class:below=\(actCode)|_ActEncounterCode&_sort=_id")) == [
                    "acute", "inpatient",
                ])
            #expect(
                try await Self.ids(client, encoded("Encounter?class:below=\(actCode)|IMP&_sort=_id")) == [
                    "acute", "inpatient",
                ])
            #expect(try await Self.ids(client, encoded("Encounter?class:below=\(actCode)|ACUTE")) == ["acute"])
            #expect(
                try await Self.ids(client, encoded("Encounter?class:above=\(actCode)|ACUTE&_sort=_id")) == [
                    "acute", "inpatient",
                ])
            #expect(try await Self.ids(client, encoded("Encounter?class=\(actCode)|IMP")) == ["inpatient"])
            #expect(
                try await Self.ids(client, encoded("Condition?clinical-status:below=\(clinical)|active")) == ["relapse"]
            )
            #expect(try await Self.ids(client, encoded("Condition?clinical-status=\(clinical)|active")).isEmpty)
        }
    }
}
