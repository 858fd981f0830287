#if canImport(Glibc)
    import Glibc
#endif

/// A user-space filter on one argument: `openat.pathname=/etc/*` keeps `openat` events whose
/// pathname matches the glob; `!=` keeps those that do not. Other events pass untouched.
public struct ArgumentFilter: Sendable, Equatable {
    public let eventID: Int32
    public let argumentIndex: Int
    public let pattern: String
    public let negated: Bool

    /// Parses `event.argument=glob` or `event.argument!=glob`.
    public init(parsing text: String) throws {
        let negated = text.contains("!=")
        let parts = text.components(separatedBy: negated ? "!=" : "=")
        guard parts.count == 2, let dot = parts[0].firstIndex(of: ".") else {
            throw SensorConfigurationError(description: "filter '\(text)' must look like event.argument=pattern")
        }
        let eventName = String(parts[0][..<dot])
        let argumentName = String(parts[0][parts[0].index(after: dot)...])
        guard let definition = EventTable.definition(named: eventName) else {
            throw SensorConfigurationError(description: "filter '\(text)': no event is named '\(eventName)'")
        }
        guard let index = definition.arguments.firstIndex(where: { $0.name == argumentName }) else {
            let names = definition.arguments.map(\.name).joined(separator: ", ")
            throw SensorConfigurationError(
                description: "filter '\(text)': \(eventName) has no argument '\(argumentName)' (it has: \(names))")
        }
        eventID = definition.id
        argumentIndex = index
        pattern = parts[1]
        self.negated = negated
    }

    /// False when the event is this filter's and its argument fails the pattern.
    public func accepts(_ event: RawEvent) -> Bool {
        guard Int32(bitPattern: event.header.event_id) == eventID else { return true }
        for argument in event.arguments where argument.index == argumentIndex {
            let text: String
            switch argument.kind {
            case .string: text = String(decoding: argument.stringBytes, as: UTF8.self)
            case .s32, .s64: text = String(Int64(bitPattern: argument.integer))
            case .sockaddr: text = SocketAddress.fields(argument.payload).map(\.1).joined(separator: ":")
            default: text = String(argument.integer)
            }
            return (fnmatch(pattern, text, 0) == 0) != negated
        }
        return negated
    }
}
