@testable import Detection
@testable import DetectionOutputs
import Foundation
import JSON
import Sensor
import Testing

/// Alerts as Security Alert AuditEvents (`detect --audit-url`): their shape, and a queue that
/// never blocks detection (Tests/sensor_cli/test_audit_feed.py feeds a real server).
@Suite struct AuditEventAlertSinkTests {
    static func alert(
        container: Alert.Container = .init(
            id: String(repeating: "ab", count: 32), name: "my_box", image: "caduceus-testbox:latest"),
        priority: String = "critical", action: String? = "killed (kernel)"
    ) -> Alert {
        let process = Alert.Process(
            pid: 4242, vpid: 7, name: "cat", exepath: "/bin/busybox", cmdline: "cat /etc/shadow", uid: 0, user: "root",
            tty: nil)
        var alert = Alert(
            ruleId: "CAD-007", rule: "Read sensitive file untrusted", priority: priority,
            output: "Sensitive file opened (file=/etc/shadow)",
            time: "2026-11-29T12:00:00.123456789Z", timestamp: 1_795_953_600_123_456_789,
            raisedAt: 1_795_953_600_200_000_000,
            mitre: ["T1003.008"], tags: [], container: container, process: process, ancestors: [], events: [])
        alert.action = action
        return alert
    }

    @Test func anAlertIsASecurityAlertAuditEvent() throws {
        let event = Self.alert().auditEvent(site: "sensor-host")
        #expect(event["resourceType"] == "AuditEvent")
        #expect(event["type"]?["system"] == "http://dicom.nema.org/resources/ontology/DCM")
        #expect(event["type"]?["code"] == "110113")
        let subtypes = try #require(event["subtype"]?.arrayValue)
        #expect(subtypes.map { $0["code"]?.stringValue } == ["CAD-007", "T1003.008"])
        #expect(subtypes[0]["system"]?.stringValue == Alert.ruleCodeSystem)
        #expect(subtypes[0]["display"] == "Read sensitive file untrusted")
        #expect(event["action"] == "E")
        #expect(event["recorded"] == "2026-11-29T12:00:00.123Z", "an instant in milliseconds")
        #expect(event["outcome"] == "8", "critical is a serious failure")
        #expect(event["outcomeDesc"] == "Sensitive file opened (file=/etc/shadow)")
        let agent = try #require(event["agent"]?.arrayValue?.first)
        #expect(agent["name"] == "cat")
        #expect(agent["altId"] == "root")
        #expect(agent["requestor"] == true)
        #expect(agent["who"]?["identifier"]?["value"] == "4242")
        #expect(event["source"]?["observer"]?["display"] == "Caduceus sensor")
        #expect(event["source"]?["site"] == "sensor-host")
        let entity = try #require(event["entity"]?.arrayValue?.first)
        #expect(entity["what"]?["reference"] == "Device/my-box", "'_' cannot be in a FHIR id")
        var details: [String: String] = [:]
        for detail in entity["detail"]?.arrayValue ?? [] {
            details[detail["type"]?.stringValue ?? ""] = detail["valueString"]?.stringValue
        }
        #expect(details["action"] == "killed (kernel)")
        #expect(details["mitre"] == "T1003.008")
        #expect(details["container.id"] == String(repeating: "ab", count: 32))
        #expect(details["container.image"] == "caduceus-testbox:latest")
        #expect(details["process.exepath"] == "/bin/busybox")
        // Written and read back as JSON unchanged.
        #expect(try JSONParser.parse(JSONWriter().bytes(event)) == event)
    }

    @Test func outcomesAndReferences() {
        #expect(Self.alert(priority: "ERROR").auditOutcome == "8")
        #expect(Self.alert(priority: "emergency").auditOutcome == "8")
        #expect(Self.alert(priority: "warning").auditOutcome == "4")
        #expect(Self.alert(priority: "notice").auditOutcome == "4")
        #expect(Self.alert(container: .init(id: "host", name: "", image: "")).containerReference == "Device/host")
        #expect(
            Self.alert(container: .init(id: "0123456789abcdef", name: "", image: "")).containerReference
                == "Device/0123456789ab")
        let unenforced = Self.alert(action: nil).auditEvent()
        let details = unenforced["entity"]?.arrayValue?.first?["detail"]?.arrayValue ?? []
        #expect(details.contains { $0["type"] == "action" && $0["valueString"] == "none" })
    }

    @Test func badOptionsAreRefused() throws {
        #expect(throws: AlertOutputError.self) { try AuditEventAlertSink(base: "ftp://x/fhir", token: nil) }
        #expect(throws: AlertOutputError.self) {
            try AuditEventAlertSink(base: "http://127.0.0.1:1/fhir", token: "two words")
        }
        #expect(throws: AlertOutputError.self) { try AuditEventAlertSink.token(fromFile: "/nonexistent/token") }
        #expect(throws: AlertOutputError.self) {
            try AuditEventAlertSink(base: "http://127.0.0.1:1/fhir", token: nil, site: " ")
        }
        #expect(throws: AlertOutputError.self) {
            try AuditEventAlertSink(
                base: "http://127.0.0.1:1/fhir", token: nil,
                site: String(repeating: "n", count: AuditEventAlertSink.siteLimit + 1))
        }
        #expect(try AuditEventAlertSink(base: "http://127.0.0.1:1/fhir", token: nil, site: "node-7").site == "node-7")
    }

    /// `detect` failing after making its sinks (no BPF) releases them unfinished: each stops its
    /// HTTP client, where a client released running crashed a debug build with SIGILL.
    @Test func aSinkReleasedUnfinishedStopsItsClient() async throws {
        final class Released: @unchecked Sendable {
            weak var feedClient: AnyObject?
            weak var webhookClient: AnyObject?
        }
        let released = Released()
        do {
            let feed = try AuditEventAlertSink(base: "http://127.0.0.1:1/fhir", token: "t0ken")
            let webhook = try WebhookAlertSink(url: "http://127.0.0.1:1/alerts")
            released.feedClient = feed.client
            released.webhookClient = webhook.client
        }
        // The shutdowns end on a global queue, and then the clients are gone.
        for _ in 0..<50 where released.feedClient != nil || released.webhookClient != nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(released.feedClient == nil)
        #expect(released.webhookClient == nil)
    }

    /// A server that is not there: writes return at once, a full queue drops its oldest with
    /// one warning, and stopping ends the retries instead of waiting them out.
    @Test func aFullQueueDropsTheOldestAndStoppingIsPrompt() async throws {
        final class Warnings: @unchecked Sendable {
            let lock = NSLock()
            var lines: [String] = []
            func add(_ line: String) { lock.withLock { lines.append(line) } }
        }
        let warnings = Warnings()
        let sink = try AuditEventAlertSink(
            base: "http://127.0.0.1:1/fhir/", token: "t0ken", capacity: 3, attempts: 5, firstBackoff: 5,
            warn: { warnings.add($0) })
        #expect(sink.endpoint == "http://127.0.0.1:1/fhir/AuditEvent")
        let started = Date()
        for _ in 0..<20 { sink.write(Self.alert()) }
        #expect(Date().timeIntervalSince(started) < 2, "writing never waits for the server")
        // finish() blocks, as at the end of `caduceus detect`: on a thread of its own, not the
        // tests' cooperative pool, which the drain needs.
        let finishing = Date()
        let lines = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: sink.finish()) }
        }
        // Waiting out the backoffs would take 5 + 8 + 8 + 8 s per queued alert (about 90 s for
        // three); finishing gives the queue 10 s at most. The bound is loose (a loaded two-core
        // machine took 24 s, a full parallel test run 46 s from the first write) and still two
        // thirds of waiting them out.
        #expect(Date().timeIntervalSince(finishing) < 60, "stopping does not wait out the backoffs")
        let counts = sink.counts
        #expect(counts.fed == 0)
        #expect(counts.dropped >= 16)
        #expect(counts.fed + counts.failed + counts.dropped == 20)
        #expect(
            lines.first
                == "audit feed http://127.0.0.1:1/fhir/AuditEvent: 0 alerts fed, \(counts.failed) failed, \(counts.dropped) dropped (queue full)"
        )
        #expect(warnings.lines.count == 1)
        #expect(warnings.lines.first?.contains("3 alerts waiting, the oldest dropped") == true)
    }
}
