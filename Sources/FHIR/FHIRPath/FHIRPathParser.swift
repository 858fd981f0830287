import Foundation

/// A parsed FHIRPath expression: the tree the evaluator walks.
indirect enum FHIRPathSyntax: Sendable {
    /// `{}`.
    case empty
    case literal(FHIRPathItem)
    /// `name` on the focus (`target` nil) or on what `target` yields.
    case member(FHIRPathSyntax?, String)
    /// `name(arguments)` on the focus or on `target`; arguments are evaluated by the function.
    case function(FHIRPathSyntax?, String, [FHIRPathSyntax])
    case this, index, total
    /// `%name`.
    case constant(String)
    case indexer(FHIRPathSyntax, FHIRPathSyntax)
    /// Unary minus.
    case negate(FHIRPathSyntax)
    case binary(String, FHIRPathSyntax, FHIRPathSyntax)
    /// `is` or `as` with its type name (`Quantity`, `FHIR.string`, `System.Integer`).
    case typeOperator(String, FHIRPathSyntax, String)
}

/// How far the parser and evaluator go before refusing: an expression is user input.
public struct FHIRPathLimits: Sendable {
    /// Longest expression text, in characters.
    public var maximumExpressionLength = 16_384
    /// Deepest nesting of the expression (parentheses, operators, function arguments).
    public var maximumNestingDepth = 200
    /// Most items any one collection may hold while evaluating.
    public var maximumCollectionSize = 100_000
    /// Most evaluation steps (items visited) in one evaluation: bounds `repeat()`,
    /// `descendants()` and nested `where()`s on large resources.
    public var maximumSteps = 5_000_000
    /// Longest string a function may build (`join`, `+`, `replace`...), in characters.
    public var maximumStringLength = 1_048_576

    /// The default limits.
    public init() {}
}

/// Recursive-descent parser with FHIRPath's operator precedence (§ Operator precedence).
struct FHIRPathParser {
    private var tokens: [FHIRPathToken]
    private var position = 0
    private var depth = 0
    private let limits: FHIRPathLimits

    /// Binding power of the binary operators; higher binds tighter.
    private static let binaryPower: [String: Int] = [
        "implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4,
        "=": 5, "~": 5, "!=": 5, "!~": 5, "<": 6, ">": 6, "<=": 6, ">=": 6,
        "|": 7, "is": 8, "as": 8, "+": 9, "-": 9, "&": 9, "*": 10, "/": 10, "div": 10, "mod": 10,
    ]

    static func parse(_ expression: String, limits: FHIRPathLimits) throws -> FHIRPathSyntax {
        guard expression.count <= limits.maximumExpressionLength else {
            throw FHIRPathError(.limit, "expression longer than \(limits.maximumExpressionLength) characters")
        }
        var parser = FHIRPathParser(tokens: try FHIRPathLexer.tokens(of: expression), limits: limits)
        let result = try parser.parseExpression(0)
        guard parser.current.kind == .end else { throw parser.unexpected() }
        return result
    }

    private init(tokens: [FHIRPathToken], limits: FHIRPathLimits) {
        self.tokens = tokens
        self.limits = limits
    }

    private var current: FHIRPathToken { tokens[position] }
    private var following: FHIRPathToken { tokens[min(position + 1, tokens.count - 1)] }

    private func unexpected() -> FHIRPathError {
        let token = current
        let what = token.kind == .end ? "end of expression" : "'\(token.text)'"
        return FHIRPathError(.syntax, "unexpected \(what)", at: token.position)
    }

    private func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol && current.text == symbol }

    private mutating func expect(_ symbol: String) throws {
        guard isSymbol(symbol) else { throw unexpected() }
        position += 1
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= limits.maximumNestingDepth else {
            throw FHIRPathError(
                .limit, "expression nested deeper than \(limits.maximumNestingDepth)", at: current.position)
        }
    }

    private var operatorAhead: (String, Int)? {
        let token = current
        guard token.kind == .symbol || token.kind == .identifier, let power = Self.binaryPower[token.text] else {
            return nil
        }
        return (token.text, power)
    }

    mutating func parseExpression(_ minimumPower: Int) throws -> FHIRPathSyntax {
        try enter()
        defer { depth -= 1 }
        var left = try parsePrefix()
        // Each operator of a chain (`a or b or c ...`) nests the tree one level deeper: counted
        // too, so that no expression within the length limit builds a tree deep enough to
        // exhaust the stack when evaluated or freed.
        let entryDepth = depth
        defer { depth = entryDepth }
        while let (symbol, power) = operatorAhead, power >= minimumPower {
            try enter()
            position += 1
            if symbol == "is" || symbol == "as" {
                left = .typeOperator(symbol, left, try parseTypeName())
            } else {
                left = .binary(symbol, left, try parseExpression(power + 1))
            }
        }
        return left
    }

    private mutating func parseTypeName() throws -> String {
        guard current.kind == .identifier || current.kind == .delimitedIdentifier else { throw unexpected() }
        var name = current.text
        position += 1
        if isSymbol("."), ["FHIR", "System"].contains(name),
            following.kind == .identifier || following.kind == .delimitedIdentifier
        {
            name += "." + following.text
            position += 2
        }
        return name
    }

    private mutating func parsePrefix() throws -> FHIRPathSyntax {
        if isSymbol("+") || isSymbol("-") {
            let negative = current.text == "-"
            position += 1
            try enter()
            defer { depth -= 1 }
            let operand = try parsePrefix()
            return negative ? .negate(operand) : .function(operand, "unaryPlus", [])
        }
        return try parsePostfix(try parseTerm())
    }

    private mutating func parsePostfix(_ start: FHIRPathSyntax) throws -> FHIRPathSyntax {
        var result = start
        let entryDepth = depth
        defer { depth = entryDepth }
        while true {
            if isSymbol(".") {
                try enter()
                position += 1
                result = try parseInvocation(target: result)
            } else if isSymbol("[") {
                try enter()
                position += 1
                let index = try parseExpression(0)
                try expect("]")
                result = .indexer(result, index)
            } else {
                return result
            }
        }
    }

    private mutating func parseInvocation(target: FHIRPathSyntax?) throws -> FHIRPathSyntax {
        let token = current
        switch token.kind {
        case .identifier, .delimitedIdentifier:
            position += 1
            if token.kind == .identifier, isSymbol("(") {
                return try parseCall(target: target, name: token.text, at: token.position)
            }
            return .member(target, token.text)
        case .special:
            position += 1
            guard target == nil else {
                throw FHIRPathError(.syntax, "$\(token.text) cannot follow '.'", at: token.position)
            }
            return token.text == "this" ? .this : token.text == "index" ? .index : .total
        default:
            throw unexpected()
        }
    }

    private mutating func parseCall(target: FHIRPathSyntax?, name: String, at start: Int) throws -> FHIRPathSyntax {
        position += 1  // "("
        var arguments: [FHIRPathSyntax] = []
        if !isSymbol(")") {
            arguments.append(try parseExpression(0))
            while isSymbol(",") {
                position += 1
                arguments.append(try parseExpression(0))
            }
        }
        try expect(")")
        guard let arity = FHIRPathFunctionTable.arity[name] else {
            throw FHIRPathError(.semantic, "unknown function \(name)()", at: start)
        }
        guard arity.contains(arguments.count) else {
            throw FHIRPathError(
                .semantic,
                "\(name)() takes \(arity.lowerBound)...\(arity.upperBound) arguments, not \(arguments.count)", at: start
            )
        }
        return .function(target, name, arguments)
    }

    private mutating func parseTerm() throws -> FHIRPathSyntax {
        let token = current
        switch token.kind {
        case .number:
            position += 1
            return try parseNumber(token)
        case .string:
            position += 1
            return .literal(.string(token.text))
        case .dateTime, .time:
            position += 1
            let kind: FHIRPathDateTime.Kind =
                token.kind == .time ? .time : (token.text.contains("T") ? .dateTime : .date)
            var text = token.text
            // `@2015T` is a DateTime with only a year.
            if kind == .dateTime, text.hasSuffix("T") { text.removeLast() }
            guard let value = FHIRPathDateTime(parsing: text, kind: kind) else {
                throw FHIRPathError(.syntax, "invalid date/time literal @\(token.text)", at: token.position)
            }
            return .literal(kind == .date ? .date(value) : kind == .time ? .time(value) : .dateTime(value))
        case .identifier where token.text == "true" || token.text == "false":
            position += 1
            return .literal(.boolean(token.text == "true"))
        case .identifier, .delimitedIdentifier, .special:
            return try parseInvocation(target: nil)
        case .constant:
            position += 1
            return .constant(token.text)
        case .symbol where token.text == "(":
            position += 1
            let inner = try parseExpression(0)
            try expect(")")
            return inner
        case .symbol where token.text == "{":
            position += 1
            try expect("}")
            return .empty
        default:
            throw unexpected()
        }
    }

    private mutating func parseNumber(_ token: FHIRPathToken) throws -> FHIRPathSyntax {
        let unit: String?
        if current.kind == .string {
            unit = current.text
        } else if current.kind == .identifier, let keyword = FHIRPathUnits.singularKeyword(current.text) {
            unit = keyword
        } else {
            unit = nil
        }
        guard let decimal = Decimal(string: token.text), decimal.isFinite,
            case .decimal(_, let scale)? = FHIRPathItem.decimal(text: token.text)
        else {
            throw FHIRPathError(.syntax, "invalid number", at: token.position)
        }
        if let unit {
            position += 1
            return .literal(.quantity(FHIRPathQuantity(value: decimal, unit: unit)))
        }
        if !token.text.contains(".") {
            guard let integer = Int32(token.text) else {
                throw FHIRPathError(.syntax, "integer \(token.text) out of range", at: token.position)
            }
            return .literal(.integer(Int(integer)))
        }
        return .literal(.decimal(decimal, scale: scale))
    }
}
