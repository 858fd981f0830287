import AsyncHTTPClient
import FHIR
import FHIRServer
import Foundation
import LabReport
import NIOCore

/// The detections the kernel cannot make: scenarios whose rules live in the FHIR server's audit
/// trail (`DetectionSource.auditTrail`) are judged by asking the server, through its API, for
/// the security-alert AuditEvents recorded during the scenario.
extension AttackLab {
    /// The patients the exfiltration scenario makes sure the server holds, planting the rest
    /// (and deleting them afterwards): more than the audit trail's default limit of distinct
    /// patients a window, so that on a fresh lab server the bulk read is one.
    public static let exfiltrationPopulation = ExfiltrationDetector.defaultPatientLimit + 20

    /// `outcomes` with each audit-trail scenario judged by the alerts of its expected rules
    /// recorded from its start (`starts`, ns since the epoch) until the next scenario's.
    func withAuditTrailDetections(_ outcomes: [Outcome], starts: [UInt64]) async -> [Outcome] {
        var judged = outcomes
        for (index, outcome) in outcomes.enumerated()
        where outcome.source == .auditTrail && !outcome.scenario.expectedRules.isEmpty {
            guard let baseURL else {
                judged[index].sourceProblem = "no FHIR base URL to ask the audit trail"
                continue
            }
            let start = Date(timeIntervalSince1970: Double(starts[index]) / 1e9)
            let end =
                index + 1 < starts.count ? Date(timeIntervalSince1970: Double(starts[index + 1]) / 1e9) : .distantFuture
            let rules = outcome.scenario.expectedRules
            switch await AuditTrailQuery.securityAlerts(baseURL: baseURL, rules: rules, since: start) {
            case .alerts(let found):
                let inWindow = found.filter { $0.recorded < end }
                let fired = Set(outcome.firedRules).union(inWindow.map(\.rule))
                var updated = Outcome(
                    scenario: outcome.scenario, exitStatus: outcome.exitStatus, firedRules: fired.sorted(),
                    detected: Set(rules).isSubset(of: Set(inWindow.map(\.rule))),
                    secondsToDetect: inWindow.map(\.recorded).min().map { max(0, $0.timeIntervalSince(start)) },
                    result: outcome.result, figures: outcome.figures)
                updated.figures["auditAlerts"] = Double(inWindow.count)
                updated.verdict = outcome.verdict
                judged[index] = updated
            case .notAuditing:
                judged[index].sourceProblem = "server not auditing: serve --audit on"
            case .notReadable(let why):
                judged[index].sourceProblem = "audit trail not readable (\(why))"
            }
        }
        return judged
    }
}

/// The FHIR server's audit trail, asked through its API for security alerts.
public enum AuditTrailQuery {
    /// One security-alert AuditEvent: its rule (`subtype` code) and when it was recorded.
    public struct Alert: Sendable, Equatable {
        public let rule: String
        public let recorded: Date
        /// `outcomeDesc`: what the detector saw, in words.
        public let description: String
    }

    public enum Answer: Sendable, Equatable {
        /// The alerts found (possibly none) on a server that audits.
        case alerts([Alert])
        /// The server recorded no AuditEvent at all since the time asked, though requests were
        /// made to it: it does not keep an audit trail.
        case notAuditing
        /// The AuditEvent search was refused or failed: why ("HTTP 401", ...).
        case notReadable(String)
    }

    /// The security alerts (DICOM 110113) of `rules` recorded since `since`:
    /// `GET AuditEvent?type=DCM|110113&subtype=<rules>&date=ge<since>`. The trail is written a
    /// few milliseconds behind the requests, so an empty answer is asked again for up to
    /// `patience` seconds. `token`, when given, is sent as a bearer token.
    public static func securityAlerts(
        baseURL: String, rules: [String], since: Date, token: String? = nil, patience: Double = 1.5
    ) async -> Answer {
        let type = AuditCoding.securityAlert
        // A millisecond early: `recorded` keeps milliseconds, the start was taken in nanoseconds.
        let from = FHIRDateRange.instantString(
            milliseconds: Int64((since.timeIntervalSince1970 * 1000).rounded(.down)) - 1)
        let query = [
            ("type", "\(type.system)|\(type.code)"), ("subtype", rules.joined(separator: ",")), ("date", "ge" + from),
            ("_sort", "date"), ("_count", "100"),
        ]
        let deadline = Date().addingTimeInterval(patience)
        while true {
            let answer: (Int, JSONValue?)
            do {
                answer = try await get(baseURL + "/AuditEvent?" + encode(query), token: token)
            } catch {
                return .notReadable("\(error)")
            }
            guard answer.0 == 200, let bundle = answer.1 else {
                return .notReadable(
                    "HTTP \(answer.0)"
                        + (answer.0 == 401 || answer.0 == 403
                            ? ": the lab's client has no token to read AuditEvents" : ""))
            }
            let alerts = (bundle["entry"]?.arrayValue ?? []).compactMap { $0["resource"] }.compactMap {
                event -> Alert? in
                guard let recorded = event["recorded"]?.stringValue.flatMap({ FHIRDateRange(parsing: $0) }),
                    let rule = event["subtype"]?.arrayValue?.compactMap({ $0["code"]?.stringValue }).first(where: {
                        rules.contains($0)
                    })
                else { return nil }
                return Alert(
                    rule: rule, recorded: Date(timeIntervalSince1970: Double(recorded.low) / 1000),
                    description: event["outcomeDesc"]?.stringValue ?? "")
            }
            if !alerts.isEmpty { return .alerts(alerts) }
            if Date() >= deadline {
                // None: is there an audit trail at all? The lab's own requests would be in it.
                guard
                    let any = try? await get(
                        baseURL + "/AuditEvent?" + encode([("date", "ge" + from), ("_count", "1")]), token: token),
                    any.0 == 200
                else { return .alerts([]) }
                let total = any.1?["total"].flatMap { value -> Int? in
                    if case .number(let text) = value { return Int(text) }
                    return nil
                }
                let entries = any.1?["entry"]?.arrayValue?.count ?? 0
                return (total ?? entries) == 0 ? .notAuditing : .alerts([])
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    static func encode(_ parameters: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return parameters.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }
            .joined(separator: "&")
    }

    /// GET: the status and, for a 200, the body parsed.
    static func get(_ url: String, token: String?) async throws -> (Int, JSONValue?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/fhir+json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let status = Int(response.status.code)
        return (status, status == 200 ? try JSONParser.parse(bytes.readableBytesView) : nil)
    }
}
