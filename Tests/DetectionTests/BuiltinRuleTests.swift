import Detection
import Foundation
import Testing
import Yams

/// One `rules/*.test.yaml`: the rule it tests, its fixture processes and its cases.
struct RuleTestFile {
    struct Case {
        let name: String
        let events: [EventFixture]
    }

    /// The live reproduction: a shell command run in a fresh testbox container.
    struct Live {
        let fires: String
        let quiet: String?
        let dockerArguments: [String]
        let listener: Bool
    }

    let path: String
    let ruleId: String
    let processes: [ProcessRecord]
    let fires: [Case]
    let quiet: [Case]
    let live: Live?

    static let rulesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("rules").path

    static func all() throws -> [RuleTestFile] {
        try FileManager.default.contentsOfDirectory(atPath: rulesDirectory).filter { $0.hasSuffix(".test.yaml") }
            .sorted()
            .map { try RuleTestFile(path: rulesDirectory + "/" + $0) }
    }

    init(path: String) throws {
        self.path = path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let root = try Yams.compose(yaml: text)?.mapping, let id = root["rule"]?.string else {
            throw FixtureError("\(path): a rule test is a mapping with `rule: ID`")
        }
        ruleId = id
        processes = (root["processes"]?.sequence ?? []).compactMap { node in
            guard let m = node.mapping, let pid = m["pid"]?.int else { return nil }
            let container = m["container"].map { $0.string ?? "" } ?? EventFixture.containerID
            let argv = m["args"]?.sequence?.compactMap(\.string) ?? []
            return ProcessRecord(
                pid: UInt32(pid), ppid: UInt32(m["ppid"]?.int ?? 1), name: m["comm"]?.string ?? "sh",
                exePath: m["exe"]?.string ?? "", argv: argv, tty: Int64(m["tty"]?.int ?? 0),
                uid: UInt32(m["uid"]?.int ?? 0),
                containerID: container)
        }
        func cases(_ key: String) throws -> [Case] {
            try (root[key]?.sequence ?? []).enumerated().map { index, node in
                Case(
                    name: node["name"]?.string ?? "\(key) #\(index + 1)",
                    events: try (node["events"]?.sequence ?? []).map { try EventFixture(yaml: $0) })
            }
        }
        fires = try cases("fires")
        quiet = try cases("quiet")
        live = root["live"].flatMap { node in
            guard let fires = node["fires"]?.string else { return nil }
            return Live(
                fires: fires, quiet: node["quiet"]?.string,
                dockerArguments: node["docker"]?.sequence?.compactMap(\.string) ?? [],
                listener: node["listener"]?.bool ?? false)
        }
    }
}

/// Every built-in rule against its own test file: each `fires` case raises the rule, each
/// `quiet` case does not, and every rule has both.
@Suite struct BuiltinRuleTests {
    /// The repository's rules, loaded once; a load error fails each test that needs them.
    static let loaded = Result {
        try RuleSet.load(RuleFiles.collect(includeBuiltin: false, paths: [RuleTestFile.rulesDirectory]))
    }
    static func ruleSet() throws -> RuleSet { try loaded.get() }

    @Test func everyRuleHasAStableIdTechniqueAndTestFile() throws {
        let tests = try RuleTestFile.all()
        let tested = Set(tests.map(\.ruleId))
        var seen: Set<String> = []
        for rule in try Self.ruleSet().rules {
            #expect(rule.id.hasPrefix("CAD-"), "\(rule.name) has a stable id")
            #expect(seen.insert(rule.id).inserted, "\(rule.id) is unique")
            #expect(!rule.mitre.isEmpty, "\(rule.id) names a MITRE ATT&CK technique")
            #expect(tested.contains(rule.id), "\(rule.id) has a test file")
        }
        for test in tests {
            #expect(!test.fires.isEmpty && !test.quiet.isEmpty, "\(test.path) has a firing and a quiet case")
            #expect(test.live != nil, "\(test.path) has a live reproduction")
        }
        #expect(try Self.ruleSet().rules.count >= 30)
    }

    @Test(arguments: try! RuleTestFile.all())
    func ruleFiresOnlyWhereItShould(_ test: RuleTestFile) throws {
        for testCase in test.fires {
            let ids = try EngineHarness(ruleSet: try Self.ruleSet(), processes: test.processes.map(Self.copy)).run(
                testCase.events
            ).map(\.ruleId)
            #expect(ids.contains(test.ruleId), "\(test.ruleId) fires: \(testCase.name) (alerts: \(ids))")
        }
        for testCase in test.quiet {
            let ids = try EngineHarness(ruleSet: try Self.ruleSet(), processes: test.processes.map(Self.copy)).run(
                testCase.events
            ).map(\.ruleId)
            #expect(!ids.contains(test.ruleId), "\(test.ruleId) stays quiet: \(testCase.name)")
        }
    }

    static func copy(_ p: ProcessRecord) -> ProcessRecord {
        ProcessRecord(
            pid: p.pid, ppid: p.ppid, name: p.name, exePath: p.exePath, argv: p.argv, tty: p.tty, uid: p.uid,
            containerID: p.containerID)
    }
}

extension RuleTestFile: CustomTestStringConvertible {
    var testDescription: String { ruleId }
}
