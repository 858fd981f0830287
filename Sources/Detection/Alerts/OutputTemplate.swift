import Foundation

/// A rule's `output` with its `%field` references parsed once: `%proc.name`,
/// `%evt.arg.pathname`, `%proc.aname[2]`. A missing value shows as `<NA>`, as in Falco.
public struct OutputTemplate: Sendable {
    enum Piece: Sendable {
        case text(String)
        case field(FieldReference)
    }

    /// A `%field` the template names that the field table does not have.
    public struct FieldError: Error {
        public let message: String
    }

    let pieces: [Piece]
    public let text: String

    public init(_ text: String, knownFields: Set<String>? = FieldTable.names) throws {
        self.text = text
        var pieces: [Piece] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            guard character == "%", next < text.endIndex, text[next].isLetter else {
                literal.append(character)
                index = next
                continue
            }
            var end = next
            var brackets = 0
            while end < text.endIndex {
                let c = text[end]
                if c == "[" {
                    brackets += 1
                } else if c == "]" {
                    if brackets == 0 { break }; brackets -= 1
                } else if brackets == 0 && !(c.isLetter || c.isNumber || c == "." || c == "_") {
                    break
                }
                end = text.index(after: end)
            }
            var word = String(text[next..<end])
            // "%proc.name." ends a sentence
            while word.hasSuffix(".") { word.removeLast(); end = text.index(before: end) }
            guard let field = FieldReference(parsing: word) else {
                literal.append(character)
                index = next
                continue
            }
            if let knownFields, !knownFields.contains(field.name) {
                throw FieldError(message: "unknown field '%\(word)'")
            }
            if !literal.isEmpty { pieces.append(.text(literal)); literal = "" }
            pieces.append(.field(field))
            index = end
        }
        if !literal.isEmpty { pieces.append(.text(literal)) }
        self.pieces = pieces
    }

    /// Every field the template shows.
    public var fields: [FieldReference] {
        pieces.compactMap { if case .field(let f) = $0 { return f } else { return nil } }
    }

    func render(_ view: EventView) -> String {
        var result = ""
        for piece in pieces {
            switch piece {
            case .text(let text): result += text
            case .field(let field): result += view.value(CompiledField(field))?.text ?? "<NA>"
            }
        }
        return result.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
