@testable import Detection
@testable import DetectionOutputs
import FHIR
import Foundation
import JSON
@testable import Lab
import Sensor
import Testing

/// The audit feed takes any alert: whatever a process put in its name or command line (a
/// control character made the server answer 422 and the alert was lost), the AuditEvent
/// passes the FHIR server's own validation, and its strings are bounded.
@Suite struct AuditEventValidityTests {
    static func alert(
        name: String, cmdline: String, output: String, user: String? = nil, ruleId: String = "CAD-007",
        rule: String = "Read sensitive file"
    ) -> Alert {
        let base = AuditEventAlertSinkTests.alert()
        let process = Alert.Process(
            pid: 4242, vpid: 7, name: name, exepath: "/tmp/\u{1}x", cmdline: cmdline, uid: 0, user: user, tty: nil)
        var alert = Alert(
            ruleId: ruleId, rule: rule, priority: base.priority, output: output, time: base.time,
            timestamp: base.timestamp,
            raisedAt: base.raisedAt, mitre: base.mitre + [" T1059 \t"], tags: [], container: base.container,
            process: process, ancestors: [], events: [])
        alert.action = "killed (kernel)"
        return alert
    }

    func validate(_ alert: Alert) throws -> JSONValue {
        let event = alert.auditEvent(site: "sensor\u{7}host")
        try ResourceValidator().validateCreate(event, type: "AuditEvent")
        return event
    }

    @Test func controlCharactersAreEscapedAndTheServerAccepts() throws {
        let every = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) })) + "\u{7f}\u{9b}"
        let alert = Self.alert(
            name: "a\u{1b}[2Jb", cmdline: "sh -c '\u{0}\u{1b}]0;x\u{7}'" + every, output: "file=/tmp/\u{1b}[8m\u{0}",
            user: "")
        let event = try validate(alert)
        let details = try #require(event["entity"]?.arrayValue?.first?["detail"]?.arrayValue)
        let cmdline = try #require(details.first { $0["type"] == "process.cmdline" }?["valueString"]?.stringValue)
        #expect(cmdline.hasPrefix("sh -c '\\x00\\x1b]0;x\\x07'\\x00\\x01"))
        #expect(cmdline.contains("\t\n") && cmdline.contains("\r"), "tab, LF and CR are FHIR's own")
        #expect(!cmdline.unicodeScalars.contains { $0.value < 0x20 && ![0x09, 0x0A, 0x0D].contains($0.value) })
        #expect(event["agent"]?.arrayValue?.first?["name"]?.stringValue == "a\\x1b[2Jb")
        #expect(event["outcomeDesc"]?.stringValue == "file=/tmp/\\x1b[8m\\x00")
        #expect(event["agent"]?.arrayValue?.first?["altId"]?.stringValue == "uid 0", "an empty user name is no value")
    }

    @Test func emptyAndHugeTextStillMakesAValidAuditEvent() throws {
        let huge = String(repeating: "A\u{1}", count: 100_000)
        let event = try validate(Self.alert(name: "", cmdline: huge, output: "", ruleId: "  bad\n id ", rule: ""))
        let cmdline = try #require(
            event["entity"]?.arrayValue?.first?["detail"]?.arrayValue?.first { $0["type"] == "process.cmdline" }?[
                "valueString"]?.stringValue)
        #expect(cmdline.utf8.count <= Alert.auditTextLimit && cmdline.hasSuffix("…"))
        #expect(event["subtype"]?.arrayValue?[0]["code"]?.stringValue == "bad id")
        #expect(event["subtype"]?.arrayValue?[2]["code"]?.stringValue == "T1059")
        #expect(event["outcomeDesc"]?.stringValue == "alert")
    }

    /// Seeded random text in every field: every AuditEvent validates.
    @Test func randomTextAlwaysValidates() throws {
        var random = SeededRandom(seed: 14)
        for index in 0..<2_000 {
            func text() -> String {
                String(
                    String.UnicodeScalarView(
                        (0..<Int.random(in: 0...40, using: &random)).compactMap { _ in
                            Unicode.Scalar(
                                Bool.random(using: &random)
                                    ? UInt32.random(in: 0...0x7f, using: &random)
                                    : UInt32.random(in: 0...0x2FFFF, using: &random))
                        }))
            }
            let alert = Self.alert(
                name: text(), cmdline: text(), output: text(), user: text(), ruleId: text(), rule: text())
            do {
                _ = try validate(alert)
            } catch {
                var bytes: [UInt8] = []
                JSONWriter().write(alert.auditEvent(), into: &bytes)
                Issue.record("\(index): \(error): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
                return
            }
        }
    }
}
