import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The bulk-read detector in an audited server, through the router: clients that page through
/// more patients than the limit, read them in a batch or chart by chart with `$everything`
/// leave exactly one security-alert AuditEvent each; a clinician under the limit leaves none.
@Suite struct ExfiltrationRouterTests {
    static let limit = 5
    static let alertQuery =
        "AuditEvent?type=\(encodeQuery("http://dicom.nema.org/resources/ontology/DCM|110113"))&subtype=CAD-API-001"

    @Test(arguments: TestDatabases.backends)
    func bulkReadsLeaveOneSecurityAlertPerClient(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            await harness.trail.watch(try ExfiltrationDetector(patients: Self.limit, window: 60))
            let admin = try await harness.token("system/*.*", subject: "admin")
            // 12 patients with one Observation each, in one transaction (writes count for nothing).
            var entries: [String] = []
            for index in 0..<12 {
                entries.append(
                    #"{"resource":{"resourceType":"Patient","id":"p\#(index)"},"request":{"method":"PUT","url":"Patient/p\#(index)"}}"#
                )
                entries.append(
                    #"{"resource":{"resourceType":"Observation","id":"o\#(index)","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p\#(index)"}},"request":{"method":"PUT","url":"Observation/o\#(index)"}}"#
                )
            }
            let seeded = try await harness.call(
                .post, "", token: admin,
                body: #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#)
            #expect(seeded.status == .ok)
            var requests = 1

            // A scraper pages through every Patient, 3 a page: over the limit on its second page.
            let scraper = try await harness.token("user/Patient.rs user/Observation.rs", subject: "scraper")
            for page in 1...4 {
                let answer = try await harness.call(.get, "Patient?_count=3&_page=\(page)", token: scraper)
                #expect(answer.json?["entry"]?.arrayValue?.count == 3)
                requests += 1
            }
            // Observations name their patients: 6 through references, one request.
            #expect(
                try await harness.call(
                    .get, "Observation?_count=6&_sort=_id",
                    token: try await harness.token("user/Observation.rs", subject: "observer")
                ).status == .ok)
            requests += 1
            // A batch of 6 reads, one request.
            let batch = (0..<6).map { #"{"request":{"method":"GET","url":"Patient/p\#($0)"}}"# }.joined(separator: ",")
            let batcher = try await harness.token("user/Patient.rs", subject: "batcher")
            #expect(
                try await harness.call(
                    .post, "", token: batcher, body: #"{"resourceType":"Bundle","type":"batch","entry":[\#(batch)]}"#
                ).status == .ok)
            requests += 1
            // Six charts, one $everything each.
            let charts = try await harness.token("user/*.rs", subject: "charts")
            for index in 0..<6 {
                #expect(try await harness.call(.get, "Patient/p\(index)/$everything", token: charts).status == .ok)
                requests += 1
            }
            // A clinician reads 5 patients, their observations and one history: at the limit, not over.
            let nurse = try await harness.token("user/Patient.rs user/Observation.rs", subject: "nurse")
            for index in 0..<5 {
                #expect(try await harness.call(.get, "Patient/p\(index)", token: nurse).status == .ok)
                #expect(try await harness.call(.get, "Observation?patient=p\(index)", token: nurse).status == .ok)
                requests += 2
            }
            #expect(try await harness.call(.get, "Observation/o4/_history", token: nurse).status == .ok)
            // Refused and failed requests return nobody's data.
            #expect(
                try await harness.call(
                    .get, "Patient/p11", token: try await harness.token("user/Observation.rs", subject: "nurse")
                ).status == .forbidden)
            #expect(try await harness.call(.get, "Patient/p99", token: nurse).status == .notFound)
            requests += 3

            await harness.trail.flush()
            let auditor = try await harness.token("user/AuditEvent.rs", subject: "auditor")
            let found = try await harness.call(.get, Self.alertQuery + "&_sort=date", token: auditor)
            #expect(found.status == .ok)
            let alerts = found.json?["entry"]?.arrayValue?.compactMap { $0["resource"] } ?? []
            #expect(
                alerts.compactMap { $0["agent"]?.arrayValue?.first?["name"]?.stringValue } == [
                    "scraper", "observer", "batcher", "charts",
                ])
            for alert in alerts {
                #expect(alert["outcome"] == "8")
                #expect(alert["type"]?["code"] == "110113")
                #expect(
                    alert["subtype"]?.arrayValue?.compactMap { $0["code"]?.stringValue } == ["CAD-API-001", "T1213"])
                // PostgreSQL counts a batch of records at a time (SharedExfiltrationWindows): a
                // client's next requests may be in the batch that crossed the limit.
                let description = alert["entity"]?.arrayValue?.first?["description"]?.stringValue ?? ""
                let counted = Int(description.prefix { $0.isNumber }) ?? 0
                #expect(backend == .sqlite ? counted == 6 : (6...12).contains(counted), "\(description)")
                #expect(description.hasSuffix(" distinct patients read within 60 s (limit 5)"))
                #expect(alert["agent"]?.arrayValue?.first?["altId"] == "test-app")
            }
            #expect(
                alerts.first?["outcomeDesc"]?.stringValue?.hasPrefix(
                    "Bulk read of patient records: 'scraper' received the data of ") == true)
            // Once per client and window: the scraper's pages 3 and 4 raised nothing more.
            let nurseAlerts = try await harness.call(.get, Self.alertQuery + "&agent-name=nurse", token: auditor)
            #expect(nurseAlerts.json?["total"] == 0)
            // Every request left its own AuditEvent besides (the auditor's two searches included).
            await harness.trail.flush()
            let all = try await harness.call(.get, "AuditEvent?_total=accurate&_count=0", token: auditor)
            #expect(all.json?["total"] == .number(String(requests + 2 + alerts.count)))
        }
    }

    /// F10 of the attacker's review: PATCH answers, conditional creates that find a match and
    /// Bundle entries returned with `Prefer: return=representation` carried patients' records
    /// past the detector. Every answer that carries a resource counts; `return=minimal` does not.
    @Test(arguments: TestDatabases.backends)
    func everyAnswerCarryingAResourceCounts(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            await harness.trail.watch(try ExfiltrationDetector(patients: Self.limit, window: 60))
            let admin = try await harness.token("system/*.*", subject: "admin")
            let patients = (0..<8).map {
                #"{"resource":{"resourceType":"Patient","id":"p\#($0)"},"request":{"method":"PUT","url":"Patient/p\#($0)"}}"#
            }
            let seeded = try await harness.call(
                .post, "", token: admin,
                body: #"{"resourceType":"Bundle","type":"transaction","entry":[\#(patients.joined(separator: ","))]}"#,
                headers: ["Prefer": "return=minimal"])
            #expect(seeded.status == .ok)
            let representation = ["Prefer": "return=representation"]
            let patcher = try await harness.token("user/Patient.ru", subject: "patcher")
            let quiet = try await harness.token("user/Patient.ru", subject: "quiet")
            let matcher = try await harness.token("user/Patient.cs", subject: "matcher")
            let bundler = try await harness.token("user/Patient.cs", subject: "bundler")
            for index in 0..<6 {
                let patched = try await harness.call(
                    .patch, "Patient/p\(index)", token: patcher, body: "[]", contentType: "application/json-patch+json",
                    headers: representation)
                #expect(patched.status == .ok && patched.json?["id"] == .string("p\(index)"))
                let minimal = try await harness.call(
                    .patch, "Patient/p\(index)", token: quiet, body: "[]", contentType: "application/json-patch+json",
                    headers: ["Prefer": "return=minimal"])
                #expect(minimal.status == .ok && minimal.text.isEmpty)
                let matched = try await harness.call(
                    .post, "Patient", token: matcher, body: #"{"resourceType":"Patient"}"#,
                    headers: representation.merging(["If-None-Exist": "_id=p\(index)"]) { $1 })
                #expect(matched.status == .ok && matched.json?["id"] == .string("p\(index)"))
            }
            let entries = (0..<6).map {
                #"{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"_id=p\#($0)"}}"#
            }
            let batch = try await harness.call(
                .post, "", token: bundler,
                body: #"{"resourceType":"Bundle","type":"batch","entry":[\#(entries.joined(separator: ","))]}"#,
                headers: representation)
            #expect(batch.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue }.count == 6)

            await harness.trail.flush()
            let auditor = try await harness.token("user/AuditEvent.rs", subject: "auditor")
            let found = try await harness.call(.get, Self.alertQuery + "&_sort=date", token: auditor)
            let alerted =
                found.json?["entry"]?.arrayValue?.compactMap {
                    $0["resource"]?["agent"]?.arrayValue?.first?["name"]?.stringValue
                } ?? []
            #expect(Set(alerted) == ["patcher", "matcher", "bundler"], "\(alerted)")
            #expect(alerted.count == 3)
        }
    }

    @Test func anUnwatchedTrailRecordsNoAlert() async throws {
        try await AccessControlTests.withSecureApp(.sqlite, auth: false) { harness in
            for index in 0..<8 {
                _ = try await harness.call(
                    .put, "Patient/p\(index)", token: nil, body: #"{"resourceType":"Patient","id":"p\#(index)"}"#)
            }
            #expect(try await harness.call(.get, "Patient?_count=8", token: nil).json?["total"] == 8)
            await harness.trail.flush()
            #expect(try await harness.call(.get, Self.alertQuery, token: nil).json?["total"] == 0)
            #expect(await harness.trail.exfiltration == nil)
        }
    }
}
