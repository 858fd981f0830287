/// The lexical parts of search values: comparison prefixes, the precision of numbers, and
/// the backslash escapes of `,` `|` `$`.
extension SearchQueryParser {
    /// `ge2020` as `ge` and `2020`; text without a known prefix before a digit is `eq`.
    static func prefix(of text: String) -> (SearchPrefix, String) {
        if text.count > 2, let prefix = SearchPrefix(rawValue: String(text.prefix(2))),
            let third = text.dropFirst(2).first, third.isNumber || third == "-"
        {
            return (prefix, String(text.dropFirst(2)))
        }
        return (.eq, text)
    }

    /// The implicit range of a number: `100` means [99.5, 100.5), `1.50` means [1.495, 1.505).
    static func precisionRange(_ text: String, value: Double) -> (Double, Double) {
        let mantissa = text.split(whereSeparator: { $0 == "e" || $0 == "E" }).first ?? Substring(text)
        let decimals = mantissa.split(separator: ".").dropFirst().first?.count ?? 0
        var half = 0.5
        for _ in 0..<decimals { half /= 10 }
        return (value - half, value + half)
    }

    /// Splits at `separator` where it is not escaped by a backslash, keeping every escape as
    /// written (for a later split at another separator).
    static func splitKeepingEscapes(_ text: String, on separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var escaping = false
        for character in text {
            if escaping {
                current.append(character)
                escaping = false
            } else if character == "\\" {
                current.append(character)
                escaping = true
            } else if character == separator {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    /// Removes the backslash escapes (`\,` `\|` `\$` `\\`).
    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var result = ""
        var escaping = false
        for character in text {
            if escaping || character != "\\" {
                result.append(character)
                escaping = false
            } else {
                escaping = true
            }
        }
        if escaping { result.append("\\") }
        return result
    }

    /// Splits at `separator` where it is not escaped by a backslash, and unescapes `\,` `\|` `\$` `\\`.
    static func splitUnescaped(_ text: String, on separator: Character) -> [String] {
        splitKeepingEscapes(text, on: separator).map(unescape)
    }
}
