import Foundation
import JSON
import Sensor

/// One rule firing on one event: what, where, who and the evidence.
public struct Alert: Sendable {
    public struct Container: Sendable, Equatable {
        /// Full id; "host" outside containers.
        public let id: String
        public let name: String
        public let image: String
    }

    public struct Process: Sendable, Equatable {
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
    /// What enforcement did: "killed (kernel)", "killed (user space)", "would kill", or why a
    /// kill failed; nil when the rule has no action or enforcement is off.
    public var action: String? = nil

    /// A readable line for terminals: time, priority, rule, where, and the rendered output,
    /// with control characters escaped (`TerminalText`): a process name or argument cannot
    /// send escape sequences to the operator's terminal or forge a second line. `json()`
    /// keeps the text exact.
    public var line: String {
        let place =
            container.id == "host"
            ? "host" : "container \(container.name.isEmpty ? String(container.id.prefix(12)) : container.name)"
        let techniques = mitre.isEmpty ? "" : " " + mitre.joined(separator: ",")
        let enforced = action.map { " [\($0)]" } ?? ""
        return TerminalText.escape(
            "\(time) \(priority.uppercased()) [\(ruleId)\(techniques)] \(rule) (\(place), \(process.name) pid \(process.pid)): \(output)\(enforced)"
        )
    }

    /// One JSON object, no newline, keys in a fixed order: what fired first, the evidence last.
    public func json() -> Data {
        Data(JSONWriter().bytes(jsonValue))
    }

    public var jsonValue: JSONValue {
        func number<N: BinaryInteger>(_ n: N) -> JSONValue { .number(String(n)) }
        func process(_ p: Process) -> JSONValue {
            var members: [(key: String, value: JSONValue)] = [
                ("pid", number(p.pid)), ("vpid", number(p.vpid)), ("name", .string(p.name)),
                ("exepath", .string(p.exepath)),
                ("cmdline", .string(p.cmdline)),
            ]
            if let uid = p.uid { members.append(("uid", number(uid))) }
            if let user = p.user { members.append(("user", .string(user))) }
            if let tty = p.tty { members.append(("tty", number(tty))) }
            return .object(JSONObject(members))
        }
        var members: [(key: String, value: JSONValue)] = [
            ("ruleId", .string(ruleId)), ("rule", .string(rule)), ("priority", .string(priority)),
            ("output", .string(output)),
            ("time", .string(time)), ("timestamp", number(timestamp)), ("raisedAt", number(raisedAt)),
            ("mitre", .array(mitre.map { .string($0) })), ("tags", .array(tags.map { .string($0) })),
            (
                "container",
                .object(
                    JSONObject([
                        ("id", .string(container.id)), ("name", .string(container.name)),
                        ("image", .string(container.image)),
                    ]))
            ),
            ("process", process(self.process)), ("ancestors", .array(ancestors.map(process))),
            ("events", .array(events.map(\.jsonValue))),
        ]
        if let action { members.append(("action", .string(action))) }
        return .object(JSONObject(members))
    }
}

extension Alert.Process {
    init(_ record: ProcessRecord, name: String? = nil, uid: UInt32?, user: String?) {
        self.init(
            pid: record.pid, vpid: record.vpid, name: name ?? record.name, exepath: record.exePath,
            cmdline: record.cmdline,
            uid: uid, user: user, tty: record.tty)
    }
}

extension Alert {
    /// `nanoseconds` since the epoch in RFC 3339 with nanoseconds (`2026-01-02T03:04:05.123456789Z`),
    /// the form of `time`: for outputs that render another instant of an alert the same way.
    public static func rfc3339(_ nanoseconds: UInt64) -> String { EventView.rfc3339(nanoseconds) }
}
