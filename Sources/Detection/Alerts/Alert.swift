import Foundation
import Sensor

/// One rule firing on one event: what, where, who and the evidence.
public struct Alert: Sendable, Encodable {
    public struct Container: Sendable, Encodable, Equatable {
        /// Full id; "host" outside containers.
        public let id: String
        public let name: String
        public let image: String
    }

    public struct Process: Sendable, Encodable, Equatable {
        public let pid: UInt32
        public let vpid: UInt32
        public let name: String
        public let exepath: String
        public let cmdline: String
        public let uid: UInt32?
        public let user: String?
        public let tty: Int64?
    }

    public let ruleId: String
    public let rule: String
    public let priority: String
    public let output: String
    /// The triggering event's time, RFC 3339 with nanoseconds.
    public let time: String
    /// The triggering event's time, nanoseconds since the epoch.
    public let timestamp: UInt64
    /// When the engine raised the alert, nanoseconds since the epoch (minus `timestamp`: the delay).
    public let raisedAt: UInt64
    public let mitre: [String]
    public let tags: [String]
    public let container: Container
    public let process: Process
    /// Parent first, up to the oldest ancestor still known.
    public let ancestors: [Process]
    /// The event that fired the rule, in Tracee's form.
    public let events: [TraceEvent]

    /// A readable line for terminals: time, priority, rule, where, and the rendered output.
    public var line: String {
        let place = container.id == "host" ? "host" : "container \(container.name.isEmpty ? String(container.id.prefix(12)) : container.name)"
        let techniques = mitre.isEmpty ? "" : " " + mitre.joined(separator: ",")
        return "\(time) \(priority.uppercased()) [\(ruleId)\(techniques)] \(rule) (\(place), \(process.name) pid \(process.pid)): \(output)"
    }

    /// One JSON object, no newline.
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    enum CodingKeys: String, CodingKey {
        case ruleId, rule, priority, output, time, timestamp, raisedAt, mitre, tags, container, process, ancestors, events
    }
}

extension Alert.Process {
    init(_ record: ProcessRecord, name: String? = nil, uid: UInt32?, user: String?) {
        self.init(
            pid: record.pid, vpid: record.vpid, name: name ?? record.name, exepath: record.exePath, cmdline: record.cmdline,
            uid: uid, user: user, tty: record.tty)
    }
}
