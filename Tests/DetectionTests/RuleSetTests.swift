import Detection
import Sensor
import Testing

@Suite struct RuleSetTests {
    static let base = """
        - required_engine_version: 10
        - list: shell_binaries
          items: [bash, sh]
        - list: all_shells
          items: [shell_binaries, zsh]
        - macro: spawned_process
          condition: evt.type in (execve, execveat)
        - macro: shell_procs
          condition: spawned_process and proc.name in (all_shells)
        - rule: Terminal shell in container
          desc: A shell was started inside a container.
          condition: shell_procs and container.id != host
          output: "Shell in container (user=%user.name container=%container.name cmd=%proc.cmdline)"
          priority: NOTICE
          tags: [container, shell, mitre_execution, T1059]
          exceptions:
            - name: known_admin
              fields: [proc.pname, container.name]
              comps: [=, startswith]
              values:
                - [sshd, admin-]
        """

    static let local = """
        - list: shell_binaries
          items: [ash]
          append: true
        - rule: Terminal shell in container
          enabled: false
        """

    @Test func loadsListsMacrosRulesAndExceptions() throws {
        let set = try RuleSet.load([("rules/base.yaml", Self.base), ("rules/local.yaml", Self.local)])
        #expect(set.lists["all_shells"] == ["bash", "sh", "ash", "zsh"])
        let rule = try #require(set.rules.first)
        #expect(rule.name == "Terminal shell in container")
        #expect(rule.priority == .notice)
        #expect(rule.tags.contains("T1059"))
        #expect(!rule.enabled, "a later file can disable a rule")
        #expect(rule.location == SourceLocation(file: "rules/base.yaml", line: 10, column: 3))
        #expect(rule.output.text.contains("%container.name"))
        #expect(rule.mitre == ["T1059"], "techniques come from the tags too")
    }

    /// A Falco-style file (lists in lists, macros on macros, an exception, an appended list
    /// and an appended rule condition) decides which events match.
    @Test func falcoStyleFileMatchesTheRightEvents() throws {
        let local = """
            - list: shell_binaries
              items: [ash]
              append: true
            - rule: Terminal shell in container
              condition: and not proc.pname = healthcheck
              append: true
            """
        let set = try RuleSet.load([("rules/base.yaml", Self.base), ("rules/local.yaml", local)])
        func fires(_ comm: String, parent: String, container: String = "fhir", id: String? = EventFixture.containerID)
            throws -> Bool
        {
            let parentRecord = ProcessRecord(pid: 50, ppid: 1, name: parent, containerID: id ?? "")
            var exec = EventFixture(
                "sched_process_exec", pid: 60, ppid: 50, comm: comm, container: id,
                args: ["pathname": "/bin/\(comm)", "argv": [comm]])
            exec.image = "fhir:1"
            var event = exec.event()
            if let id { event.container = ContainerInfo(id: id, name: container, image: "fhir:1") }
            let engine = try DetectionEngine(ruleSet: set)
            engine.state.insert(parentRecord)
            var alerts: [Alert] = []
            engine.process(event) { alerts.append($0) }
            return !alerts.isEmpty
        }
        #expect(try fires("ash", parent: "java"), "ash came in through the appended list")
        #expect(try fires("bash", parent: "java"))
        #expect(try !fires("python3", parent: "java"))
        #expect(try !fires("bash", parent: "sshd", container: "admin-box"), "the exception excuses it")
        #expect(try fires("bash", parent: "sshd", container: "fhir"), "only the whole exception tuple excuses")
        #expect(try !fires("bash", parent: "healthcheck"), "the appended condition narrows the rule")
        #expect(try !fires("bash", parent: "java", id: nil), "not in a container")
    }

    func loadError(_ text: String) -> RuleError? { ruleLoadError([("rules/bad.yaml", text)]) }

    @Test func badFilesAreRefusedWithFileLineAndColumn() {
        let syntax = loadError(
            """
            - rule: Broken
              desc: x
              condition: evt.type = open and (proc.name = bash
              output: x
              priority: WARNING
            """)
        #expect(syntax?.location.file == "rules/bad.yaml")
        #expect(syntax?.location.line == 3)
        #expect(syntax?.message.contains("expected ')'") == true)

        let macro = loadError("- rule: R\n  desc: x\n  condition: no_such_macro\n  output: x\n  priority: ERROR\n")
        #expect(macro?.message.contains("'no_such_macro' is neither a field nor a known macro") == true)
        #expect(macro?.location.line == 3 && macro?.location.column == 14)

        #expect(
            loadError("- rule: R\n  desc: x\n  condition: evt.type = open\n  output: x\n")?.message.contains(
                "has no priority") == true)
        let field = loadError(
            "- rule: R\n  desc: x\n  condition: evt.type = open and proc.nme = bash\n  output: x\n  priority: ERROR\n")
        #expect(field?.message == "unknown field 'proc.nme'")
        #expect(field?.location.line == 3 && field?.location.column == 34)
        #expect(
            loadError("- rule: R\n  condition: evt.type = open\n  output: x\n  priority: LOUD\n")?.message.contains(
                "priority 'LOUD'") == true)
        let unknownKey = loadError("- rule: R\n  conditon: evt.type = open\n")
        #expect(unknownKey?.message == "unknown key 'conditon'" && unknownKey?.location.line == 2)
        #expect(
            loadError("- macro: a\n  condition: b\n- macro: b\n  condition: a\n")?.message.contains("refers to itself")
                == true)
        #expect(loadError("- list: x\n  items: [a]\n  append: true\n")?.message.contains("never defined") == true)
        #expect(loadError("rule: not a list")?.message.contains("a list of rule, macro and list items") == true)
        #expect(loadError("- rule: [unclosed")?.message.contains("not valid YAML") == true)
    }
}
