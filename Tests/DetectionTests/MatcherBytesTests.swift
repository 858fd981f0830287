import Foundation
import Testing

@testable import Detection

/// The byte paths of the matcher (OperandTable for `=`, `!=`, `in`; GlobPattern's prefilter)
/// against the String and fnmatch(3) answers they replace, on seeded random texts that mix
/// ASCII, canonically equivalent non-ASCII forms, NUL bytes and glob metacharacters.
@Suite struct MatcherBytesTests {
    /// A fixed-seed generator (splitmix64), so a failure repeats.
    struct Seeded {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
        mutating func text(_ pieces: [String], maxPieces: Int) -> String {
            (0..<next(maxPieces + 1)).map { _ in pieces[next(pieces.count)] }.joined()
        }
    }

    /// Text pieces: "K" and the Kelvin sign, "é" precomposed and decomposed are equal as
    /// Strings and differ as bytes.
    static let pieces = ["a", "b", "K", "\u{212A}", "\u{E9}", "e\u{301}", "/", ".", "\u{0}", "ab"]

    /// What `=`, `!=` and `in` answered before the byte paths: lengths first, then String's ==
    /// (`in` with more than 8 operands: a Set<String>).
    static func reference(_ op: ConditionOperator, _ operands: [String], _ text: String) -> Bool {
        let count = text.utf8.count
        let equal = { (operand: String) in operand.utf8.count == count && operand == text }
        switch op {
        case .equal: return equal(operands[0])
        case .notEqual: return !equal(operands[0])
        default: return operands.count <= 8 ? operands.contains(where: equal) : Set(operands).contains(text)
        }
    }

    @Test func equalityAndMembershipAnswerAsStringsDo() throws {
        var random = Seeded(state: 15)
        let field = CompiledField(FieldReference(name: "proc.name"))
        var checked = 0
        for _ in 0..<600 {
            let operands = (0..<(1 + random.next(12))).map { _ in random.text(Self.pieces, maxPieces: 3) }
            for op in [ConditionOperator.equal, .notEqual, .in] {
                let matcher = try Matcher(field, op, operands)
                for _ in 0..<8 {
                    // Half the texts are an operand, so matches are common.
                    let text =
                        random.next(2) == 0
                        ? operands[random.next(operands.count)] : random.text(Self.pieces, maxPieces: 3)
                    #expect(
                        matcher.matches(.string(text)) == Self.reference(op, operands, text),
                        "\(op) \(operands.debugDescription) \(text.debugDescription)")
                    checked += 1
                }
            }
        }
        #expect(checked == 600 * 3 * 8)
    }

    @Test func globPrefilterAgreesWithFnmatch() {
        var random = Seeded(state: 1515)
        let patternPieces = ["a", "b", "/", ".", "*", "?", "[a-b]", "[!a]", "\\*", "]", "[", "\u{0}", "\u{E9}", "A"]
        let textPieces = ["a", "b", "/", ".", "*", "[", "]", "\u{0}", "\u{E9}", "A", "ab"]
        var matched = 0
        for _ in 0..<3000 {
            let pattern = random.text(patternPieces, maxPieces: 5)
            for flags in [Int32(0), Matcher.caseFold] {
                let glob = GlobPattern(pattern, flags: flags)
                for _ in 0..<4 {
                    let text = random.text(textPieces, maxPieces: 6)
                    let expected = fnmatch(pattern, text, flags) == 0
                    #expect(
                        glob.matches(text) == expected,
                        "\(pattern.debugDescription) \(text.debugDescription) flags \(flags)")
                    if expected { matched += 1 }
                }
            }
        }
        // The random cases must include matches, or the prefilter's acceptances go untested.
        #expect(matched > 100)
    }
}
