@testable import Detection
import Foundation
import Sensor
import Testing

/// `action: kill`: the rule key, which rules the kernel can decide, and the enforcer's verdicts.
@Suite struct EnforcementTests {
    static func rule(_ condition: String, action: String = "kill", macros: String = "", id: String = "T-1") throws
        -> Rule
    {
        let text =
            macros + """
                - rule: Under test
                  id: \(id)
                  desc: d
                  condition: \(condition)
                  output: "x %proc.name"
                  priority: WARNING
                  action: \(action)
                """
        return try #require(try RuleSet.load([("rules/t.yaml", text)]).rules.first)
    }

    @Test func actionIsParsed() throws {
        #expect(try Self.rule("evt.type = openat").action == .kill)
        let plain = try RuleSet.load([
            ("rules/p.yaml", "- rule: P\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: INFO\n")
        ])
        #expect(plain.rules.first?.action == nil)
    }

    @Test func unknownActionIsAnErrorWithFileAndLine() throws {
        do {
            _ = try Self.rule("evt.type = openat", action: "explode")
            Issue.record("an unknown action loaded")
        } catch let error as RuleError {
            #expect(error.location.file == "rules/t.yaml")
            #expect(error.location.line == 7)
            #expect(error.message.contains("action 'explode'"))
        }
    }

    @Test func kernelShapes() throws {
        let macros = "- macro: container\n  condition: (container.id != host)\n"
        let open = try #require(
            KernelEnforcement.patterns(
                for: try Self.rule("evt.type in (open, openat) and fd.name = /etc/shadow and container", macros: macros)
            ))
        #expect(
            open == [
                KillPattern(kind: .openPath, syscall: 2, text: "/etc/shadow", containersOnly: true),
                KillPattern(kind: .openPath, syscall: 257, text: "/etc/shadow", containersOnly: true),
            ])
        let prefix = try #require(
            KernelEnforcement.patterns(for: try Self.rule("evt.type = openat and fd.name startswith /root/.ssh/")))
        #expect(prefix == [KillPattern(kind: .openPath, syscall: 257, text: "/root/.ssh/", prefix: true)])
        let fileOpen = try #require(
            KernelEnforcement.patterns(for: try Self.rule("evt.type = security_file_open and fd.name in (/a, /b)")))
        #expect(fileOpen.count == 8)
        let exec = try #require(
            KernelEnforcement.patterns(
                for: try Self.rule("evt.type = execve and evt.dir = < and proc.name in (nc, ncat)")))
        #expect(exec == [KillPattern(kind: .execName, text: "nc"), KillPattern(kind: .execName, text: "ncat")])
        let exePath = try #require(
            KernelEnforcement.patterns(
                for: try Self.rule("evt.type = sched_process_exec and proc.exepath startswith /tmp/")))
        #expect(exePath == [KillPattern(kind: .execPath, text: "/tmp/", prefix: true)])
        let module = try #require(
            KernelEnforcement.patterns(
                for: try Self.rule("evt.type in (init_module, finit_module) and container.id != host")))
        #expect(module.map(\.syscall) == [313, 175] && module.allSatisfy { $0.kind == .syscall && $0.containersOnly })
        #expect(KernelEnforcement.patterns(for: try Self.rule("evt.type = ptrace"))?.first?.syscall == 101)
        let connect = try #require(
            KernelEnforcement.patterns(for: try Self.rule("evt.type = connect and fd.sip in (127.0.0.1, ::1)")))
        #expect(connect.map(\.kind) == [.connectAddress, .connectAddress])
        #expect(connect.map(\.address) == [[127, 0, 0, 1], [UInt8](repeating: 0, count: 15) + [1]])
        // The cgroup programs each pattern needs (an IPv4 address: the IPv6 one too, for ::ffff:a.b.c.d).
        #expect(connect.map(\.cgroupPrograms) == [["cgroup_connect4", "cgroup_connect6"], ["cgroup_connect6"]])
        let bind = try #require(
            KernelEnforcement.patterns(
                for: try Self.rule("evt.type = bind and fd.sip = 0.0.0.0 and container.id != host")))
        #expect(
            bind.map(\.syscall) == [49] && bind[0].containersOnly
                && bind[0].cgroupPrograms == ["cgroup_bind4", "cgroup_bind6"])
        let send = try #require(
            KernelEnforcement.patterns(for: try Self.rule("evt.type in (sendto, sendmsg) and fd.sip = 10.1.2.3")))
        #expect(
            send.map(\.syscall) == [46, 44]
                && send.allSatisfy {
                    $0.cgroupPrograms == ["cgroup_sendmsg4", "cgroup_sendmsg6", "cgroup_connect4", "cgroup_connect6"]
                })
        // Any connect or bind: both families' programs (other families are still killed at entry).
        let anyConnect = try #require(
            KernelEnforcement.patterns(for: try Self.rule("evt.type = connect and container.id != host")))
        #expect(anyConnect == [KillPattern(kind: .syscall, syscall: 42, containersOnly: true)])
        #expect(anyConnect[0].cgroupPrograms == ["cgroup_connect4", "cgroup_connect6"])
        // Not socket calls, or a send nobody addressed: no cgroup program.
        #expect(
            try #require(KernelEnforcement.patterns(for: try Self.rule("evt.type = sendto")))[0].cgroupPrograms == [])
        #expect(open.allSatisfy { $0.cgroupPrograms.isEmpty })
    }

    /// Which mechanism acts per rule on a kernel with and without the cgroup programs, as the
    /// alert, `detect`'s summary and `rules list` say it.
    @Test func mechanisms() throws {
        let connect = try Self.rule("evt.type = connect and fd.sip = 127.0.0.1 and container.id != host")
        let shadow = try Self.rule("evt.type = openat and fd.name = /etc/shadow", id: "T-2")
        let pname = try Self.rule("evt.type = openat and fd.name = /a and proc.pname = sh", id: "T-3")
        let cgroup = EnforcementKernel(cgroup: true)
        let none = EnforcementKernel(cgroup: false, reason: "Operation not permitted")
        let on = try Enforcer(rules: [connect, shadow, pname], options: EnforcementOptions(all: true), kernel: cgroup)
        #expect(
            on.mechanism(for: "T-1") == .cgroup && on.mechanism(for: "T-2") == .kernelKill
                && on.mechanism(for: "T-3") == .userSpaceKill)
        #expect(on.mechanism(for: "T-4") == nil)
        #expect(
            on.summary == [
                "T-1: deny (cgroup): connect to 127.0.0.1 in containers",
                "T-2: kill after the syscall (kernel): openat path = /etc/shadow",
                "T-3: kill after the syscall (user space)",
            ])
        let old = try Enforcer(rules: [connect], options: EnforcementOptions(all: true), kernel: none)
        #expect(old.mechanism(for: "T-1") == .kernelKill)
        #expect(old.summary == ["T-1: kill after the syscall (kernel): connect to 127.0.0.1 in containers"])
        // The sensor's programs did not attach after all: from then on the rule is a kill.
        on.sensorStarted(cgroupDenial: CgroupDenial(failure: "attach cgroup_connect4: Operation not permitted"))
        #expect(on.mechanism(for: "T-1") == .kernelKill)
        #expect(
            try Enforcer(rules: [connect], options: EnforcementOptions(dryRun: true), kernel: cgroup).mechanism(
                for: "T-1") == nil)

        // `rules list`: per rule, what happens on this kernel.
        #expect(Enforcer.plan(for: connect, kernel: cgroup) == "deny (cgroup)")
        #expect(Enforcer.plan(for: connect, kernel: none) == "kill after the syscall (kernel)")
        #expect(Enforcer.plan(for: shadow, kernel: cgroup) == "kill after the syscall (kernel)")
        #expect(Enforcer.plan(for: pname, kernel: cgroup) == "kill after the syscall (user space)")
        // With fanotify: opens in containers are refused; the host is not marked, so a rule that covers it kills there.
        let both = EnforcementKernel(cgroup: true, fanotify: true)
        #expect(
            Enforcer.plan(for: shadow, kernel: both)
                == "deny (fanotify) in containers, kill after the syscall (kernel) on the host")
        let containerShadow = try Self.rule(
            "evt.type = openat and fd.name = /etc/shadow and container.id != host", id: "T-5")
        #expect(Enforcer.plan(for: containerShadow, kernel: both) == "deny (fanotify)")
        #expect(Enforcer.plan(for: connect, kernel: both) == "deny (cgroup)")
        let anyConnect = try Self.rule("evt.type = connect")
        #expect(
            Enforcer.plan(for: anyConnect, kernel: cgroup)
                == "deny (cgroup) for IPv4/IPv6, kill after the syscall (kernel) for other families")

        // The alert says what the kernel marked on the event: refused by this rule's pattern, or another's.
        var denied = Self.alert(ruleId: "T-1", pid: 4242, deniedBySlot: 0)
        on.enforce(&denied)
        #expect(denied.action == "denied (cgroup)")
        var byOther = Self.alert(ruleId: "T-2", pid: 4242, deniedBySlot: 0)
        on.enforce(&byOther)
        #expect(byOther.action == "denied (cgroup), by T-1")
    }

    @Test func userSpaceShapes() throws {
        for condition in [
            "evt.type = openat and fd.name = /etc/shadow and proc.pname = sh",  // another field
            "evt.type = openat and (fd.name = /a or fd.name = /b)",  // or
            "evt.type = openat and not fd.name = /a",  // not
            "fd.name = /etc/shadow",  // no event type
            "evt.type = openat and fd.name contains shadow",  // operator
            "evt.type = execve and fd.name = /bin/sh",  // field of another event
            "evt.type = ptrace and evt.arg.request = PTRACE_ATTACH",  // argument
            "evt.type = openat and fd.name = /a and proc.name = cat",  // two subjects
            "evt.type = connect and fd.sport = 22",  // another field
        ] {
            #expect(KernelEnforcement.patterns(for: try Self.rule(condition)) == nil, "\(condition)")
        }
        // Not an address: refused when the rule loads (fd.sip is an IPADDR field), so it never reaches enforcement.
        #expect(throws: RuleError.self) { try Self.rule("evt.type = connect and fd.sip = not-an-address") }
    }

    /// The pid of a process that has run and exited (and been reaped): a kill of it must fail.
    static func exitedProcess() throws -> UInt32 {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        return UInt32(child.processIdentifier)
    }

    static func alert(
        ruleId: String, pid: UInt32, killedBySlot: UInt8? = nil, deniedBySlot: UInt8? = nil, container: String = "box"
    ) -> Alert {
        var event = TraceEvent(hostProcessId: pid, eventId: "257", eventName: "openat")
        if let slot = killedBySlot { event.enforcementFlags = 1 | UInt32(slot) << 8 }
        if let slot = deniedBySlot { event.enforcementFlags |= 2 | UInt32(slot) << 16 }
        let process = Alert.Process(
            pid: pid, vpid: pid, name: "cat", exepath: "/bin/cat", cmdline: "cat", uid: 0, user: "root", tty: nil)
        return Alert(
            ruleId: ruleId, rule: ruleId, priority: "warning", output: "", time: "", timestamp: 0, raisedAt: 0,
            mitre: [], tags: [],
            container: .init(id: "0123456789ab", name: container, image: ""), process: process, ancestors: [],
            events: [event])
    }

    @Test func verdicts() throws {
        let kernelRule = try Self.rule("evt.type = openat and fd.name = /etc/shadow")
        let off = try Enforcer(rules: [kernelRule], options: EnforcementOptions())
        #expect(off.killPatterns.isEmpty && off.enforced.isEmpty)
        var alert = Self.alert(ruleId: "T-1", pid: 4242, killedBySlot: 0)
        off.enforce(&alert)
        #expect(alert.action == nil)

        let on = try Enforcer(rules: [kernelRule], options: EnforcementOptions(all: true))
        #expect(on.killPatterns == [KillPattern(kind: .openPath, syscall: 257, text: "/etc/shadow")])
        on.enforce(&alert)
        #expect(alert.action == "killed after the syscall (kernel)")
        #expect(
            String(decoding: alert.json(), as: UTF8.self).hasSuffix(#","action":"killed after the syscall (kernel)"}"#))

        let dry = try Enforcer(rules: [kernelRule], options: EnforcementOptions(dryRun: true))
        #expect(dry.killPatterns.isEmpty)
        var dryAlert = Self.alert(ruleId: "T-1", pid: 4242)
        dry.enforce(&dryAlert)
        #expect(dryAlert.action == "would kill")

        // A process that is gone: the user-space kill says so rather than claiming a kill.
        var gone = Self.alert(ruleId: "T-1", pid: try Self.exitedProcess())
        on.enforce(&gone)
        #expect(gone.action == "kill failed (user space): the process had already exited")

        let elsewhere = try Enforcer(
            rules: [kernelRule], options: EnforcementOptions(all: true, containers: ["web"], dryRun: true))
        var other = Self.alert(ruleId: "T-1", pid: 4242, container: "box")
        elsewhere.enforce(&other)
        #expect(other.action == nil)

        #expect(throws: RuleError.self) {
            try Enforcer(rules: [kernelRule], options: EnforcementOptions(rules: ["nope"]))
        }
    }

    /// Drift from a learned profile kills only when asked (`--enforce-rule PROFILE-...`,
    /// `--enforce-profile`): an exec through the kernel's allow list, the rest from user space.
    @Test func profileDriftKillsOnlyWhenAsked() throws {
        let kernelRule = try Self.rule("evt.type = openat and fd.name = /etc/shadow")
        let profile = ContainerProfile(image: "caduceus-fhir:latest", executables: ["/usr/local/bin/caduceus"])
        // A drift kind without a profile, or one that does not exist: refused with the reason.
        do {
            _ = try Enforcer(rules: [kernelRule], options: EnforcementOptions(rules: ["PROFILE-EXEC"]))
            Issue.record("PROFILE-EXEC enforced without a profile")
        } catch let error as RuleError {
            #expect(error.message == "--enforce-rule PROFILE-EXEC needs a learned profile (--profile)")
        }
        #expect(throws: RuleError.self) { try Enforcer(rules: [], options: EnforcementOptions(profile: true)) }
        #expect(throws: RuleError.self) {
            try Enforcer(rules: [], options: EnforcementOptions(rules: ["PROFILE-EXECS"]), profile: profile)
        }

        // PROFILE-EXEC alone: the rules' own actions stay off; the kernel gets the executables,
        // for the named container, or for every container of the image.
        let exec = try Enforcer(
            rules: [kernelRule], options: EnforcementOptions(rules: ["PROFILE-EXEC"]), profile: profile,
            profileContainer: "fhir")
        #expect(exec.profileRules == ["PROFILE-EXEC"] && exec.enforced.isEmpty && exec.killPatterns.isEmpty)
        #expect(exec.execAllowList == ExecAllowList(paths: ["/usr/local/bin/caduceus"], containers: ["fhir"]))
        #expect(
            exec.summary == [
                "PROFILE-EXEC: kill after the syscall (kernel; before the new image runs an instruction): exec allow list of 1 executables "
                    + "in the profiled containers running at start; kill after the syscall (user space) elsewhere"
            ])
        let byImage = try Enforcer(rules: [], options: EnforcementOptions(rules: ["PROFILE-EXEC"]), profile: profile)
        #expect(
            byImage.execAllowList == ExecAllowList(paths: ["/usr/local/bin/caduceus"], image: "caduceus-fhir:latest"))

        // Killed by the allow list in the kernel; an exec the kernel missed, from user space.
        var inKernel = Self.alert(ruleId: "PROFILE-EXEC", pid: 4242, killedBySlot: ExecAllowList.slot)
        exec.enforce(&inKernel)
        #expect(inKernel.action == "killed after the syscall (kernel)")
        var missed = Self.alert(ruleId: "PROFILE-EXEC", pid: try Self.exitedProcess())
        exec.enforce(&missed)
        #expect(missed.action == "kill failed (user space): the process had already exited")
        // A rule's alert on a process the allow list killed says who killed it; other drift is left alone.
        var shadow = Self.alert(ruleId: "T-1", pid: 4242, killedBySlot: ExecAllowList.slot)
        let both = try Enforcer(
            rules: [kernelRule], options: EnforcementOptions(all: true, rules: ["PROFILE-EXEC"]), profile: profile)
        both.enforce(&shadow)
        #expect(shadow.action == "killed after the syscall (kernel), by PROFILE-EXEC")
        var write = Self.alert(ruleId: "PROFILE-WRITE", pid: 4242)
        exec.enforce(&write)
        #expect(write.action == nil)

        // Every kind, as a dry run: nothing for the kernel, "would kill" for each.
        let dry = try Enforcer(
            rules: [kernelRule], options: EnforcementOptions(dryRun: true, profile: true), profile: profile)
        #expect(
            dry.profileRules == Set(ProfileDriftDetector.ruleIds) && dry.execAllowList == nil && dry.enforced.isEmpty)
        var wouldWrite = Self.alert(ruleId: "PROFILE-WRITE", pid: 4242)
        dry.enforce(&wouldWrite)
        #expect(wouldWrite.action == "would kill")
        // A path the kernel cannot hold: the allow list is left to user space.
        let long = ContainerProfile(image: "x", executables: ["/" + String(repeating: "a", count: 300)])
        #expect(
            try Enforcer(rules: [], options: EnforcementOptions(rules: ["PROFILE-EXEC"]), profile: long).execAllowList
                == nil)
    }
}
