@testable import Detection
@testable import DetectionOutputs
import Foundation
import JSON
import Sensor
import Testing

/// `detect`'s line output escapes what a process controls; the JSON output keeps it exact.
@Suite struct AlertLineTests {
    static func hostileAlert() -> Alert {
        var alert = AuditEventAlertSinkTests.alert()
        let process = Alert.Process(
            pid: 4242, vpid: 7, name: "x\u{1b}]0;t\u{7}", exepath: "/tmp/\u{9b}2J",
            cmdline: "sh -c \u{1b}[2J\necho FAKE", uid: 0, user: "root", tty: nil)
        alert = Alert(
            ruleId: alert.ruleId, rule: alert.rule, priority: alert.priority,
            output: "opened /tmp/\u{1b}[8mhidden\u{1b}[0m\nCRITICAL fake",
            time: alert.time, timestamp: alert.timestamp, raisedAt: alert.raisedAt, mitre: alert.mitre, tags: [],
            container: alert.container,
            process: process, ancestors: [], events: [])
        return alert
    }

    @Test func theLineHasNoControlCharactersAndJSONIsExact() throws {
        let alert = Self.hostileAlert()
        let line = alert.line
        #expect(
            !line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) },
            "\(line.debugDescription)")
        #expect(line.contains("x\\x1b]0;t\\x07 pid 4242"))
        #expect(line.contains("opened /tmp/\\x1b[8mhidden\\x1b[0m\\nCRITICAL fake"))
        // The line sink writes one line per alert.
        let pipe = Pipe()
        let sink = StreamAlertSink(handle: pipe.fileHandleForWriting, format: .line)
        sink.write(alert)
        try pipe.fileHandleForWriting.close()
        let written = pipe.fileHandleForReading.readDataToEndOfFile()
        #expect(written.filter { $0 == 0x0A }.count == 1 && !written.contains(0x1B))
        // JSON keeps every character.
        let object = try JSONParser.parse(Array(alert.json()))
        #expect(object["output"]?.stringValue == alert.output)
        #expect(object["process"]?["name"]?.stringValue == "x\u{1b}]0;t\u{7}")
    }
}
