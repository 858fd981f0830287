import Foundation

/// A readable line per event, for people watching a terminal:
/// `TIME  CONTAINER  COMM  PID/TID  UID  EVENT  RET  ARGS`. What a process controls (its
/// name, its arguments, file names) is shown through `TerminalText.escape`: one line per
/// event, no escape sequence reaches the terminal.
public struct TableEventWriter {
    let bootTimeOffset: UInt64
    let containers: ContainerResolver

    public init(bootTimeOffset: UInt64, containers: ContainerResolver) {
        self.bootTimeOffset = bootTimeOffset
        self.containers = containers
    }

    public static var headerLine: String {
        pad("TIME", 15) + pad("CONTAINER", 13) + pad("COMM", 16) + pad("PID/TID", 14) + pad("UID", 6)
            + pad("EVENT", 24) + pad("RET", 8) + "ARGS\n"
    }

    public func line(_ event: RawEvent) -> String {
        let decoded = TraceEvent(event, bootTimeOffset: bootTimeOffset, containers: containers)
        let seconds = Double(decoded.timestamp) / 1e9
        let date = Date(timeIntervalSince1970: seconds)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.hour, .minute, .second], from: date)
        let micros = Int((seconds - seconds.rounded(.down)) * 1_000_000)
        let time = String(format: "%02d:%02d:%02d.%06d", parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0, micros)
        let container =
            decoded.container.map { $0.name.isEmpty ? String($0.id.prefix(12)) : String($0.name.prefix(12)) } ?? "host"
        let arguments = TerminalText.escape(
            decoded.args.map { "\($0.name)=\(Self.show($0.value))" }.joined(separator: " "))
        return Self.pad(time, 15) + Self.pad(TerminalText.escape(container), 13)
            + Self.pad(TerminalText.escape(decoded.processName), 16)
            + Self.pad("\(decoded.processId)/\(decoded.threadId)", 14) + Self.pad(String(decoded.userId), 6)
            + Self.pad(decoded.eventName, 24) + Self.pad(String(decoded.returnValue), 8) + arguments + "\n"
    }

    static func show(_ value: ArgumentValue) -> String {
        switch value {
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .string(let s): return s
        case .strings(let list): return "[" + list.joined(separator: " ") + "]"
        case .fields(let fields): return "{" + fields.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
        }
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
