import FHIR
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// `_filter` (issue 17) through the router on both databases: each operator by parameter type,
/// the logic, chains, paging, its errors, and the access restriction of its chains.
@Suite struct SearchFilterTests {
    static let backends = TestDatabases.backends

    /// The ids a `_filter` search finds, sorted; `extra` are more query parameters.
    static func ids(_ client: any TestClientProtocol, _ type: String, _ filter: String, _ extra: String = "")
        async throws -> [String]
    {
        let response = try await client.fhir(
            .get, "\(type)?_filter=\(encodeQuery(filter))&_count=100\(extra)", headers: ["Prefer": "handling=strict"])
        #expect(response.status == .ok, "\(filter): \(response.text.prefix(300))")
        return (response.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []).sorted()
    }

    @Test(arguments: backends)
    func operatorsByParameterType(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await AdvancedSearchTests.seed(client)
            let valueSet =
                #"{"resourceType":"ValueSet","id":"vs1","status":"draft","url":"http://example.org/fhir/ValueSet/vital-codes"}"#
            #expect(try await client.fhir(.put, "ValueSet/vs1", body: valueSet).status == .created)
            let cases: [(String, String, [String])] = [
                // string: on the normalized text, as string search compares
                ("Patient", #"name co "IRC""#, ["bob"]),
                ("Patient", "given eq ann", ["ann"]),
                ("Patient", "given eq an", []),
                ("Patient", "family sw bi", ["bob"]),
                ("Patient", "family ew SH", ["ann"]),
                ("Patient", "family gt b", ["bob"]),
                ("Patient", "family le ash", ["ann"]),
                ("Patient", "family ne ash", ["bob"]),
                // date
                ("Patient", "birthdate ge 1980", ["bob"]),
                ("Patient", "birthdate lt 1980-01-01", ["ann"]),
                ("Observation", "date po 2020", ["o1"]),
                ("Observation", "date eq 2021-01", ["o2"]),
                ("Observation", "date sa 2019-12-31", ["o1", "o2"]),
                ("Observation", "date ne 2020", ["o2", "o3"]),
                // token
                ("Observation", "code eq http://loinc.org|8867-4", ["o1", "o2"]),
                ("Observation", "code ne 2339-0", ["o1", "o2"]),
                ("Observation", "code eq |8867-4", []),
                // number and quantity
                ("Observation", "value-quantity gt 50 and value-quantity lt 70", ["o2"]),
                ("Observation", "value-quantity ge 80 or value-quantity le 5", ["o1", "o3"]),
                ("Observation", "value-quantity eb 60", ["o3"]),
                // reference
                ("Observation", "subject re Patient/bob", ["o2", "o3"]),
                ("Observation", "subject eq ann", ["o1"]),
                ("Observation", "subject ne Patient/ann", ["o2", "o3"]),
                // _id, _lastUpdated, presence
                ("Observation", "_id eq o1 or _id eq o3", ["o1", "o3"]),
                ("Observation", "_id ne o1", ["o2", "o3"]),
                ("Patient", "_lastUpdated gt 2000-01-01", ["ann", "bob"]),
                ("Patient", "organization pr true", ["ann"]),
                ("Patient", "organization pr false", ["bob"]),
                // uri
                ("ValueSet", "url sw http://example.org/fhir/", ["vs1"]),
                ("ValueSet", "url co ValueSet/vital", ["vs1"]),
                ("ValueSet", "url ew -codes", ["vs1"]),
                ("ValueSet", "url eq http://example.org", []),
            ]
            for (type, filter, expected) in cases {
                #expect(try await Self.ids(client, type, filter) == expected, "\(type)?_filter=\(filter)")
            }
        }
    }

    @Test(arguments: backends)
    func logicChainsAndOtherParameters(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await AdvancedSearchTests.seed(client)
            let cases: [(String, String, [String])] = [
                ("Patient", "family eq ash or family eq birch", ["ann", "bob"]),
                ("Patient", "not (family eq ash)", ["bob"]),
                ("Patient", "family eq birch and birthdate ge 1980", ["bob"]),
                ("Patient", "family eq ash or family eq birch and birthdate ge 1980", ["ann", "bob"]),
                ("Patient", "(family eq ash or family eq birch) and birthdate ge 1980", ["bob"]),
                ("Patient", "not (family eq ash or family eq birch)", []),
                ("Observation", #"subject.name co "ash""#, ["o1"]),
                ("Observation", "patient.organization.name sw good", ["o1"]),
                ("Observation", "not (subject:Patient.family eq birch) and value-quantity gt 10", ["o1"]),
                ("Encounter", "subject.birthdate lt 1960 and service-provider.name eq \"good health\"", ["e1"]),
            ]
            for (type, filter, expected) in cases {
                #expect(try await Self.ids(client, type, filter) == expected, "\(type)?_filter=\(filter)")
            }
            // AND-ed with the query's other parameters, and across types.
            #expect(try await Self.ids(client, "Observation", "value-quantity lt 10", "&subject=Patient/bob") == ["o3"])
            #expect(
                try await Self.ids(client, "", "_id eq o1 or _id eq ann", "&_type=Patient,Observation") == [
                    "ann", "o1",
                ])
        }
    }

    /// `ss` (the resource's code subsumes the value) and `sb` (it is subsumed by the value), as
    /// `:above` and `:below`, on a code system whose hierarchy r4-core holds.
    @Test(arguments: backends)
    func subsumptionFollowsCodeSystemHierarchies(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let actCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
            for (id, code) in [("inpatient", "IMP"), ("acute", "ACUTE"), ("ambulatory", "AMB")] {
                let text =
                    #"{"resourceType":"Encounter","id":"\#(id)","status":"finished","class":{"system":"\#(actCode)","code":"\#(code)"}}"#
                let stored = try await client.fhir(.put, "Encounter/" + id, body: text)
                #expect(stored.status == .created)
            }
            let cases: [(String, [String])] = [
                ("class sb \(actCode)|IMP", ["acute", "inpatient"]),
                ("class sb \(actCode)|ACUTE", ["acute"]),
                ("class ss \(actCode)|ACUTE", ["acute", "inpatient"]),
                ("class eq \(actCode)|IMP or class sb \(actCode)|AMB", ["ambulatory", "inpatient"]),
            ]
            for (filter, expected) in cases {
                let found = try await Self.ids(client, "Encounter", filter)
                #expect(found == expected, "\(filter)")
            }
        }
    }

    /// `in` / `ni` against a value set of R4 core, system and code both compared.
    @Test(arguments: backends)
    func valueSetMembership(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let status = "http://hl7.org/fhir/observation-status"
            let resources = [
                #"{"resourceType":"Patient","id":"f","gender":"female"}"#,
                #"{"resourceType":"Patient","id":"m","gender":"male"}"#,
                #"{"resourceType":"Patient","id":"none"}"#,
                #"{"resourceType":"Observation","id":"in","status":"final","code":{"coding":[{"system":"\#(status)","code":"final"}]}}"#,
                #"{"resourceType":"Observation","id":"loinc","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"final"}]}}"#,
            ]
            for text in resources {
                let value = try JSONParser.parse(text)
                let stored = try await client.fhir(
                    .put, "\(value["resourceType"]!.stringValue!)/\(value["id"]!.stringValue!)", body: text)
                #expect(stored.status == .created, "\(stored.text.prefix(200))")
            }
            let cases: [(String, String, [String])] = [
                ("Patient", "gender in http://hl7.org/fhir/ValueSet/administrative-gender", ["f", "m"]),
                ("Patient", "gender ni http://hl7.org/fhir/ValueSet/administrative-gender", ["none"]),
                (
                    "Patient", "gender in http://hl7.org/fhir/ValueSet/administrative-gender and not (gender eq male)",
                    ["f"]
                ),
                ("Observation", "code in http://hl7.org/fhir/ValueSet/observation-status", ["in"]),
                // R4 core's largest expanded set (346 codes): IN lists, not 700 OR-ed terms (SQLite's depth).
                ("Patient", "_tag in http://hl7.org/fhir/ValueSet/spdx-license or gender eq male", ["m"]),
            ]
            for (type, filter, expected) in cases {
                let found = try await Self.ids(client, type, filter)
                #expect(found == expected, "\(type)?_filter=\(filter)")
            }
        }
    }

    @Test(arguments: backends)
    func pagesCarryTheFilterAndErrorsSayWhere(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await AdvancedSearchTests.seed(client)
            var next: String? = "Observation?_filter=\(encodeQuery("value-quantity gt 1"))&_count=1&_total=accurate"
            var seen: [String] = []
            while let path = next, seen.count < 5 {
                let page = try await client.fhir(.get, pathOf(path))
                #expect(page.status == .ok && page.json?["total"] == 3, "\(page.text.prefix(300))")
                seen += page.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []
                next = page.json?["link"]?.arrayValue?.first { $0["relation"] == "next" }?["url"]?.stringValue
            }
            #expect(seen.sorted() == ["o1", "o2", "o3"])

            for (filter, text) in [
                ("family eq", "character 10"), ("nosuch eq 1", "unknown search parameter 'nosuch'"),
                ("gender in x", "value sets"),
            ] {
                let response = try await client.fhir(.get, "Patient?_filter=\(encodeQuery(filter))")
                #expect(
                    response.status == .badRequest && response.json?["resourceType"] == "OperationOutcome", "\(filter)")
                #expect(response.text.contains(text), "\(filter): \(response.text)")
            }
            // POST _search takes it as a form parameter.
            let form = try await client.fhir(
                .post, "Patient/_search", body: "_filter=\(encodeQuery("family sw as"))",
                contentType: "application/x-www-form-urlencoded")
            #expect(
                form.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } == ["ann"],
                "\(form.text.prefix(300))")
        }
    }

    /// A chain inside `_filter` is restricted as a chained parameter is: under a patient scope
    /// its rest is answered among what the patient may see (else A learns, from whether its
    /// own Observation matches, the code of B's Observation it has as a member), and every type
    /// it reaches needs the search permission.
    @Test(arguments: backends)
    func chainsInsideAFilterSeeOnlyWhatTheTokenMay(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AuthorizationRegressionTests.seed(harness)
            let oracle = "Observation?_filter=\(encodeQuery("has-member.code eq b-secret"))"
            let admin = try await harness.token("system/*.*")
            let all = try await harness.call(.get, oracle, token: admin)
            #expect(
                all.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } == ["o-p1"],
                "\(all.text.prefix(300))")
            let a = try await harness.token("patient/*.rs", subject: "a", patient: "p1")
            let answer = try await harness.call(.get, oracle, token: a)
            #expect(answer.status == .ok && answer.json?["entry"] == nil, "\(answer.text.prefix(300))")
            #expect(AuthorizationRegressionTests.leaks(answer, asked: oracle).isEmpty)
            let observationsOnly = try await harness.token("user/Observation.rs")
            let chained = try await harness.call(
                .get, "Observation?_filter=\(encodeQuery("subject:Patient.name eq x"))", token: observationsOnly)
            #expect(chained.status == .forbidden, "\(chained.text.prefix(300))")
        }
    }
}
