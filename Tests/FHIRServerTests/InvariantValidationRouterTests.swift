import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Testing

/// Write validation beyond structure through the router, on both stores: every case of our
/// invalid corpus refused with 422 naming its rule and location (create, update, transaction
/// entry), warnings never refusing a write, `$validate` reporting both.
@Suite struct InvariantValidationRouterTests {
    static let backends = TestDatabases.backends

    static func issues(_ response: FHIRTestResponse) -> [(diagnostics: String, expression: [String], severity: String)]
    {
        (response.json?["issue"]?.arrayValue ?? []).map { issue in
            (
                issue["diagnostics"]?.stringValue ?? "",
                issue["expression"]?.arrayValue?.compactMap(\.stringValue) ?? [], issue["severity"]?.stringValue ?? ""
            )
        }
    }

    static func names(_ response: FHIRTestResponse, _ item: InvalidResourceCorpus.Case, prefix: String = "") -> Bool {
        issues(response).contains { issue in
            issue.diagnostics.contains(item.diagnostic)
                && issue.expression.contains { $0.contains(prefix + item.location) }
        }
    }

    @Test(arguments: backends)
    func theInvalidCorpusIsRefusedOnCreateAndUpdate(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            for item in InvalidResourceCorpus.cases {
                let created = try await client.fhir(.post, item.type, body: item.body)
                #expect(
                    created.status == .unprocessableContent,
                    "\(backend) \(item.name): \(created.status) \(created.text.prefix(300))")
                #expect(Self.names(created, item), "\(backend) \(item.name): \(created.text.prefix(500))")
                // An update carries the id in the body.
                var object = try #require(try JSONParser.parse(item.body).objectValue)
                object.set("id", "bad-1", after: ["resourceType"])
                let updated = try await client.fhir(
                    .put, "\(item.type)/bad-1", body: JSONWriter().string(.object(object)))
                #expect(
                    updated.status == .unprocessableContent, "\(backend) \(item.name) PUT: \(updated.text.prefix(300))")
                #expect(try await client.fhir(.get, "\(item.type)/bad-1").status == .notFound)
            }
            let stored = try await client.fhir(.get, "Observation?_summary=count")
            #expect(stored.json?["total"] == 0, "nothing refused was stored")
        }
    }

    @Test(arguments: backends)
    func transactionEntriesAndBundleRules(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            // An entry breaking obs-6 refuses the whole transaction: nothing is stored.
            let obs6 = InvalidResourceCorpus.cases.first { $0.diagnostic == "obs-6" }!
            let transaction =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:6a1c4b1e-1d4e-4c1a-9a55-1f6c2f8e0a01","resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}},{"resource":\#(obs6.body),"request":{"method":"POST","url":"Observation"}}]}"#
            let refused = try await client.fhir(.post, "", body: transaction)
            #expect(refused.status == .unprocessableContent, "\(refused.text.prefix(300))")
            #expect(Self.names(refused, obs6, prefix: "Bundle.entry[1].resource."), "\(refused.text.prefix(500))")
            #expect(try await client.fhir(.get, "Patient?_summary=count").json?["total"] == 0)

            // A reference to another entry is checked once rewritten: a Medication is no subject.
            let wrongTarget =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:6a1c4b1e-1d4e-4c1a-9a55-1f6c2f8e0a02","resource":{"resourceType":"Medication"},"request":{"method":"POST","url":"Medication"}},{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:6a1c4b1e-1d4e-4c1a-9a55-1f6c2f8e0a02"}},"request":{"method":"POST","url":"Observation"}}]}"#
            let target = try await client.fhir(.post, "", body: wrongTarget)
            #expect(target.status == .unprocessableContent)
            #expect(
                Self.issues(target).contains { $0.diagnostics.contains("names Medication") },
                "\(target.text.prefix(400))")

            // Bundle rules of the input: one fullUrl per entry, each link relation once.
            let duplicate =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:6a1c4b1e-1d4e-4c1a-9a55-1f6c2f8e0a03","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:6a1c4b1e-1d4e-4c1a-9a55-1f6c2f8e0a03","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#
            let duplicated = try await client.fhir(.post, "", body: duplicate)
            #expect(duplicated.status == .unprocessableContent)
            #expect(
                Self.issues(duplicated).contains {
                    $0.diagnostics.contains("bdl-7") && $0.expression == ["Bundle.entry[1]"]
                }, "\(duplicated.text.prefix(400))")
            let batch = duplicate.replacingOccurrences(of: "\"transaction\"", with: "\"batch\"")
            #expect(try await client.fhir(.post, "", body: batch).status == .unprocessableContent)
            #expect(try await client.fhir(.get, "Patient?_summary=count").json?["total"] == 0)

            // In a batch, an invalid entry fails alone.
            let mixed =
                #"{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient","gender":"male"},"request":{"method":"POST","url":"Patient"}},{"resource":\#(obs6.body),"request":{"method":"POST","url":"Observation"}}]}"#
            let answered = try await client.fhir(.post, "", body: mixed)
            #expect(answered.status == .ok)
            #expect(answered.entryStatusCodes == ["201", "422"], "\(answered.text.prefix(400))")
        }
    }

    @Test(arguments: backends)
    func warningsDoNotRefuseAndValidateReportsThem(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            // No narrative breaks dom-6, a warning: stored, and $validate says it.
            let patient = #"{"resourceType":"Patient","gender":"female"}"#
            #expect(try await client.fhir(.post, "Patient", body: patient).status == .created)
            let validated = try await client.fhir(.post, "Patient/$validate", body: patient)
            #expect(validated.status == .ok)
            let issues = Self.issues(validated)
            #expect(issues.first?.severity == "information")
            #expect(
                issues.contains { $0.severity == "warning" && $0.diagnostics.contains("dom-6") },
                "\(validated.text.prefix(400))")
            // An error: $validate answers 200 with it, stores nothing.
            let ras2 = InvalidResourceCorpus.cases.first { $0.diagnostic == "ras-2" }!
            let invalid = try await client.fhir(.post, "RiskAssessment/$validate", body: ras2.body)
            #expect(invalid.status == .ok)
            #expect(
                Self.issues(invalid).contains {
                    $0.severity == "error" && $0.diagnostics.contains("ras-2")
                        && $0.expression == ["RiskAssessment.prediction[0]"]
                })
            #expect(try await client.fhir(.get, "RiskAssessment?_summary=count").json?["total"] == 0)
            // A PATCH that breaks obs-6 is refused too.
            let observation =
                #"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"weight"},"valueString":"70 kg"}"#
            #expect(try await client.fhir(.put, "Observation/o1", body: observation).status == .created)
            let patch = #"[{"op":"add","path":"/dataAbsentReason","value":{"text":"unknown"}}]"#
            let patched = try await client.fhir(
                .patch, "Observation/o1", body: patch, contentType: "application/json-patch+json")
            #expect(patched.status == .unprocessableContent, "\(patched.text.prefix(300))")
            #expect(Self.issues(patched).contains { $0.diagnostics.contains("obs-6") })
        }
    }
}
