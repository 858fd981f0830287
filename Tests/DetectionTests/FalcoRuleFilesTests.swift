import Detection
import Foundation
import Sensor
import Testing

/// Falco's own rule files (falcosecurity/rules: stable, incubating, sandbox, kept unmodified
/// in `../shared/falco`) load as they are; what does not fit Falco's types or requirements is
/// refused at its file:line:column; exceptions, override and append work as in Falco.
@Suite struct FalcoRuleFilesTests {
    /// `../shared/falco` beside the repository (CADUCEUS_SHARED_FALCO overrides).
    static var sharedFalcoDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["CADUCEUS_SHARED_FALCO"] { return URL(fileURLWithPath: path) }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent("shared/falco")
    }

    static func load(_ name: String) throws -> (text: String, set: RuleSet) {
        let path = sharedFalcoDirectory.appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return (text, try RuleSet.load([(path, text)]))
    }

    /// Each file loads unmodified; its rule count (and which are enabled) is the file's own,
    /// counted from its text, and every rule compiles for the engine.
    @Test(arguments: [
        ("falco_rules.yaml", 25, 25), ("falco-incubating_rules.yaml", 31, 31), ("falco-sandbox_rules.yaml", 37, 25),
    ])
    func loadsUnmodified(file: String, rules: Int, enabled: Int) throws {
        let (text, set) = try Self.load(file)
        let declared = text.split(separator: "\n").filter { $0.hasPrefix("- rule:") }.count
        #expect(declared == rules, "the file as shipped declares \(rules) rules")
        #expect(set.rules.count == rules)
        #expect(set.rules.filter(\.enabled).count == enabled)
        #expect(set.macros.count > 80 && set.lists.count > 40)
        let engine = try DetectionEngine(ruleSet: set)
        #expect(engine.rules.count == enabled)
        #expect(set.warnings.allSatisfy { $0.message.contains("compared as a value") })
    }

    /// All three together, in Falco's order (each later file may redefine macros and lists).
    @Test func loadTogether() throws {
        var files: [(path: String, text: String)] = []
        for name in ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"] {
            let path = Self.sharedFalcoDirectory.appendingPathComponent(name).path
            files.append((path, try String(contentsOfFile: path, encoding: .utf8)))
        }
        let set = try RuleSet.load(files)
        #expect(set.rules.count == 25 + 31 + 37)
        #expect(
            set.warnings.filter { $0.message.contains("is redefined here") }.count == 3,
            "two lists of the stable file, one macro of the incubating file")
        #expect(try DetectionEngine(ruleSet: set).rules.count == 25 + 31 + 25)
    }

    /// Beside the built-in rules (as `caduceus rules check --rules falco_rules.yaml` loads
    /// it): a Falco rule named like a built-in one (which has its own id) is another rule, and
    /// each macro or list the file changes under the built-in rules is a warning at its line.
    @Test func loadsBesideTheBuiltInRules() throws {
        let builtin = try RuleFiles.builtin()
        let path = Self.sharedFalcoDirectory.appendingPathComponent("falco_rules.yaml").path
        let set = try RuleSet.load(
            builtin + [(path, try String(contentsOfFile: path, encoding: .utf8))], keeping: Set(builtin.map(\.path)))
        let alone = try RuleSet.load(builtin)
        #expect(set.rules.count == alone.rules.count + 25)
        let shells = set.rules.filter { $0.name == "Terminal shell in container" }
        #expect(shells.map(\.id).sorted() == ["CAD-005", "Terminal shell in container"])
        let changed = set.warnings.filter { $0.message.contains("is redefined here") }
        #expect(
            changed.contains {
                $0.message.hasPrefix("macro 'spawned_process'") && $0.location.file == path
                    && $0.message.contains("the built-in rules keep theirs")
            })
        // The built-in rules are built with their own spawned_process, open_read, shell_procs...
        for rule in alone.rules {
            #expect(
                set.rules.first { $0.id == rule.id }?.condition == rule.condition,
                "\(rule.id) keeps the condition it was written with")
        }
        // `detect --rules falco_rules.yaml` loads through RuleFiles, which protects the built-in files.
        let viaFiles = try RuleFiles.load(paths: [path])
        for rule in alone.rules {
            #expect(
                viaFiles.rules.first { $0.id == rule.id }?.condition == rule.condition,
                "\(rule.id) keeps its condition under detect --rules")
        }
        // ... and Falco's rules with Falco's.
        let falcoShell = shells.first { $0.id != "CAD-005" }!.condition
        #expect(
            falcoShell
                == (try RuleSet.load([(path, try String(contentsOfFile: path, encoding: .utf8))])).rules.first {
                    $0.name == "Terminal shell in container"
                }!.condition)
        #expect(
            ruleLoadError(
                builtin + [
                    (path, try String(contentsOfFile: path, encoding: .utf8)),
                    ("again.yaml", Self.base.replacingOccurrences(of: "Shell", with: "Terminal shell in container")),
                ])?
                .message.contains("already defined") == true,
            "without an id of its own, a second definition is still refused")
    }

    /// A plain redefinition in a user file leaves the protected files' rules alone; `override:`
    /// changes the definition for them too.
    @Test func protectedFilesKeepTheirDefinitionsUnlessOverridden() throws {
        let base =
            "- macro: in_box\n  condition: container.id != host\n- rule: Base\n  desc: x\n  condition: evt.type = open and in_box\n  output: x\n  priority: ERROR\n"
        let plain =
            "- macro: in_box\n  condition: container.name = web\n- rule: Mine\n  desc: x\n  condition: evt.type = open and in_box\n  output: x\n  priority: ERROR\n"
        let overridden = "- macro: in_box\n  condition: container.name = web\n  override:\n    condition: replace\n"
        let kept = try RuleSet.load(
            [("builtin/base.yaml", base), ("mine.yaml", plain)], keeping: ["builtin/base.yaml"])
        let baseAlone = try RuleSet.load([("builtin/base.yaml", base)]).rules[0].condition
        #expect(kept.rules.first { $0.name == "Base" }?.condition == baseAlone)
        #expect(kept.rules.first { $0.name == "Mine" }?.condition != baseAlone, "the user's rule uses the user's macro")
        let unprotected = try RuleSet.load([("builtin/base.yaml", base), ("mine.yaml", plain)])
        #expect(
            unprotected.rules.first { $0.name == "Base" }?.condition != baseAlone,
            "without protection, Falco's semantics: the later definition is everyone's")
        let changed = try RuleSet.load(
            [("builtin/base.yaml", base), ("mine.yaml", overridden)], keeping: ["builtin/base.yaml"])
        #expect(changed.rules[0].condition != baseAlone, "override: changes it for the protected rules too")
    }

    func loadError(_ text: String) -> RuleError? { ruleLoadError([("rules/bad.yaml", text)]) }

    func rule(_ condition: String) -> String {
        "- rule: R\n  desc: x\n  condition: \(condition)\n  output: x\n  priority: ERROR\n"
    }

    /// Operators and values that do not fit a field's Falco type are refused where the
    /// operator stands, as Falco refuses them.
    @Test func operatorsThatDoNotFitTheTypeAreRefused() {
        let contains = loadError(rule("evt.type = open and proc.pid contains 1"))
        #expect(contains?.message == "operator 'contains' does not apply to proc.pid, a INT64 field")
        #expect(contains?.location.line == 3 && contains?.location.column == 43)
        let net = loadError(rule("evt.type = connect and fd.net = abc"))
        #expect(net?.message.contains("'abc' is not an IP network") == true)
        #expect(net?.location.line == 3 && net?.location.column == 44)
        #expect(
            loadError(rule("evt.type = connect and fd.snet in (10.0.0.0/33)"))?.message.contains("not an IP network")
                == true)
        #expect(
            loadError(rule("evt.type = open and evt.num = first"))?.message.contains(
                "'first' is not an unsigned number") == true)
        #expect(
            loadError(rule("evt.type = open and container.privileged startswith t"))?.message.contains("BOOL") == true)
        #expect(
            loadError(rule("evt.type = open and container.privileged = yes"))?.message.contains("not true or false")
                == true)
        #expect(loadError(rule("evt.type = open and fd.ip glob 10.*"))?.message.contains("IPADDR") == true)
        #expect(loadError(rule("evt.type = open and fd.sport = 70000"))?.message.contains("not a port number") == true)
        #expect(
            loadError(rule("evt.type = read and evt.buffer bcontains cafebab"))?.message.contains("hex digits") == true)
        #expect(loadError(rule("evt.type = open and proc.name bcontains 00"))?.message.contains("CHARBUF") == true)
        #expect(loadError(rule("evt.type = open and proc.duration icontains 5"))?.message.contains("RELTIME") == true)
        // What does fit loads: ordering numbers, CIDR membership, byte operators on buffers, exists on anything.
        #expect(
            loadError(
                rule(
                    "evt.type = connect and proc.pid > 1 and fd.snet in (10.0.0.0/8, \"::1/128\") and fd.port in (80, 443)"
                )) == nil)
        #expect(
            loadError(
                rule("evt.type = read and evt.buffer bcontains cafebabe and proc.pid exists and proc.name iglob BASH*"))
                == nil)
        // Exceptions are held to the same types.
        let exception = loadError(
            """
            - rule: R
              desc: x
              condition: evt.type = open
              output: x
              priority: ERROR
              exceptions:
                - name: pids
                  fields: [proc.pid]
                  comps: [startswith]
                  values: [[1]]
            """)
        #expect(exception?.message.contains("'startswith' does not apply to proc.pid") == true)
        #expect(exception?.location.line == 7)
    }

    @Test func requiredEngineVersionAndPlugins() {
        let newer = loadError("- required_engine_version: 0.99.0\n")
        #expect(newer?.message.contains("requires Falco engine version 0.99.0; Caduceus implements 0.57.0") == true)
        #expect(newer?.location.line == 1 && newer?.location.column == 28)
        #expect(
            loadError("- required_engine_version: 99\n")?.message.contains("0.99.0") == true,
            "the integer form is 0.N.0")
        #expect(loadError("- required_engine_version: 0.57.0\n") == nil)
        #expect(loadError("- required_engine_version: 26\n") == nil)
        #expect(loadError("- required_engine_version: soon\n")?.message.contains("not a version") == true)
        #expect(loadError("- required_plugin_versions:\n    - name: container\n      version: 0.4.0\n") == nil)
        let k8s = loadError("- required_plugin_versions:\n    - name: k8saudit\n      version: 0.1.0\n")
        #expect(k8s?.message.contains("requires plugin 'k8saudit', which Caduceus does not load") == true)
        #expect(k8s?.location.line == 2)
        #expect(
            loadError(
                "- required_plugin_versions:\n    - name: cloudtrail\n      alternatives:\n        - name: container\n")
                == nil)
    }

    static let base = """
        - rule: Shell
          desc: a shell
          condition: evt.type = execve and proc.name in (bash, sh)
          output: shell %proc.name
          priority: WARNING
          tags: [shell]
          exceptions:
            - name: parents
              fields: [proc.pname]
              values: [[sshd]]
        """

    func fires(_ files: [(String, String)], comm: String, parent: String) throws -> [Alert] {
        let set = try RuleSet.load(files)
        let harness = try EngineHarness(ruleSet: set, processes: [ProcessRecord(pid: 50, ppid: 1, name: parent)])
        return harness.run([
            EventFixture(
                "sched_process_exec", pid: 60, ppid: 50, comm: comm, args: ["pathname": "/bin/\(comm)", "argv": [comm]])
        ])
    }

    /// Falco's override semantics: append adds to a key (exception values by name), replace
    /// swaps it, and a key given without being named in override is refused.
    @Test func overrideAndAppendWorkAsInFalco() throws {
        let appendValues = """
            - rule: Shell
              exceptions:
                - name: parents
                  values: [[cron]]
              override:
                exceptions: append
            """
        let files = [("base.yaml", Self.base), ("local.yaml", appendValues)]
        #expect(try fires(files, comm: "bash", parent: "cron").isEmpty, "the appended value joins the named exception")
        #expect(try fires(files, comm: "bash", parent: "sshd").isEmpty, "the original value still excuses")
        #expect(try fires(files, comm: "bash", parent: "java").count == 1)

        let replace = """
            - rule: Shell
              condition: evt.type = execve and proc.name = zsh
              priority: CRITICAL
              override:
                condition: replace
                priority: replace
            """
        let replaced = try fires([("base.yaml", Self.base), ("local.yaml", replace)], comm: "zsh", parent: "java")
        #expect(replaced.first?.priority == "critical")
        #expect(try fires([("base.yaml", Self.base), ("local.yaml", replace)], comm: "bash", parent: "java").isEmpty)

        let appendCondition = "- rule: Shell\n  condition: and proc.pname != make\n  override:\n    condition: append\n"
        #expect(
            try fires([("base.yaml", Self.base), ("local.yaml", appendCondition)], comm: "bash", parent: "make").isEmpty
        )
        #expect(
            try fires([("base.yaml", Self.base), ("local.yaml", appendCondition)], comm: "bash", parent: "java").count
                == 1)

        let disabled = try RuleSet.load([("base.yaml", Self.base), ("local.yaml", "- rule: Shell\n  enabled: false\n")])
        #expect(disabled.rules.first?.enabled == false)
        let tags = try RuleSet.load([
            ("base.yaml", Self.base), ("local.yaml", "- rule: Shell\n  tags: [T1059]\n  override:\n    tags: append\n"),
        ])
        #expect(tags.rules.first?.tags == ["shell", "T1059"])
        #expect(tags.rules.first?.mitre == ["T1059"])

        let unnamed = loadErrorOf([
            ("base.yaml", Self.base),
            ("local.yaml", "- rule: Shell\n  output: other\n  condition: and x\n  override:\n    condition: append\n"),
        ])
        #expect(unnamed?.message == "'output' is given but not named in override")
        let priorityAppend = loadErrorOf([
            ("base.yaml", Self.base),
            ("local.yaml", "- rule: Shell\n  priority: ERROR\n  override:\n    priority: append\n"),
        ])
        #expect(priorityAppend?.message.contains("cannot be overridden with append") == true)
        let newException = loadErrorOf([
            ("base.yaml", Self.base),
            (
                "local.yaml",
                "- rule: Shell\n  exceptions:\n    - name: other\n      values: [[x]]\n  override:\n    exceptions: append\n"
            ),
        ])
        #expect(newException?.message.contains("gives no fields") == true)
        // A macro replaced in the same file, as Falco allows.
        let macro =
            "- macro: m\n  condition: proc.name = a\n- macro: m\n  condition: proc.name = b\n  override:\n    condition: replace\n"
        #expect(try RuleSet.load([("m.yaml", macro)]).macros["m"] != nil)
    }

    func loadErrorOf(_ files: [(String, String)]) -> RuleError? { ruleLoadError(files) }
}

extension FalcoRuleFilesTests {
    /// The stable file's network rules on sensor-shaped events: an outbound TCP connect to a
    /// non-standard SSH port by a program named ssh (Falco's `outbound` macro: fd.ip, fd.net,
    /// fd.snet against the RFC 1918 list, evt.rawres).
    @Test func stableOutboundSSHRuleFires() throws {
        let set = try Self.load("falco_rules.yaml").set
        func alerts(to address: String) throws -> [String] {
            let harness = try EngineHarness(ruleSet: set, processes: [ProcessRecord(pid: 50, ppid: 1, name: "sh")])
            return harness.run([
                EventFixture(
                    "sched_process_exec", pid: 60, ppid: 50, comm: "ssh",
                    args: ["pathname": "/tmp/ssh", "argv": ["/tmp/ssh", "x"]]),
                EventFixture(
                    "socket", pid: 60, ppid: 50, comm: "ssh", ret: 3,
                    args: ["domain": 2, "type": 0o2000001, "protocol": 0]),
                EventFixture("connect", pid: 60, ppid: 50, comm: "ssh", args: ["sockfd": 3, "addr": address]),
            ]).map(\.rule)
        }
        #expect(try alerts(to: "192.0.2.2:4444").contains("Disallowed SSH Connection Non Standard Port"))
        #expect(
            try !alerts(to: "10.0.0.2:4444").contains("Disallowed SSH Connection Non Standard Port"),
            "RFC 1918 is not outbound")
        #expect(try !alerts(to: "192.0.2.2:22").contains("Disallowed SSH Connection Non Standard Port"))
    }
}
