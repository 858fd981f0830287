import Detection
import Sensor
import Testing

/// The process and descriptor tables the engine keeps from the event stream.
@Suite struct EngineStateTests {
    static let rules = """
        - macro: spawned_process
          condition: evt.type in (execve, execveat) and evt.dir = <
        - rule: Shell under a server
          id: T-1
          desc: x
          condition: spawned_process and proc.name = sh and proc.aname[2] = server
          output: "shell %proc.cmdline parent %proc.pname grandparent %proc.aname[2] exe %proc.exepath"
          priority: WARNING
        - rule: Stdio to socket
          id: T-2
          desc: x
          condition: evt.type in (dup2, dup3) and evt.rawres in (0, 1, 2) and fd.type in (ipv4, ipv6)
          output: "%fd.name %fd.sip %fd.sport %fd.l4proto"
          priority: CRITICAL
        - rule: Write to a file through a duplicated descriptor
          id: T-3
          desc: x
          condition: evt.type = write and fd.name = /etc/cron.d/job
          output: "%fd.name %fd.num"
          priority: WARNING
        """

    @Test func processTreeFollowsForkAndExec() throws {
        let harness = try EngineHarness(
            rules: Self.rules, processes: [ProcessRecord(pid: 10, ppid: 1, name: "server", exePath: "/srv/server")])
        let alerts = harness.run([
            EventFixture(
                "sched_process_fork", pid: 10, comm: "server",
                args: ["parent_pid": 10, "child_pid": 11, "child_tid": 11]),
            EventFixture(
                "sched_process_exec", pid: 11, ppid: 10, comm: "python3",
                args: ["pathname": "/usr/bin/python3", "argv": ["python3", "x.py"]]),
            EventFixture(
                "sched_process_fork", pid: 11, ppid: 10, comm: "python3",
                args: ["parent_pid": 11, "child_pid": 12, "child_tid": 12]),
            EventFixture(
                "sched_process_exec", pid: 12, ppid: 11, comm: "sh",
                args: ["pathname": "/bin/sh", "argv": ["sh", "-c", "id"]]),
        ])
        #expect(alerts.map(\.ruleId) == ["T-1"])
        #expect(alerts.first?.output == "shell sh -c id parent python3 grandparent server exe /bin/sh")
        #expect(alerts.first?.ancestors.map(\.name) == ["python3", "server"])
        let child = try #require(harness.engine.state.process(pid: 12))
        #expect(child.startTime == EventFixture.init("x").time)

        // The exit of the process removes it; a thread's exit does not.
        harness.run([EventFixture("sched_process_exit", pid: 12, ppid: 11, comm: "sh")])
        #expect(harness.engine.state.process(pid: 12) == nil)
        var threadExit = EventFixture("sched_process_exit", pid: 11, ppid: 10, comm: "python3")
        threadExit.tid = 99
        harness.run([threadExit])
        #expect(harness.engine.state.process(pid: 11) != nil)
    }

    @Test func descriptorsFollowSocketConnectDupAndClose() throws {
        let harness = try EngineHarness(rules: Self.rules)
        let alerts = harness.run([
            EventFixture("socket", pid: 20, comm: "nc", ret: 3, args: ["domain": 2, "type": 1, "protocol": 0]),
            EventFixture("connect", pid: 20, comm: "nc", args: ["sockfd": 3, "addr": "127.0.0.1:4444"]),
            EventFixture("dup2", pid: 20, comm: "nc", ret: 0, args: ["oldfd": 3, "newfd": 0]),
            EventFixture("dup2", pid: 20, comm: "nc", ret: 1, args: ["oldfd": 3, "newfd": 1]),
            EventFixture("close", pid: 20, comm: "nc", args: ["fd": 3]),
            EventFixture("dup2", pid: 20, comm: "nc", ret: 2, args: ["oldfd": 3, "newfd": 2]),
        ])
        #expect(alerts.map(\.ruleId) == ["T-2", "T-2"], "after close, fd 3 is nothing: the third dup2 does not fire")
        #expect(alerts.first?.output == "0.0.0.0:0->127.0.0.1:4444 127.0.0.1 4444 tcp")
        let fds = try #require(harness.engine.state.process(pid: 20)).descriptors
        #expect(fds[0]?.remotePort == 4444 && fds[1]?.remoteIP == "127.0.0.1" && fds[3] == nil)
    }

    @Test func filesFollowOpenDupAndFork() throws {
        let harness = try EngineHarness(rules: Self.rules)
        let alerts = harness.run([
            EventFixture(
                "openat", pid: 30, comm: "sh", ret: 5,
                args: ["dirfd": -100, "pathname": "/etc/cron.d/job", "flags": 0o1101]),
            EventFixture("dup", pid: 30, comm: "sh", ret: 7, args: ["oldfd": 5]),
            EventFixture(
                "sched_process_fork", pid: 30, comm: "sh", args: ["parent_pid": 30, "child_pid": 31, "child_tid": 31]),
            EventFixture("write", pid: 31, ppid: 30, comm: "sh", ret: 10, args: ["fd": 7, "count": 10]),
            EventFixture("write", pid: 31, ppid: 30, comm: "sh", ret: 10, args: ["fd": 8, "count": 10]),
        ])
        #expect(alerts.map(\.output) == ["/etc/cron.d/job 7"], "the child inherits fd 7, a dup of fd 5")
    }

    @Test func relativeOpensTakeTheKernelsAbsolutePath() throws {
        let harness = try EngineHarness(rules: Self.rules)
        harness.run([
            EventFixture("openat", pid: 40, comm: "sh", ret: 4, args: ["dirfd": -100, "pathname": "job", "flags": 1]),
            EventFixture("security_file_open", pid: 40, comm: "sh", args: ["pathname": "/etc/cron.d/job", "flags": 1]),
        ])
        #expect(harness.engine.state.process(pid: 40)?.descriptors[4]?.path == "/etc/cron.d/job")
    }

    @Test func droppedBinariesAreKnownAtExec() throws {
        let harness = try EngineHarness(
            rules: """
                - rule: Drop and execute
                  id: T-4
                  desc: x
                  condition: evt.type = execve and evt.dir = < and proc.is_exe_upper_layer = true
                  output: "%proc.exepath"
                  priority: CRITICAL
                """)
        let alerts = harness.run([
            EventFixture(
                "security_file_open", pid: 50, comm: "wget", args: ["pathname": "/tmp/miner", "flags": 0o1101]),
            EventFixture(
                "sched_process_exec", pid: 51, ppid: 1, comm: "miner",
                args: ["pathname": "/tmp/miner", "argv": ["./miner"]]),
            EventFixture(
                "sched_process_exec", pid: 52, ppid: 1, comm: "ls", args: ["pathname": "/bin/ls", "argv": ["ls"]]),
            EventFixture(
                "sched_process_exec", pid: 53, ppid: 1, comm: "miner", container: "",
                args: ["pathname": "/tmp/miner", "argv": ["./miner"]]),
        ])
        #expect(alerts.map(\.output) == ["/tmp/miner"], "only the container that wrote the file, only that file")
    }

    @Test func theProcessTableIsBounded() throws {
        let engine = try DetectionEngine(
            ruleSet: RuleSet.load([("r.yaml", Self.rules)]), state: SystemState(capacity: 100))
        for pid in UInt32(1000)..<UInt32(1500) {
            var fixture = EventFixture("openat", pid: pid, ret: 3, args: ["pathname": "/x", "flags": 0])
            fixture.time += UInt64(pid)
            engine.process(fixture.event()) { _ in }
        }
        #expect(engine.state.processes.count <= 100)
        #expect(engine.state.evicted >= 400)
        #expect(engine.state.process(pid: 1499) != nil, "the most recent stay")
    }
}
