/// A field's value for one event.
public enum FieldValue: Sendable {
    case string(String)
    case number(Int64)
    /// A number that also reads as names (flags, ptrace requests): matches either way. The
    /// names are made only when a comparison cannot be answered from the number.
    case symbolic(Int64, ArgumentDecoding)
    /// Several values (proc.args, proc.env): a comparison holds when it holds for any.
    case list([String])

    /// As `%field` shows it in an alert's output.
    public var text: String {
        switch self {
        case .string(let s): return s
        case .number(let n): return String(n)
        case .symbolic(let n, let decoding):
            let names = decoding.names(n)
            return names.isEmpty ? String(n) : names.joined(separator: "|")
        case .list(let values): return values.joined(separator: " ")
        }
    }
}
