/// A field as a rule names it: `proc.aname[2]` is `proc.aname` with argument `2`,
/// `evt.arg.pathname` is `evt.arg` with argument `pathname`.
public struct FieldReference: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let argument: String?

    public init(name: String, argument: String? = nil) {
        self.name = name
        self.argument = argument
    }

    public var description: String {
        guard let argument else { return name }
        return name == "evt.arg" ? "evt.arg.\(argument)" : "\(name)[\(argument)]"
    }

    /// Parses `name`, `name[arg]` and `evt.arg.NAME` / `evt.rawarg.NAME`.
    init?(parsing word: String) {
        guard let first = word.first, first.isLetter else { return nil }
        if let open = word.firstIndex(of: "["), word.hasSuffix("]") {
            name = String(word[..<open])
            argument = String(word[word.index(after: open)..<word.index(before: word.endIndex)])
        } else if word.hasPrefix("evt.arg.") || word.hasPrefix("evt.rawarg.") {
            let parts = word.split(separator: ".", maxSplits: 2)
            name = "evt.arg"
            argument = parts.count == 3 ? String(parts[2]) : nil
        } else {
            name = word
            argument = nil
        }
        guard name.contains(".") else { return nil }
    }
}

/// Falco's comparison operators.
public enum ConditionOperator: String, Sendable, CaseIterable {
    case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case contains, icontains, startswith, endswith, glob, `in`, intersects, pmatch, regex
    /// Falco's case-insensitive glob, and the byte operators (operands in hex) of buffers.
    case iglob, bcontains, bstartswith
}

/// A parsed condition, with macros and lists already expanded.
public indirect enum Condition: Sendable, Equatable {
    case and(Condition, Condition)
    case or(Condition, Condition)
    case not(Condition)
    case compare(FieldReference, ConditionOperator, [String])
    case exists(FieldReference)
    case constant(Bool)

    /// Every field the condition reads (to check them against the field table, and to
    /// derive the events the kernel must send).
    public var fields: Set<FieldReference> {
        switch self {
        case .and(let a, let b), .or(let a, let b): return a.fields.union(b.fields)
        case .not(let a): return a.fields
        case .compare(let field, _, _), .exists(let field): return [field]
        case .constant: return []
        }
    }
}
