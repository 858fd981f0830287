import Foundation
import SensorBPF
import Testing

@testable import Sensor

/// What an exec reports, without the kernel: sched_process_exec's context arguments decoded by
/// name, and a failed exec's second record (taken at exit) told apart from the entry's, in the
/// decoded event, in the JSON line and in that line read back. SensorExecContextTests checks the
/// same against the real kernel.
@Suite struct ExecEventTests {
    /// The names helper code and Falco's fields read (proc.cwd, user.loginuid, group.gid, ...).
    static let contextArguments: [(String, ArgumentKind)] = [
        ("gid", .u32), ("cap_permitted", .u64), ("cap_effective", .u64), ("loginuid", .u32),
        ("sid", .s32), ("pgid", .s32), ("exe_ctime", .u64), ("exe_mtime", .u64), ("cwd", .string),
    ]

    @Test func execRowNamesTheContextAfterTheOriginalArguments() throws {
        let exec = try #require(EventTable.definition(named: "sched_process_exec"))
        #expect(
            exec.arguments.prefix(7).map(\.name) == ["cmdpath", "pathname", "dev", "inode", "argv", "interp", "tty"])
        #expect(exec.arguments.dropFirst(7).map(\.name) == Self.contextArguments.map(\.0))
        #expect(exec.arguments.dropFirst(7).map(\.kind) == Self.contextArguments.map(\.1))
    }

    static func execRecord() -> SyntheticRecord {
        var record = SyntheticRecord(eventID: Int32(SENSOR_EVENT_SCHED_PROCESS_EXEC.rawValue), comm: "cat")
        record.header.return_value = 0
        record.string(0, "/bin/cat")
        record.string(1, "/bin/busybox")
        record.integer(6, .u32, 0)
        record.integer(7, .u32, 1000)
        record.integer(8, .u64, 1 << 12)  // CAP_NET_ADMIN
        record.integer(9, .u64, 1 << 12)
        record.integer(10, .u32, UInt64(UInt32.max))
        record.integer(11, .s32, 1)
        record.integer(12, .s32, UInt64(bitPattern: -1))
        record.integer(13, .u64, 1_796_552_060_986_988_678)
        record.integer(14, .u64, 1_700_000_000_000_000_001)
        record.string(15, "/tmp")
        return record
    }

    @Test func contextArgumentsDecodeByNameWithTheirTypes() {
        let event = Self.execRecord().withEvent { TraceEvent($0, bootTimeOffset: 0, containers: nil) }
        #expect(event[argument: "gid"] == .uint(1000))
        #expect(
            event[argument: "cap_permitted"] == .uint(1 << 12) && event[argument: "cap_effective"] == .uint(1 << 12))
        #expect(event[argument: "loginuid"] == .uint(4_294_967_295), "unset: (uid_t)-1, as /proc/PID/loginuid shows it")
        #expect(event[argument: "sid"] == .int(1) && event[argument: "pgid"] == .int(-1), "pid_t is signed")
        #expect(event[argument: "exe_ctime"] == .uint(1_796_552_060_986_988_678))
        #expect(event[argument: "exe_mtime"] == .uint(1_700_000_000_000_000_001))
        #expect(event[argument: "cwd"] == .string("/tmp"))
        #expect(
            event.args.map(\.type).suffix(9) == [
                "gid_t", "u64", "u64", "uid_t", "pid_t", "pid_t", "u64", "u64", "const char*",
            ])
    }

    /// A record the kernel cut short (the record was full) still decodes: the arguments it has.
    @Test func aRecordWithoutTheContextDecodesWhatItHas() {
        var record = SyntheticRecord(eventID: Int32(SENSOR_EVENT_SCHED_PROCESS_EXEC.rawValue))
        record.string(0, "/bin/cat")
        record.integer(7, .u32, 0)
        let event = record.withEvent { TraceEvent($0, bootTimeOffset: 0, containers: nil) }
        #expect(event.args.map(\.name) == ["cmdpath", "gid"])
        #expect(event[argument: "cwd"] == nil)
    }

    static func execve(failedWith errno: Int32?) -> SyntheticRecord {
        var record = SyntheticRecord(eventID: 59, comm: "sh")
        record.header.return_value = errno.map { -Int64($0) } ?? 0
        if errno != nil { record.header.flags = UInt32(SENSOR_EVENT_EXIT) }
        record.string(0, "/mnt/true")
        record.argument(1, .stringArray, Array("/mnt/true\u{0}".utf8))
        return record
    }

    static func jsonLine(_ record: SyntheticRecord) -> String {
        let (resolver, _, _) = try! JSONEventWriterTests.fakeHierarchy()
        var writer = JSONEventWriter(bootTimeOffset: 0, containers: resolver)
        return record.withEvent { event in
            let out = OutputBuffer(capacity: JSONEventWriter.maximumEventBytes)
            writer.write(event, to: out)
            return String(decoding: out.bytes, as: UTF8.self)
        }
    }

    @Test func aFailedExecsExitRecordIsTheExitWithTheError() throws {
        let entry = Self.execve(failedWith: nil).withEvent { TraceEvent($0, bootTimeOffset: 0, containers: nil) }
        let exit = Self.execve(failedWith: EACCES).withEvent { TraceEvent($0, bootTimeOffset: 0, containers: nil) }
        #expect(entry.direction == .entry && entry.returnValue == 0)
        #expect(exit.direction == .exit && exit.returnValue == -Int64(EACCES))
        #expect(exit[argument: "pathname"] == .string("/mnt/true") && exit[argument: "argv"] == .strings(["/mnt/true"]))
        #expect(exit.killedBySlot == nil && exit.deniedBySlot == nil, "the exit flag is neither a kill nor a refusal")

        // Tracee JSON: the same event name with the error as returnValue; read back, still the exit.
        let line = Self.jsonLine(Self.execve(failedWith: EACCES))
        #expect(line.contains(#""eventName":"execve","argsNum":2,"returnValue":-13,"#), "\(line)")
        let read = try TraceeJSONReader.event(fromLine: line.trimmingCharacters(in: .newlines))
        #expect(read.direction == .exit && read.returnValue == -13)
        let readEntry = try TraceeJSONReader.event(
            fromLine: Self.jsonLine(Self.execve(failedWith: nil)).trimmingCharacters(in: .newlines))
        #expect(readEntry.direction == .entry)
    }

    @Test func otherRecordsHaveTheirFixedDirection() {
        #expect(TraceEvent(eventId: "257", eventName: "openat", returnValue: -2).direction == .exit)
        #expect(TraceEvent(eventId: "231", eventName: "exit_group").direction == .entry)
        #expect(
            TraceEvent(eventId: "60", eventName: "exit", returnValue: -1).direction == .entry,
            "exit never fails: no second record")
        #expect(TraceEvent(eventId: "1003", eventName: "sched_process_exec").direction == .exit)
    }

    static func ruleFlags(_ selection: EventSelection, syscall nr: Int) -> UInt8 {
        var config = sensor_config()
        selection.apply(to: &config)
        return withUnsafeBytes(of: &config.syscalls) { $0.bindMemory(to: sensor_syscall_rule.self)[nr].flags }
    }

    /// Rules that want execve get both programs: the entry record, and the exit one for a failure.
    @Test func selectingExecveAsksForTheFailedCallsExit() throws {
        let exec = try EventSelection(parsing: ["execve,execveat,exit_group"])
        let atEntry = UInt8(SENSOR_RULE_EMIT | SENSOR_RULE_AT_ENTER)
        #expect(Self.ruleFlags(exec, syscall: 59) == atEntry | UInt8(SENSOR_RULE_FAILED_AT_EXIT))
        #expect(Self.ruleFlags(exec, syscall: 322) == atEntry | UInt8(SENSOR_RULE_FAILED_AT_EXIT))
        #expect(Self.ruleFlags(exec, syscall: 231) == atEntry, "exit_group never returns")
        #expect(exec.needsSysEnter && exec.needsSysExit)
        let exitOnly = try EventSelection(parsing: ["exit_group"])
        #expect(exitOnly.needsSysEnter && !exitOnly.needsSysExit)

        var configuration = SensorConfiguration()
        configuration.events = try EventSelection(parsing: ["execve"])
        let plan = SensorLoadPlan(
            configuration: configuration, config: sensor_config(), useLSM: false, refusesInCgroup: false)
        #expect(plan.programs.isSuperset(of: ["on_sys_enter", "on_sys_exit"]))
    }
}
