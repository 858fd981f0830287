import Foundation
import KernelTestSupport
import Sensor
import Testing

/// What the kernel reports about an exec, checked against what the exec'd process itself reads
/// in /proc (its own pid namespace and mount) and what stat says of its executable: the context
/// of sched_process_exec, and a refused exec's result at syscall exit. Real kernel, real Docker.
@Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
struct SensorExecContextTests {
    /// One container run to its end: its output, and the traced events carrying its name.
    static func run(_ options: [String], script: String, events: String) throws -> (
        output: String, events: [[String: Any]]
    ) {
        let name = "caduceus-exec-\(UUID().uuidString.prefix(8).lowercased())"
        var configuration = SensorConfiguration()
        configuration.scope = .containers
        configuration.events = try EventSelection(parsing: [events])
        let trace = try BackgroundTrace(configuration, marker: name)
        defer { _ = try? SensorTestEnvironment.run(["docker", "rm", "-f", name]) }
        try SensorTestEnvironment.run(
            ["docker", "run", "-d", "--network", "host", "--name", name] + options + [
                SensorTestEnvironment.image, "/bin/sh", "-c", script,
            ])
        #expect(try SensorTestEnvironment.run(["docker", "wait", name]) == "0")
        let output = try SensorTestEnvironment.run(["docker", "logs", name])
        let (report, all) = try trace.finish()
        #expect(report.statistics.lost == 0)
        return (output, all.filter { $0.containerName == name })
    }

    /// `/proc/self/status` lines (`CapEff:\t0000...`) by key, and `/proc/self/stat`'s fields.
    struct ProcSelf {
        var status: [String: [String]] = [:]
        var stat: [String] = []
        var loginuid: String?

        init(_ output: String) {
            for line in output.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
                guard let first = fields.first else { continue }
                if first.hasSuffix(":") {
                    status[String(first.dropLast())] = Array(fields.dropFirst())
                } else if fields.count > 20, fields[1].hasPrefix("(") {
                    stat = fields  // pid (comm) state ppid pgrp session ...
                } else if fields.count == 1, UInt32(first) != nil {
                    loginuid = first
                }
            }
        }

        func capability(_ key: String) -> UInt64? { status[key]?.first.flatMap { UInt64($0, radix: 16) } }
    }

    static let readSelf = "/proc/self/status /proc/self/stat /proc/self/loginuid"

    /// Root without capabilities but NET_ADMIN, in /tmp, running a copy of busybox whose mtime was
    /// set back (timestomped): every context argument against the process's own view.
    @Test func execContextMatchesProcAndStatWithCapabilitiesDropped() throws {
        // stat before the exec too: on 6.13+ a stat marks the ctime queried (a flag bit in its nanoseconds).
        let script =
            "mkdir /tmp/x && cp /bin/busybox /tmp/x/busybox && touch -t 200102030405.06 /tmp/x/busybox"
            + " && stat /tmp/x/busybox >/dev/null && /tmp/x/busybox cat \(Self.readSelf) && echo && stat -c 'times %Z %Y' /tmp/x/busybox"
        let (output, events) = try Self.run(
            ["--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "-w", "/tmp"], script: script, events: "sched_process_exec")
        let proc = ProcSelf(output)
        try #require(proc.stat.count > 5, "busybox's own /proc/self/stat: \(output)")
        let exec = try #require(
            events.first { $0.name == "sched_process_exec" && $0.argument("pathname") as? String == "/tmp/x/busybox" })

        #expect(proc.capability("CapEff") == 1 << 12, "the container has CAP_NET_ADMIN only: \(output)")
        #expect(exec.argument("cap_effective") as? UInt64 == proc.capability("CapEff"))
        #expect(exec.argument("cap_permitted") as? UInt64 == proc.capability("CapPrm"))
        #expect(exec.argument("gid") as? Int == proc.status["Gid"].flatMap { Int($0[1]) }, "the effective gid")
        #expect(exec.argument("loginuid") as? Int == proc.loginuid.flatMap { Int($0) })
        #expect(exec.argument("pgid") as? Int == Int(proc.stat[4]) && exec.argument("sid") as? Int == Int(proc.stat[5]))
        #expect(exec.argument("cwd") as? String == "/tmp", "docker run -w /tmp")

        let times = try #require(output.split(separator: "\n").first { $0.hasPrefix("times ") }?.split(separator: " "))
        let ctime = try #require(exec.argument("exe_ctime") as? UInt64)
        let mtime = try #require(exec.argument("exe_mtime") as? UInt64)
        #expect(String(ctime / 1_000_000_000) == times[1], "stat's %Z")
        #expect(
            mtime == 981_173_106_000_000_000 && String(mtime / 1_000_000_000) == times[2],
            "touch -t 200102030405.06, UTC")
        #expect(ctime > mtime, "the copy's ctime is now: the times say the file was timestomped")
    }

    /// An unprivileged user in a session of its own (setsid): gid 1000, no capabilities, and the
    /// session and group ids as the container numbers them (the host's would be far larger).
    @Test func execContextOfAnUnprivilegedUserInItsOwnSession() throws {
        let (output, events) = try Self.run(
            ["--user", "1000:1000", "-w", "/etc"], script: "/bin/setsid /bin/cat \(Self.readSelf); true",
            events: "sched_process_exec")
        // `; true`: the shell forks setsid (not a group leader, so setsid does not fork again) and waits.
        let proc = ProcSelf(output)
        try #require(proc.stat.count > 5, "cat's own /proc/self/stat: \(output)")
        let exec = try #require(
            events.first { $0.name == "sched_process_exec" && $0.argument("cmdpath") as? String == "/bin/cat" })
        #expect(exec.argument("gid") as? Int == 1000 && proc.status["Gid"]?[1] == "1000")
        #expect(exec.argument("cap_effective") as? Int == 0 && proc.capability("CapEff") == 0)
        #expect(exec.argument("cap_permitted") as? Int == 0 && proc.capability("CapPrm") == 0)
        #expect(exec.argument("loginuid") as? Int == proc.loginuid.flatMap { Int($0) })
        let ownPid = try #require(Int(proc.stat[0]))
        #expect(ownPid > 1 && ownPid < 100, "a pid of the container's namespace: \(proc.stat.prefix(6))")
        #expect(exec.argument("sid") as? Int == ownPid && Int(proc.stat[5]) == ownPid, "setsid: its own session")
        #expect(exec.argument("pgid") as? Int == Int(proc.stat[4]))
        #expect(exec.argument("cwd") as? String == "/etc")
    }

    /// An exec refused by a noexec mount, and one of a missing file: each reported at entry and
    /// again at exit with its error; neither reaches sched_process_exec.
    @Test func refusedExecsReportTheirErrorAtExit() throws {
        let script = "cp /bin/busybox /mnt/busybox; /mnt/busybox true; /nonexistent-binary; /bin/true"
        let (output, events) = try Self.run(
            ["--tmpfs", "/mnt:noexec"], script: script, events: "execve,sched_process_exec")
        #expect(output.contains("Permission denied"), "\(output)")
        let refused = events.filter { $0.name == "execve" && $0.argument("pathname") as? String == "/mnt/busybox" }
        #expect(refused.map { $0["returnValue"] as? Int } == [0, -Int(EACCES)], "entry, then exit with EACCES")
        #expect(refused.last?.argument("argv") as? [String] == ["/mnt/busybox", "true"])
        let missing = events.filter {
            $0.name == "execve" && $0.argument("pathname") as? String == "/nonexistent-binary"
        }
        #expect(missing.map { $0["returnValue"] as? Int } == [0, -Int(ENOENT)])
        #expect(
            !events.contains { $0.name == "sched_process_exec" && $0.argument("pathname") as? String == "/mnt/busybox" }
        )
        let succeeded = events.filter { $0.name == "execve" && $0.argument("pathname") as? String == "/bin/true" }
        #expect(succeeded.count == 1, "a successful exec has its entry only")

        // The JSON line read back says which record is the exit.
        let exitLine = try JSONSerialization.data(withJSONObject: try #require(refused.last))
        #expect(try TraceeJSONReader.event(fromLine: exitLine).direction == .exit)
        let entryLine = try JSONSerialization.data(withJSONObject: try #require(refused.first))
        #expect(try TraceeJSONReader.event(fromLine: entryLine).direction == .entry)
    }
}
