@testable import Detection
import Foundation
import Sensor
import Testing

/// The fanotify verdict without root: which enforced rules it covers, what it refuses, and
/// which kernel patterns stay loaded beside it.
@Suite struct FanotifyRulesTests {
    static let rules = """
        - rule: Victim opened in a container
          id: F-OPEN
          desc: d
          condition: evt.type in (open, openat, openat2, creat) and fd.name = /tmp/victim and container.id != host
          output: o
          priority: CRITICAL
          action: kill
        - rule: Keys opened anywhere
          id: F-KEYS
          desc: d
          condition: evt.type = openat and fd.name startswith /etc/keys/
          output: o
          priority: CRITICAL
          action: kill
        - rule: Dropped program run in a container
          id: F-EXEC
          desc: d
          condition: evt.type = execve and proc.exepath startswith /tmp/drop and container.id != host
          output: o
          priority: CRITICAL
          action: kill
        - rule: Netcat run in a container
          id: F-NAME
          desc: d
          condition: evt.type = execve and proc.name in (nc, averyveryverylongname) and container.id != host
          output: o
          priority: CRITICAL
          action: kill
        - rule: Secret opened by a child process
          id: F-USER
          desc: proc.pname is not known to the kernel
          condition: evt.type = openat and fd.name = /tmp/secret and proc.pname exists
          output: o
          priority: CRITICAL
          action: kill
        - rule: Any module load
          id: F-MODULE
          desc: "no subject, a syscall pattern"
          condition: evt.type = init_module
          output: o
          priority: CRITICAL
          action: kill
        """
    static let container = String(repeating: "ab", count: 32)

    static func covered(_ options: EnforcementOptions = EnforcementOptions(all: true)) throws -> (
        FanotifyRules, Enforcer
    ) {
        let rules = try RuleSet.load([("rules/f.yaml", Self.rules)]).rules
        let enforcer = try Enforcer(rules: rules, options: options)
        return (FanotifyRules(enforcer: enforcer, rules: rules), enforcer)
    }

    static func open(_ path: String, inContainer: Bool = true) -> FanotifyAccess {
        FanotifyAccess(pid: 4242, path: path, isExec: false, containerID: inContainer ? container : nil)
    }

    static func exec(_ path: String, inContainer: Bool = true) -> FanotifyAccess {
        FanotifyAccess(pid: 4242, path: path, isExec: true, containerID: inContainer ? container : nil)
    }

    @Test func coversOpenAndExecRulesOnly() throws {
        let (rules, _) = try Self.covered()
        #expect(rules.entries.map(\.rule.id) == ["F-OPEN", "F-KEYS", "F-EXEC", "F-NAME"])
        #expect(FanotifyRules.covers([KillPattern(kind: .openPath, syscall: 257, text: "/x")]))
        #expect(!FanotifyRules.covers([KillPattern(kind: .syscall, syscall: 175)]))
        #expect(!FanotifyRules.covers([]))
    }

    @Test func opensDecidedAsTheKernelPatternsDo() throws {
        let (rules, _) = try Self.covered()
        #expect(rules.decide(Self.open("/tmp/victim"))?.id == "F-OPEN")
        #expect(rules.decide(Self.open("/tmp/victim2")) == nil, "= is the whole path")
        #expect(
            rules.decide(Self.open("/tmp/victim", inContainer: false)) == nil,
            "container.id != host: the host's open is allowed")
        #expect(
            rules.decide(Self.open("/etc/keys/tls.pem", inContainer: false))?.id == "F-KEYS",
            "a rule without the container macro covers the host")
        #expect(rules.decide(Self.open("/etc/keys"))?.id == nil, "startswith /etc/keys/")
        #expect(rules.decide(Self.open("/tmp/secret")) == nil, "user-space rules are not the guard's")
        #expect(
            rules.decide(Self.open(""))?.id == "F-KEYS",
            "an unreadable path (longer than PATH_MAX) could be under the prefix")
    }

    @Test func execsDecidedByPathAndByName() throws {
        let (rules, _) = try Self.covered()
        #expect(rules.decide(Self.exec("/tmp/drop.sh"))?.id == "F-EXEC")
        #expect(rules.decide(Self.exec("/tmp/dropped/x"))?.id == "F-EXEC")
        #expect(rules.decide(Self.exec("/usr/bin/nc"))?.id == "F-NAME")
        #expect(
            rules.decide(Self.exec("/usr/bin/averyveryverylongname"))?.id == nil,
            "proc.name is comm: 15 bytes, the rule's 21 never match")
        #expect(rules.decide(Self.exec("/usr/bin/averyveryverylon")) == nil)
        #expect(rules.decide(Self.exec("/tmp/drop.sh", inContainer: false)) == nil)
        #expect(rules.decide(Self.open("/tmp/drop.sh")) == nil, "reading the dropped file is not running it")
        #expect(rules.decide(Self.exec("/tmp/victim")) == nil, "an exec is not an open syscall")
    }

    @Test func couldDenyRulesOutTheRestBeforeTheCallersContainerIsLookedUp() throws {
        let (rules, _) = try Self.covered()
        #expect(rules.couldDeny(path: "/tmp/victim", isExec: false))
        #expect(rules.couldDeny(path: "/tmp/drop.sh", isExec: true))
        #expect(rules.couldDeny(path: "/bin/nc", isExec: true))
        #expect(!rules.couldDeny(path: "/etc/passwd", isExec: false))
        #expect(!rules.couldDeny(path: "/tmp/drop.sh", isExec: false))
        // A path the guard could not read (longer than PATH_MAX) could lie under a prefix: decided, and refused.
        #expect(rules.couldDeny(path: "", isExec: false))
        #expect(rules.decide(Self.open("")) != nil)
        let exact = FanotifyRules(entries: rules.entries.filter { $0.patterns.allSatisfy { !$0.prefix } })
        #expect(!exact.couldDeny(path: "", isExec: false), "an exact path is always readable: nothing to refuse")
    }

    @Test func kernelKeepsWhatFanotifyCannotRefuse() throws {
        let (rules, enforcer) = try Self.covered()
        let kept = rules.kernelPatterns(of: enforcer)
        #expect(
            !kept.contains { $0.kind == .openPath && $0.containersOnly },
            "a kill at the open's entry would come before the refusal")
        #expect(
            kept.contains { $0.kind == .openPath && $0.text == "/etc/keys/" }, "the host is not marked: its kill stays")
        #expect(
            kept.contains { $0.kind == .execPath } && kept.contains { $0.kind == .execName },
            "the backstop for execs fanotify lets through")
        #expect(kept.contains { $0.kind == .syscall })
        #expect(Set(kept.map(\.slot)).isSubset(of: Set(enforcer.killPatterns.map(\.slot))), "slots unchanged")
    }

    @Test func dryRunAndNamedRules() throws {
        #expect(try Self.covered(EnforcementOptions(dryRun: true)).0.entries.isEmpty, "a dry run refuses nothing")
        let (named, enforcer) = try Self.covered(EnforcementOptions(rules: ["F-EXEC"]))
        #expect(named.entries.map(\.rule.id) == ["F-EXEC"])
        #expect(named.decide(Self.open("/tmp/victim")) == nil)
        #expect(named.kernelPatterns(of: enforcer) == enforcer.killPatterns)
        // What acts is fanotify once a guard runs, a kill at the exec before.
        #expect(enforcer.mechanism(for: "F-EXEC") == .kernelKill)
        enforcer.fanotifyStarted(true)
        #expect(enforcer.mechanism(for: "F-EXEC") == .fanotify)
        #expect(enforcer.summary.count == 1 && enforcer.summary[0].hasPrefix("F-EXEC: deny (fanotify): "))
    }

    @Test func alertSaysDeniedByFanotify() throws {
        let (rules, _) = try Self.covered()
        let rule = try #require(rules.decide(Self.open("/tmp/victim")))
        var access = FanotifyAccess(
            pid: getpid(), path: "/tmp/victim", isExec: false, containerID: Self.container,
            fileSystemOf: ContainerInfo(id: Self.container, name: "web", image: "testbox"),
            time: 1_764_417_600_000_000_000)
        let alert = FanotifyEnforcement.alert(rule, access)
        #expect(alert.action == "denied (fanotify)")
        #expect(alert.ruleId == "F-OPEN" && alert.container.name == "web" && alert.container.id == Self.container)
        #expect(alert.process.pid == UInt32(getpid()))
        #expect(
            alert.events.first?.eventName == "security_file_open" && alert.events.first?.returnValue == -Int64(EPERM))
        #expect(alert.events.first?[argument: "pathname"]?.string == "/tmp/victim")
        access.isExec = true
        #expect(FanotifyEnforcement.alert(rule, access).events.first?.eventName == "security_bprm_check")
    }
}
