import FHIR
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// Transaction and batch Bundles, conditional interactions and PATCH (issue 3).
@Suite struct TransactionTests {
    static let backends = TestDatabases.backends

    static func count(_ client: any TestClientProtocol, _ query: String) async throws -> Int {
        let bundle = try #require(try await client.fhir(.get, query).json)
        guard case .number(let text)? = bundle["total"], let total = Int(text) else { return -1 }
        return total
    }

    @Test(arguments: backends)
    func transactionRewritesUrnReferencesAndIsAllOrNothing(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let bundle = """
                {"resourceType":"Bundle","type":"transaction","entry":[
                 {"fullUrl":"urn:uuid:0c5b5a34-1111-4e0e-9d3c-000000000002","resource":{"resourceType":"Observation","status":"final",
                   "code":{"text":"weight"},"subject":{"reference":"urn:uuid:0c5b5a34-1111-4e0e-9d3c-000000000001"}},
                   "request":{"method":"POST","url":"Observation"}},
                 {"fullUrl":"urn:uuid:0c5b5a34-1111-4e0e-9d3c-000000000001","resource":{"resourceType":"Patient",
                   "identifier":[{"system":"urn:mrn","value":"T1"}]},"request":{"method":"POST","url":"Patient"}}
                ]}
                """
            let response = try await client.fhir(.post, "", body: bundle)
            #expect(response.status == .ok, "\(response.text)")
            let result = try #require(response.json)
            #expect(result["type"] == "transaction-response")
            let entries = try #require(result["entry"]?.arrayValue)
            #expect(entries.count == 2)
            #expect(entries.allSatisfy { $0["response"]?["status"] == "201 Created" })
            let patientLocation = try #require(entries[1]["response"]?["location"]?.stringValue)
            let patientId = patientLocation.split(separator: "/")[1]
            let observationLocation = try #require(entries[0]["response"]?["location"]?.stringValue)
            let observation = try #require(
                try await client.fhir(
                    .get, String(observationLocation.split(separator: "/").prefix(2).joined(separator: "/"))
                ).json)
            #expect(observation["subject"]?["reference"]?.stringValue == "Patient/\(patientId)")
            #expect(try await Self.count(client, "Observation?subject=Patient/\(patientId)") == 1)

            // One bad entry (a stale If-Match) undoes the good ones.
            let failing = """
                {"resourceType":"Bundle","type":"transaction","entry":[
                 {"resource":{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"ROLLBACK"}]},"request":{"method":"POST","url":"Patient"}},
                 {"resource":{"resourceType":"Patient","id":"\(patientId)"},"request":{"method":"PUT","url":"Patient/\(patientId)","ifMatch":"W/\\"9\\""}}
                ]}
                """
            let failed = try await client.fhir(.post, "", body: failing)
            #expect(failed.status == .preconditionFailed)
            #expect(
                failed.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.contains("Bundle.entry[1]")
                    == true)
            #expect(try await Self.count(client, "Patient?identifier=urn:mrn%7CROLLBACK") == 0)
        }
    }

    @Test(arguments: backends)
    func transactionConditionalsAndReads(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            _ = try await client.fhir(
                .put, "Patient/known",
                body: #"{"resourceType":"Patient","id":"known","identifier":[{"system":"urn:mrn","value":"K1"}]}"#)
            let bundle = """
                {"resourceType":"Bundle","type":"transaction","entry":[
                 {"fullUrl":"urn:uuid:aaaaaaaa-0000-0000-0000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"K1"}]},
                   "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:mrn|K1"}},
                 {"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"}},
                   "request":{"method":"POST","url":"Encounter"}},
                 {"resource":{"resourceType":"Condition","subject":{"reference":"Patient?identifier=urn:mrn|K1"},"code":{"text":"flu"}},
                   "request":{"method":"POST","url":"Condition"}},
                 {"resource":{"resourceType":"Organization","name":"Conditional"},"request":{"method":"PUT","url":"Organization?name=Conditional"}},
                 {"request":{"method":"GET","url":"Patient/known"}},
                 {"request":{"method":"GET","url":"Patient?identifier=urn:mrn|K1"}}
                ]}
                """
            let response = try await client.fhir(.post, "", body: bundle)
            #expect(response.status == .ok, "\(response.text)")
            let entries = try #require(response.json?["entry"]?.arrayValue)
            #expect(entries[0]["response"]?["status"] == "200 OK")  // ifNoneExist found it
            #expect(entries[0]["response"]?["location"]?.stringValue?.hasPrefix("Patient/known/") == true)
            #expect(try await Self.count(client, "Encounter?subject=Patient/known") == 1)
            #expect(try await Self.count(client, "Condition?subject=Patient/known") == 1)
            #expect(entries[3]["response"]?["status"] == "201 Created")
            #expect(entries[4]["resource"]?["id"] == "known")
            #expect(entries[5]["resource"]?["type"] == "searchset")
            #expect(entries[5]["resource"]?["total"] == 1)
            #expect(try await Self.count(client, "Patient") == 1)
        }
    }

    @Test(arguments: backends)
    func batchAnswersEachEntry(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let bundle = """
                {"resourceType":"Bundle","type":"batch","entry":[
                 {"resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}},
                 {"request":{"method":"GET","url":"Patient/missing"}},
                 {"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Patient"}},
                 {"request":{"method":"DELETE","url":"Patient?gender=female"}}
                ]}
                """
            let response = try await client.fhir(.post, "", body: bundle)
            #expect(response.status == .ok)
            let entries = try #require(response.json?["entry"]?.arrayValue)
            #expect(response.json?["type"] == "batch-response")
            #expect(
                entries.map { $0["response"]?["status"]?.stringValue ?? "" } == [
                    "201 Created", "404 Not Found", "422 Unprocessable Entity", "204 No Content",
                ])
            #expect(entries[1]["response"]?["outcome"]?["resourceType"] == "OperationOutcome")
            #expect(try await Self.count(client, "Patient") == 0)

            // ifNoneExist in a batch creates once when nothing matches, and not at all when one does.
            let conditional = """
                {"resourceType":"Bundle","type":"batch","entry":[
                 {"resource":{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"B1"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:mrn|B1"}}
                ]}
                """
            let first = try await client.fhir(.post, "", body: conditional)
            #expect(first.json?["entry"]?.arrayValue?.first?["response"]?["status"] == "201 Created")
            let second = try await client.fhir(.post, "", body: conditional)
            #expect(second.json?["entry"]?.arrayValue?.first?["response"]?["status"] == "200 OK")
            #expect(try await Self.count(client, "Patient?identifier=urn:mrn%7CB1") == 1)
        }
    }

    @Test(arguments: backends)
    func badBundlesAreRefused(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            #expect(
                try await client.fhir(.post, "", body: #"{"resourceType":"Bundle","type":"collection"}"#).status
                    == .badRequest)
            #expect(try await client.fhir(.post, "", body: #"{"resourceType":"Patient"}"#).status == .badRequest)
            let noMethod = #"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"url":"Patient"}}]}"#
            let response = try await client.fhir(.post, "", body: noMethod)
            #expect(response.status == .badRequest)
            #expect(
                response.json?["issue"]?.arrayValue?.first?["expression"]?.arrayValue?.first
                    == "Bundle.entry[0].request.method")
            // A PUT with neither id nor criteria used to reach a forced unwrap: now a 400 naming it.
            let putWithoutId =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient"}}]}"#
            let refused = try await client.fhir(.post, "", body: putWithoutId)
            #expect(refused.status == .badRequest)
            #expect(
                refused.json?["issue"]?.arrayValue?.first?["expression"]?.arrayValue?.first
                    == "Bundle.entry[0].request.url")
            let versionRead =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient/p/_history/1"}}]}"#
            #expect(try await client.fhir(.post, "", body: versionRead).status == .badRequest)
            let batch = try await client.fhir(
                .post, "", body: putWithoutId.replacingOccurrences(of: "transaction", with: "batch"))
            #expect(batch.json?["entry"]?.arrayValue?.first?["response"]?["status"] == "400 Bad Request")
        }
    }

    @Test(arguments: backends)
    func conditionalCreateUpdateAndDelete(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let body = #"{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"C1"}]}"#
            let first = try await client.fhir(
                .post, "Patient", body: body, headers: ["If-None-Exist": "identifier=urn:mrn|C1"])
            #expect(first.status == .created)
            let second = try await client.fhir(
                .post, "Patient", body: body, headers: ["If-None-Exist": "identifier=urn:mrn|C1"])
            #expect(second.status == .ok)
            #expect(first.header("Location") == second.header("Location"))
            // fhirpy sends the criteria in the URL.
            let third = try await client.fhir(.post, "Patient?identifier=urn:mrn%7CC1", body: body)
            #expect(third.status == .ok)
            #expect(try await Self.count(client, "Patient") == 1)

            let update = try await client.fhir(
                .put, "Patient?identifier=urn:mrn%7CC1",
                body: #"{"resourceType":"Patient","gender":"male","identifier":[{"system":"urn:mrn","value":"C1"}]}"#)
            #expect(update.status == .ok)
            #expect(update.header("ETag") == #"W/"2""#)
            let created = try await client.fhir(
                .put, "Patient?identifier=urn:mrn%7CC2",
                body: #"{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"C2"}]}"#)
            #expect(created.status == .created)
            let ambiguous = try await client.fhir(
                .put, "Patient?identifier=urn:mrn%7C", body: #"{"resourceType":"Patient"}"#)
            #expect(ambiguous.status == .preconditionFailed)

            #expect(try await client.fhir(.delete, "Patient?identifier=urn:mrn%7CC2").status == .noContent)
            #expect(try await Self.count(client, "Patient") == 1)
            #expect(try await client.fhir(.delete, "Patient?identifier=urn:mrn%7C").status == .noContent)
            #expect(try await Self.count(client, "Patient") == 0)
        }
    }

    @Test(arguments: backends)
    func jsonPatch(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            _ = try await client.fhir(
                .put, "Patient/p",
                body: #"{"resourceType":"Patient","id":"p","gender":"male","name":[{"family":"Old"}]}"#)
            let patch =
                #"[{"op":"test","path":"/gender","value":"male"},{"op":"replace","path":"/gender","value":"female"},{"op":"add","path":"/name/0/given","value":["Ann"]},{"op":"remove","path":"/name/0/family"}]"#
            let patched = try await client.fhir(
                .patch, "Patient/p", body: patch, contentType: "application/json-patch+json",
                headers: ["Prefer": "return=representation"])
            #expect(patched.status == .ok, "\(patched.text)")
            #expect(patched.json?["gender"] == "female")
            #expect(patched.json?["name"]?.arrayValue?.first == ["given": ["Ann"]])
            #expect(patched.header("ETag") == #"W/"2""#)
            #expect(try await client.fhir(.get, "Patient?family=old").json?["total"] == 0)
            let failedTest = try await client.fhir(
                .patch, "Patient/p", body: #"[{"op":"test","path":"/gender","value":"male"}]"#,
                contentType: "application/json-patch+json")
            #expect(failedTest.status == .unprocessableContent)
            let changesId = try await client.fhir(
                .patch, "Patient/p", body: #"[{"op":"replace","path":"/id","value":"q"}]"#,
                contentType: "application/json-patch+json")
            #expect(changesId.status == .unprocessableContent)
            let stale = try await client.fhir(
                .patch, "Patient/p", body: "[]", contentType: "application/json-patch+json",
                headers: ["If-Match": #"W/"1""#])
            #expect(stale.status == .preconditionFailed)
            let malformed = try await client.fhir(
                .patch, "Patient/p", body: #"{"op":"add"}"#, contentType: "application/json-patch+json")
            #expect(malformed.status == .badRequest)
            #expect(
                try await client.fhir(.patch, "Patient/none", body: "[]", contentType: "application/json-patch+json")
                    .status == .notFound)
        }
    }
}
