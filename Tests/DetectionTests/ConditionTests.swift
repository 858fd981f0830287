import Detection
import Testing

/// Conditions evaluated by the engine on one fixed event: bash (child of java, child of
/// fhir-server) opening /etc/shadow in a container.
@Suite struct ConditionTests {
    let parser = ConditionParser(
        macros: [:],
        lists: ["shell_binaries": ["bash", "sh", "zsh", "dash"], "sensitive_files": ["/etc/shadow", "/etc/sudoers"]])

    static let processes = [
        ProcessRecord(pid: 10, ppid: 1, name: "fhir-server", exePath: "/usr/bin/fhir-server", argv: ["fhir-server"]),
        ProcessRecord(pid: 20, ppid: 10, name: "java", exePath: "/usr/bin/java", argv: ["java", "-jar", "fhir.jar"]),
        ProcessRecord(pid: 30, ppid: 20, name: "bash", exePath: "/bin/bash", argv: ["bash", "-c", "cat /etc/shadow"]),
    ]
    static let openShadow = EventFixture(
        "openat", pid: 30, ppid: 20, comm: "bash", ret: 3, args: ["dirfd": -100, "pathname": "/etc/shadow", "flags": 0])

    /// Whether a rule with this condition fires on the event.
    func holds(_ condition: String, _ event: EventFixture = openShadow) throws -> Bool {
        let rules = """
            - list: shell_binaries
              items: [bash, sh, zsh, dash]
            - list: sensitive_files
              items: [/etc/shadow, /etc/sudoers]
            - rule: probe
              desc: probe
              condition: |
                \(condition)
              output: probe
              priority: NOTICE
            """
        return try !EngineHarness(rules: rules, processes: Self.processes.map(Self.copy)).run([event]).isEmpty
    }

    static func copy(_ p: ProcessRecord) -> ProcessRecord {
        ProcessRecord(pid: p.pid, ppid: p.ppid, name: p.name, exePath: p.exePath, argv: p.argv)
    }

    @Test func comparisonsAndStringOperators() throws {
        #expect(try holds("evt.type = openat"))
        #expect(try holds("evt.type == openat and proc.name != sh"))
        #expect(try holds("evt.rawres >= 0 and evt.rawres < 10 and user.uid <= 0 and evt.res = SUCCESS"))
        #expect(try !holds("evt.rawres > 3"))
        #expect(try holds("fd.name startswith /etc and fd.name endswith shadow and fd.name contains sha"))
        #expect(try holds("proc.name icontains BA"))
        #expect(try holds("fd.name glob '/etc/*'"))
        #expect(try holds(#"fd.name regex "^/etc/(shadow|gshadow)$""#))
        #expect(
            try holds("evt.arg.pathname = /etc/shadow and proc.aname[2] = fhir-server and proc.aname = fhir-server"))
        #expect(
            try holds("proc.pname = java and proc.cmdline = 'bash -c cat /etc/shadow' and proc.exepath = /bin/bash"))
        #expect(try holds("evt.arg.flags = O_RDONLY and evt.arg.flags = 0 and not evt.arg.flags contains O_CREAT"))
        #expect(try holds("container.id = 4f2c1d0e9b8a and evt.dir = '<' and fd.typechar = f and fd.filename = shadow"))
    }

    @Test func listsSetsAndPaths() throws {
        #expect(try holds("proc.name in (shell_binaries)"))
        #expect(try holds("proc.name in (python, shell_binaries, 'perl')"))
        #expect(try !holds("proc.name in (python, perl)"))
        #expect(try holds("proc.args intersects (\"-c\", -e)"))
        #expect(try holds("proc.args contains 'cat /etc'"), "a list field matches when any value does")
        #expect(try holds("fd.name pmatch (/etc, /root)"))
        #expect(try !holds("fd.name pmatch (/et)"), "a path prefix matches whole components")
        #expect(try holds("fd.name in sensitive_files"))
    }

    @Test func booleanStructureAndMissingFields() throws {
        #expect(try holds("not proc.name = sh and (evt.type = open or evt.type = openat)"))
        #expect(try !holds("not (proc.name = bash)"))
        #expect(try holds("container.id exists and not fd.sip exists"))
        #expect(try !holds("fd.sip = 127.0.0.1"), "a comparison on a missing field is false")
        #expect(try holds("fd.sip != 127.0.0.1 or proc.name = bash"))
        // `and` binds tighter than `or`.
        #expect(try holds("proc.name = sh and evt.type = x or proc.name = bash"))
    }

    @Test func macrosExpandAndFieldsAreListed() throws {
        var withMacro = parser
        withMacro.macros["spawned_process"] = try parser.parse("evt.type in (execve, execveat)")
        withMacro.macros["open_read"] = try parser.parse("evt.type in (open, openat, openat2) and evt.rawres >= 0")
        let rule = try withMacro.parse("open_read and fd.name in (sensitive_files) and not spawned_process")
        #expect(rule.fields.map(\.description).sorted() == ["evt.rawres", "evt.type", "fd.name"])
        #expect(rule.eventTypes == ["open", "openat", "openat2"], "the rule is indexed under the types it can match")
    }

    @Test func errorsSayWhereAndWhy() {
        func error(_ text: String) -> ConditionError? {
            do {
                _ = try parser.parse(text, origin: SourceLocation(file: "rules/x.yaml", line: 7, column: 14))
                return nil
            } catch let error as ConditionError {
                return error
            } catch {
                return nil
            }
        }
        let unknown = error("proc.name = bash and shell_spawned")
        #expect(unknown?.location == SourceLocation(file: "rules/x.yaml", line: 7, column: 35))
        #expect(unknown?.message.contains("'shell_spawned' is neither a field nor a known macro") == true)
        #expect(error("(proc.name = bash")?.message.contains("expected ')'") == true)
        #expect(error("proc.name bash")?.message.contains("not an operator") == true)
        #expect(error("proc.name = 'bash")?.message.contains("not closed") == true)
        #expect(error("proc.name = bash)")?.message.contains("unexpected ')'") == true)
        #expect(error("proc.name =")?.message.contains("expected a value") == true)
        #expect(error("proc.name ! bash")?.message.contains("'!' must be followed") == true)
        let second = error("proc.name = bash and\n  fd.name startswith")
        #expect(second?.location.line == 8, "positions count lines inside a multi-line condition")
    }
}
