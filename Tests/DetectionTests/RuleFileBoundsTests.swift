import Detection
import Foundation
import Sensor
import Testing

/// Rule files are hostile input: each bomb below is refused quickly, with file:line:column,
/// instead of crashing, hanging or exhausting memory; each silent acceptance that let a typo
/// disable a rule is refused.
@Suite struct RuleFileBoundsTests {
    static let file = "rules/hostile.yaml"

    /// The load's error, and how long it took.
    func refusal(
        _ text: String, _ more: [(path: String, text: String)] = [], knownFields: Set<String>? = FieldTable.names
    ) -> (error: RuleError?, seconds: Double) {
        let start = Date()
        do {
            _ = try RuleSet.load([(Self.file, text)] + more, knownFields: knownFields)
            return (nil, Date().timeIntervalSince(start))
        } catch let error as RuleError {
            return (error, Date().timeIntervalSince(start))
        } catch {
            Issue.record("not a RuleError: \(error)")
            return (nil, Date().timeIntervalSince(start))
        }
    }

    static func rule(_ condition: String, name: String = "R") -> String {
        "- rule: \(name)\n  desc: d\n  condition: \(condition)\n  output: o\n  priority: INFO\n"
    }

    @Test func macrosThatDoubleEachOtherAreRefusedAtTheirBound() {
        // m39 expands to 2^39 comparisons: 5.6 GB in 30 s before the bound.
        var text = "- macro: m0\n  condition: proc.name = a\n"
        for i in 1..<40 { text += "- macro: m\(i)\n  condition: m\(i - 1) or m\(i - 1)\n" }
        text += Self.rule("m39")
        let (error, seconds) = refusal(text)
        #expect(error?.message.contains("expands to more than 100000 nodes") == true, "\(String(describing: error))")
        #expect(error?.location.file == Self.file && (error?.location.line ?? 0) > 1)
        #expect(seconds < 5)
        // Unused, the bomb is refused too: the macro itself crosses the bound.
        var unused = "- macro: m0\n  condition: proc.name = a\n"
        for i in 1..<40 { unused += "- macro: m\(i)\n  condition: m\(i - 1) or m\(i - 1)\n" }
        #expect(refusal(unused).error?.message.contains("expands to more than") == true)
    }

    @Test func macroChainsAndCyclesAreBounded() {
        var chain = "- macro: m0\n  condition: proc.name = a\n"
        for i in 1...1_000 { chain += "- macro: m\(i)\n  condition: m\(i - 1)\n" }
        chain += Self.rule("m1000")
        let (error, seconds) = refusal(chain)
        #expect(error?.message.contains("macros name macros more than") == true, "\(String(describing: error))")
        #expect(seconds < 5)
        #expect(
            refusal("- macro: a\n  condition: b\n- macro: b\n  condition: c\n- macro: c\n  condition: a\n").error?
                .message.contains("refers to itself") == true)
    }

    @Test func deepYAMLIsRefusedBeforeTheParserRecurses() {
        // Yams recursed to a segfault on these (flow at 50,000, block at 5,000 levels).
        let flow = refusal(
            "- rule: x\n  tags: " + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + "\n"
        )
        #expect(flow.error?.message.contains("the YAML nests more than 64 levels deep") == true)
        #expect(flow.error?.location.line == 2)
        let compact = refusal("- " + String(repeating: "- ", count: 5_000) + "x\n")
        #expect(compact.error?.message.contains("nests more than") == true)
        let block = refusal((0..<3_000).map { String(repeating: " ", count: $0) + "a:\n" }.joined())
        #expect(block.error?.message.contains("nests more than") == true)
        #expect(block.error?.location.line ?? 0 < 100, "refused where the nesting crosses the bound")
        for seconds in [flow.seconds, compact.seconds, block.seconds] { #expect(seconds < 5) }
        // Text is not nesting: dashes, colons and brackets in a plain description.
        let text = Self.rule("proc.name = a").replacingOccurrences(
            of: "desc: d", with: "desc: " + String(repeating: "a - b [c x:y - ", count: 40))
        #expect(refusal(text).error == nil, "\(String(describing: refusal(text).error))")
    }

    @Test func deepConditionsAreRefusedWithWhere() {
        let parens = refusal(
            Self.rule(String(repeating: "(", count: 300) + "proc.name = a" + String(repeating: ")", count: 300)))
        #expect(parens.error?.message == "parentheses and 'not' nest more than 200 deep")
        #expect(parens.error?.location == SourceLocation(file: Self.file, line: 3, column: 14 + 200))
        let nots = refusal(Self.rule(String(repeating: "not ", count: 300) + "proc.name = a"))
        #expect(nots.error?.message == "parentheses and 'not' nest more than 200 deep")
        // At 50,000 (a segfault before), the length bound answers first.
        let huge = refusal(
            Self.rule(String(repeating: "(", count: 50_000) + "proc.name = a" + String(repeating: ")", count: 50_000)))
        #expect(huge.error?.message.contains("more than the 65536 a condition may have") == true)
        #expect(huge.error?.location.line == 3)
        // Up to the bound, it loads.
        #expect(
            refusal(
                Self.rule(String(repeating: "(not ", count: 100) + "proc.name = a" + String(repeating: ")", count: 100))
            ).error == nil)
    }

    @Test func longChainsLoadAndEvaluateWithoutDeepRecursion() throws {
        // 2,500 terms: a left-leaning tree 2,500 deep before, balanced (12 deep) now.
        let condition = (0..<2_500).map { "proc.name = p\($0)" }.joined(separator: " or ")
        let harness = try EngineHarness(rules: Self.rule("evt.type = openat and (\(condition))"))
        let hit = EventFixture(
            "openat", pid: 30, comm: "p2499", ret: 3, args: ["dirfd": -100, "pathname": "/x", "flags": 0])
        #expect(harness.run([hit]).count == 1)
    }

    @Test func hugeFilesAndConditionsAreRefused() throws {
        let big = refusal(Self.rule("proc.name = " + String(repeating: "a", count: 9 * 1024 * 1024)))
        #expect(big.error?.message.contains("more than the 8388608 a rule file may have") == true)
        #expect(big.seconds < 5)
        // On disk: refused from its size, before it is read; a FIFO is refused, not waited on.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rule-bounds-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("big.yaml").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, 64 * 1024 * 1024) == 0)
        #expect(throws: RuleError.self) { try RuleFiles.load(includeBuiltin: false, paths: [path]) }
        let fifo = directory.appendingPathComponent("fifo.yaml").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let start = Date()
        do {
            _ = try RuleFiles.load(includeBuiltin: false, paths: [fifo])
            Issue.record("a FIFO loaded")
        } catch let error as RuleError {
            #expect(error.message == "not a regular file")
        }
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test func listExpansionIsBounded() {
        let items = (0..<1_000).map { "i\($0)" }.joined(separator: ", ")
        let lists =
            "- list: a\n  items: [\(items)]\n- list: b\n  items: [\(Array(repeating: "a", count: 1_000).joined(separator: ", "))]\n"
        let (error, seconds) = refusal(lists)
        #expect(error?.message == "list 'b' expands to more than 100000 items")
        #expect(error?.location.line == 3)
        #expect(seconds < 5)
        // The same list named many times in one condition counts every time.
        let inCondition =
            "- list: a\n  items: [\(items)]\n"
            + Self.rule("proc.name in (\(Array(repeating: "a", count: 200).joined(separator: ", ")))")
        #expect(refusal(inCondition).error?.message.contains("expands to more than 100000 nodes") == true)
    }

    /// YAML aliases repeat a long item for a few bytes each: the bytes lists bring are bounded
    /// (before, 100,000 aliases of a 1 MB item passed every count and hashed 100 GB).
    @Test func aliasedAndLongListItemsAreBoundedByBytes() {
        let long = String(repeating: "x", count: 1024 * 1024)
        let aliased =
            "- list: l\n  items: [&a \(long), " + Array(repeating: "*a", count: 50).joined(separator: ", ") + "]\n"
        let (error, seconds) = refusal(aliased)
        #expect(error?.message == "list 'l' expands to more than 16777216 bytes")
        #expect(seconds < 5)
        // Under the list bound, named many times in one condition.
        let named =
            "- list: l\n  items: [\(long)]\n"
            + Self.rule("proc.name in (" + Array(repeating: "l", count: 40).joined(separator: ", ") + ")")
        let (namedError, namedSeconds) = refusal(named)
        #expect(namedError?.message == "the lists this condition names bring more than 16777216 bytes of values")
        #expect(namedError?.location.line == 5)
        #expect(namedSeconds < 5)
        // Through a macro, too.
        let macro =
            "- list: l\n  items: [\(long)]\n- macro: m\n  condition: proc.name in (l)\n"
            + Self.rule(Array(repeating: "m", count: 40).joined(separator: " or "))
        #expect(
            refusal(macro).error?.message == "the lists this condition names bring more than 16777216 bytes of values")
    }

    /// The regex engine backtracks and the text is the attacker's: patterns that can take
    /// exponential time are refused when the rules load (with the rule's file:line:column).
    @Test func backtrackingRegexesAreRefused() throws {
        for pattern in [
            "(a+)+$", "(\\\\w+\\\\s?)*x", "^(.*a){2,}", "(x|xy)\\\\1", "(?:(a|b)*c)+",
            String(repeating: ".*a", count: 5),
        ] {
            let set = try RuleSet.load([(Self.file, Self.rule("proc.args regex \"\(pattern)\""))])
            do {
                _ = try DetectionEngine(ruleSet: set)
                Issue.record("\(pattern) was accepted")
            } catch let error as RuleError {
                #expect(error.location == SourceLocation(file: Self.file, line: 1, column: 3), "\(pattern)")
                #expect(error.message.contains("time on text a process chooses"), "\(pattern): \(error.message)")
            }
        }
        for pattern in ["^-[A-Za-z]*[rR]", "(ab)+c", "(.*)", "a{2,5}b", "[(+)]+", "x{3}(y)+", "\\\\(a+\\\\)+"] {
            let set = try RuleSet.load([(Self.file, Self.rule("proc.args regex \"\(pattern)\""))])
            #expect(throws: Never.self, "\(pattern)") { _ = try DetectionEngine(ruleSet: set) }
        }
    }

    @Test func exceptionsAreBoundedAndBalanced() {
        let values = (0..<60_000).map { "      - [v\($0)]\n" }.joined()
        let text =
            Self.rule("proc.name = a") + "  exceptions:\n    - name: e\n      fields: [proc.pname]\n      values:\n"
            + values
        let (error, seconds) = refusal(text)
        #expect(
            error?.message.contains("with its exceptions expands to more than 100000 nodes") == true,
            "\(String(describing: error))")
        #expect(seconds < 10)
    }

    @Test func aRuleDefinedTwiceIsRefusedUnlessItSaysOverride() {
        let twice = refusal(Self.rule("proc.name = a") + Self.rule("proc.name = b"))
        #expect(
            twice.error?.message
                == "rule 'R' is already defined at \(Self.file):1:3; say 'override:' (or 'append: true') to change it")
        #expect(twice.error?.location == SourceLocation(file: Self.file, line: 6, column: 3))
        // In a later file too.
        let later = refusal(Self.rule("proc.name = a"), [("rules/local.yaml", Self.rule("proc.name = b"))])
        #expect(later.error?.location.file == "rules/local.yaml")
        // What Falco offers to change a rule still works.
        #expect(refusal(Self.rule("proc.name = a") + "- rule: R\n  enabled: false\n").error == nil)
        #expect(
            refusal(Self.rule("proc.name = a") + "- rule: R\n  condition: and proc.pname = b\n  append: true\n").error
                == nil)
        #expect(
            refusal(Self.rule("proc.name = a") + "- rule: R\n  output: p\n  override:\n    output: replace\n").error
                == nil)
    }

    @Test func repeatedKeysAndDefinitionsAreRefused() {
        let key = refusal(
            "- rule: R\n  desc: d\n  condition: proc.name = a\n  condition: proc.name = b\n  output: o\n  priority: INFO\n"
        )
        #expect(key.error?.message == "key 'condition' appears twice in one item")
        #expect(key.error?.location == SourceLocation(file: Self.file, line: 4, column: 3))
        let inException = refusal(
            Self.rule("proc.name = a")
                + "  exceptions:\n    - name: e\n      fields: [proc.pname]\n      fields: [proc.name]\n      values: [[x]]\n"
        )
        #expect(inException.error?.message == "key 'fields' appears twice in one item")
        let macro = refusal("- macro: m\n  condition: proc.name = a\n- macro: m\n  condition: proc.name = b\n")
        #expect(macro.error?.message.contains("macro 'm' is already defined at \(Self.file):1:3 in this file") == true)
        #expect(macro.error?.location.line == 3)
        let list = refusal("- list: l\n  items: [a]\n- list: l\n  items: [b]\n")
        #expect(list.error?.message.contains("list 'l' is already defined") == true)
        // A later file may redefine a macro or list (Falco's way to customise them).
        let redefined = refusal(
            "- macro: m\n  condition: proc.name = a\n",
            [("rules/local.yaml", "- macro: m\n  condition: proc.name = b\n")])
        #expect(redefined.error == nil)
    }

    /// An undefined name like a list's, alone in `in (...)`, loads (as in Falco, as a value)
    /// with a warning at its file:line:column; among other values it is a value.
    @Test func anUndefinedListIsAWarningWithWhere() throws {
        let set = try RuleSet.load([
            (Self.file, "- list: shell_binaries\n  items: [bash]\n" + Self.rule("proc.name in (shell_binarys)"))
        ])
        let warning = try #require(set.warnings.first)
        #expect(
            warning.message
                == "'shell_binarys' is not a defined list, so it is compared as a value (quote it, \"shell_binarys\", if that is meant)"
        )
        #expect(warning.location == SourceLocation(file: Self.file, line: 5, column: 28))
        #expect(
            try RuleSet.load([(Self.file, Self.rule("proc.name in (no_such_list)"))]).warnings.first?.location.column
                == 28)
        for quiet in [
            "proc.name in (\"my_tool\")", "evt.type in (init_module)", "proc.name = my_tool",
            "proc.name in (start_runit, cp)",
        ] {
            #expect(try RuleSet.load([(Self.file, Self.rule(quiet))]).warnings.isEmpty, "\(quiet)")
        }
        // An undefined macro is refused, with where.
        #expect(
            refusal(Self.rule("proc.name = a and shell_procz")).error?.location
                == SourceLocation(file: Self.file, line: 3, column: 32))
    }

    /// A condition over several lines (`>` folds them into one, `|` keeps them, a plain
    /// scalar folds them too) is placed character by character: errors name the line and
    /// column in the file, not an offset into the folded text.
    @Test func errorsInMultiLineConditionsSayTheirLineAndColumn() {
        for indicator in [">", "|", ""] {
            let text = """
                - rule: R
                  desc: d
                  condition: \(indicator)
                    evt.type = openat
                    and proc.name in (bash, sh)
                    and (proc.nme = x)
                  output: o
                  priority: INFO
                """
            let error = refusal(text).error
            #expect(error?.message == "unknown field 'proc.nme'", "\(indicator)")
            #expect(
                error?.location == SourceLocation(file: Self.file, line: 6, column: 10),
                "\(indicator): \(String(describing: error))")
        }
        // An appended condition's error is placed in the file that appended it.
        let appended = refusal(
            Self.rule("proc.name = a"),
            [("rules/local.yaml", "- rule: R\n  condition: and (proc.pname = \n  append: true\n")])
        #expect(appended.error?.location.file == "rules/local.yaml")
        #expect(appended.error?.location.line == 2)
    }

    /// Profiles are YAML too (`detect --profile`): the same bounds before Yams sees them.
    @Test func deepProfilesAreRefusedNotCrashed() {
        #expect(throws: ProfileError.self) {
            try ContainerProfile(
                yaml: "executables: " + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000))
        }
        #expect(throws: ProfileError.self) {
            try ContainerProfile(yaml: (0..<3_000).map { String(repeating: " ", count: $0) + "a:\n" }.joined())
        }
    }

    static let falcoDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/falco").standardizedFileURL.path

    /// Falco's own rule files load as before (structure only: many of their fields are not
    /// Caduceus's), with every new check in force.
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: RuleFileBoundsTests.falcoDirectory + "/falco_rules.yaml")
                || ProcessInfo.processInfo.environment["CI"] != nil))
    func falcosOwnRuleFilesStillLoad() throws {
        let names = ["falco_rules.yaml", "falco-incubating_rules.yaml"]
        let files = try names.map { name -> (path: String, text: String) in
            let path = Self.falcoDirectory + "/" + name
            return (path, try String(contentsOfFile: path, encoding: .utf8))
        }
        let start = Date()
        let set = try RuleSet.load(files, knownFields: nil)
        #expect(set.rules.count >= 56)
        let asValues = set.warnings.filter { $0.message.contains("compared as a value") }
        #expect(asValues.map(\.location.description) == [Self.falcoDirectory + "/falco_rules.yaml:588:28"])
        #expect(
            asValues.map(\.message) == [
                "'unicorn_launche' is not a defined list, so it is compared as a value (quote it, \"unicorn_launche\", if that is meant)"
            ])
        // The incubating file changes two of the stable file's lists, under its rules: said, with where.
        let redefined = set.warnings.filter { $0.message.contains("is redefined here") }
        #expect(
            redefined.map(\.location.description)
                == ["160:3", "545:3"].map { Self.falcoDirectory + "/falco-incubating_rules.yaml:" + $0 })
        #expect(redefined.first?.message.hasPrefix("list 'python_package_managers' (defined at ") == true)
        #expect(Date().timeIntervalSince(start) < 20)
        // The sandbox file loads too, now that Caduceus has Falco's byte operators
        // (FalcoRuleFilesTests loads all three with their fields checked).
        let sandbox = Self.falcoDirectory + "/falco-sandbox_rules.yaml"
        let all = try RuleSet.load(
            files + [(sandbox, try String(contentsOfFile: sandbox, encoding: .utf8))], knownFields: nil)
        #expect(all.rules.count == set.rules.count + 37)
    }
}
