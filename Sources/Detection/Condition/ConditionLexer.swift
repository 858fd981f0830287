/// Where in a rule file something is, for errors a person can act on.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String = "", line: Int = 1, column: Int = 1) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file.isEmpty ? "<condition>" : file):\(line):\(column)" }
}

/// A condition that cannot be read, with where and why.
public struct ConditionError: Error, Equatable, CustomStringConvertible {
    public let location: SourceLocation
    public let message: String
    public var description: String { "\(location): \(message)" }
}

/// One token of Falco's condition language.
enum ConditionToken: Equatable {
    /// A bare word: a field (`proc.aname[2]`, `evt.arg.pathname`), a macro or list name,
    /// a keyword (`and`, `in`, `contains`), or an unquoted value (`/etc`, `bash`, `-1`).
    case word(String)
    case quoted(String)
    case comparison(String)  // = != < <= > >= ==
    case openParenthesis
    case closeParenthesis
    case comma
    case end
}

/// Splits a condition into tokens, keeping each one's position in the rule file.
struct ConditionLexer {
    let text: [Character]
    let origin: SourceLocation
    /// Where each character of the condition is in its file, when the YAML scalar it came
    /// from was folded or spread over lines (then counting from `origin` would be wrong).
    let positions: [SourceLocation]?

    init(_ condition: String, origin: SourceLocation = SourceLocation(), positions: [SourceLocation]? = nil) {
        let characters = Array(condition)
        text = characters
        self.origin = origin
        self.positions = positions.flatMap { $0.count == characters.count && !$0.isEmpty ? $0 : nil }
    }

    func tokens() throws -> [(ConditionToken, SourceLocation)] {
        var result: [(ConditionToken, SourceLocation)] = []
        var index = 0
        var line = origin.line
        var column = origin.column
        func location() -> SourceLocation {
            if let positions {
                if index < positions.count { return positions[index] }
                var end = positions[positions.count - 1]
                end.column += 1
                return end
            }
            return SourceLocation(file: origin.file, line: line, column: column)
        }
        func advance() {
            if text[index] == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            index += 1
        }
        while index < text.count {
            let character = text[index]
            let here = location()
            if character.isWhitespace {
                advance()
            } else if character == "(" {
                result.append((.openParenthesis, here))
                advance()
            } else if character == ")" {
                result.append((.closeParenthesis, here))
                advance()
            } else if character == "," {
                result.append((.comma, here))
                advance()
            } else if character == "\"" || character == "'" {
                advance()
                var value = ""
                while index < text.count && text[index] != character {
                    if text[index] == "\\" && index + 1 < text.count {
                        advance()
                    }
                    value.append(text[index])
                    advance()
                }
                guard index < text.count else {
                    throw ConditionError(location: here, message: "string starting here is not closed")
                }
                advance()
                result.append((.quoted(value), here))
            } else if "=!<>".contains(character) {
                var op = String(character)
                advance()
                if index < text.count && text[index] == "=" {
                    op.append("=")
                    advance()
                }
                guard op != "!" else { throw ConditionError(location: here, message: "'!' must be followed by '='") }
                result.append((.comparison(op == "==" ? "=" : op), here))
            } else {
                var word = ""
                var brackets = 0
                while index < text.count {
                    let c = text[index]
                    if c == "[" { brackets += 1 }
                    if c == "]" { brackets -= 1 }
                    // A value starting with - or / may hold = (`proc.args startswith --exec=`).
                    let valueLike = word.first == "-" || word.first == "/"
                    if brackets == 0 && (c.isWhitespace || "(),\"'".contains(c) || (!valueLike && "=!<>".contains(c))) {
                        break
                    }
                    word.append(c)
                    advance()
                }
                result.append((.word(word), here))
            }
        }
        result.append((.end, location()))
        return result
    }
}
