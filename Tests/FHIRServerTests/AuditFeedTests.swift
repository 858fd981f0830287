import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The audit feed (issue 7): an audit source (the feed token, or a JWT granting
/// `system/AuditEvent.c`) creates Security Alert AuditEvents while the server keeps its audit
/// trail; everyone else still gets 405, nobody changes or deletes one, and one search finds a
/// patient's record accesses beside the alerts about the container holding them.
@Suite struct AuditFeedTests {
    static let backends = TestDatabases.backends
    static let feedToken = "feed-token-0123456789abcdef"
    static let dicom = "http://dicom.nema.org/resources/ontology/DCM"

    /// An alert as `caduceus detect --audit-url` sends it (trimmed), about `device`.
    static func alert(
        rule: String = "CAD-007", device: String = "caduceus-fhir", recorded: String = "2020-01-01T00:00:00.000Z",
        type: String = "110113"
    ) -> String {
        """
        {"resourceType":"AuditEvent","type":{"system":"\(dicom)","code":"\(type)","display":"Security Alert"},
         "subtype":[{"system":"urn:caduceus:rule","code":"\(rule)","display":"Read sensitive file untrusted"},{"system":"https://attack.mitre.org","code":"T1003.008"}],
         "action":"E","recorded":"\(recorded)","outcome":"4","outcomeDesc":"Sensitive file opened for reading (file=/etc/shadow)",
         "agent":[{"type":{"coding":[{"system":"\(dicom)","code":"110150","display":"Application"}]},
                   "who":{"identifier":{"system":"urn:caduceus:pid","value":"4242"},"display":"cat (pid 4242, user root)"},
                   "altId":"root","name":"/usr/bin/cat","requestor":true}],
         "source":{"observer":{"display":"Caduceus sensor"}},
         "entity":[{"what":{"reference":"Device/\(device)"},"name":"\(device)","description":"container 4f2c1d0e9b8a",
                    "detail":[{"type":"mitre","valueString":"T1003.008"},{"type":"action","valueString":"none"}]}]}
        """
    }

    static func withFeedApp(
        _ backend: TestBackend, auth: Bool, feed: Bool = true,
        _ body: @escaping @Sendable (AccessControlTests.Harness) async throws -> Void
    ) async throws {
        try await AccessControlTests.withSecureApp(
            backend, auth: auth, auditFeed: feed ? try AuditFeedToken(feedToken) : nil, body)
    }

    static func entries(_ response: FHIRTestResponse) -> [JSONValue] {
        response.json?["entry"]?.arrayValue?.compactMap { $0["resource"] } ?? []
    }

    @Test(arguments: backends)
    func feedTokenOnAServerWithoutJWT(backend: TestBackend) async throws {
        try await Self.withFeedApp(backend, auth: false) { harness in
            let fed = try await harness.call(.post, "AuditEvent", token: Self.feedToken, body: Self.alert())
            #expect(fed.status == .created, "\(fed.text)")
            let location = try #require(fed.header("Location"))
            let id = try #require(
                location.components(separatedBy: "/AuditEvent/").last?.split(separator: "/").first.map(String.init))
            // Stored as sent.
            let stored = try await harness.call(.get, "AuditEvent/\(id)", token: nil)
            #expect(stored.json?["entity"]?.arrayValue?.first?["what"]?["reference"] == "Device/caduceus-fhir")
            #expect(stored.json?["agent"]?.arrayValue?.first?["who"]?["display"] == "cat (pid 4242, user root)")
            #expect(stored.json?["recorded"] == "2020-01-01T00:00:00.000Z")

            // A wrong token is a failed authentication: 401, as for a bad JWT.
            let wrong = try await harness.call(
                .post, "AuditEvent", token: "feed-token-0123456789abcdeX", body: Self.alert())
            #expect(wrong.status == .unauthorized)
            #expect(wrong.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(AccessControlTests.isOutcome(wrong))
            // No token: not an audit source, so AuditEvents stay read-only (405, as before the feed).
            #expect(
                try await harness.call(.post, "AuditEvent", token: nil, body: Self.alert()).status == .methodNotAllowed)
            // Only security alerts: a feed cannot forge the record of an access.
            let forged = try await harness.call(
                .post, "AuditEvent", token: Self.feedToken, body: Self.alert(type: "110110"))
            #expect(forged.status == .unprocessableContent)
            #expect(AccessControlTests.isOutcome(forged))
            #expect(forged.text.contains("110113"))
            let rest = Self.alert().replacingOccurrences(
                of: #""system":"\#(Self.dicom)","code":"110113""#,
                with: #""system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest""#)
            #expect(
                try await harness.call(.post, "AuditEvent", token: Self.feedToken, body: rest).status
                    == .unprocessableContent)
            // Validated like any create.
            let invalid = try await harness.call(
                .post, "AuditEvent", token: Self.feedToken,
                body: Self.alert().replacingOccurrences(of: #""outcome":"4""#, with: #""outcome":"bad""#))
            #expect(invalid.status == .unprocessableContent, "\(invalid.text)")
            // Nobody changes or deletes one, the feed included.
            let patch = #"[{"op":"replace","path":"/outcome","value":"0"}]"#
            #expect(
                try await harness.call(
                    .put, "AuditEvent/\(id)", token: Self.feedToken,
                    body: Self.alert().replacingOccurrences(
                        of: "{\"resourceType\":\"AuditEvent\",",
                        with: "{\"resourceType\":\"AuditEvent\",\"id\":\"\(id)\",")
                ).status == .methodNotAllowed)
            #expect(
                try await harness.call(
                    .patch, "AuditEvent/\(id)", token: Self.feedToken, body: patch,
                    contentType: "application/json-patch+json"
                ).status == .methodNotAllowed)
            #expect(
                try await harness.call(.delete, "AuditEvent/\(id)", token: Self.feedToken).status == .methodNotAllowed)
            #expect(
                try await harness.call(.delete, "AuditEvent?_id=\(id)", token: Self.feedToken).status
                    == .methodNotAllowed)
            // The feed token grants the feed and nothing else.
            #expect(try await harness.call(.get, "Patient", token: Self.feedToken).status == .forbidden)
            #expect(try await harness.call(.get, "AuditEvent", token: Self.feedToken).status == .forbidden)
            #expect(try await harness.call(.get, "$export", token: Self.feedToken).status == .forbidden)
            // In a batch: alerts in, anything else refused entry by entry.
            let batch = try await harness.call(
                .post, "", token: Self.feedToken,
                body: """
                    {"resourceType":"Bundle","type":"batch","entry":[
                      {"resource":\(Self.alert(rule: "CAD-015")),"request":{"method":"POST","url":"AuditEvent"}},
                      {"resource":\(Self.alert(type: "110110")),"request":{"method":"POST","url":"AuditEvent"}},
                      {"request":{"method":"DELETE","url":"AuditEvent/\(id)"}},
                      {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}
                    """)
            #expect(batch.status == .ok)
            #expect(batch.entryStatusCodes == ["201", "422", "405", "403"], "\(batch.text)")
            // Without the token, a batch cannot feed either.
            let anonymous = try await harness.call(
                .post, "", token: nil,
                body:
                    #"{"resourceType":"Bundle","type":"batch","entry":[{"resource":\#(Self.alert()),"request":{"method":"POST","url":"AuditEvent"}}]}"#
            )
            #expect(anonymous.entryStatusCodes == ["405"])

            await harness.trail.flush()
            let alerts = try await harness.call(
                .get, "AuditEvent?type=\(encodeQuery(Self.dicom + "|110113"))&_count=100", token: nil)
            #expect(
                Set(Self.entries(alerts).compactMap { $0["subtype"]?.arrayValue?.first?["code"]?.stringValue }) == [
                    "CAD-007", "CAD-015",
                ])
            #expect(alerts.json?["total"] == 2)
        }
    }

    @Test(arguments: backends)
    func jwtAuditSources(backend: TestBackend) async throws {
        try await Self.withFeedApp(backend, auth: true) { harness in
            let source = try await harness.token("system/AuditEvent.c", subject: "sensor-1")
            #expect(try await harness.call(.post, "AuditEvent", token: source, body: Self.alert()).status == .created)
            #expect(
                try await harness.call(.post, "AuditEvent", token: source, body: Self.alert(type: "110114")).status
                    == .unprocessableContent)
            // The scope must name AuditEvent in a system/ scope: an admin's wildcard is not a feed.
            for scope in ["system/*.*", "user/AuditEvent.cruds", "system/AuditEvent.rs", "user/*.*"] {
                let token = try await harness.token(scope)
                let refused = try await harness.call(.post, "AuditEvent", token: token, body: Self.alert())
                #expect(refused.status == .methodNotAllowed, "\(scope): \(refused.status)")
            }
            #expect(try await harness.call(.post, "AuditEvent", token: nil, body: Self.alert()).status == .unauthorized)
            #expect(
                try await harness.call(.post, "AuditEvent", token: "not-a-jwt", body: Self.alert()).status
                    == .unauthorized)
            // The feed token works beside JWTs, for the feed only.
            #expect(
                try await harness.call(.post, "AuditEvent", token: Self.feedToken, body: Self.alert()).status
                    == .created)
            #expect(try await harness.call(.get, "Patient", token: Self.feedToken).status == .forbidden)
            // A source's JWT cannot read the trail it feeds, nor delete from it.
            #expect(try await harness.call(.get, "AuditEvent", token: source).status == .forbidden)
            await harness.trail.flush()
            let auditor = try await harness.token("user/AuditEvent.rs", subject: "auditor")
            let alerts = try await harness.call(
                .get, "AuditEvent?type=\(encodeQuery(Self.dicom + "|110113"))", token: auditor)
            #expect(alerts.json?["total"] == 2)
            let id = try #require(Self.entries(alerts).first?["id"]?.stringValue)
            let admin = try await harness.token("system/*.* system/AuditEvent.cruds", subject: "root")
            #expect(try await harness.call(.delete, "AuditEvent/\(id)", token: admin).status == .methodNotAllowed)
            // Each feed request left its own REST AuditEvent, naming the source and what it made.
            let feeds = try await harness.call(.get, "AuditEvent?subtype=create&outcome=0&_count=100", token: auditor)
            let agents = Self.entries(feeds).compactMap { $0["agent"]?.arrayValue?.first?["name"]?.stringValue }
            #expect(agents.sorted() == ["audit-feed", "sensor-1"])
            #expect(
                Self.entries(feeds).allSatisfy {
                    $0["entity"]?.arrayValue?.first?["what"]?["reference"]?.stringValue?.hasPrefix("AuditEvent/")
                        == true
                })
        }
    }

    /// The feed keeps "one AuditEvent per interaction": every request, fed or refused, leaves
    /// exactly one REST AuditEvent, and each accepted feed adds exactly the alert it sent.
    @Test(arguments: backends)
    func oneAuditEventPerFeedRequestBesideTheFedOne(backend: TestBackend) async throws {
        try await Self.withFeedApp(backend, auth: false) { harness in
            let requests: [(String?, String, Bool)] = [
                (Self.feedToken, Self.alert(), true), (Self.feedToken, Self.alert(rule: "CAD-003"), true),
                ("wrong-token-0123456789abcdef", Self.alert(), false), (nil, Self.alert(), false),
                (Self.feedToken, Self.alert(type: "110110"), false),
            ]
            for (token, body, accepted) in requests {
                let response = try await harness.call(.post, "AuditEvent", token: token, body: body)
                #expect((response.status == .created) == accepted, "\(response.status)")
            }
            await harness.trail.flush()
            let everything = try await harness.call(.get, "AuditEvent?_count=100&_sort=date", token: nil)
            let events = Self.entries(everything)
            let rest = events.filter { $0["type"]?["code"] == "rest" }
            let alerts = events.filter { $0["type"]?["code"] == "110113" }
            #expect(rest.count == requests.count)
            #expect(alerts.count == 2)
            #expect(rest.map { $0["outcome"]?.stringValue ?? "" }.sorted() == ["0", "0", "4", "4", "4"])
            #expect(rest.allSatisfy { $0["subtype"]?.arrayValue?.first?["code"] == "create" })
        }
    }

    /// `AuditEvent?entity=Patient/123,Device/caduceus-fhir&_sort=date`: a patient's record
    /// accesses and the alerts about the container holding them, in one search, in time order.
    @Test(arguments: backends)
    func oneSearchFindsRecordAccessesAndAlerts(backend: TestBackend) async throws {
        try await Self.withFeedApp(backend, auth: false) { harness in
            #expect(
                try await harness.call(.put, "Patient/123", token: nil, body: #"{"resourceType":"Patient","id":"123"}"#)
                    .status == .created)
            #expect(
                try await harness.call(.put, "Patient/456", token: nil, body: #"{"resourceType":"Patient","id":"456"}"#)
                    .status == .created)
            // The alerts: one before the patient was stored, one after (ordered by `recorded`).
            let later = FHIRDateRange.instantString(
                milliseconds: Int64(Date().addingTimeInterval(3600).timeIntervalSince1970 * 1000))
            #expect(
                try await harness.call(.post, "AuditEvent", token: Self.feedToken, body: Self.alert(rule: "CAD-007"))
                    .status == .created)
            #expect(
                try await harness.call(
                    .post, "AuditEvent", token: Self.feedToken, body: Self.alert(rule: "CAD-015", recorded: later)
                ).status == .created)
            #expect(
                try await harness.call(
                    .post, "AuditEvent", token: Self.feedToken, body: Self.alert(rule: "CAD-003", device: "other-box")
                ).status == .created)
            // (A few milliseconds apart, so that `recorded` orders them.)
            try await Task.sleep(for: .milliseconds(5))
            #expect(try await harness.call(.get, "Patient/123", token: nil).status == .ok)
            #expect(try await harness.call(.get, "Patient/456", token: nil).status == .ok)
            try await Task.sleep(for: .milliseconds(5))
            #expect(try await harness.call(.get, "Observation?patient=123", token: nil).status == .ok)
            await harness.trail.flush()

            let query = "AuditEvent?entity=\(encodeQuery("Patient/123,Device/caduceus-fhir"))&_sort=date&_count=100"
            for path in [query, query.replacingOccurrences(of: "%2C", with: ",")] {
                let found = try await harness.call(.get, path, token: nil)
                #expect(found.status == .ok, "\(found.text)")
                let events = Self.entries(found)
                let described = events.map { event -> String in
                    let type = event["type"]?["code"]?.stringValue ?? "?"
                    return type == "110113"
                        ? "alert " + (event["subtype"]?.arrayValue?.first?["code"]?.stringValue ?? "?")
                        : "rest " + (event["subtype"]?.arrayValue?.first?["code"]?.stringValue ?? "?")
                }
                // The PUT, read and search of Patient/123 (the search names it as a second entity)
                // between the two alerts; Patient/456 and the alert about other-box left out.
                #expect(
                    described == ["alert CAD-007", "rest update", "rest read", "rest search-type", "alert CAD-015"],
                    "\(path)")
                let dates = events.compactMap { $0["recorded"]?.stringValue }
                #expect(dates == dates.sorted())
            }
            // The patient search parameter alone finds the accesses, entity-name the alerts.
            #expect(try await harness.call(.get, "AuditEvent?patient=123", token: nil).json?["total"] == 3)
            #expect(
                try await harness.call(.get, "AuditEvent?entity-name=caduceus-fhir", token: nil).json?["total"] == 2)
        }
    }

    @Test func feedTokensAreLongAndCompared() throws {
        #expect(throws: AccessTokenError.self) { try AuditFeedToken("short-token") }
        #expect(throws: AccessTokenError.self) { try AuditFeedToken("has white space in it ok") }
        let token = try AuditFeedToken(Self.feedToken)
        #expect(token.matches(Self.feedToken))
        #expect(!token.matches(Self.feedToken + "x"))
        #expect(!token.matches(String(Self.feedToken.dropLast())))
        #expect(!token.matches(""))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("feed-\(UUID().uuidString)")
        try (Self.feedToken + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try AuditFeedToken(contentsOfFile: file.path).matches(Self.feedToken))
        try "0123456789".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: AccessTokenError.self) { try AuditFeedToken(contentsOfFile: file.path) }
    }
}
