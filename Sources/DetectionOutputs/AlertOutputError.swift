/// An alert output that cannot be set up: which option or file, and why.
public struct AlertOutputError: Error, Equatable, CustomStringConvertible {
    /// The option (`--webhook`, `--audit-url`) or the file the problem is with.
    public let source: String
    public let message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}
