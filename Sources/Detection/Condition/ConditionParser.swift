/// Reads Falco's condition language into a `Condition`, expanding macros and lists.
///
///     condition  := or
///     or         := and ("or" and)*
///     and        := not ("and" not)*
///     not        := "not" not | primary
///     primary    := "(" condition ")" | FIELD OPERATOR value | FIELD "exists" | MACRO
///     value      := WORD | "quoted" | "(" item ("," item)* ")"   -- an item may name a list
///
/// Rule files are hostile input: the text is bounded (`Limits.conditionBytes`), parentheses
/// and `not` nest at most `Limits.nesting` deep in one condition, and the condition after
/// macro and list expansion has at most `Limits.expandedNodes` nodes and `Limits.expandedDepth`
/// levels (chains of `and`/`or` become balanced trees, so a 10,000-term chain is 14 deep).
/// Each bound fails with where it was crossed, never with a stack overflow or a runaway.
public struct ConditionParser {
    /// The bounds a condition must stay within.
    public enum Limits {
        /// Bytes of one condition's text (after `append`s are joined).
        public static let conditionBytes = 64 * 1024
        /// Parentheses and `not`, nested, in one condition's text.
        public static let nesting = 200
        /// Nodes of one condition with its macros and lists expanded (a comparison counts
        /// one plus its values).
        public static let expandedNodes = 100_000
        /// Depth of one condition with its macros expanded.
        public static let expandedDepth = 1_000
        /// Bytes of the values that lists (and macros naming lists) bring into one condition:
        /// a 1 MB list item named 20,000 times is 20 GB to hash, though few nodes.
        public static let expandedBytes = 16 * 1024 * 1024
    }

    /// What a parsed condition costs once expanded: its node count and depth.
    public struct Cost: Sendable, Equatable {
        public var nodes: Int
        public var depth: Int
        /// Bytes of the values lists brought in (see `Limits.expandedBytes`).
        public var bytes: Int
        public init(nodes: Int, depth: Int, bytes: Int = 0) {
            self.nodes = nodes
            self.depth = depth
            self.bytes = bytes
        }
    }

    public var macros: [String: Condition]
    public var lists: [String: [String]]
    /// The fields a condition may name; nil accepts any `a.b` word as a field.
    public var knownFields: Set<String>?
    /// What each macro costs expanded (`RuleSet` keeps them as it parses macros; a macro
    /// without one is measured when it is used).
    public var macroCosts: [String: Cost] = [:]

    public init(macros: [String: Condition] = [:], lists: [String: [String]] = [:], knownFields: Set<String>? = nil) {
        self.macros = macros
        self.lists = lists
        self.knownFields = knownFields
    }

    /// Parses `text`; positions in errors count from `origin` (where the condition starts in its file).
    public func parse(_ text: String, origin: SourceLocation = SourceLocation()) throws -> Condition {
        try parseWithCost(text, origin: origin).condition
    }

    /// Parses `text` and says what the condition costs expanded.
    /// `positions`, when given, says where each character of `text` is in its file.
    public func parseWithCost(
        _ text: String, origin: SourceLocation = SourceLocation(), positions: [SourceLocation]? = nil
    ) throws -> (condition: Condition, cost: Cost, warnings: [ConditionError]) {
        guard text.utf8.count <= Limits.conditionBytes else {
            throw ConditionError(
                location: origin,
                message:
                    "the condition is \(text.utf8.count) bytes, more than the \(Limits.conditionBytes) a condition may have"
            )
        }
        var state = State(tokens: try ConditionLexer(text, origin: origin, positions: positions).tokens(), parser: self)
        let parsed = try state.parseOr()
        guard case .end = state.current.0 else {
            throw ConditionError(
                location: state.current.1,
                message: "unexpected \(state.describe(state.current.0)) after a complete condition")
        }
        return (parsed.condition, Cost(nodes: state.nodes, depth: parsed.depth, bytes: state.bytes), state.warnings)
    }

    /// `items` joined by `and` or `or` as a balanced tree, in order (so evaluation order and
    /// meaning are those of the chain), and its depth.
    static func balanced(_ items: ArraySlice<(condition: Condition, depth: Int)>, and: Bool) -> (
        condition: Condition, depth: Int
    ) {
        if items.count == 1 { return items.first! }
        let middle = items.startIndex + items.count / 2
        let left = balanced(items[..<middle], and: and)
        let right = balanced(items[middle...], and: and)
        let condition: Condition = and ? .and(left.condition, right.condition) : .or(left.condition, right.condition)
        return (condition, max(left.depth, right.depth) + 1)
    }

    /// `a and b and c` (or `or`) as a balanced tree: depth grows as the log of the count.
    public static func chain(_ items: [Condition], and: Bool) -> Condition? {
        guard !items.isEmpty else { return nil }
        return balanced(items.map { ($0, 0) }[...], and: and).condition
    }

    /// A word that reads as a list's name (`shell_binaries`, `known_k8s_images`): lower-case
    /// snake case with at least one underscore. In `in (...)`, Falco takes an undefined name
    /// as a literal value, so a misspelt list silently matches nothing; Caduceus warns when
    /// such a name is alone in the parentheses. (Refusing it would refuse Falco's own
    /// `proc.aname in (unicorn_launche)`, a process name.)
    static func looksLikeListName(_ word: String) -> Bool {
        let bytes = Array(word.utf8)
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first),
            bytes.contains(UInt8(ascii: "_"))
        else { return false }
        return bytes.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                || $0 == UInt8(ascii: "_")
        }
    }

    /// Fields whose values are snake-case names of their own (`evt.type in (init_module)`),
    /// where a word like a list name is a value.
    static let fieldsWithSnakeCaseValues: Set<String> = ["evt.type", "syscall.type", "evt.arg", "evt.rawarg"]

    private struct State {
        let tokens: [(ConditionToken, SourceLocation)]
        let parser: ConditionParser
        var position = 0
        /// Parentheses and `not` open around the current token.
        var nesting = 0
        /// Nodes of the expanded condition so far.
        var nodes = 0
        /// Bytes of values brought in by lists and macros so far.
        var bytes = 0
        /// What loads but is likely a mistake.
        var warnings: [ConditionError] = []

        init(tokens: [(ConditionToken, SourceLocation)], parser: ConditionParser) {
            self.tokens = tokens
            self.parser = parser
        }

        var current: (ConditionToken, SourceLocation) { tokens[position] }

        mutating func advance() { if position < tokens.count - 1 { position += 1 } }

        func isWord(_ word: String) -> Bool {
            if case .word(let w) = current.0 { return w == word }
            return false
        }

        func describe(_ token: ConditionToken) -> String {
            switch token {
            case .word(let w): return "'\(w.prefix(80))'"
            case .quoted(let q): return "\"\(q.prefix(80))\""
            case .comparison(let c): return "'\(c)'"
            case .openParenthesis: return "'('"
            case .closeParenthesis: return "')'"
            case .comma: return "','"
            case .end: return "end of condition"
            }
        }

        mutating func count(_ added: Int, at location: SourceLocation) throws {
            nodes += added
            guard nodes <= Limits.expandedNodes else {
                throw ConditionError(
                    location: location,
                    message:
                        "the condition expands to more than \(Limits.expandedNodes) nodes (macros and lists included)")
            }
        }

        mutating func countBytes(_ added: Int, at location: SourceLocation) throws {
            bytes += added
            guard bytes <= Limits.expandedBytes else {
                throw ConditionError(
                    location: location,
                    message: "the lists this condition names bring more than \(Limits.expandedBytes) bytes of values")
            }
        }

        func checkDepth(_ depth: Int, at location: SourceLocation) throws {
            guard depth <= Limits.expandedDepth else {
                throw ConditionError(
                    location: location,
                    message:
                        "the condition nests more than \(Limits.expandedDepth) levels deep once its macros are expanded"
                )
            }
        }

        mutating func enter(at location: SourceLocation) throws {
            nesting += 1
            guard nesting <= Limits.nesting else {
                throw ConditionError(
                    location: location, message: "parentheses and 'not' nest more than \(Limits.nesting) deep")
            }
        }

        mutating func parseOr() throws -> (condition: Condition, depth: Int) { try parseChain(and: false) }

        /// `x or y or ...` of `and` chains, or `x and y and ...` of `not`s, as a balanced tree.
        mutating func parseChain(and: Bool) throws -> (condition: Condition, depth: Int) {
            let location = current.1
            var items = [and ? try parseNot() : try parseChain(and: true)]
            while isWord(and ? "and" : "or") {
                advance()
                items.append(and ? try parseNot() : try parseChain(and: true))
            }
            try count(items.count - 1, at: location)
            let result = ConditionParser.balanced(items[...], and: and)
            try checkDepth(result.depth, at: location)
            return result
        }

        mutating func parseNot() throws -> (condition: Condition, depth: Int) {
            // `not not not x`: counted in a loop, then wrapped, so the depth bound is checked
            // before anything recurses.
            var negations = 0
            let start = nesting
            while isWord("not") {
                try enter(at: current.1)
                negations += 1
                advance()
            }
            var (condition, depth) = try parsePrimary()
            try count(negations, at: current.1)
            for _ in 0..<negations { condition = .not(condition) }
            depth += negations
            nesting = start
            return (condition, depth)
        }

        mutating func parsePrimary() throws -> (condition: Condition, depth: Int) {
            let (token, location) = current
            switch token {
            case .openParenthesis:
                try enter(at: location)
                advance()
                let inner = try parseOr()
                guard case .closeParenthesis = current.0 else {
                    throw ConditionError(
                        location: current.1,
                        message:
                            "expected ')' to close the '(' at \(location.line):\(location.column), found \(describe(current.0))"
                    )
                }
                nesting -= 1
                advance()
                return inner
            case .word(let word):
                advance()
                if let macro = parser.macros[word] {
                    let cost = parser.macroCosts[word] ?? macro.cost(limit: Limits.expandedNodes + 1)
                    try count(cost.nodes, at: location)
                    try countBytes(cost.bytes, at: location)
                    try checkDepth(cost.depth, at: location)
                    return (macro, cost.depth)
                }
                if let field = FieldReference(parsing: word) {
                    if let known = parser.knownFields, !known.contains(field.name) {
                        throw ConditionError(location: location, message: "unknown field '\(word.prefix(80))'")
                    }
                    return (try parseComparison(field, at: location), 1)
                }
                throw ConditionError(
                    location: location, message: "'\(word.prefix(80))' is neither a field nor a known macro")
            default:
                throw ConditionError(
                    location: location, message: "expected a field, a macro, 'not' or '(', found \(describe(token))")
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
                try count(1, at: fieldLocation)
                return .exists(field)
            case .word(let word):
                guard let named = ConditionOperator(rawValue: word) else {
                    throw ConditionError(
                        location: location, message: "'\(word.prefix(80))' is not an operator (after field \(field))")
                }
                op = named
            default:
                throw ConditionError(
                    location: location, message: "expected an operator after field \(field), found \(describe(token))")
            }
            advance()
            try count(1, at: fieldLocation)
            let values = try parseValues(for: op, field: field)
            if parser.knownFields != nil, let type = FieldTable.byName[field.name]?.type {
                guard type.allows(op) else {
                    throw ConditionError(
                        location: location,
                        message: "operator '\(op.rawValue)' does not apply to \(field), a \(type.rawValue) field")
                }
                if let problem = values.lazy.compactMap({ type.problem(with: $0, op) }).first {
                    throw ConditionError(
                        location: location, message: "\(field) (\(type.rawValue)) \(op.rawValue): \(problem)")
                }
            }
            return .compare(field, op, values)
        }

        /// The values of a list named in `in (...)`. An undefined name that reads as a list's
        /// name (see `looksLikeListName`) is warned about when it stands alone (`in (shell_binarys)`);
        /// among other values it is a value, as in Falco's own files (`proc.name in
        /// (start_runit, cp)`, `unicorn_launche` beside lists): a check by edit distance to
        /// the defined lists refused those.
        mutating func listValues(_ word: String, field: FieldReference, alone: Bool, at location: SourceLocation) throws
            -> [String]
        {
            if let list = parser.lists[word] {
                try count(list.count, at: location)
                try countBytes(list.reduce(0) { $0 + $1.utf8.count }, at: location)
                return list
            }
            if ConditionParser.looksLikeListName(word)
                && !ConditionParser.fieldsWithSnakeCaseValues.contains(field.name)
                && alone
            {
                warnings.append(
                    ConditionError(
                        location: location,
                        message:
                            "'\(word.prefix(80))' is not a defined list, so it is compared as a value (quote it, \"\(word.prefix(80))\", if that is meant)"
                    ))
            }
            try count(1, at: location)
            return [word]
        }

        mutating func parseValues(for op: ConditionOperator, field: FieldReference) throws -> [String] {
            let (token, location) = current
            switch token {
            case .word(let word):
                advance()
                if [.in, .intersects, .pmatch].contains(op) {
                    return try listValues(word, field: field, alone: true, at: location)
                }
                try count(1, at: location)
                return [word]
            case .quoted(let text):
                advance()
                try count(1, at: location)
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
                        var alone = values.isEmpty
                        if alone, position + 1 < tokens.count, case .closeParenthesis = tokens[position + 1].0 {
                        } else {
                            alone = false
                        }
                        values += try listValues(word, field: field, alone: alone, at: current.1)
                    case .quoted(let text):
                        try count(1, at: current.1)
                        values.append(text)
                    default:
                        throw ConditionError(
                            location: current.1,
                            message: "expected a value or ')' in the list, found \(describe(current.0))")
                    }
                    advance()
                    if case .comma = current.0 { advance() }
                }
            default:
                throw ConditionError(
                    location: location, message: "expected a value after '\(op.rawValue)', found \(describe(token))")
            }
        }
    }
}

extension Condition {
    /// Nodes (a comparison counts one plus its values) and depth, counting no further than
    /// `limit` nodes (a condition built by sharing can be far larger than its memory).
    func cost(limit: Int) -> ConditionParser.Cost {
        var nodes = 0
        var bytes = 0
        var deepest = 0
        var stack: [(Condition, Int)] = [(self, 1)]
        while let (node, depth) = stack.popLast() {
            deepest = max(deepest, depth)
            nodes += 1
            if nodes >= limit { break }
            switch node {
            case .and(let a, let b), .or(let a, let b):
                stack.append((b, depth + 1))
                stack.append((a, depth + 1))
            case .not(let a): stack.append((a, depth + 1))
            case .compare(_, _, let values):
                nodes += values.count
                bytes += values.reduce(0) { $0 + $1.utf8.count }
            case .exists, .constant: break
            }
        }
        return ConditionParser.Cost(nodes: nodes, depth: deepest, bytes: bytes)
    }
}
