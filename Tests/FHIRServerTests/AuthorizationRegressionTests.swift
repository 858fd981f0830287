import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The authorization holes of issue 13, each as found: scopes checked before anything a
/// Bundle entry does, patient tokens kept to their patient on every path, and tokens bound
/// to their tenant, audience, issuer and lifetime.
@Suite struct AuthorizationRegressionTests {
    static let backends = TestDatabases.backends
    typealias Harness = AccessControlTests.Harness

    /// Patients p1 (A) and p2 (B, family "Secretfamily") with an Observation each; A's
    /// Observation has B's as a member; a Practitioner performs both.
    static func seed(_ harness: Harness) async throws {
        try await AccessControlTests.seed(harness)
        let admin = try await harness.token("system/*.*")
        let b = #"{"resourceType":"Patient","id":"p2","name":[{"family":"Secretfamily"}]}"#
        #expect(try await harness.call(.put, "Patient/p2", token: admin, body: b).status == .ok)
        let observationB =
            #"{"resourceType":"Observation","id":"o-p2","status":"final","code":{"coding":[{"code":"b-secret"}]},"subject":{"reference":"Patient/p2"},"performer":[{"reference":"Practitioner/dr"}]}"#
        #expect(try await harness.call(.put, "Observation/o-p2", token: admin, body: observationB).status == .ok)
        let observationA =
            #"{"resourceType":"Observation","id":"o-p1","status":"final","code":{"coding":[{"code":"x"}]},"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/dr"}],"hasMember":[{"reference":"Observation/o-p2"}]}"#
        #expect(try await harness.call(.put, "Observation/o-p1", token: admin, body: observationA).status == .ok)
    }

    /// What of B's data may never reach A: its ids as resources, references to it, its values.
    static let leakMarkers = [
        "Secretfamily", "b-secret", #""id":"p2""#, #""id":"o-p2""#, #""id":"d-p2""#, "Patient/p2",
    ]

    /// The markers in `response`, but those the request named itself (echoed in links and errors).
    static func leaks(_ response: FHIRTestResponse, asked: String = "") -> [String] {
        leakMarkers.filter { response.text.contains($0) && !asked.contains($0) }
    }

    /// The reported attack: `openid fhirUser` read Patient p2 through a batch entry's If-None-Exist.
    @Test(arguments: backends)
    func bundleEntriesCheckScopesBeforeTheirCriteria(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            let entry =
                #"{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"family=Secretfamily"}}"#
            for scope in ["openid fhirUser", "user/Patient.c", "user/Patient.cr"] {
                let token = try await harness.token(scope)
                for type in ["batch", "transaction"] {
                    let response = try await harness.call(
                        .post, "", token: token,
                        body: #"{"resourceType":"Bundle","type":"\#(type)","entry":[\#(entry)]}"#,
                        headers: ["Prefer": "return=representation"])
                    #expect(Self.leaks(response).isEmpty, "\(scope) \(type): \(response.text)")
                    if scope == "openid fhirUser" {
                        // No resource scope at all: refused before the Bundle is read (F13 of the review).
                        #expect(response.status == .forbidden && AccessControlTests.isOutcome(response), "\(type)")
                    } else if type == "batch" {
                        #expect(response.entryStatusCodes == ["403"], "\(scope)")
                    } else {
                        #expect(response.status == .forbidden, "\(scope)")
                    }
                }
                // The same through REST.
                let rest = try await harness.call(
                    .post, "Patient", token: token, body: #"{"resourceType":"Patient"}"#,
                    headers: ["If-None-Exist": "family=Secretfamily", "Prefer": "return=representation"])
                #expect(rest.status == .forbidden && !rest.text.contains("Secretfamily"), "\(scope)")
            }
            // The scope is checked before the body is read: a body that is not even JSON is a 403.
            let unscoped = try await harness.call(
                .post, "", token: try await harness.token("openid fhirUser"), body: "{not json")
            #expect(unscoped.status == .forbidden, "\(unscoped.text)")
            // Conditional references are searches too, in batches and transactions.
            let writer = try await harness.token("user/Observation.c")
            let reference =
                #"{"resource":{"resourceType":"Observation","status":"final","code":{"text":"y"},"subject":{"reference":"Patient?family=Secretfamily"}},"request":{"method":"POST","url":"Observation"}}"#
            let batch = try await harness.call(
                .post, "", token: writer, body: #"{"resourceType":"Bundle","type":"batch","entry":[\#(reference)]}"#)
            #expect(batch.entryStatusCodes == ["403"])
            let transaction = try await harness.call(
                .post, "", token: writer,
                body: #"{"resourceType":"Bundle","type":"transaction","entry":[\#(reference)]}"#)
            #expect(transaction.status == .forbidden)
            // Conditional update and delete need search as well.
            let updater = try await harness.token("user/Patient.cud")
            let put =
                #"{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient?family=Secretfamily"}}"#
            let delete = #"{"request":{"method":"DELETE","url":"Patient?family=Secretfamily"}}"#
            let conditional = try await harness.call(
                .post, "", token: updater,
                body: #"{"resourceType":"Bundle","type":"batch","entry":[\#(put),\#(delete)]}"#)
            #expect(conditional.entryStatusCodes == ["403", "403"])
            #expect(
                try await harness.call(
                    .put, "Patient?family=Secretfamily", token: updater, body: #"{"resourceType":"Patient"}"#
                ).status == .forbidden)
            #expect(try await harness.call(.delete, "Patient?family=Secretfamily", token: updater).status == .forbidden)
            // With search, If-None-Exist answers with the match.
            let searcher = try await harness.token("user/Patient.cs")
            let allowed = try await harness.call(
                .post, "Patient", token: searcher, body: #"{"resourceType":"Patient"}"#,
                headers: ["If-None-Exist": "family=Secretfamily"])
            #expect(allowed.status == .ok)
            let admin = try await harness.token("system/*.*")
            #expect(try await harness.call(.get, "Patient/p2", token: admin).json?["name"]?.arrayValue?.count == 1)
        }
    }

    @Test(arguments: backends)
    func patientTokensSeeOnlyTheirPatient(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            let admin = try await harness.token("system/*.*")
            // A stored Bundle holding B's data; a Device and a Task of each patient; a Group of both.
            let bundle =
                #"{"resourceType":"Bundle","id":"bb","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"p2","name":[{"family":"Secretfamily"}]}}]}"#
            #expect(try await harness.call(.put, "Bundle/bb", token: admin, body: bundle).status == .created)
            for patient in ["p1", "p2"] {
                let device =
                    #"{"resourceType":"Device","id":"d-\#(patient)","patient":{"reference":"Patient/\#(patient)"}}"#
                #expect(
                    try await harness.call(.put, "Device/d-\(patient)", token: admin, body: device).status == .created)
            }
            let group =
                #"{"resourceType":"Group","id":"g","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p1"}},{"entity":{"reference":"Patient/p2"}}]}"#
            #expect(try await harness.call(.put, "Group/g", token: admin, body: group).status == .created)
            // An audited read of both patients at once.
            _ = try await harness.call(.get, "Patient?_id=p1,p2", token: admin)
            await harness.trail.flush()

            // A's $everything holds none of B's resources, whoever asks (A's Observation refers to
            // B's). (An AuditEvent about both patients is in both compartments: an admin sees it.)
            let everything = try await harness.call(.get, "Patient/p1/$everything", token: admin)
            #expect(everything.status == .ok)
            #expect(
                !everything.text.contains(#""id":"o-p2""#) && !everything.text.contains("b-secret")
                    && !everything.text.contains("Secretfamily"))
            #expect(everything.text.contains("Practitioner/dr"))

            let a = try await harness.token("patient/*.cruds", subject: "a", patient: "p1")
            // The audit feed first: A's own later requests name B's ids in their AuditEvents.
            let reads = [
                "AuditEvent", "AuditEvent?entity=Patient/p2", "Patient/p1/$everything", "Bundle", "Bundle/bb", "Group",
                "Group/g", "Device",
                "Device/d-p2", "Observation", "Observation?_include=Observation:has-member",
                "Patient?_revinclude=Group:member",
                "?_type=Device,Observation,Group,Bundle", "Practitioner",
            ]
            for path in reads {
                let response = try await harness.call(.get, path, token: a)
                #expect(response.status == .ok || response.status == .notFound, "\(path)")
                #expect(Self.leaks(response, asked: path).isEmpty, "\(path): \(response.text)")
            }
            #expect(try await harness.call(.get, "Device", token: a).json?["total"] == 1)
            #expect(try await harness.call(.get, "Device/d-p1", token: a).status == .ok)
            #expect(try await harness.call(.get, "Bundle", token: a).json?["total"] == 0)

            // _has and chains answer alike whatever B's data is.
            let mixed = try await harness.token(
                "user/Practitioner.rs user/Observation.rs patient/Patient.rs", patient: "p1")
            #expect(
                try await harness.call(.get, "Practitioner?_has:Observation:performer:code=b-secret", token: a).json?[
                    "total"] == 0)
            #expect(
                try await harness.call(.get, "Practitioner?_has:Observation:performer:code=b-secret", token: mixed)
                    .json?["total"] == 1)
            let patientHas = try await harness.token("user/Practitioner.rs patient/Observation.rs", patient: "p1")
            #expect(
                try await harness.call(.get, "Practitioner?_has:Observation:performer:code=b-secret", token: patientHas)
                    .json?["total"] == 0)
            #expect(
                try await harness.call(.get, "Practitioner?_has:Observation:performer:code=x", token: patientHas).json?[
                    "total"] == 1)
            #expect(
                try await harness.call(.get, "Observation?subject:Patient.family=Secretfamily", token: mixed).json?[
                    "total"] == 0)
            #expect(
                try await harness.call(.get, "Observation?subject:Patient.family=Secretfamily", token: admin).json?[
                    "total"] == 1)

            // Writes may not name another patient, anywhere.
            let claimsB =
                #"{"resourceType":"Observation","status":"final","code":{"text":"z"},"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Patient/p2"}]}"#
            #expect(try await harness.call(.post, "Observation", token: a, body: claimsB).status == .forbidden)
            let hidden =
                #"{"resourceType":"Observation","status":"final","code":{"text":"z"},"subject":{"reference":"Patient/p1"},"extension":[{"url":"http://x","valueReference":{"reference":"http://elsewhere/fhir/Patient/p2"}}]}"#
            #expect(try await harness.call(.post, "Observation", token: a, body: hidden).status == .forbidden)
            let inBundle = try await harness.call(
                .post, "", token: a,
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"resource":\#(claimsB),"request":{"method":"POST","url":"Observation"}}]}"#
            )
            #expect(inBundle.entryStatusCodes == ["403"])
            // Types outside the compartment: only when they refer to the patient.
            #expect(
                try await harness.call(.post, "Device", token: a, body: #"{"resourceType":"Device"}"#).status
                    == .forbidden)
            #expect(
                try await harness.call(
                    .post, "Device", token: a, body: #"{"resourceType":"Device","patient":{"reference":"Patient/p1"}}"#
                ).status == .created)
            #expect(try await harness.call(.get, "Device", token: a).json?["total"] == 2)
        }
    }

    /// Every method answers for another patient's resource exactly as for one that never existed.
    @Test(arguments: backends)
    func hiddenResourcesAnswerAsMissingOnEveryMethod(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            let a = try await harness.token("patient/*.cruds", subject: "a", patient: "p1")
            let body = { (id: String) in
                #"{"resourceType":"Observation","id":"\#(id)","status":"final","code":{"text":"z"},"subject":{"reference":"Patient/p1"}}"#
            }
            let patch = #"[{"op":"add","path":"/status","value":"amended"}]"#
            for (hiddenId, missingId) in [("o-p2", "nothing")] {
                let cases: [(HTTPRequest.Method, String, String?, String)] = [
                    (.get, "Observation/ID", nil, "application/fhir+json"),
                    (.get, "Observation/ID/_history/1", nil, "application/fhir+json"),
                    (.get, "Observation/ID/_history", nil, "application/fhir+json"),
                    (.put, "Observation/ID", body("ID"), "application/fhir+json"),
                    (.delete, "Observation/ID", nil, "application/fhir+json"),
                    (.patch, "Observation/ID", patch, "application/json-patch+json"),
                ]
                for (method, template, content, contentType) in cases {
                    let hidden = try await harness.call(
                        method, template.replacingOccurrences(of: "ID", with: hiddenId), token: a,
                        body: content?.replacingOccurrences(of: "ID", with: hiddenId), contentType: contentType)
                    let missing = try await harness.call(
                        method, template.replacingOccurrences(of: "ID", with: missingId), token: a,
                        body: content?.replacingOccurrences(of: "ID", with: missingId), contentType: contentType)
                    #expect(hidden.status == .notFound, "\(method) \(template)")
                    #expect(hidden.status == missing.status, "\(method) \(template)")
                    #expect(
                        hidden.text.replacingOccurrences(of: hiddenId, with: missingId) == missing.text,
                        "\(method) \(template)")
                }
            }
            // The same inside a batch.
            let entries =
                ["GET", "DELETE"].map { #"{"request":{"method":"\#($0)","url":"Observation/o-p2"}}"# }
                + [#"{"resource":\#(body("o-p2")),"request":{"method":"PUT","url":"Observation/o-p2"}}"#]
            let batch = try await harness.call(
                .post, "", token: a,
                body: #"{"resourceType":"Bundle","type":"batch","entry":[\#(entries.joined(separator: ","))]}"#)
            #expect(batch.entryStatusCodes == ["404", "404", "404"])
            // A resource that moved from B to A: B's version stays hidden, and is not counted.
            let moved = { (patient: String) in
                #"{"resourceType":"Observation","id":"moved","status":"final","code":{"text":"\#(patient == "p2" ? "b-secret" : "z")"},"subject":{"reference":"Patient/\#(patient)"}}"#
            }
            let root = try await harness.token("system/*.*")
            #expect(
                try await harness.call(.put, "Observation/moved", token: root, body: moved("p2")).status == .created)
            #expect(try await harness.call(.put, "Observation/moved", token: root, body: moved("p1")).status == .ok)
            let history = try await harness.call(.get, "Observation/moved/_history", token: a)
            #expect(history.json?["total"] == 1 && history.json?["entry"]?.arrayValue?.count == 1)
            #expect(Self.leaks(history).isEmpty)
            #expect(try await harness.call(.get, "Observation/moved/_history/1", token: a).status == .notFound)
            #expect(try await harness.call(.get, "Observation/moved/_history/2", token: a).status == .ok)
            // B's Observation is untouched.
            let admin = try await harness.token("system/*.*")
            #expect(try await harness.call(.get, "Observation/o-p2", token: admin).json?["meta"]?["versionId"] == "2")
        }
    }

    @Test(arguments: backends)
    func tokensAreBoundToTenantAudienceIssuerAndLifetime(backend: TestBackend) async throws {
        let policy = AccessTokenPolicy(
            audience: "https://fhir.example.org/r4", issuer: "https://auth.example.org", maximumLifetime: 600)
        try await AccessControlTests.withSecureApp(backend, policy: policy, tenants: true) { harness in
            func sign(
                audience: String? = "https://fhir.example.org/r4", issuer: String? = "https://auth.example.org",
                expires: TimeInterval = 300,
                issuedAt: TimeInterval? = nil, notBefore: TimeInterval? = nil, tenant: String? = nil
            ) async throws -> String {
                let now = Date()
                return try await harness.hs256.sign(
                    SMARTAccessClaims(
                        subject: "t", expires: now.addingTimeInterval(expires),
                        notBefore: notBefore.map { now.addingTimeInterval($0) },
                        issuedAt: issuedAt.map { now.addingTimeInterval($0) }, issuer: issuer, audience: audience,
                        scope: "system/*.*", tenant: tenant))
            }
            let clinic = ["X-FHIR-TENANT-ID": "clinic"]
            #expect(try await harness.call(.get, "Patient", token: try await sign()).status == .ok)
            #expect(try await harness.call(.get, "Patient", token: try await sign(tenant: "default")).status == .ok)
            #expect(
                try await harness.call(.get, "Patient", token: try await sign(tenant: "clinic"), headers: clinic).status
                    == .ok)
            #expect(
                try await harness.call(.get, "Patient", token: try await sign(tenant: "CLINIC"), headers: clinic).status
                    == .ok)
            let refused: [(String, [String: String])] = [
                (try await sign(tenant: "clinic"), [:]),  // another tenant's token on the default one
                (try await sign(), clinic),  // the default tenant's token on another
                (try await sign(tenant: "other"), clinic),
                (try await sign(audience: nil), [:]),
                (try await sign(audience: "https://elsewhere.example.org/r4"), [:]),
                (try await sign(issuer: nil), [:]),
                (try await sign(issuer: "https://evil.example.org"), [:]),
                (try await sign(expires: 3600), [:]),  // longer than the 600 s allowed
                (try await sign(expires: 300, issuedAt: -3000), [:]),  // exp - iat = 3300 s
                (try await sign(issuedAt: 600), [:]),  // issued in the future
                (try await sign(notBefore: 120), [:]),  // not yet valid
            ]
            for (index, (token, headers)) in refused.enumerated() {
                let response = try await harness.call(.get, "Patient", token: token, headers: headers)
                #expect(response.status == .unauthorized, "case \(index): \(response.status)")
                #expect(AccessControlTests.isOutcome(response))
            }
            #expect(
                try await harness.call(.get, "Patient", token: try await sign(issuedAt: -60, notBefore: -60)).status
                    == .ok)
        }
    }

    // MARK: Found by the attacker's review of the merge

    /// F2: an update-only scope read any Observation through PATCH (`[]` answered the whole
    /// resource; a `test` op was a value oracle). A patch needs read as well as update.
    @Test(arguments: backends)
    func patchNeedsReadAsWellAsUpdate(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            let admin = try await harness.token("system/*.*")
            let version = try await harness.call(.get, "Observation/o-p2", token: admin).json?["meta"]?["versionId"]
            let updateOnly = try await harness.token("user/Observation.u")
            let oracle = #"[{"op":"test","path":"/code/coding/0/code","value":"b-secret"}]"#
            for patch in ["[]", oracle] {
                let rest = try await harness.call(
                    .patch, "Observation/o-p2", token: updateOnly, body: patch,
                    contentType: "application/json-patch+json",
                    headers: ["Prefer": "return=representation"])
                #expect(rest.status == .forbidden, "\(patch): \(rest.text)")
                #expect(Self.leaks(rest).isEmpty && rest.text.contains("read on Observation"), "\(rest.text)")
                let data = Data(patch.utf8).base64EncodedString()
                let entry =
                    #"{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"\#(data)"},"request":{"method":"PATCH","url":"Observation/o-p2"}}"#
                let batch = try await harness.call(
                    .post, "", token: updateOnly,
                    body: #"{"resourceType":"Bundle","type":"batch","entry":[\#(entry)]}"#,
                    headers: ["Prefer": "return=representation"])
                #expect(batch.entryStatusCodes == ["403"] && Self.leaks(batch).isEmpty, "\(batch.text)")
                let transaction = try await harness.call(
                    .post, "", token: updateOnly,
                    body: #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entry)]}"#)
                #expect(transaction.status == .forbidden && Self.leaks(transaction).isEmpty)
            }
            // Read and update together may patch; the refused attempts wrote no version.
            let after = try await harness.call(.get, "Observation/o-p2", token: admin).json?["meta"]?["versionId"]
            #expect(version != nil && after == version)
            let readUpdate = try await harness.token("user/Observation.ru")
            let allowed = try await harness.call(
                .patch, "Observation/o-p2", token: readUpdate, body: oracle, contentType: "application/json-patch+json")
            #expect(allowed.status == .ok)
            // A patient scope that reads only its patient keeps the patch to it, whatever the update scope.
            let mixed = try await harness.token("user/Observation.u patient/Observation.r", patient: "p1")
            let hidden = try await harness.call(
                .patch, "Observation/o-p2", token: mixed, body: "[]", contentType: "application/json-patch+json")
            #expect(hidden.status == .notFound && Self.leaks(hidden, asked: "o-p2").isEmpty)
        }
    }

    /// F12: `_include:iterate` walked through another patient's Observation and brought in
    /// what it named (one of A's), telling A an edge of B's record.
    @Test(arguments: backends)
    func includeIterateDoesNotWalkThroughHiddenResources(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await Self.seed(harness)  // A's o-p1 has B's o-p2 as a member
            let admin = try await harness.token("system/*.*")
            let a3 =
                #"{"resourceType":"Observation","id":"o-a3","status":"final","code":{"text":"a3"},"subject":{"reference":"Patient/p1"}}"#
            #expect(try await harness.call(.put, "Observation/o-a3", token: admin, body: a3).status == .created)
            let derived =
                #"{"resourceType":"Observation","id":"o-p2","status":"final","code":{"coding":[{"code":"b-secret"}]},"subject":{"reference":"Patient/p2"},"derivedFrom":[{"reference":"Observation/o-a3"}]}"#
            #expect(try await harness.call(.put, "Observation/o-p2", token: admin, body: derived).status == .ok)
            let path =
                "Observation?_id=o-p1&_include:iterate=Observation:has-member&_include:iterate=Observation:derived-from"
            func ids(_ token: String) async throws -> Set<String> {
                let response = try await harness.call(.get, path, token: token)
                #expect(response.status == .ok)
                return Set(response.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? [])
            }
            // The walk itself works: whoever sees B's Observation reaches o-a3 through it.
            #expect(try await ids(admin) == ["o-p1", "o-p2", "o-a3"])
            let a = try await harness.token("patient/*.rs", subject: "a", patient: "p1")
            #expect(try await ids(a) == ["o-p1"])
            // In a batch too.
            let batch = try await harness.call(
                .post, "", token: a,
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"\#(path)"}}]}"#
            )
            #expect(
                batch.entryStatusCodes == ["200"] && !batch.text.contains("o-a3") && Self.leaks(batch).isEmpty,
                "\(batch.text)")
        }
    }

    /// F6: a search across types counted, in its total, another patient's resource whose id
    /// was the id of one of A's resources of another type. Each type is now limited to its own ids.
    @Test(arguments: backends)
    func crossTypeTotalsCountOnlyVisibleResources(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await Self.seed(harness)
            let a = try await harness.token("patient/*.rs", subject: "a", patient: "p1")
            func answer(_ count: Int, _ token: String, seesB: Bool = false) async throws -> (
                total: JSONValue?, entries: Int
            ) {
                let response = try await harness.call(
                    .get, "?_type=Observation,Condition&_count=\(count)", token: token)
                #expect(response.status == .ok && (seesB || Self.leaks(response).isEmpty), "\(response.text)")
                return (response.json?["total"], response.json?["entry"]?.arrayValue?.count ?? 0)
            }
            let before = try await answer(100, a)
            #expect(before.total == .number(String(before.entries)) && before.entries >= 1)
            // B's Condition with the id of A's Observation.
            let admin = try await harness.token("system/*.*")
            let condition =
                #"{"resourceType":"Condition","id":"o-p1","code":{"text":"b-secret"},"subject":{"reference":"Patient/p2"}}"#
            #expect(try await harness.call(.put, "Condition/o-p1", token: admin, body: condition).status == .created)
            for count in [1, 100] {
                #expect(try await answer(count, a).total == before.total, "_count=\(count)")
            }
            // A type a user/ scope reaches whole is not limited to the patient's ids.
            let mixed = try await harness.token("patient/Observation.rs user/Condition.rs", patient: "p1")
            let whole = try await answer(100, mixed, seesB: true)
            #expect(whole.total == .number(String(before.entries + 1)) && whole.entries == before.entries + 1)
        }
    }

    /// F7: a JWS header naming critical extensions the verifier does not understand is refused
    /// (RFC 7515 4.1.11); a policy without an audience says so at start-up.
    @Test func critHeadersAreRefusedAndAnOpenAudienceIsReported() async throws {
        try await AccessControlTests.withSecureApp(.sqlite) { harness in
            let claims = SMARTAccessClaims(subject: "eve", expires: Date().addingTimeInterval(300), scope: "system/*.*")
            // The same token without crit is good: only crit decides.
            #expect(try await harness.call(.get, "Patient", token: try await harness.hs256.sign(claims)).status == .ok)
            for critical in [["exp"], ["b64"], []] {
                let response = try await harness.call(
                    .get, "Patient", token: try await harness.hs256.sign(claims, critical: critical))
                #expect(response.status == .unauthorized && AccessControlTests.isOutcome(response), "\(critical)")
                #expect(response.text.contains("crit"))
            }
        }
        #expect(AccessTokenPolicy().openAudienceWarning?.contains("no audience is configured") == true)
        #expect(AccessTokenPolicy(audience: "https://fhir.example.org/r4").openAudienceWarning == nil)
    }
}
