import Foundation
import Sensor
import SensorBPF
import Testing

/// The declarative event table and how `--events` and `--filter` read it.
@Suite struct EventTableTests {
    @Test func defaultSetIsTraceesV06Set() throws {
        let names = Set(EventSelection.default.ids.compactMap { EventTable.definition(id: $0)?.name })
        let expected: Set<String> = [
            "open", "close", "stat", "fstat", "lstat", "access", "dup", "dup2", "socket", "connect", "accept", "bind",
            "listen", "getsockname", "clone", "fork", "vfork", "execve", "kill", "getdents", "creat", "unlink",
            "symlink", "chmod", "fchmod", "chown", "fchown", "lchown", "ptrace", "setuid", "setgid", "setreuid",
            "setregid", "setfsuid", "setfsgid", "mknod", "prctl", "mount", "umount2", "init_module", "delete_module",
            "getdents64", "openat", "mknodat", "fchownat", "unlinkat", "symlinkat", "fchmodat", "faccessat", "accept4",
            "dup3", "process_vm_readv", "process_vm_writev", "finit_module", "memfd_create", "bpf", "execveat",
            "pkey_mprotect", "move_mount", "clone3", "close_range", "openat2", "faccessat2", "sched_process_fork",
            "sched_process_exec", "sched_process_exit", "cap_capable", "security_bprm_check", "security_file_open",
            "security_inode_unlink", "security_socket_create", "security_socket_listen", "security_socket_connect",
            "security_socket_accept", "security_socket_bind", "security_sb_mount",
        ]
        #expect(names == expected)
    }

    @Test func tableUsesTraceeNamesAndTypes() throws {
        let execve = try #require(EventTable.definition(named: "execve"))
        #expect(execve.id == 59)
        #expect(execve.arguments.map(\.name) == ["pathname", "argv"])
        #expect(execve.arguments.map(\.type) == ["const char*", "const char*const*"])
        let openat = try #require(EventTable.definition(named: "openat"))
        #expect(openat.arguments.map(\.name) == ["dirfd", "pathname", "flags", "mode"])
        #expect(openat.arguments.map(\.kind) == [.s32, .string, .s32, .u32])
        let connect = try #require(EventTable.definition(named: "connect"))
        #expect(connect.arguments.map(\.kind) == [.s32, .sockaddr, .s32])
        #expect(EventTable.definition(named: "security_file_open")?.id == 1015)
        #expect(EventTable.all.count > 350, "every x86_64 syscall is known by name")
        #expect(Set(EventTable.all.map(\.name)).count == EventTable.all.count, "names are unique")
    }

    @Test func selectionParsesNamesSetsAndRemovals() throws {
        let fs = try EventSelection(parsing: ["fs"])
        #expect(fs.ids.contains(257) && !fs.ids.contains(42))
        let mixed = try EventSelection(parsing: ["default,-close", "read"])
        #expect(!mixed.ids.contains(3) && mixed.ids.contains(0) && mixed.ids.contains(59))
        #expect(try EventSelection(parsing: ["all"]).ids.count == EventTable.all.count)
        #expect(throws: UnknownEventError.self) { try EventSelection(parsing: ["opn"]) }
    }

    @Test func argumentFiltersCheckNamesAndMatchGlobs() throws {
        let filter = try ArgumentFilter(parsing: "openat.pathname=/etc/*")
        #expect(filter.eventID == 257 && filter.argumentIndex == 1 && !filter.negated)
        #expect(try ArgumentFilter(parsing: "openat.pathname!=/proc/*").negated)
        #expect(throws: SensorConfigurationError.self) { try ArgumentFilter(parsing: "openat.path=/etc") }
        #expect(throws: SensorConfigurationError.self) { try ArgumentFilter(parsing: "nosuch.path=/etc") }
        #expect(throws: SensorConfigurationError.self) { try ArgumentFilter(parsing: "openat") }

        var record = SyntheticRecord(eventID: 257)
        record.integer(0, .s32, UInt64(bitPattern: -100))
        record.string(1, "/etc/passwd")
        #expect(record.withEvent { filter.accepts($0) })
        var other = SyntheticRecord(eventID: 257)
        other.string(1, "/tmp/x")
        #expect(!other.withEvent { filter.accepts($0) })
        #expect(SyntheticRecord(eventID: 2).withEvent { filter.accepts($0) }, "other events pass")
    }

    @Test func containerIDsComeFromEveryRuntimesCgroupPath() {
        let id = String(repeating: "ab12", count: 16)
        for path in [
            "/docker/\(id)", "/system.slice/docker-\(id).scope", "/kubepods/burstable/pod1/cri-containerd-\(id).scope",
            "/kubepods.slice/crio-\(id).scope", "/machine.slice/libpod-\(id).scope", "/docker/\(id)/init.scope",
        ] {
            #expect(ContainerResolver.containerID(fromCgroupPath: path) == id, "\(path)")
        }
        #expect(ContainerResolver.containerID(fromCgroupPath: "/user.slice/session-1.scope") == nil)
        #expect(ContainerResolver.containerID(fromCgroupPath: "/") == nil)
    }
}

/// Each event's row holds what the kernel needs for it: a want bit of its own, and a program
/// that emits it (a tracepoint's, or its syscalls' derivation), and an lsm/ one for the security events.
@Suite struct EventKernelSideTests {
    @Test func everyNonSyscallEventSaysHowTheKernelEmitsIt() {
        let others = EventTable.all.filter { $0.id >= 1000 }
        #expect(!others.isEmpty)
        var bits: Set<UInt32> = []
        for definition in others {
            let kernel = definition.kernel
            #expect(kernel.want != 0 && kernel.want & (kernel.want - 1) == 0, "\(definition.name): one want bit")
            #expect(bits.insert(kernel.want).inserted, "\(definition.name): a bit of its own")
            #expect(
                kernel.program != nil || !definition.derivedFrom.isEmpty,
                "\(definition.name): emitted by a program or derived")
            if definition.name.hasPrefix("security_") {
                #expect(kernel.lsmProgram != nil, "\(definition.name): its lsm/ program")
            }
            for syscall in definition.derivedFrom {
                #expect(EventTable.definition(named: syscall) != nil, "\(definition.name) from \(syscall)")
            }
        }
        for definition in EventTable.all where definition.id < 1000 { #expect(definition.kernel == KernelSide()) }
    }
}
