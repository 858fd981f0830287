import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Lab
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The lab's side of the audit trail, against the FHIR application on a loopback socket: the
/// benign clinical workload stays under the bulk-read detector's default limit, and the lab's
/// question to the trail (`AuditTrailQuery`) finds an alert, says when the server does not
/// audit, and when it may not read the trail.
@Suite struct AuditTrailQueryTests {
    /// An audited server (with `detector`, and tokens when `secret` is given) on a loopback port.
    static func withServer(
        detector: ExfiltrationDetector?, audit: Bool = true, secret: [UInt8]? = nil,
        _ body: @escaping @Sendable (String, AuditTrail?) async throws -> Void
    ) async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let trail = audit ? AuditTrail(store: store, maximumWait: .seconds(120)) : nil
            if let trail, let detector { await trail.watch(detector) }
            var verifier: AccessTokenVerifier?
            if let secret { verifier = try await AccessTokenVerifier(hs256Secret: secret) }
            let app = Application(
                router: FHIRApplication.buildRouter(
                    store: store, security: FHIRSecurity(verifier: verifier, audit: trail)))
            try await app.test(.live) { client in
                let port = try #require(client.port)
                try await body("http://localhost:\(port)/fhir-server/api/v4", trail)
            }
            await trail?.close()
        }
    }

    static func send(_ method: String, _ url: String, body: String? = nil) async throws -> Int {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.setValue("application/fhir+json", forHTTPHeaderField: "Accept")
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/fhir+json", forHTTPHeaderField: "Content-Type")
        }
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// The lab's benign workload (10 admissions by 4 wards, `caduceus lab attack`'s default)
    /// from one address: no bulk-read alert at the default limit, with room to spare.
    @Test func theClinicalWorkloadStaysUnderTheDefaultLimit() async throws {
        try await Self.withServer(detector: try ExfiltrationDetector()) { base, trail in
            let start = Date()
            let report = try await ClinicalWorkload(baseURL: base, rounds: 10, concurrency: 4).run()
            #expect(report.succeeded, "\(report)")
            await trail?.flush()
            let detector = try #require(await trail?.exfiltration)
            #expect(detector.alerts == 0)
            // Every admission's patient, plus namesakes from name searches: about 10, far under 50.
            #expect(
                detector.peakPatients >= 10 && detector.peakPatients <= 25,
                "peak \(detector.peakPatients) distinct patients in a window")
            print(
                "clinical workload: \(report.interactions) interactions; at most \(detector.peakPatients) distinct patients to one client in 60 s"
            )
            #expect(
                await AuditTrailQuery.securityAlerts(
                    baseURL: base, rules: [ExfiltrationDetector.ruleId], since: start, patience: 0) == .alerts([]))
        }
    }

    @Test func theLabFindsTheAlertOfABulkRead() async throws {
        try await Self.withServer(detector: try ExfiltrationDetector(patients: 3)) { base, trail in
            let start = Date()
            for index in 0..<5 {
                #expect(
                    try await Self.send(
                        "PUT", "\(base)/Patient/p\(index)", body: #"{"resourceType":"Patient","id":"p\#(index)"}"#)
                        == 201)
            }
            #expect(try await Self.send("GET", "\(base)/Patient?_count=5") == 200)
            // The alert is queued before the read's response; on a loaded machine the trail's
            // writer may store it later than the query's patience (1.5 s), so wait for it here:
            // what is proved is that the lab's query finds a stored alert, not the writer's pace.
            await trail?.flush()
            let answer = await AuditTrailQuery.securityAlerts(
                baseURL: base, rules: [ExfiltrationDetector.ruleId], since: start)
            guard case .alerts(let alerts) = answer else {
                Issue.record("expected alerts, got \(answer)")
                return
            }
            #expect(alerts.count == 1)
            #expect(alerts.first?.rule == "CAD-API-001")
            #expect(
                alerts.first?.description.contains("received the data of 5 distinct patients within 60 s (limit 3)")
                    == true)
            let recorded = try #require(alerts.first?.recorded)
            #expect(recorded >= start.addingTimeInterval(-0.002) && recorded <= Date())
            // Another rule has none, on a server that audits.
            #expect(
                await AuditTrailQuery.securityAlerts(baseURL: base, rules: ["CAD-API-999"], since: start, patience: 0)
                    == .alerts([]))
        }
    }

    @Test func aServerWithoutAuditIsToldApart() async throws {
        try await Self.withServer(detector: nil, audit: false) { base, _ in
            let start = Date()
            let status = try await Self.send("GET", "\(base)/Patient")
            #expect(status == 200)
            #expect(
                await AuditTrailQuery.securityAlerts(baseURL: base, rules: ["CAD-API-001"], since: start, patience: 0)
                    == .notAuditing)
        }
    }

    @Test func aTrailBehindTokensIsNotReadable() async throws {
        try await Self.withServer(
            detector: try ExfiltrationDetector(), secret: Array("caduceus-test-secret-of-at-least-32-bytes".utf8)
        ) { base, _ in
            let answer = await AuditTrailQuery.securityAlerts(
                baseURL: base, rules: ["CAD-API-001"], since: Date(), patience: 0)
            #expect(answer == .notReadable("HTTP 401: the lab's client has no token to read AuditEvents"))
        }
    }
}
