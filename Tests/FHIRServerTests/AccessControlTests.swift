import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// SMART bearer tokens, scopes, the patient compartment, and one AuditEvent per interaction
/// (issue 7), at router level.
@Suite struct AccessControlTests {
    static let backends = TestDatabases.backends
    static let secret = Array("caduceus-test-secret-of-at-least-32-bytes".utf8)

    /// An RSA key pair made once per test run with openssl: (private PEM, public PEM).
    static let rsaKeys: (String, String) = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-rsa-\(UUID().uuidString)")
        guard let keys = AccessTokenIssuer.makeRSAKeyPair(in: directory) else {
            fatalError("openssl could not make an RSA key pair")
        }
        return keys
    }()

    struct Harness {
        var client: any TestClientProtocol
        var hs256: AccessTokenIssuer
        var rs256: AccessTokenIssuer
        var trail: AuditTrail

        func token(
            _ scope: String, subject: String = "alice", patient: String? = nil, rsa: Bool = false,
            expires: Date = Date().addingTimeInterval(300),
            tenant: String? = nil
        ) async throws -> String {
            let claims = SMARTAccessClaims(
                subject: subject, expires: expires, scope: scope, clientId: "test-app", patient: patient, tenant: tenant
            )
            return try await (rsa ? rs256 : hs256).sign(claims)
        }

        func call(
            _ method: HTTPRequest.Method, _ path: String, token: String?, body: String? = nil,
            contentType: String = "application/fhir+json",
            headers: [String: String] = [:]
        ) async throws -> FHIRTestResponse {
            var all = headers
            if let token { all["Authorization"] = "Bearer \(token)" }
            return try await client.fhir(method, path, body: body, contentType: contentType, headers: all)
        }
    }

    /// An audited server on `backend`, with tokens required when `auth`, and an audit feed when
    /// `auditFeed` is given.
    /// With `tenants`, the tenant `clinic` is declared, with a database of its own. `prepare`
    /// writes to the default store directly before the server starts (bulk data).
    static func withSecureApp(
        _ backend: TestBackend, auth: Bool = true, auditFeed: AuditFeedToken? = nil,
        policy: AccessTokenPolicy = AccessTokenPolicy(),
        tenants: Bool = false, prepare: (SQLFHIRStore) async throws -> Void = { _ in },
        _ body: @escaping @Sendable (Harness) async throws -> Void
    ) async throws {
        let store = try await TestDatabases.makeStore(backend)
        do { try await prepare(store) } catch {
            try? await store.close()
            throw error
        }
        let verifier =
            auth
            ? try await AccessTokenVerifier(hs256Secret: secret, rs256PublicKeyPEM: rsaKeys.1, policy: policy) : nil
        // Tenants exist by declaration: "clinic" is the one the tenant-bound token tests use.
        let stores =
            tenants
            ? try TenantStores(defaultStore: store, tenants: ["clinic"]) { _ in
                try await TestDatabases.makeStore(backend)
            }
            : TenantStores(defaultStore: store)
        // Commits before answers, as served; a wait long enough that the full parallel test run's
        // load (an AuditEvent's commit took over 10 s there) never turns a read into a 503.
        let trail = AuditTrail(stores: stores, maximumWait: .seconds(120))
        let router = FHIRApplication.buildRouter(
            stores: stores, security: FHIRSecurity(verifier: verifier, audit: trail, auditFeed: auditFeed))
        let hs256 = await AccessTokenIssuer.hs256(secret: secret)
        let rs256 = try await AccessTokenIssuer.rs256(privateKeyPEM: rsaKeys.0)
        do {
            try await Application(router: router).test(.router) { client in
                try await body(Harness(client: client, hs256: hs256, rs256: rs256, trail: trail))
            }
            await trail.close()
            try await stores.close()
        } catch {
            await trail.close()
            try? await stores.close()
            throw error
        }
    }

    /// Two patients, each with one Observation; a Practitioner.
    static func seed(_ harness: Harness) async throws {
        let admin = try await harness.token("system/*.*")
        for patient in ["p1", "p2"] {
            #expect(
                try await harness.call(
                    .put, "Patient/\(patient)", token: admin, body: #"{"resourceType":"Patient","id":"\#(patient)"}"#
                ).status == .created)
            let observation =
                #"{"resourceType":"Observation","id":"o-\#(patient)","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/\#(patient)"},"performer":[{"reference":"Practitioner/dr"}]}"#
            #expect(
                try await harness.call(.put, "Observation/o-\(patient)", token: admin, body: observation).status
                    == .created)
        }
        #expect(
            try await harness.call(
                .put, "Practitioner/dr", token: admin, body: #"{"resourceType":"Practitioner","id":"dr"}"#
            ).status == .created)
    }

    static func isOutcome(_ response: FHIRTestResponse) -> Bool { response.json?["resourceType"] == "OperationOutcome" }

    @Test(arguments: backends)
    func tokensAreVerified(backend: TestBackend) async throws {
        try await Self.withSecureApp(backend) { harness in
            let missing = try await harness.call(.get, "Patient", token: nil)
            #expect(missing.status == .unauthorized)
            #expect(missing.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(Self.isOutcome(missing))
            // The CapabilityStatement stays open and advertises SMART.
            let metadata = try await harness.call(.get, "metadata", token: nil)
            #expect(metadata.status == .ok)
            #expect(metadata.json?["rest"]?[0]?["security"]?["service"]?[0]?["coding"]?[0]?["code"] == "SMART-on-FHIR")

            #expect(
                try await harness.call(.get, "Patient", token: try await harness.token("user/Patient.rs")).status == .ok
            )
            #expect(
                try await harness.call(.get, "Patient", token: try await harness.token("user/Patient.read", rsa: true))
                    .status == .ok)

            let expired = try await harness.token("user/*.*", expires: Date().addingTimeInterval(-60))
            #expect(try await harness.call(.get, "Patient", token: expired).status == .unauthorized)
            // Signed with another secret.
            let stranger = try await AccessTokenIssuer.hs256(
                secret: Array("another-secret-another-secret-another".utf8)
            )
            .sign(SMARTAccessClaims(subject: "eve", expires: Date().addingTimeInterval(300), scope: "system/*.*"))
            #expect(try await harness.call(.get, "Patient", token: stranger).status == .unauthorized)
            // alg none, and a token whose signature was cut off.
            func b64(_ text: String) -> String {
                Data(text.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "").replacingOccurrences(
                    of: "+", with: "-"
                )
                .replacingOccurrences(of: "/", with: "_")
            }
            let exp = Int(Date().addingTimeInterval(300).timeIntervalSince1970)
            let none =
                b64(#"{"alg":"none","typ":"JWT"}"#) + "." + b64(#"{"sub":"eve","scope":"system/*.*","exp":\#(exp)}"#)
                + "."
            #expect(try await harness.call(.get, "Patient", token: none).status == .unauthorized)
            let valid = try await harness.token("system/*.*")
            let unsigned = valid.split(separator: ".").prefix(2).joined(separator: ".") + "."
            #expect(try await harness.call(.get, "Patient", token: unsigned).status == .unauthorized)
            // Algorithm confusion: HS256 keyed with the RSA public key.
            let confused = try await AccessTokenIssuer.hs256(secret: Array(Self.rsaKeys.1.utf8))
                .sign(SMARTAccessClaims(subject: "eve", expires: Date().addingTimeInterval(300), scope: "system/*.*"))
            #expect(try await harness.call(.get, "Patient", token: confused).status == .unauthorized)
            // A token that never expires is refused.
            let forever = try await harness.hs256.sign(
                SMARTAccessClaims(subject: "eve", expires: nil, scope: "system/*.*"))
            #expect(try await harness.call(.get, "Patient", token: forever).status == .unauthorized)
            #expect(try await harness.call(.get, "Patient", token: "not-a-jwt").status == .unauthorized)
        }
    }

    @Test(arguments: backends)
    func scopesGateEveryInteraction(backend: TestBackend) async throws {
        try await Self.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            // Only Practitioners: everything about Patient and Observation is refused.
            let narrow = try await harness.token("user/Practitioner.cruds")
            let patch = #"[{"op":"add","path":"/active","value":true}]"#
            let refused: [(HTTPRequest.Method, String, String?, String)] = [
                (.get, "Observation/o-p1", nil, "application/fhir+json"),
                (.get, "Observation/o-p1/_history/1", nil, "application/fhir+json"),
                (
                    .put, "Observation/o-p1",
                    #"{"resourceType":"Observation","id":"o-p1","status":"final","code":{"text":"y"}}"#,
                    "application/fhir+json"
                ),
                (.patch, "Patient/p1", patch, "application/json-patch+json"),
                (.delete, "Observation/o-p1", nil, "application/fhir+json"),
                (.get, "Observation/o-p1/_history", nil, "application/fhir+json"),
                (.get, "Observation/_history", nil, "application/fhir+json"),
                (.get, "_history", nil, "application/fhir+json"),
                (.post, "Patient", #"{"resourceType":"Patient"}"#, "application/fhir+json"),
                (.get, "Observation?code=x", nil, "application/fhir+json"),
                (.get, "?_type=Observation", nil, "application/fhir+json"),
                (.get, "", nil, "application/fhir+json"),
                (.get, "Patient/p1/$everything", nil, "application/fhir+json"),
                (.get, "Practitioner?_has:Observation:performer:code=x", nil, "application/fhir+json"),
                (.get, "AuditEvent", nil, "application/fhir+json"),
                (
                    .post, "",
                    #"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Practitioner"},"request":{"method":"POST","url":"Practitioner"}},{"request":{"method":"GET","url":"Patient/p1"}}]}"#,
                    "application/fhir+json"
                ),
            ]
            for (method, path, body, contentType) in refused {
                let response = try await harness.call(method, path, token: narrow, body: body, contentType: contentType)
                #expect(response.status == .forbidden, "\(method) \(path): \(response.status) \(response.text)")
                #expect(Self.isOutcome(response), "\(method) \(path)")
            }
            // The transaction wrote nothing; a batch refuses only the entry outside the scope.
            let practitioners = try await harness.call(.get, "Practitioner", token: narrow)
            #expect(practitioners.json?["total"] == 1)
            let batch = try await harness.call(
                .post, "", token: narrow,
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Practitioner"},"request":{"method":"POST","url":"Practitioner"}},{"request":{"method":"GET","url":"Patient/p1"}},{"request":{"method":"GET","url":"Observation?code=x"}},{"request":{"method":"DELETE","url":"Observation/o-p1"}}]}"#
            )
            #expect(batch.status == .ok)
            let statuses = batch.json?["entry"]?.arrayValue?.compactMap { $0["response"]?["status"]?.stringValue } ?? []
            #expect(statuses.map { $0.prefix(3) } == ["201", "403", "403", "403"])
            // _include and _revinclude leave out what the scope does not cover.
            let observations = try await harness.token("user/Observation.rs")
            let included = try await harness.call(
                .get, "Observation?_include=Observation:subject&_include=Observation:performer", token: observations)
            #expect(included.status == .ok)
            let types =
                included.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["resourceType"]?.stringValue } ?? []
            #expect(types == ["Observation", "Observation"])
            // Letters matter: r without s cannot search, s without r cannot read.
            #expect(
                try await harness.call(.get, "Observation", token: try await harness.token("user/Observation.r")).status
                    == .forbidden)
            #expect(
                try await harness.call(.get, "Observation/o-p1", token: try await harness.token("user/Observation.s"))
                    .status == .forbidden)
            #expect(
                try await harness.call(.get, "Observation/o-p1", token: try await harness.token("user/Observation.r"))
                    .status == .ok)
            // The right scopes open every interaction.
            let full = try await harness.token("user/Observation.cruds user/Patient.cruds")
            #expect(
                try await harness.call(
                    .patch, "Patient/p1", token: full, body: patch, contentType: "application/json-patch+json"
                ).status == .ok)
            #expect(try await harness.call(.get, "Patient/p1/$everything", token: full).status == .ok)
            #expect(try await harness.call(.delete, "Observation/o-p2", token: full).status == .noContent)
        }
    }

    @Test(arguments: backends)
    func patientScopeStaysInItsCompartment(backend: TestBackend) async throws {
        try await Self.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            let token = try await harness.token("patient/*.cruds", subject: "p1-user", patient: "p1")
            #expect(try await harness.call(.get, "Observation/o-p1", token: token).status == .ok)
            #expect(try await harness.call(.get, "Patient/p1", token: token).status == .ok)
            // Another patient's resources answer exactly as missing ones.
            for (other, missing) in [("Observation/o-p2", "Observation/nothing"), ("Patient/p2", "Patient/nothing")] {
                let hidden = try await harness.call(.get, other, token: token)
                let absent = try await harness.call(.get, missing, token: token)
                #expect(hidden.status == .notFound && absent.status == .notFound)
                let otherId = String(other.split(separator: "/")[1])
                #expect(hidden.text.replacingOccurrences(of: otherId, with: "nothing") == absent.text)
                #expect(try await harness.call(.get, "\(other)/_history/1", token: token).status == .notFound)
                #expect(try await harness.call(.get, "\(other)/_history", token: token).status == .notFound)
                #expect(try await harness.call(.delete, other, token: token).status == .notFound)
            }
            #expect(try await harness.call(.get, "Patient/p2/$everything", token: token).status == .notFound)
            // Searches see the compartment only, totals included.
            let search = try await harness.call(.get, "Observation?_include=Observation:subject", token: token)
            #expect(search.json?["total"] == 1)
            let ids = search.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []
            #expect(ids == ["o-p1", "p1"])
            #expect(try await harness.call(.get, "Patient", token: token).json?["total"] == 1)
            let system = try await harness.call(.get, "?_type=Observation,Patient", token: token)
            #expect(system.json?["total"] == 2)
            let everything = try await harness.call(.get, "Patient/p1/$everything", token: token)
            // (The AuditEvents about p1 are in its compartment too.)
            let everythingIds = Set(
                everything.json?["entry"]?.arrayValue?.compactMap { $0["resource"] }
                    .filter { $0["resourceType"] != "AuditEvent" }.compactMap { $0["id"]?.stringValue } ?? [])
            // The Practitioner refers to no patient: outside the compartment, not shown (AccessGuard's rule).
            #expect(everythingIds == ["p1", "o-p1"])
            // Writes stay in the compartment too.
            let forOther =
                #"{"resourceType":"Observation","status":"final","code":{"text":"z"},"subject":{"reference":"Patient/p2"}}"#
            #expect(try await harness.call(.post, "Observation", token: token, body: forOther).status == .forbidden)
            let forSelf = forOther.replacingOccurrences(of: "Patient/p2", with: "Patient/p1")
            #expect(try await harness.call(.post, "Observation", token: token, body: forSelf).status == .created)
            let move = #"[{"op":"replace","path":"/subject/reference","value":"Patient/p2"}]"#
            #expect(
                try await harness.call(
                    .patch, "Observation/o-p1", token: token, body: move, contentType: "application/json-patch+json"
                ).status == .forbidden)
            // A batch entry reading another patient's Observation is a 404 as well.
            let batch = try await harness.call(
                .post, "", token: token,
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation/o-p2"}},{"request":{"method":"GET","url":"Observation/o-p1"}},{"request":{"method":"GET","url":"Observation"}}]}"#
            )
            let statuses = batch.json?["entry"]?.arrayValue?.compactMap { $0["response"]?["status"]?.stringValue } ?? []
            #expect(statuses.map { $0.prefix(3) } == ["404", "200", "200"])
            #expect(batch.json?["entry"]?[2]?["resource"]?["total"] == 2)
            // Type-wide history would cross compartments.
            #expect(try await harness.call(.get, "Observation/_history", token: token).status == .forbidden)
        }
    }

    @Test(arguments: backends)
    func everyInteractionLeavesOneAuditEvent(backend: TestBackend) async throws {
        try await Self.withSecureApp(backend) { harness in
            let token = try await harness.token("user/Patient.cruds user/Observation.cruds", subject: "bob")
            let patch = #"[{"op":"add","path":"/active","value":true}]"#
            let observation =
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p9"}}"#
            let steps: [(HTTPRequest.Method, String, String?, String, String, String)] = [
                (.put, "Patient/p9", #"{"resourceType":"Patient","id":"p9"}"#, "application/fhir+json", "update", "0"),
                (.get, "Patient/p9", nil, "application/fhir+json", "read", "0"),
                (.get, "Patient/p9/_history/1", nil, "application/fhir+json", "vread", "0"),
                (.patch, "Patient/p9", patch, "application/json-patch+json", "patch", "0"),
                (.get, "Patient/p9/_history", nil, "application/fhir+json", "history-instance", "0"),
                (.post, "Observation", observation, "application/fhir+json", "create", "0"),
                (.get, "Observation?patient=p9", nil, "application/fhir+json", "search-type", "0"),
                (.get, "?_type=Patient", nil, "application/fhir+json", "search-system", "0"),
                (.get, "Patient/missing", nil, "application/fhir+json", "read", "4"),
                (
                    .post, "",
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/p9"}}]}"#,
                    "application/fhir+json", "batch", "0"
                ),
                (.delete, "Patient/p9", nil, "application/fhir+json", "delete", "0"),
            ]
            for (method, path, body, contentType, _, _) in steps {
                _ = try await harness.call(method, path, token: token, body: body, contentType: contentType)
            }
            _ = try await harness.call(.get, "Patient", token: nil)  // 401, still audited
            await harness.trail.flush()
            let auditor = try await harness.token("user/AuditEvent.rs", subject: "auditor")
            let all = try await harness.call(.get, "AuditEvent?_count=100&_sort=date", token: auditor)
            #expect(all.status == .ok)
            let events = all.json?["entry"]?.arrayValue?.compactMap { $0["resource"] } ?? []
            #expect(events.count == steps.count + 1)
            for (index, step) in steps.enumerated() where index < events.count {
                let event = events[index]
                #expect(event["subtype"]?[0]?["code"]?.stringValue == step.4, "\(step.1)")
                #expect(event["outcome"]?.stringValue == step.5, "\(step.1)")
                #expect(event["type"]?["code"] == "rest")
                #expect(event["agent"]?[0]?["name"] == "bob")
                #expect(event["agent"]?[0]?["altId"] == "test-app")
                #expect(event["agent"]?[0]?["requestor"] == true)
                #expect(event["source"]?["observer"] != nil)
            }
            #expect(events.last?["outcome"] == "4")
            #expect(events.last?["agent"]?[0]?["name"] == "anonymous")
            // Searchable by patient, entity, agent and subtype.
            let byPatient = try await harness.call(
                .get, "AuditEvent?patient=Patient/p9&_total=accurate", token: auditor)
            #expect(byPatient.json?["total"] == 7)  // PUT, read, vread, patch, history, search by patient, delete
            // (bob's only: the search above is audited too, naming Patient/p9, and may be stored by now.)
            let byEntity = try await harness.call(.get, "AuditEvent?entity=Patient/p9&agent-name=bob", token: auditor)
            #expect(byEntity.json?["total"] == 7)
            #expect(events[2]["entity"]?[0]?["what"]?["reference"] == "Patient/p9/_history/1")
            let byAgent = try await harness.call(.get, "AuditEvent?agent-name=bob&subtype=read", token: auditor)
            #expect(byAgent.json?["total"] == 2)
            let byIdentifier = try await harness.call(
                .get, "AuditEvent?agent:identifier=\(encodeQuery(AuditRecord.subjectSystem + "|bob"))&outcome=4",
                token: auditor)
            #expect(byIdentifier.json?["total"] == 1)
            // The created Observation is the entity of its create.
            let create = events[5]
            #expect(create["entity"]?[0]?["what"]?["reference"]?.stringValue?.hasPrefix("Observation/") == true)
            // Reading the audit log is itself audited, never recursively, and needs its own scope.
            #expect(try await harness.call(.get, "AuditEvent", token: token).status == .forbidden)
            // Nobody can forge or erase it through the API, whatever their scopes.
            let admin = try await harness.token("system/*.*", subject: "root")
            let eventId = try #require(events.first?["id"]?.stringValue)
            #expect(try await harness.call(.delete, "AuditEvent/\(eventId)", token: admin).status == .methodNotAllowed)
            #expect(
                try await harness.call(.post, "AuditEvent", token: admin, body: #"{"resourceType":"AuditEvent"}"#)
                    .status == .methodNotAllowed)
            let forged = try await harness.call(
                .post, "", token: admin,
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"AuditEvent/\#(eventId)"}}]}"#
            )
            #expect(forged.json?["entry"]?[0]?["response"]?["status"]?.stringValue?.hasPrefix("405") == true)
            await harness.trail.flush()
            let after = try await harness.call(.get, "AuditEvent?_total=accurate&_count=0", token: auditor)
            #expect(after.json?["total"] == .number(String(steps.count + 1 + 6 + 3)))
        }
    }

    /// Every request leaves an AuditEvent, a 401 without a token too: what a request can put
    /// into its event is bounded (a 60 KB query once stored an 81 KB event per anonymous request).
    @Test(arguments: backends)
    func anonymousRequestsCannotInflateTheAuditTrail(backend: TestBackend) async throws {
        try await Self.withSecureApp(backend) { harness in
            let long = "Patient?name=" + String(repeating: "a", count: 60_000)
            #expect(try await harness.call(.get, long, token: nil).status == .unauthorized)
            let manyPatients = "Observation?patient=" + (1...1001).map { "Patient/p\($0)" }.joined(separator: ",")
            #expect(try await harness.call(.get, manyPatients, token: nil).status == .unauthorized)
            let hugeId = "Patient/" + String(repeating: "x", count: 20_000)
            #expect(try await harness.call(.get, hugeId, token: nil).status == .unauthorized)
            await harness.trail.flush()
            let auditor = try await harness.token("user/AuditEvent.rs", subject: "auditor")
            let events =
                try await harness.call(.get, "AuditEvent?outcome=4&_count=10", token: auditor).json?["entry"]?
                .arrayValue ?? []
            #expect(events.count == 3)
            for event in events {
                let text = String(decoding: JSONWriter().bytes(event["resource"] ?? .null), as: UTF8.self)
                #expect(text.utf8.count < 8_000, "an AuditEvent of \(text.utf8.count) bytes")
            }
            let bodies = events.compactMap { $0["resource"] }
            let truncated = bodies.first {
                $0["entity"]?[0]?["description"]?.stringValue?.contains("query truncated to 2048 of 60005 bytes")
                    == true
            }
            let query = try #require(
                truncated?["entity"]?[0]?["query"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            #expect(query.count == 2048 && String(decoding: query, as: UTF8.self).hasPrefix("name=aaaa"))
            // A refused request's query names no patient of the trail.
            #expect(bodies.allSatisfy { ($0["entity"]?.arrayValue ?? []).allSatisfy { $0["role"]?["code"] != "1" } })
            // With a token, the patients a search names are listed, at most 20
            // (Interaction.recordedPatientLimit).
            // A search refused with a token (here 400: more OR values than the limit) lists none
            // either; one answered lists at most 20 (Interaction.recordedPatientLimit).
            let reader = try await harness.token("user/Observation.rs", subject: "reader")
            #expect(try await harness.call(.get, manyPatients, token: reader).status == .badRequest)
            let answered = "Observation?patient=" + (1...50).map { "Patient/p\($0)" }.joined(separator: ",")
            #expect(try await harness.call(.get, answered, token: reader).status == .ok)
            await harness.trail.flush()
            let search = try await harness.call(
                .get, "AuditEvent?agent-name=reader&subtype=search-type&_sort=date", token: auditor)
            let listed = (search.json?["entry"]?.arrayValue ?? []).map { entry in
                (entry["resource"]?["entity"]?.arrayValue ?? []).filter { $0["role"]?["code"] == "1" }.count
            }
            #expect(listed == [0, 20])
        }
    }

    @Test(arguments: backends)
    func auditWorksWithoutAuth(backend: TestBackend) async throws {
        try await Self.withSecureApp(backend, auth: false) { harness in
            #expect(
                try await harness.call(.post, "Patient", token: nil, body: #"{"resourceType":"Patient"}"#).status
                    == .created)
            await harness.trail.flush()
            let search = try await harness.call(.get, "AuditEvent?subtype=create", token: nil)
            #expect(search.json?["total"] == 1)
            #expect(search.json?["entry"]?[0]?["resource"]?["action"] == "C")
        }
    }

    @Test func scopeGrammar() {
        let grant = AccessGrant(
            subject: nil, clientId: nil, patient: "p",
            scope:
                "openid launch/patient patient/Observation.rs user/Patient.read system/Encounter.* user/Condition.sr patient/*.c"
        )
        #expect(grant.access(.read, type: "Observation") == .patient("p"))
        #expect(grant.access(.update, type: "Observation") == nil)
        #expect(grant.access(.search, type: "Patient") == .unrestricted)
        #expect(grant.access(.delete, type: "Encounter") == .unrestricted)
        #expect(grant.access(.read, type: "Condition") == nil)  // letters out of order: not a scope
        #expect(grant.access(.create, type: "Medication") == .patient("p"))  // outside the compartment: still limited
        #expect(grant.access(.create, type: "Observation") == .patient("p"))
    }
}

extension JSONValue {
    /// An array element, `nil` out of range or on a non-array.
    fileprivate subscript(index: Int) -> JSONValue? {
        guard let items = arrayValue, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
