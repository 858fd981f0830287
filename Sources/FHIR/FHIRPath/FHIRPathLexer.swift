/// A token of a FHIRPath expression.
struct FHIRPathToken: Equatable {
    enum Kind: Equatable {
        case number, string, dateTime, time, identifier, delimitedIdentifier, constant, special, symbol, end
    }

    var kind: Kind
    /// The token's text: a number's digits, a string's unescaped value, an identifier's name,
    /// a symbol (`<=`), a date's text without `@`, a `%constant`'s name, a `$special`'s name.
    var text: String
    /// Offset in characters of the token's start, for error messages.
    var position: Int
}

/// Splits an expression into tokens, refusing what FHIRPath's grammar has no token for.
struct FHIRPathLexer {
    private let characters: [Character]
    private var index = 0

    init(_ expression: String) {
        characters = Array(expression)
    }

    static func tokens(of expression: String) throws -> [FHIRPathToken] {
        var lexer = FHIRPathLexer(expression)
        var tokens: [FHIRPathToken] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private var peek: Character? { index < characters.count ? characters[index] : nil }
    private func peek(_ offset: Int) -> Character? {
        index + offset < characters.count ? characters[index + offset] : nil
    }

    private func error(_ message: String, at position: Int? = nil) -> FHIRPathError {
        FHIRPathError(.syntax, message, at: position ?? index)
    }

    private mutating func skipSpaceAndComments() throws {
        while let character = peek {
            if character.isWhitespace {
                index += 1
            } else if character == "/", peek(1) == "/" {
                while let next = peek, next != "\n" { index += 1 }
            } else if character == "/", peek(1) == "*" {
                let start = index
                index += 2
                while peek != nil, !(peek == "*" && peek(1) == "/") { index += 1 }
                guard peek != nil else { throw error("unterminated comment", at: start) }
                index += 2
            } else {
                return
            }
        }
    }

    mutating func next() throws -> FHIRPathToken {
        try skipSpaceAndComments()
        let start = index
        guard let character = peek else { return FHIRPathToken(kind: .end, text: "", position: start) }
        if character.isASCII, character.isNumber { return readNumber() }
        if character.isLetter || character == "_" {
            return FHIRPathToken(kind: .identifier, text: readName(), position: start)
        }
        switch character {
        case "'":
            return FHIRPathToken(kind: .string, text: try readQuoted("'"), position: start)
        case "`":
            return FHIRPathToken(kind: .delimitedIdentifier, text: try readQuoted("`"), position: start)
        case "@":
            index += 1
            return try readDateTime(start: start)
        case "%":
            index += 1
            if peek == "`" { return FHIRPathToken(kind: .constant, text: try readQuoted("`"), position: start) }
            if peek == "'" { return FHIRPathToken(kind: .constant, text: try readQuoted("'"), position: start) }
            guard let next = peek, next.isLetter || next == "_" else {
                throw error("% must be followed by a name", at: start)
            }
            return FHIRPathToken(kind: .constant, text: readName(allowing: "-"), position: start)
        case "$":
            index += 1
            let name = readName()
            guard ["this", "index", "total"].contains(name) else {
                throw error("unknown special variable $\(name)", at: start)
            }
            return FHIRPathToken(kind: .special, text: name, position: start)
        default:
            break
        }
        let twoCharacter = peek(1).map { String([character, $0]) }
        if let pair = twoCharacter, ["<=", ">=", "!=", "!~"].contains(pair) {
            index += 2
            return FHIRPathToken(kind: .symbol, text: pair, position: start)
        }
        if ".[](),{}+-*/&|=~<>".contains(character) {
            index += 1
            return FHIRPathToken(kind: .symbol, text: String(character), position: start)
        }
        throw error("unexpected character '\(character)'")
    }

    private mutating func readName(allowing extra: Character? = nil) -> String {
        let start = index
        while let character = peek, character.isLetter || character.isNumber || character == "_" || character == extra {
            index += 1
        }
        return String(characters[start..<index])
    }

    private mutating func readNumber() -> FHIRPathToken {
        let start = index
        while let character = peek, character.isASCII, character.isNumber { index += 1 }
        // A fraction only when a digit follows the dot: `1.toString()` calls a function on 1.
        if peek == ".", let after = peek(1), after.isASCII, after.isNumber {
            index += 1
            while let character = peek, character.isASCII, character.isNumber { index += 1 }
        }
        return FHIRPathToken(kind: .number, text: String(characters[start..<index]), position: start)
    }

    /// A quoted string or delimited identifier, with FHIRPath's escapes resolved.
    private mutating func readQuoted(_ quote: Character) throws -> String {
        let start = index
        index += 1
        var result = ""
        while true {
            guard let character = peek else {
                throw error("unterminated \(quote == "'" ? "string" : "identifier")", at: start)
            }
            index += 1
            if character == quote { return result }
            guard character == "\\" else { result.append(character); continue }
            guard let escaped = peek else { throw error("unterminated escape", at: index) }
            index += 1
            switch escaped {
            case "'", "\"", "`", "\\", "/": result.append(escaped)
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "u":
                guard index + 4 <= characters.count,
                    let code = UInt32(String(characters[index..<index + 4]), radix: 16),
                    let scalar = Unicode.Scalar(code)
                else { throw error("invalid \\u escape", at: index - 2) }
                index += 4
                result.unicodeScalars.append(scalar)
            default: throw error("invalid escape \\\(escaped)", at: index - 2)
            }
        }
    }

    private mutating func digits(_ count: Int) -> Bool {
        for offset in 0..<count {
            guard let character = peek(offset), character.isASCII, character.isNumber else { return false }
        }
        index += count
        return true
    }

    /// `@` date, dateTime or time: the longest text of the literal's form, checked by `FHIRPathDateTime`.
    private mutating func readDateTime(start: Int) throws -> FHIRPathToken {
        let bodyStart = index
        var kind = FHIRPathToken.Kind.dateTime
        var hasTime = false
        if peek == "T" {
            kind = .time
            index += 1
            hasTime = readTimeOfDay()
        } else {
            guard digits(4) else { throw error("invalid date literal", at: start) }
            if peek == "-", digits2(after: 1) {
                index += 3
                if peek == "-", digits2(after: 1) { index += 3 }
            }
            if peek == "T" {
                index += 1
                hasTime = readTimeOfDay()
            }
        }
        if hasTime || kind == .dateTime, let character = peek {
            if character == "Z" {
                index += 1
            } else if (character == "+" || character == "-"), hasTime, digits2(after: 1), peek(3) == ":",
                digits2(after: 4)
            {
                index += 6
            }
        }
        if let character = peek, character.isLetter || character.isNumber {
            throw error("invalid date/time literal", at: start)
        }
        let body = String(characters[bodyStart..<index])
        return FHIRPathToken(kind: kind, text: kind == .time ? String(body.dropFirst()) : body, position: start)
    }

    private func digits2(after offset: Int) -> Bool {
        guard let a = peek(offset), let b = peek(offset + 1) else { return false }
        return a.isASCII && a.isNumber && b.isASCII && b.isNumber
    }

    private mutating func readTimeOfDay() -> Bool {
        guard digits(2) else { return false }
        if peek == ":", digits2(after: 1) {
            index += 3
            if peek == ":", digits2(after: 1) {
                index += 3
                if peek == ".", let digit = peek(1), digit.isASCII, digit.isNumber {
                    index += 1
                    while let character = peek, character.isASCII, character.isNumber { index += 1 }
                }
            }
        }
        return true
    }
}
