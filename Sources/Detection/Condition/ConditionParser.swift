/// Reads Falco's condition language into a `Condition`, expanding macros and lists.
///
///     condition  := or
///     or         := and ("or" and)*
///     and        := not ("and" not)*
///     not        := "not" not | primary
///     primary    := "(" condition ")" | FIELD OPERATOR value | FIELD "exists" | MACRO
///     value      := WORD | "quoted" | "(" item ("," item)* ")"   -- an item may name a list
public struct ConditionParser {
    public var macros: [String: Condition]
    public var lists: [String: [String]]
    /// The fields a condition may name; nil accepts any `a.b` word as a field.
    public var knownFields: Set<String>?

    public init(macros: [String: Condition] = [:], lists: [String: [String]] = [:], knownFields: Set<String>? = nil) {
        self.macros = macros
        self.lists = lists
        self.knownFields = knownFields
    }

    /// Parses `text`; positions in errors count from `origin` (where the condition starts in its file).
    public func parse(_ text: String, origin: SourceLocation = SourceLocation()) throws -> Condition {
        var state = State(tokens: try ConditionLexer(text, origin: origin).tokens(), parser: self)
        let condition = try state.parseOr()
        guard case .end = state.current.0 else {
            throw ConditionError(location: state.current.1, message: "unexpected \(state.describe(state.current.0)) after a complete condition")
        }
        return condition
    }

    private struct State {
        let tokens: [(ConditionToken, SourceLocation)]
        let parser: ConditionParser
        var position = 0

        var current: (ConditionToken, SourceLocation) { tokens[position] }

        mutating func advance() { if position < tokens.count - 1 { position += 1 } }

        func isWord(_ word: String) -> Bool {
            if case .word(let w) = current.0 { return w == word }
            return false
        }

        func describe(_ token: ConditionToken) -> String {
            switch token {
            case .word(let w): return "'\(w)'"
            case .quoted(let q): return "\"\(q)\""
            case .comparison(let c): return "'\(c)'"
            case .openParenthesis: return "'('"
            case .closeParenthesis: return "')'"
            case .comma: return "','"
            case .end: return "end of condition"
            }
        }

        mutating func parseOr() throws -> Condition {
            var left = try parseAnd()
            while isWord("or") {
                advance()
                left = .or(left, try parseAnd())
            }
            return left
        }

        mutating func parseAnd() throws -> Condition {
            var left = try parseNot()
            while isWord("and") {
                advance()
                left = .and(left, try parseNot())
            }
            return left
        }

        mutating func parseNot() throws -> Condition {
            if isWord("not") {
                advance()
                return .not(try parseNot())
            }
            return try parsePrimary()
        }

        mutating func parsePrimary() throws -> Condition {
            let (token, location) = current
            switch token {
            case .openParenthesis:
                advance()
                let inner = try parseOr()
                guard case .closeParenthesis = current.0 else {
                    throw ConditionError(location: current.1, message: "expected ')' to close the '(' at \(location.line):\(location.column), found \(describe(current.0))")
                }
                advance()
                return inner
            case .word(let word):
                advance()
                if let macro = parser.macros[word] { return macro }
                if let field = FieldReference(parsing: word) {
                    if let known = parser.knownFields, !known.contains(field.name) {
                        throw ConditionError(location: location, message: "unknown field '\(word)'")
                    }
                    return try parseComparison(field, at: location)
                }
                throw ConditionError(location: location, message: "'\(word)' is neither a field nor a known macro")
            default:
                throw ConditionError(location: location, message: "expected a field, a macro, 'not' or '(', found \(describe(token))")
            }
        }

        mutating func parseComparison(_ field: FieldReference, at fieldLocation: SourceLocation) throws -> Condition {
            let (token, location) = current
            let op: ConditionOperator
            switch token {
            case .comparison(let symbol):
                op = ConditionOperator(rawValue: symbol)!
            case .word("exists"):
                advance()
                return .exists(field)
            case .word(let word):
                guard let named = ConditionOperator(rawValue: word) else {
                    throw ConditionError(location: location, message: "'\(word)' is not an operator (after field \(field))")
                }
                op = named
            default:
                throw ConditionError(location: location, message: "expected an operator after field \(field), found \(describe(token))")
            }
            advance()
            return .compare(field, op, try parseValues(for: op))
        }

        mutating func parseValues(for op: ConditionOperator) throws -> [String] {
            let (token, location) = current
            switch token {
            case .word(let word):
                advance()
                if [.in, .intersects, .pmatch].contains(op), let list = parser.lists[word] { return list }
                return [word]
            case .quoted(let text):
                advance()
                return [text]
            case .comparison(let symbol) where symbol == "<" || symbol == ">":
                advance()  // `evt.dir = <`: a direction, not an operator
                return [symbol]
            case .openParenthesis:
                advance()
                var values: [String] = []
                while true {
                    switch current.0 {
                    case .closeParenthesis:
                        advance()
                        return values
                    case .word(let word):
                        values += parser.lists[word] ?? [word]
                    case .quoted(let text):
                        values.append(text)
                    default:
                        throw ConditionError(location: current.1, message: "expected a value or ')' in the list, found \(describe(current.0))")
                    }
                    advance()
                    if case .comma = current.0 { advance() }
                }
            default:
                throw ConditionError(location: location, message: "expected a value after '\(op.rawValue)', found \(describe(token))")
            }
        }
    }
}
