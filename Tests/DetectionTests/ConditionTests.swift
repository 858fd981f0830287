import Detection
import Testing

/// A fixed event for conditions: a shell reading /etc/shadow in a container.
struct FixedEvent: FieldValues {
    var fields: [String: [String]] = [
        "evt.type": ["openat"], "evt.res": ["3"], "proc.name": ["bash"], "proc.pname": ["java"],
        "proc.args": ["-c", "cat /etc/shadow"], "fd.name": ["/etc/shadow"], "fd.directory": ["/etc"],
        "user.uid": ["0"], "container.id": ["0123456789ab"], "evt.arg[pathname]": ["/etc/shadow"],
        "proc.aname[2]": ["fhir-server"],
    ]

    func values(of field: FieldReference) -> [String]? {
        fields[field.argument.map { "\(field.name)[\($0)]" } ?? field.name]
    }
}

@Suite struct ConditionTests {
    let parser = ConditionParser(
        macros: [:], lists: ["shell_binaries": ["bash", "sh", "zsh", "dash"], "sensitive_files": ["/etc/shadow", "/etc/sudoers"]])
    let evaluator = ConditionEvaluator()

    func holds(_ text: String, _ event: FixedEvent = FixedEvent()) throws -> Bool {
        evaluator.evaluate(try parser.parse(text), on: event)
    }

    @Test func comparisonsAndStringOperators() throws {
        #expect(try holds("evt.type = openat"))
        #expect(try holds("evt.type == openat and proc.name != sh"))
        #expect(try holds("evt.res >= 0 and evt.res < 10 and user.uid <= 0"))
        #expect(try !holds("evt.res > 3"))
        #expect(try holds("fd.name startswith /etc and fd.name endswith shadow and fd.name contains sha"))
        #expect(try holds("proc.name icontains BA"))
        #expect(try holds("fd.name glob '/etc/*'"))
        #expect(try holds(#"fd.name regex "^/etc/(shadow|gshadow)$""#))
        #expect(try holds("evt.arg.pathname = /etc/shadow and proc.aname[2] = fhir-server"))
    }

    @Test func listsSetsAndPaths() throws {
        #expect(try holds("proc.name in (shell_binaries)"))
        #expect(try holds("proc.name in (python, shell_binaries, 'perl')"))
        #expect(try !holds("proc.name in (python, perl)"))
        #expect(try holds("proc.args intersects (\"-c\", -e)"))
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
        withMacro.macros["open_read"] = try parser.parse("evt.type in (open, openat, openat2) and evt.res >= 0")
        let rule = try withMacro.parse("open_read and fd.name in (sensitive_files) and not spawned_process")
        #expect(evaluator.evaluate(rule, on: FixedEvent()))
        #expect(rule.fields.map(\.description).sorted() == ["evt.res", "evt.type", "fd.name"])
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
