import Foundation

/// Reads `_filter` text into a ``SearchFilter`` against the search parameters of a type.
///
/// The grammar of R4 search_filter.html, with the precedence of SCIM (RFC 7644) whose syntax it
/// takes: `not` before `and` before `or`, parentheses to group:
///
///     filter    = orExp
///     orExp     = andExp *("or" andExp)
///     andExp    = unary *("and" unary)
///     unary     = "not" "(" filter ")" / "(" filter ")" / paramExp
///     paramExp  = paramPath SP compareOp SP compValue
///     paramPath = paramName [":" Type] *("." paramName [":" Type])
///                                                     ; ":Type" narrows a chain link, as in
///                                                     ; a search; "[filter]" is refused
///     compValue = JSON string / run of non-space characters but ")" and "]"
///
/// Every input is hostile: the text, the nesting and the tests are bounded
/// (``SearchFilterLimits``), chains by the query's ``SearchLimits``, and a syntax error is a
/// 400 that names the character where it was found.
struct SearchFilterReader {
    let parser: SearchQueryParser
    let resourceType: String?
    let limits: SearchFilterLimits
    private let characters: [Character]
    private var position = 0
    private var depth = 0
    private var tests = 0

    init(_ text: String, parser: SearchQueryParser, resourceType: String?, limits: SearchFilterLimits) throws {
        guard text.count <= limits.length else {
            throw FHIRError(
                status: 400, code: "too-costly",
                "_filter is longer than this server's limit of \(limits.length) characters")
        }
        self.parser = parser
        self.resourceType = resourceType
        self.limits = limits
        characters = Array(text)
    }

    /// The whole filter; fails unless every character is read.
    mutating func read(budget: inout SearchBudget) throws -> SearchFilter {
        let filter = try orExpression(budget: &budget, nesting: SearchNesting())
        skipSpaces()
        guard position == characters.count else {
            throw syntax("expected 'and', 'or' or the end, found '\(peekWord())'")
        }
        guard tests > 0 else { throw syntax("the filter is empty") }
        return filter
    }

    // MARK: Logic

    private mutating func orExpression(budget: inout SearchBudget, nesting: SearchNesting) throws -> SearchFilter {
        var terms = [try andExpression(budget: &budget, nesting: nesting)]
        while keyword("or") { terms.append(try andExpression(budget: &budget, nesting: nesting)) }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    private mutating func andExpression(budget: inout SearchBudget, nesting: SearchNesting) throws -> SearchFilter {
        var terms = [try unary(budget: &budget, nesting: nesting)]
        while keyword("and") { terms.append(try unary(budget: &budget, nesting: nesting)) }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    private mutating func unary(budget: inout SearchBudget, nesting: SearchNesting) throws -> SearchFilter {
        skipSpaces()
        let negated = lookingAtNot()
        if negated { position += 3 }
        skipSpaces()
        if negated || peek() == "(" {
            guard peek() == "(" else { throw syntax("'not' takes a filter in parentheses") }
            depth += 1
            guard depth <= limits.depth else {
                throw FHIRError(
                    status: 400, code: "too-costly",
                    "_filter nests deeper than this server's limit of \(limits.depth) (character \(position + 1))")
            }
            position += 1
            let inner = try orExpression(budget: &budget, nesting: nesting)
            skipSpaces()
            guard peek() == ")" else { throw syntax("expected ')', found '\(peekWord())'") }
            position += 1
            depth -= 1
            return negated ? .not(inner) : inner
        }
        return try parameterExpression(budget: &budget, nesting: nesting)
    }

    /// `not` followed by `(`, not a parameter whose name starts with "not".
    private func lookingAtNot() -> Bool {
        guard position + 3 <= characters.count, String(characters[position..<position + 3]).lowercased() == "not" else {
            return false
        }
        var next = position + 3
        while next < characters.count, characters[next].isWhitespace { next += 1 }
        return next < characters.count && characters[next] == "("
    }

    // MARK: Tests

    private mutating func parameterExpression(budget: inout SearchBudget, nesting: SearchNesting) throws -> SearchFilter
    {
        let start = position
        var path: [String] = []
        repeat {
            let name = word { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
            guard let first = name.first, first.isLetter || first == "_" else {
                throw syntax(
                    name.isEmpty
                        ? "expected a search parameter name, found '\(peekWord())'"
                        : "'\(name)' is not a search parameter name", at: start)
            }
            if consume(":") {
                let type = word { $0.isLetter || $0.isNumber }
                guard FHIRResourceType.isKnown(type), peek() == "." else {
                    throw syntax(
                        "':\(type)' must name a resource type and be followed by '.' (a chain link, as in subject:Patient.name)"
                    )
                }
                path.append(name + ":" + type)
            } else {
                path.append(name)
            }
            if peek() == "[" {
                throw FHIRError.badRequest(
                    "_filter: a '[filter]' in a parameter path is not supported (character \(position + 1))")
            }
        } while consume(".")
        guard skipSpaces() else {
            throw syntax("expected a space and an operator after '\(path.joined(separator: "."))'")
        }
        let operatorStart = position
        let operatorText = word { $0.isLetter }.lowercased()
        guard let op = SearchFilterOperator(rawValue: operatorText) else {
            throw syntax(
                "'\(operatorText.isEmpty ? peekWord() : operatorText)' is not a _filter operator (eq ne co sw ew gt lt ge le ap sa eb pr po ss sb in ni re)",
                at: operatorStart)
        }
        guard skipSpaces() else { throw syntax("expected a space and a value after '\(operatorText)'") }
        let valueStart = position
        let value = try compareValue()
        tests += 1
        guard tests <= limits.tests else {
            throw FHIRError(
                status: 400, code: "too-costly", "_filter has more than this server's limit of \(limits.tests) tests")
        }
        try budget.spendValues(1)
        do {
            return try resolve(path[...], op: op, value: value, type: resourceType, budget: &budget, nesting: nesting)
        } catch let error as FHIRError {
            throw FHIRError.badRequest(
                "_filter: \(error.issues.first?.diagnostics ?? "invalid test") (characters \(start + 1)-\(max(valueStart + 1, position)))"
            )
        }
    }

    /// A JSON string, or a run of characters up to a space, `)` or `]`.
    private mutating func compareValue() throws -> String {
        if peek() == "\"" { return try jsonString() }
        let text = word { !$0.isWhitespace && $0 != ")" && $0 != "]" }
        guard !text.isEmpty else { throw syntax("expected a value, found '\(peekWord())'") }
        return text
    }

    private mutating func jsonString() throws -> String {
        let start = position
        position += 1
        var text = ""
        while position < characters.count {
            let character = characters[position]
            position += 1
            switch character {
            case "\"": return text
            case "\\":
                guard position < characters.count else { break }
                let escaped = characters[position]
                position += 1
                switch escaped {
                case "\"", "\\", "/": text.append(escaped)
                case "b": text.append("\u{8}")
                case "f": text.append("\u{C}")
                case "n": text.append("\n")
                case "r": text.append("\r")
                case "t": text.append("\t")
                case "u":
                    let digits = String(characters[position..<min(position + 4, characters.count)])
                    guard digits.count == 4, let code = UInt32(digits, radix: 16), let scalar = Unicode.Scalar(code)
                    else {
                        throw syntax("'\\u' takes four hex digits of a character", at: position - 2)
                    }
                    text.unicodeScalars.append(scalar)
                    position += 4
                default: throw syntax("'\\\(escaped)' is not a JSON string escape", at: position - 2)
                }
            default: text.append(character)
            }
        }
        throw syntax("the string is not closed by '\"'", at: start)
    }

    // MARK: Resolution against the search parameters

    /// `path op value` for `type`: a test, or a chain through the path's reference parameters.
    private func resolve(
        _ path: ArraySlice<String>, op: SearchFilterOperator, value: String, type: String?, budget: inout SearchBudget,
        nesting: SearchNesting
    ) throws -> SearchFilter {
        let link = path.first!.split(separator: ":").map(String.init)
        let name = link[0]
        guard path.count > 1 else {
            if op == .in || op == .ni { return try membership(name, op: op, url: value, type: type, budget: &budget) }
            return .test(try test(name, op: op, value: value, type: type))
        }
        let chain = path.joined(separator: ".")
        guard let type else { throw FHIRError.badRequest("the chain '\(chain)' needs a resource type to search") }
        let nesting = try nesting.addingLink(within: parser.limits, chain: chain)
        guard let reference = parser.registry.parameter(name, of: type), reference.type == .reference else {
            throw FHIRError.badRequest("'\(name)' is not a reference parameter of \(type), so it cannot be chained")
        }
        let candidates =
            link.count == 2
            ? [link[1]] : reference.targets.isEmpty ? Array(FHIRResourceType.all).sorted() : reference.targets
        var targets: [SearchFilterChainTarget] = []
        let next = String(path[path.startIndex + 1].prefix { $0 != ":" })
        for target in candidates where parser.hasParameter(next, target) {
            try budget.spendChainTarget(chain: chain)
            targets.append(
                SearchFilterChainTarget(
                    type: target,
                    filter: try resolve(
                        path.dropFirst(), op: op, value: value, type: target, budget: &budget, nesting: nesting)))
        }
        guard !targets.isEmpty else {
            throw FHIRError.badRequest(
                "no type that '\(name)' points at has the parameter '\(path.dropFirst().joined(separator: "."))'")
        }
        return .chain(reference: reference, targets: targets)
    }

    private func test(_ name: String, op: SearchFilterOperator, value text: String, type: String?) throws
        -> SearchFilterTest
    {
        let (target, kind) = try Self.target(name, parser: parser, type: type)
        var allowed = SearchFilterOperator.allowed(for: kind)
        if case .id = target { allowed = [.eq, .ne] }
        guard allowed.contains(op) else {
            if op == .in || op == .ni {
                throw FHIRError.badRequest(
                    "'\(op.rawValue)' (value sets) applies to token parameters, not the \(kind.rawValue) parameter '\(name)'"
                )
            }
            if allowed.isEmpty {
                throw FHIRError.badRequest("the \(kind.rawValue) parameter '\(name)' cannot be used in _filter")
            }
            throw FHIRError.badRequest(
                "'\(op.rawValue)' does not apply to the \(kind.rawValue) parameter '\(name)' (it takes \(SearchFilterOperator.allCases.filter(allowed.contains).map(\.rawValue).joined(separator: " ")))"
            )
        }
        return SearchFilterTest(
            name: name, target: target, op: op, value: try value(text, op: op, kind: kind, name: name))
    }

    /// `token in|ni url`: the token has (or has not) a code of the value set (in SQL, an `IN`
    /// list a system, which does not deepen the expression as OR-ed values would). Only value sets the server holds expanded: the required bindings of R4 core that
    /// the core package alone expands (Generated/StructureTable.swift); each code counts
    /// against the query's total-values limit.
    private func membership(
        _ name: String, op: SearchFilterOperator, url: String, type: String?, budget: inout SearchBudget
    ) throws -> SearchFilter {
        let (target, kind) = try Self.target(name, parser: parser, type: type)
        guard kind == .token, case .indexed = target else {
            throw FHIRError.badRequest(
                "'\(op.rawValue)' (value sets) applies to token parameters, not the \(kind.rawValue) parameter '\(name)'"
            )
        }
        let canonical = String(url.prefix { $0 != "|" })
        guard let valueSet = StructureSchema.r4.valueSets.first(where: { $0.url == canonical }),
            let codesBySystem = valueSet.codesBySystem
        else {
            throw FHIRError.badRequest(
                "'\(op.rawValue)' knows only the required value sets of R4 core that it can expand, not '\(SearchBudget.shortened(url))'"
            )
        }
        guard case .indexed(let definition) = target else {
            throw FHIRError.badRequest("'\(name)' is not an indexed parameter")
        }
        let codes = codesBySystem.mapValues { $0.sorted() }
        try budget.spendValues(codes.values.reduce(0) { $0 + $1.count } + valueSet.codes.count)
        // A `code` element (Patient.gender) is indexed without a system: its system is the value set's.
        let member = SearchFilter.member(parameter: definition, codes: codes, unqualified: valueSet.codes.sorted())
        return op == .in ? member : .not(member)
    }

    /// What `name` tests on `type`, and the kind of value it compares.
    static func target(_ name: String, parser: SearchQueryParser, type: String?) throws -> (
        SearchTarget, SearchParameterType
    ) {
        switch name {
        case "_id": return (.id, .token)
        case "_lastUpdated": return (.lastUpdated, .date)
        default:
            guard
                let definition = type.flatMap({ parser.registry.parameter(name, of: $0) })
                    ?? parser.registry.common[name]
            else {
                throw FHIRError.badRequest("unknown search parameter '\(name)' for \(type ?? "system-level search")")
            }
            return (.indexed(definition), definition.type)
        }
    }

    /// The compared value as the parameter's type reads it.
    func value(_ text: String, op: SearchFilterOperator, kind: SearchParameterType, name: String) throws -> SearchValue
    {
        if op == .pr {
            guard text == "true" || text == "false" else {
                throw FHIRError.badRequest("'pr' takes true or false, not '\(text)'")
            }
            return .missing(text == "false")
        }
        guard !text.isEmpty else { throw FHIRError.badRequest("'\(name)' needs a value") }
        switch kind {
        case .string: return .string(text)
        case .uri: return .uri(text)
        case .token:
            guard let bar = text.firstIndex(of: "|") else { return .token(system: nil, code: text) }
            let code = String(text[text.index(after: bar)...])
            return .token(system: String(text[..<bar]), code: code.isEmpty ? nil : code)
        case .reference:
            guard let value = SearchQueryParser.referenceValue(text) else {
                throw FHIRError.badRequest("'\(text)' is not a reference for '\(name)'")
            }
            return value
        case .date:
            guard let range = FHIRDateRange(parsing: text) else {
                throw FHIRError.badRequest("'\(text)' is not a date for '\(name)'")
            }
            return .date(op.prefix ?? .eq, range)
        case .number, .quantity:
            // The operator is the prefix: a value may not bring its own (`ge5`).
            guard let first = text.first, first.isNumber || first == "-" || first == "+" || first == "." else {
                throw FHIRError.badRequest("'\(text)' is not a \(kind.rawValue) for '\(name)'")
            }
            let parsed = try parser.parseValue(
                text.replacingOccurrences(of: "\\", with: "\\\\"), type: kind, modifier: nil, name: name)
            guard case .number(_, let number, let low, let high, let system, let code) = parsed else {
                throw FHIRError.badRequest("'\(text)' is not a \(kind.rawValue) for '\(name)'")
            }
            return .number(op.prefix ?? .eq, value: number, low: low, high: high, system: system, code: code)
        case .composite, .special:
            throw FHIRError.badRequest("the \(kind.rawValue) parameter '\(name)' cannot be used in _filter")
        }
    }

    // MARK: Characters

    private func peek() -> Character? { position < characters.count ? characters[position] : nil }

    /// The next run of non-space characters, for messages (at most 20).
    private func peekWord() -> String {
        guard position < characters.count else { return "the end" }
        let run = characters[position...].prefix { !$0.isWhitespace }.prefix(20)
        return String(run)
    }

    /// Skips white space; whether there was any.
    @discardableResult private mutating func skipSpaces() -> Bool {
        let start = position
        while position < characters.count, characters[position].isWhitespace { position += 1 }
        return position > start
    }

    private mutating func consume(_ character: Character) -> Bool {
        guard peek() == character else { return false }
        position += 1
        return true
    }

    private mutating func word(while accepted: (Character) -> Bool) -> String {
        let start = position
        while position < characters.count, accepted(characters[position]) { position += 1 }
        return String(characters[start..<position])
    }

    /// `and` / `or` (any case) as a whole word after white space.
    private mutating func keyword(_ text: String) -> Bool {
        let start = position
        guard skipSpaces() else { return false }
        let end = position + text.count
        // The keyword ends at a space, a parenthesis or the end (where a missing operand is reported).
        if end <= characters.count, String(characters[position..<end]).lowercased() == text,
            end == characters.count || characters[end].isWhitespace || characters[end] == "("
        {
            position = end
            return true
        }
        position = start
        return false
    }

    private func syntax(_ message: String, at offset: Int? = nil) -> FHIRError {
        let at = offset ?? position
        return FHIRError.badRequest("_filter syntax error at character \(at + 1): \(message)")
    }
}

extension SearchQueryParser {
    /// A `_filter` value as one clause of a search of `resourceType`.
    func parseFilter(_ text: String, resourceType: String?, budget: inout SearchBudget) throws -> SearchClause {
        var reader = try SearchFilterReader(text, parser: self, resourceType: resourceType, limits: .standard)
        let filter = try reader.read(budget: &budget)
        return .filter(filter)
    }
}
