import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Testing

/// Issue 17, "clients first": creates, updates and PATCHes answer with the resource unless the
/// client asks otherwise (`Prefer: return=minimal | OperationOutcome`), as HAPI, Blaze, Medplum
/// and Aidbox do and as fhirpy's `save()` expects; `caduceus serve --default-return minimal`
/// (``FHIRServerConfiguration/defaultReturn``) keeps IBM FHIR Server's empty body. Transaction
/// and batch entries follow the same preference.
@Suite struct ReturnPreferenceTests {
    static let backends = TestDatabases.backends

    static let patch = #"[{"op":"add","path":"/gender","value":"other"}]"#

    /// The body is the stored resource `type/id` at `version`, and agrees with the headers.
    static func expectResource(
        _ response: FHIRTestResponse, _ type: String, version: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> JSONValue {
        let body = try #require(response.json, "no JSON body: \(response.status)", sourceLocation: sourceLocation)
        #expect(body["resourceType"] == .string(type), sourceLocation: sourceLocation)
        #expect(body["meta"]?["versionId"] == .string(version), sourceLocation: sourceLocation)
        let id = try #require(body["id"]?.stringValue, sourceLocation: sourceLocation)
        #expect(
            response.header("Location") == "http://localhost\(basePath)/\(type)/\(id)/_history/\(version)",
            sourceLocation: sourceLocation)
        #expect(response.header("ETag") == #"W/"\#(version)""#, sourceLocation: sourceLocation)
        return body
    }

    static func expectOutcome(
        _ response: FHIRTestResponse, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            response.json?["resourceType"] == "OperationOutcome", "\(response.text)", sourceLocation: sourceLocation)
        #expect(
            response.json?["issue"]?.arrayValue?.first?["severity"] == "information", sourceLocation: sourceLocation)
        #expect(response.text.contains(text), "\(response.text)", sourceLocation: sourceLocation)
    }

    @Test(arguments: backends)
    func everyWriteAnswersWithTheResourceByDefault(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let created = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","name":[{"family":"Lovelace"}]}"#)
            #expect(created.status == .created)
            let body = try Self.expectResource(created, "Patient", version: "1")
            #expect(body["name"]?.arrayValue?.first?["family"] == "Lovelace")
            let id = try #require(body["id"]?.stringValue)
            #expect(try await client.fhir(.get, "Patient/\(id)").json == body)

            let updated = try await client.fhir(
                .put, "Patient/\(id)", body: #"{"resourceType":"Patient","id":"\#(id)","active":true}"#)
            #expect(updated.status == .ok)
            #expect(try Self.expectResource(updated, "Patient", version: "2")["active"] == true)
            let createdByPut = try await client.fhir(
                .put, "Patient/by-put", body: #"{"resourceType":"Patient","id":"by-put"}"#)
            #expect(createdByPut.status == .created)
            #expect(try Self.expectResource(createdByPut, "Patient", version: "1")["id"] == "by-put")
            let patched = try await client.fhir(
                .patch, "Patient/\(id)", body: Self.patch, contentType: "application/json-patch+json")
            #expect(patched.status == .ok)
            #expect(try Self.expectResource(patched, "Patient", version: "3")["gender"] == "other")

            // Conditional create: a match answers 200 with what is stored, none creates.
            let matched = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient"}"#, headers: ["If-None-Exist": "_id=\(id)"])
            #expect(matched.status == .ok)
            #expect(try Self.expectResource(matched, "Patient", version: "3")["gender"] == "other")
            let fresh = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","identifier":[{"system":"urn:t","value":"c1"}]}"#,
                headers: ["If-None-Exist": "identifier=urn:t|c1"])
            #expect(fresh.status == .created)
            #expect(try Self.expectResource(fresh, "Patient", version: "1")["identifier"] != nil)
            // Conditional update.
            let conditional = try await client.fhir(
                .put, "Patient?identifier=urn:t|c1",
                body: #"{"resourceType":"Patient","identifier":[{"system":"urn:t","value":"c1"}],"active":false}"#)
            #expect(conditional.status == .ok)
            #expect(try Self.expectResource(conditional, "Patient", version: "2")["active"] == false)

            // A delete answers as before: 204, no body.
            let deleted = try await client.fhir(.delete, "Patient/\(id)")
            #expect(deleted.status == .noContent && deleted.text.isEmpty)
        }
    }

    @Test(arguments: backends)
    func eachPreferValueShapesCreatesUpdatesAndPatches(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let seeded = try await client.fhir(
                .put, "Patient/shaped", body: #"{"resourceType":"Patient","id":"shaped"}"#)
            #expect(seeded.status == .created)
            var version = 1  // Patient/shaped's current version
            for preference in ["minimal", "representation", "OperationOutcome", "nope"] {
                let headers = ["Prefer": "handling=lenient, return=\(preference)"]
                let created = try await client.fhir(
                    .post, "Patient", body: #"{"resourceType":"Patient"}"#, headers: headers)
                let updated = try await client.fhir(
                    .put, "Patient/shaped", body: #"{"resourceType":"Patient","id":"shaped"}"#, headers: headers)
                let patched = try await client.fhir(
                    .patch, "Patient/shaped", body: Self.patch, contentType: "application/json-patch+json",
                    headers: headers)
                #expect([created.status, updated.status, patched.status] == [.created, .ok, .ok], "\(preference)")
                #expect(created.header("Location")?.hasSuffix("/_history/1") == true)
                #expect(updated.header("ETag") == #"W/"\#(version + 1)""#)
                #expect(patched.header("ETag") == #"W/"\#(version + 2)""#)
                switch preference {
                case "minimal":
                    #expect(created.text.isEmpty && updated.text.isEmpty && patched.text.isEmpty)
                case "OperationOutcome":
                    Self.expectOutcome(created, mentioning: "Created Patient/")
                    Self.expectOutcome(updated, mentioning: "Updated Patient/shaped version \(version + 1)")
                    Self.expectOutcome(patched, mentioning: "Updated Patient/shaped version \(version + 2)")
                default:
                    // representation, and an unknown value, which leaves the default.
                    _ = try Self.expectResource(created, "Patient", version: "1")
                    _ = try Self.expectResource(updated, "Patient", version: String(version + 1))
                    #expect(
                        try Self.expectResource(patched, "Patient", version: String(version + 2))["gender"] == "other")
                }
                version += 2
            }
            // The conditional create's match says what it found.
            let found = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient"}"#,
                headers: ["If-None-Exist": "_id=shaped", "Prefer": "return=OperationOutcome"])
            #expect(found.status == .ok)
            Self.expectOutcome(found, mentioning: "Found Patient/shaped")
        }
    }

    /// `--default-return minimal`: IBM's empty body for clients that send no preference; a
    /// client's `Prefer` still decides.
    @Test(arguments: backends)
    func theDefaultReturnMinimalConfigurationKeepsIBMsEmptyBody(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        #expect(configuration.defaultReturn == .representation)
        configuration.defaultReturn = .minimal
        try await withFHIRApp(backend, configuration: configuration) { client in
            let created = try await client.fhir(.post, "Patient", body: #"{"resourceType":"Patient"}"#)
            #expect(created.status == .created && created.text.isEmpty && created.header("Location") != nil)
            let put = try await client.fhir(.put, "Patient/m1", body: #"{"resourceType":"Patient","id":"m1"}"#)
            #expect(put.status == .created && put.text.isEmpty)
            let patched = try await client.fhir(
                .patch, "Patient/m1", body: Self.patch, contentType: "application/json-patch+json")
            #expect(patched.status == .ok && patched.text.isEmpty)
            let asked = try await client.fhir(
                .put, "Patient/m1", body: #"{"resourceType":"Patient","id":"m1"}"#,
                headers: ["Prefer": "return=representation"])
            #expect(try Self.expectResource(asked, "Patient", version: "3")["id"] == "m1")
            Self.expectOutcome(
                try await client.fhir(
                    .post, "Patient", body: #"{"resourceType":"Patient"}"#,
                    headers: ["Prefer": "return=OperationOutcome"]),
                mentioning: "Created Patient/")
            let post =
                #"{"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}}"#
            let transaction = try await client.fhir(
                .post, "", body: #"{"resourceType":"Bundle","type":"transaction","entry":[\#(post)]}"#)
            #expect(transaction.status == .ok && !transaction.text.contains(#""resource""#), "\(transaction.text)")
            #expect(transaction.json?["entry"]?.arrayValue?.first?["response"]?["status"] == "201 Created")
        }
    }

    static func bundle(_ type: String) -> String {
        let entries = [
            #"{"fullUrl":"urn:uuid:0b8e2a52-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":"Entry"}]},"request":{"method":"POST","url":"Patient"}}"#,
            #"{"resource":{"resourceType":"Patient","id":"put-entry","active":true},"request":{"method":"PUT","url":"Patient/put-entry"}}"#,
            #"{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"_id=seed"}}"#,
            #"{"request":{"method":"GET","url":"Patient/seed"}}"#,
        ]
        return #"{"resourceType":"Bundle","type":"\#(type)","entry":[\#(entries.joined(separator: ","))]}"#
    }

    /// A write entry answers with its resource by default, with nothing under `return=minimal`,
    /// with `response.outcome` under `return=OperationOutcome`; a read entry always with its resource.
    @Test(arguments: backends)
    func transactionAndBatchEntriesFollowThePreference(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            #expect(
                try await client.fhir(
                    .put, "Patient/seed", body: #"{"resourceType":"Patient","id":"seed","gender":"female"}"#
                ).status == .created)
            for type in ["transaction", "batch"] {
                for preference in [nil, "minimal", "OperationOutcome", "representation"] {
                    let response = try await client.fhir(
                        .post, "", body: Self.bundle(type),
                        headers: preference.map { ["Prefer": "return=\($0)"] } ?? [:])
                    #expect(response.status == .ok, "\(response.text.prefix(300))")
                    let entries = try #require(response.json?["entry"]?.arrayValue)
                    #expect(
                        entries.map { $0["response"]?["status"]?.stringValue ?? "?" } == [
                            "201 Created", "200 OK", "200 OK", "200 OK",
                        ]
                            || entries.map { $0["response"]?["status"]?.stringValue ?? "?" } == [
                                "201 Created", "201 Created", "200 OK", "200 OK",
                            ])
                    let writes = entries.prefix(3)
                    #expect(entries[3]["resource"]?["gender"] == "female", "\(type) \(preference ?? "default")")
                    switch preference {
                    case "minimal":
                        #expect(
                            writes.allSatisfy { $0["resource"] == nil && $0["response"]?["outcome"] == nil },
                            "\(response.text)")
                    case "OperationOutcome":
                        #expect(
                            writes.allSatisfy {
                                $0["resource"] == nil
                                    && $0["response"]?["outcome"]?["issue"]?.arrayValue?.first?["severity"]
                                        == "information"
                            }, "\(response.text)")
                    default:
                        #expect(writes[0]["resource"]?["name"]?.arrayValue?.first?["family"] == "Entry")
                        #expect(writes[1]["resource"]?["id"] == "put-entry" && writes[1]["resource"]?["active"] == true)
                        #expect(writes[2]["resource"]?["id"] == "seed" && writes[2]["resource"]?["gender"] == "female")
                        #expect(writes.allSatisfy { $0["response"]?["outcome"] == nil })
                    }
                }
            }
        }
    }

    /// Loading patients is not reading them: a create's or update's answer is the client's own
    /// body, so the default answers count for nothing in the bulk-read detector; what a PATCH
    /// or a conditional create's match shows still counts (ExfiltrationRouterTests).
    @Test func loadingPatientsWithTheDefaultRaisesNoBulkReadAlert() async throws {
        try await AccessControlTests.withSecureApp(.sqlite) { harness in
            await harness.trail.watch(try ExfiltrationDetector(patients: 3, window: 60))
            let loader = try await harness.token("user/Patient.cu", subject: "loader")
            for index in 0..<5 {
                let created = try await harness.call(
                    .post, "Patient", token: loader,
                    body: #"{"resourceType":"Patient","name":[{"family":"Load\#(index)"}]}"#)
                #expect(created.status == .created && created.json?["id"] != nil)
                let put = try await harness.call(
                    .put, "Patient/l\(index)", token: loader, body: #"{"resourceType":"Patient","id":"l\#(index)"}"#)
                #expect(put.status == .created && put.json?["id"] == .string("l\(index)"))
            }
            let entries = (0..<5).map {
                #"{"resource":{"resourceType":"Patient","id":"t\#($0)"},"request":{"method":"PUT","url":"Patient/t\#($0)"}}"#
            }
            let bundle = try await harness.call(
                .post, "", token: loader,
                body: #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#)
            #expect(bundle.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"] }.count == 5)
            await harness.trail.flush()
            let auditor = try await harness.token("user/AuditEvent.rs", subject: "auditor")
            let alerts = try await harness.call(.get, ExfiltrationRouterTests.alertQuery, token: auditor)
            #expect(alerts.status == .ok && alerts.json?["total"] == 0, "\(alerts.text.prefix(400))")
        }
    }
}
