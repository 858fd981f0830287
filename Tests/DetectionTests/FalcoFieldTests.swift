import Detection
import Foundation
import Sensor
import Testing

/// The fields Falco's rule files read, each from events built as the sensor builds them:
/// what the field gives (through `%field` in an output) and that conditions match on it.
@Suite struct FalcoFieldTests {
    /// What `output` renders for each event on which `condition` holds.
    func outputs(
        _ output: String, when condition: String, _ events: [TraceEvent], processes: [ProcessRecord] = [],
        state: SystemState = SystemState()
    ) throws -> [String] {
        let rules =
            "- rule: Probe\n  desc: x\n  condition: >-\n    \(condition)\n  output: >-\n    \(output)\n  priority: NOTICE\n"
        let engine = try DetectionEngine(ruleSet: RuleSet.load([("probe.yaml", rules)]), state: state)
        processes.forEach(engine.state.insert)
        var rendered: [String] = []
        for event in events { engine.process(event) { rendered.append($0.output) } }
        return rendered
    }

    func exec(
        pid: UInt32 = 60, ppid: UInt32 = 50, comm: String = "sh", path: String = "/bin/sh", args: [String: Any] = [:],
        time: UInt64? = nil
    ) -> TraceEvent {
        var fixture = EventFixture(
            "sched_process_exec", pid: pid, ppid: ppid, comm: comm,
            args: ["pathname": path, "argv": [comm]].merging(args) { $1 })
        if let time { fixture.time = time }
        return fixture.event()
    }

    static var parent: ProcessRecord {
        ProcessRecord(pid: 50, vpid: 5, ppid: 40, name: "bash", exePath: "/usr/bin/bash", argv: ["-bash"], startTime: 1)
    }
    static var grandparent: ProcessRecord {
        ProcessRecord(
            pid: 40, vpid: 4, ppid: 1, name: "sshd", exePath: "/usr/sbin/sshd", argv: ["sshd: admin"], startTime: 1)
    }

    @Test func eventNumberArgumentsAndBuffer() throws {
        let open = EventFixture(
            "openat", pid: 60, ret: 3, args: ["dirfd": -100, "pathname": "/etc/shadow", "flags": 0]
        ).event()
        #expect(try outputs("%evt.num", when: "evt.type = openat", [open, open, open]) == ["1", "2", "3"])
        #expect(try outputs("n", when: "evt.type = openat and evt.num = 2", [open, open, open]).count == 1)
        let args = try outputs("%evt.args", when: "evt.type = openat", [open]).first ?? ""
        #expect(args.contains("pathname=/etc/shadow") && args.contains("flags=O_RDONLY"), "\(args)")
        // No I/O buffer is captured: evt.buffer has no value, prints <NA>, and comparisons on it are false.
        #expect(try outputs("%evt.buffer", when: "evt.type = openat", [open]) == ["<NA>"])
        #expect(
            try outputs("x", when: "evt.type = openat and (evt.buffer exists or evt.buffer bcontains 2f)", [open])
                .isEmpty)
    }

    @Test func ancestorsArgv0AndPaths() throws {
        let event = exec()
        let shown = try outputs(
            "%proc.pexe|%proc.aexe[2]|%proc.aexepath[2]|%proc.aexe[0]", when: "evt.type = execve", [event],
            processes: [Self.parent, Self.grandparent])
        #expect(shown == ["-bash|sshd: admin|/usr/sbin/sshd|sh"])
        #expect(
            try outputs(
                "x", when: "evt.type = execve and proc.aexepath = /usr/sbin/sshd and proc.aexe endswith admin", [event],
                processes: [Self.parent, Self.grandparent]
            ).count == 1)
    }

    @Test func workingDirectoryFollowsExecChdirAndFchdir() throws {
        let start = exec(args: ["cwd": "/srv"])
        let into = EventFixture("chdir", pid: 60, args: ["filename": "data/../logs/./app"]).event()
        let up = EventFixture("chdir", pid: 60, args: ["filename": ".."]).event()
        let failed = EventFixture("chdir", pid: 60, ret: -2, args: ["filename": "/nowhere"]).event()
        let openDirectory = EventFixture(
            "openat", pid: 60, ret: 7, args: ["dirfd": -100, "pathname": "/dev/shm", "flags": 0o200000]
        ).event()
        let fchdir = EventFixture("fchdir", pid: 60, args: ["fd": 7]).event()
        let probe = EventFixture("getpid", pid: 60).event()
        let shown = try outputs(
            "%proc.cwd", when: "evt.type in (execve, getpid)",
            [start, probe, into, probe, up, probe, failed, probe, openDirectory, fchdir, probe])
        #expect(shown == ["/srv/", "/srv/", "/srv/logs/app/", "/srv/logs/", "/srv/logs/", "/dev/shm/"])
        #expect(
            try outputs(
                "x", when: "evt.type = getpid and proc.cwd startswith \"/dev/shm/\"",
                [start, openDirectory, fchdir, probe]
            ).count == 1)
    }

    @Test func durationsAndExecutableTimes() throws {
        let fork = EventFixture(
            "sched_process_fork", pid: 50,
            args: ["parent_pid": 50, "child_pid": 60, "child_tid": 60, "child_ns_pid": 6]
        ).event()
        let forkTime = fork.timestamp
        let run = exec(
            args: ["exe_ctime": Int(forkTime - 3_000_000_000), "exe_mtime": Int(forkTime - 9_000_000_000)],
            time: forkTime + 2_000_000_000)
        let shown = try outputs(
            "%proc.duration %proc.exe_ino.ctime %proc.exe_ino.mtime %proc.exe_ino.ctime_duration_proc_start",
            when: "evt.type = execve",
            [fork, run], processes: [Self.parent])
        #expect(shown == ["2000000000 \(forkTime - 3_000_000_000) \(forkTime - 9_000_000_000) 3000000000"])
        #expect(
            try outputs(
                "x",
                when:
                    "evt.type = execve and proc.duration <= 5000000000 and proc.exe_ino.ctime_duration_proc_start < 10000000000",
                [fork, run], processes: [Self.parent]
            ).count == 1)
        // A ctime after the start (the file changed later) has no duration: the comparison is false.
        let later = exec(args: ["exe_ctime": Int(forkTime + 1)], time: forkTime + 2)
        #expect(
            try outputs(
                "%proc.exe_ino.ctime_duration_proc_start", when: "evt.type = execve", [fork, later],
                processes: [Self.parent]) == ["<NA>"])
    }

    @Test func memfdExecutables() throws {
        let memfd = exec(path: "/memfd:payload (deleted)")
        #expect(
            try outputs("x", when: "evt.type = execve and proc.is_exe_from_memfd = true", [memfd, exec()]).count == 1)
    }

    @Test func sessionsGroupsAndLeaders() throws {
        var leader = EventFixture(
            "sched_process_exec", pid: 60, ppid: 50, comm: "sh",
            args: ["pathname": "/bin/sh", "argv": ["sh"], "pgid": 6, "sid": 5])
        leader.vpid = 6
        let session = ProcessRecord(pid: 50, vpid: 5, ppid: 40, name: "bash")
        session.sid = 5
        let shown = try outputs(
            "%proc.vpgid %proc.sid %proc.sname %proc.is_vpgid_leader %proc.is_sid_leader", when: "evt.type = execve",
            [leader.event()], processes: [session])
        #expect(shown == ["6 5 bash true false"])
        #expect(
            try outputs(
                "%proc.vpgid.name %proc.sid.exe %proc.sid.exepath %proc.pvpid", when: "evt.type = execve",
                [leader.event()], processes: [session]) == ["sh bash  5"])
        var member = leader
        member.vpid = 7
        #expect(
            try outputs(
                "x", when: "evt.type = execve and proc.is_vpgid_leader = true", [member.event()], processes: [session]
            ).isEmpty)
    }

    @Test func credentialsCapabilitiesAndLoginUser() throws {
        let sysAdmin = 1 << 21, netRaw = 1 << 13
        let run = exec(args: [
            "cap_permitted": sysAdmin | netRaw, "cap_effective": netRaw, "loginuid": 4_294_967_295, "gid": 0,
        ])
        let shown = try outputs(
            "%thread.cap_permitted|%thread.cap_effective|%user.loginuid|%user.loginname|%group.gid|%group.name",
            when: "evt.type = execve", [run])
        #expect(shown == ["CAP_NET_RAW CAP_SYS_ADMIN|CAP_NET_RAW|-1|<NA>|0|root"])
        #expect(
            try outputs(
                "x",
                when:
                    "evt.type = execve and thread.cap_permitted contains CAP_SYS_ADMIN and not thread.cap_effective icontains sys_admin and user.loginuid = -1",
                [run]
            ).count == 1)
        let login = exec(args: ["loginuid": 0, "gid": 1000])
        #expect(
            try outputs("%user.loginuid %user.loginname %group.gid", when: "evt.type = execve", [login]) == [
                "0 root 1000"
            ])
        // setgid/setresgid exits change the group.
        let setgid = EventFixture("setresgid", pid: 60, args: ["rgid": 50, "egid": 50, "sgid": 50]).event()
        let probe = EventFixture("getpid", pid: 60).event()
        #expect(try outputs("%group.gid", when: "evt.type = getpid", [login, setgid, probe]) == ["50"])
    }

    @Test func addressesPortsAndNetworks() throws {
        let socket = EventFixture("socket", pid: 60, ret: 4, args: ["domain": 2, "type": 1, "protocol": 0]).event()
        let connect = EventFixture("connect", pid: 60, args: ["sockfd": 4, "addr": "10.1.2.3:443"]).event()
        let events = [socket, connect]
        func holds(_ condition: String) throws -> Bool {
            try !outputs("x", when: "evt.type = connect and \(condition)", events).isEmpty
        }
        #expect(try holds("fd.snet in (\"10.0.0.0/8\", \"172.16.0.0/12\") and fd.rnet = 10.1.0.0/16"))
        #expect(try holds("fd.net != \"127.0.0.0/8\" and fd.ip = 10.1.2.3 and fd.sip = 10.1.2.3 and fd.port = 443"))
        #expect(try !holds("fd.cnet = 10.0.0.0/8 or fd.lnet = 10.0.0.0/8"), "the local end is not known here")
        #expect(try !holds("fd.snet = 192.168.0.0/16 or fd.ip = 10.1.2.4 or fd.port = 80"))
        #expect(try holds("fd.connected = true and fd.name_changed = false"))
        // IPv6 addresses compare as addresses, not text.
        let socket6 = EventFixture("socket", pid: 60, ret: 5, args: ["domain": 10, "type": 2, "protocol": 0]).event()
        let connect6 = EventFixture("connect", pid: 60, args: ["sockfd": 5, "addr": "[2001:db8:0:0::1]:53"]).event()
        #expect(
            try !outputs(
                "x", when: "evt.type = connect and fd.sip = \"2001:db8::1\" and fd.snet = \"2001:db8::/32\"",
                [socket6, connect6]
            ).isEmpty)
        // An unconnected UDP socket sending to an address: Falco's name_changed and not connected.
        let udp = EventFixture("socket", pid: 60, ret: 6, args: ["domain": 2, "type": 2, "protocol": 0]).event()
        let send = EventFixture("sendto", pid: 60, ret: 10, args: ["fd": 6, "addr": "198.51.100.7:53"]).event()
        #expect(
            try outputs("%fd.connected %fd.name_changed %fd.sip", when: "evt.type = sendto", [udp, send]) == [
                "false true 198.51.100.7"
            ])
        // No DNS cache: the *.name fields have no value.
        #expect(try outputs("%fd.sip.name %fd.cip.name", when: "evt.type = connect", events) == ["<NA> <NA>"])
    }

    @Test func descriptorTypesAndHostname() throws {
        let socket = EventFixture("socket", pid: 60, ret: 3, args: ["domain": 2, "type": 1, "protocol": 0]).event()
        let open = EventFixture("openat", pid: 60, ret: 4, args: ["dirfd": -100, "pathname": "/etc/hosts", "flags": 0])
            .event()
        let probe = EventFixture("getpid", pid: 60).event()
        #expect(
            try outputs("%fd.types|%fd.types[4]|%evt.hostname", when: "evt.type = getpid", [socket, open, probe]).map {
                Set($0.split(separator: "|")[0].split(separator: " ")).count
            } == [2])
        #expect(
            try outputs(
                "%fd.types[4] %evt.hostname", when: "evt.type = getpid and fd.types intersects (ipv4, ipv6)",
                [socket, open, probe]) == ["file testbox"])
        #expect(
            ruleLoadError([
                (
                    "t.yaml",
                    "- rule: R\n  desc: x\n  condition: evt.type = open and fd.types = ipv4\n  output: x\n  priority: ERROR\n"
                )
            ])?.message.contains("CHARBUF list") == true)
    }

    @Test func rawNamesOfOpens() throws {
        let open = EventFixture(
            "openat", pid: 60, ret: 3, args: ["dirfd": -100, "pathname": "..//..//etc/passwd", "flags": 0]
        ).event()
        let start = exec(args: ["cwd": "/srv/app"])
        #expect(
            try outputs("%fd.nameraw %fd.name", when: "evt.type = openat", [start, open]) == [
                "../../etc/passwd /etc/passwd"
            ])
        let absolute = EventFixture(
            "openat", pid: 60, ret: 4, args: ["dirfd": -100, "pathname": "/var/www/../../etc/./shadow", "flags": 0]
        ).event()
        #expect(
            try outputs("%fd.name %fd.directory", when: "evt.type = openat", [start, absolute]) == ["/etc/shadow /etc"])
    }

    @Test func containerMetadataAndKubernetes() throws {
        var event = exec()
        var info = ContainerInfo(id: EventFixture.containerID, name: "web", image: "nginx:1")
        info.privileged = true
        info.startTime = 1_700_000_000_000_000_000
        info.mounts = [
            .init(
                source: "/var/run/docker.sock", destination: "/run/docker.sock", mode: "", readWrite: true,
                propagation: "rprivate"),
            .init(source: "/proc", destination: "/host/proc", mode: "ro", readWrite: false, propagation: ""),
        ]
        event.container = info
        let shown = try outputs(
            "%container.privileged %container.start_ts %container.mount.dest[/proc*] %container.mount.dest[/etc] %k8s.pod.name",
            when: "evt.type = execve", [event])
        #expect(shown == ["true 1700000000000000000 /host/proc N/A <NA>"])
        #expect(
            try outputs("%container.mounts", when: "evt.type = execve", [event]) == [
                "/var/run/docker.sock:/run/docker.sock::true:rprivate,/proc:/host/proc:ro:false:"
            ])
        // Falco's sandbox rule shape: a sensitive mount is one whose dest is not N/A.
        #expect(
            try outputs(
                "x", when: "evt.type = execve and not container.mount.dest[/var/run/docker.sock] in (\"<NA>\",\"N/A\")",
                [event]
            ).count == 1)
        #expect(
            try outputs(
                "x", when: "evt.type = execve and not container.mount.dest[/etc] in (\"<NA>\",\"N/A\")", [event]
            ).isEmpty)
        // Outside Kubernetes the k8s fields have no value, so `k8s.ns.name = kube-system` is false.
        #expect(
            try outputs("x", when: "evt.type = execve and (k8s.ns.name = kube-system or k8s.pod.name exists)", [event])
                .isEmpty)
        info.podName = "calico-node-x"
        info.podNamespace = "kube-system"
        event.container = info
        #expect(
            try outputs(
                "%k8s.ns.name/%k8s.pod.name", when: "evt.type = execve and k8s.pod.name startswith calico", [event])
                == ["kube-system/calico-node-x"])
    }

    /// `evt.arg.NAME` by Falco's names where the sensor's differ.
    @Test func falcoArgumentNames() throws {
        func holds(_ fixture: EventFixture, _ condition: String) throws -> Bool {
            try !outputs("x", when: "evt.type = \(fixture.type) and \(condition)", [fixture.event()]).isEmpty
        }
        #expect(
            try holds(
                EventFixture(
                    "openat", ret: 3, args: ["dirfd": -100, "pathname": "/var/lib/docker/x", "flags": 0o1101]),
                "evt.arg.name startswith /var/lib/docker and evt.arg.flags contains O_TRUNC and evt.arg.fd = 3"))
        #expect(
            try holds(
                EventFixture("renameat2", args: ["oldname": "/root/.bash_history", "newname": "/tmp/h"]),
                "evt.arg.oldpath endswith ash_history and evt.arg.newpath = /tmp/h"))
        #expect(
            try holds(
                EventFixture("symlinkat", args: ["target": "/etc", "linkpath": "/tmp/l"]),
                "evt.arg.target in (/etc, /root) and evt.arg.linkpath = /tmp/l"))
        #expect(
            try holds(
                EventFixture("socket", ret: 3, args: ["domain": 17, "type": 3, "protocol": 0]),
                "evt.arg.domain contains AF_PACKET"))
        #expect(
            try holds(
                EventFixture("mkdir", args: ["pathname": "/usr/bin/x", "mode": 0o755]),
                "evt.arg.path startswith /usr/bin/"))
        #expect(
            try holds(
                EventFixture("unlinkat", args: ["dirfd": -100, "pathname": "/bin/ls", "flags": 0]),
                "evt.arg.name = /bin/ls"))
        #expect(
            try holds(
                EventFixture("chmod", args: ["pathname": "/tmp/x", "mode": 0o4755]),
                "evt.arg.filename = /tmp/x and evt.arg.mode contains S_ISUID and evt.arg.mode contains S_IXOTH"))
        #expect(
            try holds(
                EventFixture("bpf", ret: 5, args: ["cmd": 5]), "evt.arg.cmd = BPF_PROG_LOAD and evt.arg.res_or_fd = 5"))
        #expect(
            try holds(
                EventFixture("ptrace", args: ["request": 16, "pid": 1]), "evt.arg.request contains PTRACE_ATTACH"))
        #expect(try holds(EventFixture("setuid", args: ["uid": 0]), "evt.arg.uid = root and evt.arg.uid = 0"))
        #expect(
            try holds(
                EventFixture("memfd_create", ret: 4, args: ["name": "x", "flags": 1]),
                "evt.arg.name = x and evt.arg.fd = 4"))
        #expect(
            try !holds(
                EventFixture("openat", ret: 3, args: ["dirfd": -100, "pathname": "/etc/x", "flags": 0]),
                "evt.arg.oldpath exists"))
    }

    /// Falco evaluates exit events only: `evt.type in (execve, execveat)` matches each exec
    /// once (the sched_process_exec as execve's exit), never the sensor's entry event; a
    /// rule that asks for `evt.dir = >` still gets the entry.
    @Test func execMatchesOncePerExec() throws {
        let entry = EventFixture("execve", pid: 60, args: ["pathname": "/bin/sh", "argv": ["sh"]]).event()
        let exit = exec()
        #expect(try outputs("%evt.dir", when: "evt.type in (execve, execveat)", [entry, exit]) == ["<"])
        #expect(try outputs("%evt.dir", when: "evt.type = execve and evt.dir = \">\"", [entry, exit]) == [">"])
        #expect(
            try outputs("%evt.dir", when: "evt.type = execve and evt.dir in (\"<\", \">\")", [entry, exit]) == [
                ">", "<",
            ])
        // A refused exec: its entry, then its exit with the error (proc.* still the old image).
        let refused = EventFixture(
            "execve", pid: 60, comm: "sh", ret: -13, args: ["pathname": "/mnt/noexec/x", "argv": ["x"]]
        ).event()
        #expect(refused.direction == .exit)
        #expect(
            try outputs(
                "%evt.dir %evt.res %proc.name %evt.arg.filename", when: "evt.type in (execve, execveat)",
                [entry, refused]) == ["< EACCES sh /mnt/noexec/x"])
        // The built-in spawned_process sees successful execs only.
        let builtin = try RuleFiles.builtin().first { $0.path.hasSuffix("00-macros.yaml") }
        let probe =
            (builtin?.text ?? "")
            + "\n- rule: Probe\n  desc: x\n  condition: spawned_process\n  output: '%evt.res'\n  priority: NOTICE\n"
        let engine = try DetectionEngine(ruleSet: RuleSet.load([("probe.yaml", probe)]))
        var results: [String] = []
        for event in [entry, refused, exit] { engine.process(event) { results.append($0.output) } }
        #expect(results == ["SUCCESS"])
        // The kernel still decides an exec-kill rule on spawned_process (it kills at the exec's entry).
        let kill =
            (builtin?.text ?? "")
            + "\n- rule: Miner\n  desc: x\n  condition: spawned_process and proc.name = xmrig\n  output: x\n  priority: CRITICAL\n  action: kill\n"
        let miner = try #require(try RuleSet.load([("kill.yaml", kill)]).rules.first { $0.name == "Miner" })
        #expect(KernelEnforcement.patterns(for: miner)?.isEmpty == false)
    }

    /// A process already running when detection starts: its working directory, ids and
    /// capabilities come from /proc (this test process's own).
    @Test func processesOlderThanDetectionReadProc() throws {
        let state = SystemState(readsProcFS: true)
        let pid = UInt32(getpid())
        let probe = EventFixture("getpid", pid: pid, container: "").event()
        let shown =
            try outputs("%proc.cwd|%group.gid|%proc.sid", when: "evt.type = getpid", [probe], state: state).first ?? ""
        let parts = shown.split(separator: "|").map(String.init)
        #expect(parts.count == 3)
        #expect(parts.first == FileManager.default.currentDirectoryPath + "/")
        #expect(parts.dropFirst().first == String(getgid()))
        #expect(parts.last == String(getsid(0)))
        // The executable's times, as stat(2) gives them for the test binary.
        let times = try #require(ProcFS.exeTimes(pid))
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var exeInfo = stat()
        #expect(stat(exe, &exeInfo) == 0)
        #expect(times.mtime == UInt64(exeInfo.st_mtim.tv_sec) * 1_000_000_000 + UInt64(exeInfo.st_mtim.tv_nsec))
        #expect(times.ctime == UInt64(exeInfo.st_ctim.tv_sec) * 1_000_000_000 + UInt64(exeInfo.st_ctim.tv_nsec))
    }
}
