import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Every interaction × every kind of token × the tenant the token is for: each cell's status,
/// and that no body ever carries another patient's data (issue 13).
///
/// Patients A (p1) and B (p2) each have an Observation. "own" is a `patient/*.cruds` token for
/// A acting on A's resources; "other" is the same token acting on B's; "updateOnly" is a
/// `user/*.u` token acting on B's (it may write them, never read them). The interactions run
/// as REST calls, as the only entry of a batch, and as the only entry of a transaction.
@Suite struct AuthorizationMatrixTests {
    static let backends = TestDatabases.backends
    static let feedSecret = "matrix-audit-feed-token-0123456789"

    enum Kind: String, CaseIterable, CustomStringConvertible {
        case none, createOnly, own, other, user, system, auditFeed, updateOnly
        var description: String { rawValue }
        /// The patient whose resources the cell acts on.
        var target: String { self == .other || self == .updateOnly ? "p2" : "p1" }
        /// Whether the token may see B's data at all.
        var seesEveryPatient: Bool { self == .user || self == .system }
    }

    /// What each kind gets: none, create-only, own, other, user, system, audit feed, update-only.
    struct Expected {
        var statuses: [Kind: Int]
        init(
            _ none: Int, _ createOnly: Int, _ own: Int, _ other: Int, _ user: Int, _ system: Int, _ auditFeed: Int,
            _ updateOnly: Int
        ) {
            statuses = [
                .none: none, .createOnly: createOnly, .own: own, .other: other, .user: user, .system: system,
                .auditFeed: auditFeed,
                .updateOnly: updateOnly,
            ]
        }
    }

    static let readLike = Expected(403, 403, 200, 404, 200, 200, 403, 403)
    static let searchLike = Expected(403, 403, 200, 200, 200, 200, 403, 403)
    static let updateLike = Expected(403, 403, 200, 404, 200, 200, 403, 200)
    /// A patch reveals the current content (its answer, `test` operations): update and read.
    static let patchLike = Expected(403, 403, 200, 404, 200, 200, 403, 403)
    static let conditional = Expected(403, 403, 403, 403, 200, 200, 403, 403)
    /// Every type at once: a `user/*` or `system/*` scope only.
    static let allTypes = Expected(403, 403, 403, 403, 200, 200, 403, 403)

    /// One interaction, written for the patient `t` (and its Observation `o-t`).
    struct Interaction: Sendable {
        var name: String
        var method: HTTPRequest.Method
        var path: @Sendable (String) -> String
        var body: (@Sendable (String) -> String)? = nil
        var contentType = "application/fhir+json"
        var headers: @Sendable (String) -> [String: String] = { _ in [:] }
        var expected: Expected
        /// It changes A's or B's Observation: both are put back before it runs.
        var destructive = false
        /// The same as a Bundle entry (`request` and optional `resource`), when one can carry it.
        var entry: (@Sendable (String) -> String)? = nil
        /// The search total each kind sees, for searches.
        var totals: [Kind: Int] = [:]
    }

    static func family(_ patient: String) -> String { patient == "p2" ? "Secretfamily" : "Afamily" }
    static func code(_ patient: String) -> String { patient == "p2" ? "b-secret" : "a-code" }

    static func observation(subject: String, id: String? = nil) -> String {
        let idMember = id.map { #""id":"\#($0)","# } ?? ""
        let code = code(subject)
        return
            #"{"resourceType":"Observation",\#(idMember)"status":"final","code":{"coding":[{"code":"\#(code)"}]},"subject":{"reference":"Patient/\#(subject)"}}"#
    }

    static let patch = #"[{"op":"replace","path":"/status","value":"amended"}]"#

    static let interactions: [Interaction] = [
        Interaction(
            name: "read", method: .get, path: { "Observation/o-\($0)" }, expected: readLike,
            entry: { #"{"request":{"method":"GET","url":"Observation/o-\#($0)"}}"# }),
        Interaction(name: "vread", method: .get, path: { "Observation/o-\($0)/_history/1" }, expected: readLike),
        Interaction(name: "history", method: .get, path: { "Observation/o-\($0)/_history" }, expected: readLike),
        Interaction(
            name: "search", method: .get, path: { "Observation?_id=o-\($0)" }, expected: searchLike,
            entry: { #"{"request":{"method":"GET","url":"Observation?_id=o-\#($0)"}}"# },
            totals: [.own: 1, .other: 0, .user: 1, .system: 1]),
        Interaction(
            name: "system search", method: .get, path: { "?_type=Observation&_id=o-\($0)" }, expected: searchLike,
            totals: [.own: 1, .other: 0, .user: 1, .system: 1]),
        Interaction(
            name: "include", method: .get, path: { "Observation?_id=o-\($0)&_include=Observation:subject" },
            expected: searchLike,
            entry: { #"{"request":{"method":"GET","url":"Observation?_id=o-\#($0)&_include=Observation:subject"}}"# },
            totals: [.own: 1, .other: 0, .user: 1, .system: 1]),
        Interaction(
            name: "chain", method: .get, path: { "Observation?subject:Patient.family=\(family($0))" },
            expected: searchLike,
            entry: { #"{"request":{"method":"GET","url":"Observation?subject:Patient.family=\#(family($0))"}}"# },
            totals: [.other: 0]),
        Interaction(
            name: "_has", method: .get, path: { "Patient?_has:Observation:subject:code=\(code($0))" },
            expected: searchLike,
            entry: { #"{"request":{"method":"GET","url":"Patient?_has:Observation:subject:code=\#(code($0))"}}"# },
            totals: [.own: 1, .other: 0, .user: 1, .system: 1]),
        Interaction(name: "type history", method: .get, path: { _ in "Observation/_history" }, expected: allTypes),
        Interaction(name: "system history", method: .get, path: { _ in "_history" }, expected: allTypes),
        Interaction(
            name: "$export", method: .get, path: { _ in "$export?_type=Observation" },
            headers: { _ in ["Prefer": "respond-async"] },
            expected: Expected(403, 403, 403, 403, 202, 202, 403, 403)),
        Interaction(
            // It reads nothing stored, but tells what a write would: a scope to write the type.
            name: "$validate", method: .post, path: { _ in "Observation/$validate" },
            body: { observation(subject: $0) },
            expected: Expected(403, 200, 200, 200, 200, 200, 403, 200)),
        Interaction(
            // The audit trail is written by the server; only the audit feed adds security alerts.
            name: "audit feed create", method: .post, path: { _ in "AuditEvent" },
            body: { _ in AuditFeedTests.alert() },
            expected: Expected(405, 405, 405, 405, 405, 405, 201, 405)),
        Interaction(name: "$everything", method: .get, path: { "Patient/\($0)/$everything" }, expected: readLike),
        Interaction(
            name: "create", method: .post, path: { _ in "Observation" }, body: { observation(subject: $0) },
            expected: Expected(403, 201, 201, 403, 201, 201, 403, 403),
            entry: { #"{"resource":\#(observation(subject: $0)),"request":{"method":"POST","url":"Observation"}}"# }),
        Interaction(
            name: "conditional create", method: .post, path: { _ in "Observation" }, body: { observation(subject: $0) },
            headers: { ["If-None-Exist": "_id=o-\($0)"] }, expected: conditional,
            entry: {
                #"{"resource":\#(observation(subject: $0)),"request":{"method":"POST","url":"Observation","ifNoneExist":"_id=o-\#($0)"}}"#
            }),
        Interaction(
            // A patient token writes its own patient into the body: "other" tries to take B's over.
            name: "update", method: .put, path: { "Observation/o-\($0)" },
            body: { observation(subject: "p1", id: "o-\($0)") },
            expected: updateLike, destructive: true,
            entry: {
                #"{"resource":\#(observation(subject: "p1", id: "o-\($0)")),"request":{"method":"PUT","url":"Observation/o-\#($0)"}}"#
            }),
        Interaction(
            name: "conditional update", method: .put, path: { "Observation?_id=o-\($0)" },
            body: { observation(subject: $0) },
            expected: conditional, destructive: true,
            entry: {
                #"{"resource":\#(observation(subject: $0)),"request":{"method":"PUT","url":"Observation?_id=o-\#($0)"}}"#
            }),
        Interaction(
            name: "patch", method: .patch, path: { "Observation/o-\($0)" }, body: { _ in patch },
            contentType: "application/json-patch+json",
            expected: patchLike, destructive: true,
            entry: {
                let data = Data(patch.utf8).base64EncodedString()
                return
                    #"{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"\#(data)"},"request":{"method":"PATCH","url":"Observation/o-\#($0)"}}"#
            }),
        Interaction(
            name: "delete", method: .delete, path: { "Observation/o-\($0)" },
            expected: Expected(403, 403, 204, 404, 204, 204, 403, 403),
            destructive: true, entry: { #"{"request":{"method":"DELETE","url":"Observation/o-\#($0)"}}"# }),
        Interaction(
            name: "conditional delete", method: .delete, path: { "Observation?_id=o-\($0)" },
            expected: Expected(403, 403, 403, 403, 204, 204, 403, 403),
            destructive: true, entry: { #"{"request":{"method":"DELETE","url":"Observation?_id=o-\#($0)"}}"# }),
    ]

    /// B's data as it could show in a body: its ids as resources, references to it, its values.
    static let leakMarkers = ["Secretfamily", "b-secret", #""id":"p2""#, #""id":"o-p2""#, "Patient/p2"]

    static func seed(_ harness: AccessControlTests.Harness, admin: String) async throws {
        for (patient, family) in [("p1", "Afamily"), ("p2", "Secretfamily")] {
            let body = #"{"resourceType":"Patient","id":"\#(patient)","name":[{"family":"\#(family)"}]}"#
            #expect(try await harness.call(.put, "Patient/\(patient)", token: admin, body: body).status.code < 300)
        }
        try await restore(harness, admin: admin)
    }

    static func restore(_ harness: AccessControlTests.Harness, admin: String) async throws {
        for patient in ["p1", "p2"] {
            let response = try await harness.call(
                .put, "Observation/o-\(patient)", token: admin, body: observation(subject: patient, id: "o-\(patient)"))
            #expect(response.status.code < 300, "restore o-\(patient): \(response.text)")
        }
    }

    static func token(_ kind: Kind, _ harness: AccessControlTests.Harness, tenant: String? = nil) async throws -> String
    {
        switch kind {
        case .none: return try await harness.token("openid fhirUser", tenant: tenant)
        case .createOnly: return try await harness.token("user/*.c", tenant: tenant)
        case .own, .other:
            return try await harness.token("patient/*.cruds", subject: "a", patient: "p1", tenant: tenant)
        case .user: return try await harness.token("user/*.cruds", tenant: tenant)
        case .system: return try await harness.token("system/*.*", tenant: tenant)
        case .auditFeed: return feedSecret
        case .updateOnly: return try await harness.token("user/*.u", tenant: tenant)
        }
    }

    /// One request of the matrix: how it is sent, and the status it must get.
    struct Call {
        var label: String
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        var contentType: String
        var headers: [String: String]
        var status: Int
        var total: Int?
    }

    /// The REST call, the batch and the transaction of `interaction` for `kind`.
    static func calls(_ interaction: Interaction, _ kind: Kind) -> [Call] {
        let t = kind.target
        let status = interaction.expected.statuses[kind]!
        var calls = [
            Call(
                label: "\(interaction.name) REST", method: interaction.method, path: interaction.path(t),
                body: interaction.body?(t),
                contentType: interaction.contentType, headers: interaction.headers(t), status: status,
                total: interaction.totals[kind])
        ]
        if let entry = interaction.entry?(t) {
            for type in ["batch", "transaction"] {
                calls.append(
                    Call(
                        label: "\(interaction.name) \(type)", method: .post, path: "",
                        body: #"{"resourceType":"Bundle","type":"\#(type)","entry":[\#(entry)]}"#,
                        contentType: "application/fhir+json", headers: [:],
                        // A token without any resource scope is refused before the Bundle is read.
                        status: kind == .none ? 403 : type == "batch" || status < 400 ? 200 : status, total: nil))
            }
        }
        return calls
    }

    @Test(arguments: backends)
    func everyCell(backend: TestBackend) async throws {
        let feed = try AuditFeedToken(Self.feedSecret)
        try await AccessControlTests.withSecureApp(backend, auditFeed: feed, tenants: true) { harness in
            let admin = try await harness.token("system/*.*")
            try await Self.seed(harness, admin: admin)
            var cells = 0
            for interaction in Self.interactions {
                for kind in Kind.allCases {
                    let token = try await Self.token(kind, harness)
                    for call in Self.calls(interaction, kind) {
                        if interaction.destructive { try await Self.restore(harness, admin: admin) }
                        let where_ = "\(call.label) as \(kind)"
                        let response = try await harness.call(
                            call.method, call.path, token: token, body: call.body, contentType: call.contentType,
                            headers: call.headers)
                        cells += 1
                        #expect(
                            Int(response.status.code) == call.status,
                            "\(where_): \(response.status) \(response.text.prefix(300))")
                        if response.status.code >= 400 { #expect(AccessControlTests.isOutcome(response), "\(where_)") }
                        if call.label.hasSuffix("batch"), call.status == 200 {
                            let entryStatus = response.json?["entry"]?.arrayValue?.first?["response"]?["status"]?
                                .stringValue?.prefix(3)
                            #expect(
                                entryStatus.flatMap { Int($0) } == interaction.expected.statuses[kind],
                                "\(where_): \(response.text.prefix(300))")
                        }
                        if let total = call.total {
                            #expect(
                                response.json?["total"] == .number(String(total)),
                                "\(where_): \(response.text.prefix(300))")
                        }
                        if !kind.seesEveryPatient {
                            // (What the request itself names may be echoed in an error.)
                            let asked = call.path + (call.body ?? "")
                            let leaks = Self.leakMarkers.filter { response.text.contains($0) && !asked.contains($0) }
                            #expect(leaks.isEmpty, "\(where_) leaks \(leaks): \(response.text.prefix(300))")
                        }
                    }
                    // The tenant: a token for another tenant, and this token on another tenant, are refused alike.
                    guard kind != .auditFeed else { continue }
                    let foreign = try await Self.token(kind, harness, tenant: "clinic")
                    for call in Self.calls(interaction, kind) {
                        for (token, headers) in [
                            (foreign, call.headers),
                            (token, call.headers.merging(["X-FHIR-TENANT-ID": "clinic"]) { $1 }),
                        ] {
                            let response = try await harness.call(
                                call.method, call.path, token: token, body: call.body, contentType: call.contentType,
                                headers: headers)
                            cells += 1
                            #expect(
                                response.status == .unauthorized,
                                "\(call.label) as \(kind), other tenant: \(response.status)")
                            #expect(Self.leakMarkers.allSatisfy { !response.text.contains($0) })
                        }
                    }
                }
            }
            #expect(cells > 700)
        }
    }
}
