import Detection
import Foundation
@testable import Lab
import Sensor
import Testing

/// The rule loader under a seeded fuzz: mutations of the built-in rule files and of Falco's
/// (../shared/falco, when present): bytes inserted, deleted and repeated, lines shuffled and
/// re-indented, nesting (`[`, `{`, `(`, `not`, `- `), macros and lists that name each other,
/// keys and rules repeated, YAML anchors and aliases. Every mutant must load or fail with a
/// `RuleError` that has a file and a line, within a time bound, and a set that loads must
/// compile in the engine. A crash ends the test process, which CI reports.
///
/// `CADUCEUS_FUZZ_SECONDS` runs for that long (20 s by default); `CADUCEUS_FUZZ_SEED` fixes
/// the seed (printed with every failure); `CADUCEUS_FUZZ_INDEX` runs only that mutant.
@Suite struct RuleLoaderFuzzTests {
    /// The same seed, the same mutants (Lab's SplitMix64).
    typealias Generator = SeededRandom

    struct Base {
        var name: String
        var text: String
        var knownFields: Set<String>?
    }

    static func bases() throws -> [Base] {
        var bases = try RuleFiles.builtin().map {
            Base(name: ($0.path as NSString).lastPathComponent, text: $0.text, knownFields: FieldTable.names)
        }
        let falco = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../../shared/falco"
        ).standardizedFileURL.path
        for name in ["falco_rules.yaml", "falco-incubating_rules.yaml"] {
            if let text = try? String(contentsOfFile: falco + "/" + name, encoding: .utf8) {
                bases.append(Base(name: name, text: text, knownFields: nil))
            }
        }
        return bases
    }

    static let fragments = [
        "[", "]", "{", "}", "(", ")", "not ", " and ", " or ", "- ", ": ", "\n", "\n  ", "\t", "\0", "\u{1b}[2J", "\"",
        "'", "\\",
        "&a ", "*a", "<<: *a", "%", "%proc.name", "evt.type", "proc.name", " in ", " = ", "(shell_binaries)", ">", "|",
        "#",
        "- macro: m\n  condition: m\n", "- list: l\n  items: [l, l, l]\n",
        "- rule: R\n  condition: r\n  output: o\n  priority: INFO\n",
        "\u{FEFF}", "\u{9B}", "é", "\u{10FFFF}", "---\n", "...\n", "!!binary ", "? ", "~", "append: true\n",
        "override:\n  condition: append\n",
    ]

    static func mutate(_ text: String, _ random: inout Generator) -> String {
        var bytes = Array(text.utf8)
        let rounds = Int.random(in: 1...4, using: &random)
        for _ in 0..<rounds {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0, 1:  // a fragment, once or many times
                let fragment = Array(fragments.randomElement(using: &random)!.utf8)
                let times =
                    Bool.random(using: &random)
                    ? 1 : Int.random(in: 1...(Bool.random(using: &random) ? 50 : 20_000), using: &random)
                bytes.insert(contentsOf: Array([[UInt8]](repeating: fragment, count: times).joined()), at: at)
            case 2:  // a deletion
                let end = min(bytes.count, at + Int.random(in: 1...200, using: &random))
                if at < end { bytes.removeSubrange(at..<end) }
            case 3:  // a range repeated
                let end = min(bytes.count, at + Int.random(in: 1...400, using: &random))
                if at < end { bytes.insert(contentsOf: bytes[at..<end], at: end) }
            case 4:  // random bytes
                bytes.insert(
                    contentsOf: (0..<Int.random(in: 1...16, using: &random)).map { _ in
                        UInt8.random(in: 0...255, using: &random)
                    }, at: at)
            case 5:  // lines swapped, duplicated or re-indented
                var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                guard lines.count > 1 else { break }
                let i = Int.random(in: 0..<lines.count, using: &random),
                    j = Int.random(in: 0..<lines.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: lines.swapAt(i, j)
                case 1: lines.insert(lines[i], at: j)
                default:
                    lines[i] =
                        Array(repeating: UInt8(ascii: " "), count: Int.random(in: 0...12, using: &random))
                        + lines[i].drop { $0 == UInt8(ascii: " ") }
                }
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            case 6:  // a whole item repeated (duplicate names)
                let text = String(decoding: bytes, as: UTF8.self)
                let items = text.components(separatedBy: "\n- ")
                if items.count > 1, let item = items.dropFirst().randomElement(using: &random) {
                    bytes += Array(("\n- " + item).utf8)
                }
            case 7:  // a deep condition
                let depth = Int.random(in: 1...(Bool.random(using: &random) ? 300 : 60_000), using: &random)
                let open = Bool.random(using: &random) ? "(" : "not "
                let condition =
                    String(repeating: open, count: depth) + "proc.name = x"
                    + (open == "(" ? String(repeating: ")", count: depth) : "")
                bytes += Array("\n- rule: Fuzz\(at)\n  condition: \(condition)\n  output: o\n  priority: INFO\n".utf8)
            case 8:  // macros that double each other
                let count = Int.random(in: 2...60, using: &random)
                var text = "\n- macro: f0\n  condition: proc.name = a\n"
                for i in 1..<count { text += "- macro: f\(i)\n  condition: f\(i - 1) or f\(i - 1) and not f\(i - 1)\n" }
                text += "- rule: Fuzz macros\n  condition: f\(count - 1)\n  output: o\n  priority: INFO\n"
                bytes += Array(text.utf8)
            default:  // one byte flipped
                if !bytes.isEmpty {
                    bytes[min(at, bytes.count - 1)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func mutatedRuleFilesLoadOrFailWithWhere() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["CADUCEUS_FUZZ_SECONDS"].flatMap(Double.init) ?? 20
        let seed = environment["CADUCEUS_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let only = environment["CADUCEUS_FUZZ_INDEX"].flatMap(Int.init)
        let bases = try Self.bases()
        try #require(!bases.isEmpty)
        var random = Generator(seed: seed)
        let deadline = Date().addingTimeInterval(seconds)
        var index = 0, loaded = 0, refused = 0
        var slowest = 0.0
        while Date() < deadline || (only != nil && index <= only!) {
            defer { index += 1 }
            // The tests share two cooperative threads on this machine: a loop that never yields
            // starved the suites' timing-sensitive clients (a slow reader idle past its timeout).
            await Task.yield()
            let base = bases.randomElement(using: &random)!
            let text = Self.mutate(base.text, &random)
            if let only, index != only { continue }
            let start = Date()
            do {
                let set = try RuleSet.load([("fuzz/" + base.name, text)], knownFields: base.knownFields)
                _ = try DetectionEngine(ruleSet: set)
                loaded += 1
            } catch let error as RuleError {
                refused += 1
                if error.location.file.isEmpty || error.location.line < 1 || error.location.column < 1
                    || error.message.isEmpty
                {
                    Issue.record("seed \(seed) index \(index) (\(base.name)): a refusal without where: \(error)")
                }
            } catch {
                Issue.record("seed \(seed) index \(index) (\(base.name)): not a RuleError: \(error)")
            }
            let took = Date().timeIntervalSince(start)
            slowest = max(slowest, took)
            if took > 15 { Issue.record("seed \(seed) index \(index) (\(base.name)): took \(took) s") }
            if only != nil && index == only { break }
        }
        print(
            "rule loader fuzz: seed \(seed), \(index) mutants, \(loaded) loaded, \(refused) refused, slowest \(String(format: "%.2f", slowest)) s"
        )
        #expect(loaded + refused > 0)
    }
}
