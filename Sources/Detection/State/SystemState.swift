import Foundation
import Sensor

/// How an event changes the process and descriptor tables. Resolved once per event type.
enum StateAction: Sendable {
    case none
    case fork, exec, exit
    /// A syscall returning a new file descriptor for `path` (open, openat, creat).
    case open(path: String, flags: String?)
    case securityFileOpen
    case memfd
    case socket, connect, bind, listen, accept
    case dup
    case close
    /// A file moved or linked into place at `to` (rename, link): a write at the new path.
    case placeFile(to: String)
    /// chdir (a path) or fchdir (a descriptor): the working directory.
    case chdir, fchdir
    /// setgid, setresgid: the group id from this argument.
    case setgid(String)

    static func of(_ eventName: String) -> StateAction {
        switch eventName {
        case "sched_process_fork": return .fork
        case "sched_process_exec": return .exec
        case "sched_process_exit": return .exit
        case "open", "openat", "openat2": return .open(path: "pathname", flags: eventName == "openat2" ? nil : "flags")
        case "creat": return .open(path: "pathname", flags: nil)
        case "security_file_open": return .securityFileOpen
        case "memfd_create": return .memfd
        case "socket": return .socket
        case "connect": return .connect
        case "bind": return .bind
        case "listen": return .listen
        case "accept", "accept4": return .accept
        case "dup", "dup2", "dup3": return .dup
        case "close": return .close
        case "rename", "renameat", "renameat2", "link", "linkat": return .placeFile(to: "newname")
        case "chdir": return .chdir
        case "fchdir": return .fchdir
        case "setgid", "setfsgid": return .setgid("gid")
        case "setresgid", "setregid": return .setgid("egid")
        default: return .none
        }
    }
}

/// The process table and each process's descriptors, built from the event stream (and
/// from /proc when live), bounded in memory: exited processes are dropped at their exit
/// event, and when the table is full the quarter least recently seen goes.
public final class SystemState {
    public private(set) var processes: [UInt32: ProcessRecord] = [:]
    public let capacity: Int
    /// Processes dropped because the table was full.
    public private(set) var evicted = 0
    /// Read /proc for processes first seen mid-life, and for terminals at exec (live only).
    public var readsProcFS: Bool
    /// Read each new image's environment from /proc (only when a rule names proc.env).
    public var readsEnvironment = false
    /// Files written inside containers since detection started ("container\0path"), for
    /// "dropped binary executed"; bounded like the process table.
    private var writtenFiles: Set<String> = []
    public let writtenFilesCapacity: Int
    private var userNames = NamesByContainer()
    private var groupNames = NamesByContainer()

    public init(capacity: Int = 32768, writtenFilesCapacity: Int = 65536, readsProcFS: Bool = false) {
        self.capacity = capacity
        self.writtenFilesCapacity = writtenFilesCapacity
        self.readsProcFS = readsProcFS
    }

    // MARK: - Lookup

    /// The event's process, created from the event (or /proc) when first seen.
    func process(for event: TraceEvent) -> ProcessRecord {
        let pid = event.hostProcessId
        if let known = processes[pid] {
            known.lastSeen = event.timestamp
            if event.hostParentProcessId != 0 { known.ppid = event.hostParentProcessId }
            // The leader renamed itself (prctl; busybox applets exec'd through /proc/self/exe start as "exe").
            if event.hostThreadId == pid && known.name != event.processName { known.rename(event.processName) }
            return known
        }
        let record =
            (readsProcFS ? Self.fromProcFS(pid) : nil)
            ?? ProcessRecord(
                pid: pid, vpid: event.processId, ppid: event.hostParentProcessId, name: event.processName,
                uid: event.userId, startTime: event.timestamp, containerID: event.containerId)
        record.vpid = event.processId
        record.containerID = event.containerId
        record.lastSeen = event.timestamp
        insert(record)
        return record
    }

    public func process(pid: UInt32) -> ProcessRecord? { processes[pid] }

    /// The ancestor `level` generations up (1 is the parent), while the chain is known.
    public func ancestor(of record: ProcessRecord, level: Int) -> ProcessRecord? {
        var current = record
        for _ in 0..<level {
            guard let parent = parent(of: current) else { return nil }
            current = parent
        }
        return current
    }

    /// The parent's record; live, a parent started outside the watched scope (a container
    /// runtime's shim) is read from /proc the first time it is needed.
    func parent(of record: ProcessRecord) -> ProcessRecord? {
        guard record.ppid != 0, record.ppid != record.pid else { return nil }
        if let parent = processes[record.ppid] { return parent }
        guard readsProcFS, let parent = Self.fromProcFS(record.ppid) else { return nil }
        insert(parent)
        return parent
    }

    /// Ancestors from the parent up, at most `limit`.
    public func ancestors(of record: ProcessRecord, limit: Int = 16) -> [ProcessRecord] {
        var result: [ProcessRecord] = []
        var current = record
        while result.count < limit, let parent = parent(of: current) {
            result.append(parent)
            current = parent
        }
        return result
    }

    /// Adds a process known from elsewhere (/proc at start-up, a test's fixture).
    public func insert(_ record: ProcessRecord) {
        if processes.count >= capacity && processes[record.pid] == nil { evictStalest() }
        processes[record.pid] = record
    }

    /// Every process now running, from /proc: the state for processes that predate detection.
    public func seedFromProcFS() {
        for pid in ProcFS.processIDs() where processes[pid] == nil {
            if let record = Self.fromProcFS(pid) { insert(record) }
        }
    }

    static func fromProcFS(_ pid: UInt32) -> ProcessRecord? {
        guard let stat = ProcFS.stat(pid) else { return nil }
        let record = ProcessRecord(
            pid: pid, ppid: stat.ppid, name: stat.name, exePath: ProcFS.exePath(pid) ?? "",
            argv: ProcFS.argv(pid) ?? [],
            tty: stat.tty, uid: ProcFS.uid(pid) ?? 0,
            startTime: ProcFS.bootTime + stat.startTicks * (1_000_000_000 / ProcFS.ticksPerSecond),
            containerID: ProcFS.containerID(pid))
        readDetails(record, exeTimes: true)
        return record
    }

    /// Ids, capabilities, working directory and (with `exeTimes`) the executable's times
    /// from /proc, for what the events did not carry.
    static func readDetails(_ record: ProcessRecord, exeTimes: Bool) {
        let pid = record.pid
        if let status = ProcFS.status(pid) {
            record.gid = status.gid ?? record.gid
            record.capPermitted = status.capPermitted
            record.capEffective = status.capEffective
            record.vpgid = status.vpgid
            record.sid = status.sid
        }
        record.loginUid = ProcFS.loginUid(pid) ?? record.loginUid
        record.cwd = ProcFS.cwd(pid) ?? record.cwd
        if exeTimes, let times = ProcFS.exeTimes(pid) {
            record.exeCtime = times.ctime
            record.exeMtime = times.mtime
        }
    }

    /// What the exec event carries beyond the image (when the sensor sends it), else /proc
    /// when live: ids, capabilities, working directory, the executable's times.
    func applyExecDetails(_ event: TraceEvent, _ process: ProcessRecord) {
        var missing = false
        func unsigned(_ name: String) -> UInt64? {
            guard let value = event[argument: name] else { missing = true; return nil }
            switch value {
            case .uint(let n): return n
            case .int(let n): return UInt64(bitPattern: n)
            default: missing = true; return nil
            }
        }
        if let gid = unsigned("gid") { process.gid = UInt32(truncatingIfNeeded: gid) }
        if let caps = unsigned("cap_permitted") { process.capPermitted = caps }
        if let caps = unsigned("cap_effective") { process.capEffective = caps }
        if let login = unsigned("loginuid") { process.loginUid = UInt32(truncatingIfNeeded: login) }
        if let sid = unsigned("sid") { process.sid = Int64(Int32(truncatingIfNeeded: sid)) }
        if let pgid = unsigned("pgid") { process.vpgid = Int64(Int32(truncatingIfNeeded: pgid)) }
        let ctime = unsigned("exe_ctime"), mtime = unsigned("exe_mtime")
        process.exeCtime = ctime
        process.exeMtime = mtime
        if let cwd = event[argument: "cwd"]?.string, cwd.hasPrefix("/") {
            process.cwd = cwd.hasSuffix("/") ? cwd : cwd + "/"
        } else {
            missing = true
        }
        if missing && readsProcFS { Self.readDetails(process, exeTimes: ctime == nil) }
    }

    /// A user's name: root for 0; live, from the container's own /etc/passwd.
    func userName(uid: UInt32, process: ProcessRecord) -> String? {
        uid == 0 ? "root" : readsProcFS ? userNames.name(uid, process) { ProcFS.userNames(rootOf: $0) } : nil
    }

    /// A group's name: root for 0; live, from the container's own /etc/group.
    func groupName(gid: UInt32, process: ProcessRecord) -> String? {
        gid == 0 ? "root" : readsProcFS ? groupNames.name(gid, process) { ProcFS.groupNames(rootOf: $0) } : nil
    }

    func wasWritten(_ path: String, container: String) -> Bool {
        !writtenFiles.isEmpty && writtenFiles.contains(container + "\0" + path)
    }

    // MARK: - Updates

    /// What the event creates or changes, applied before rules see it (so an openat's
    /// fd.name is its own path).
    func applyBefore(_ event: TraceEvent, _ action: StateAction, _ process: ProcessRecord) {
        let ret = event.returnValue
        switch action {
        case .none, .exit, .close:
            break
        case .listen:
            if ret == 0, let fd = Self.fdArgument(event, "sockfd") { process.descriptors[fd]?.isServer = true }
        case .fork:
            guard let childPid = event[argument: "child_pid"]?.integer,
                let childTid = event[argument: "child_tid"]?.integer,
                childPid == childTid, childPid > 0
            else { return }  // a new thread shares everything with its process
            let parent = processes[UInt32(event[argument: "parent_pid"]?.integer ?? Int64(process.pid))] ?? process
            let vpid = UInt32(truncatingIfNeeded: event[argument: "child_ns_pid"]?.integer ?? 0)
            insert(parent.forked(pid: UInt32(childPid), vpid: vpid, time: event.timestamp))
        case .exec:
            let path = event[argument: "pathname"]?.string ?? ""
            var argv: [String] = []
            if case .strings(let values)? = event[argument: "argv"] { argv = values }
            var name = event.processName
            // A program re-executing itself through /proc/self/exe (busybox applets) starts as
            // "exe" and renames itself to argv[0] right after: name it so from the start.
            if event[argument: "cmdpath"]?.string?.hasSuffix("/proc/self/exe") == true, let first = argv.first,
                !first.isEmpty
            {
                let base = first.split(separator: "/").last.map(String.init) ?? first
                name = String(decoding: base.utf8.prefix(15), as: UTF8.self)
            }
            process.exec(name: name, exePath: path, argv: argv)
            process.uid = event.userId
            process.exeWrittenInContainer = !event.containerId.isEmpty && wasWritten(path, container: event.containerId)
            if let tty = event[argument: "tty"]?.integer {
                process.tty = tty  // the sensor reads it in the kernel at exec
            } else if readsProcFS, let stat = ProcFS.stat(process.pid) {
                process.tty = stat.tty
            }
            if readsProcFS && readsEnvironment { process.environment = ProcFS.environment(process.pid) }
            applyExecDetails(event, process)
        case .chdir:
            guard ret == 0, let path = event[argument: "filename"]?.string, !path.isEmpty else { return }
            process.cwd = Self.directory(path, from: process.cwd)
        case .fchdir:
            guard ret == 0, let fd = Self.fdArgument(event, "fd"), let directory = process.descriptors[fd],
                directory.path.hasPrefix("/")
            else { return }
            process.cwd = directory.path.hasSuffix("/") ? directory.path : directory.path + "/"
        case .setgid(let argument):
            guard ret == 0, let gid = event[argument: argument]?.integer, gid >= 0, gid < UInt32.max else { return }
            process.gid = UInt32(gid)
        case .open(let pathArgument, let flagsArgument):
            // creat: O_CREAT|O_WRONLY|O_TRUNC
            let flags = flagsArgument.flatMap { event[argument: $0]?.integer } ?? (0o1101)
            guard ret >= 0, let given = event[argument: pathArgument]?.string else { return }
            var path = given
            if !path.hasPrefix("/") {
                let dirfd = Self.fdArgument(event, "dirfd") ?? -100
                if dirfd >= 0, let directory = process.descriptors[dirfd], directory.kind == .directory {
                    path = directory.path + "/" + path
                } else if let recent = process.recentOpen, recent.tid == event.hostThreadId, recent.fd == nil,
                    let absolute = recent.path
                {
                    path = absolute
                } else if dirfd == -100, process.cwd.hasPrefix("/") {
                    path = process.cwd + path  // AT_FDCWD: Falco's fd.name joins the working directory
                }
            }
            // Falco's fd.name is the path with `.`, `..` and repeated slashes resolved by name
            // (fd.nameraw keeps the caller's string).
            if path.hasPrefix("/") { path = Self.resolvedPath(path) }
            process.recentOpen = (event.hostThreadId, Int32(truncatingIfNeeded: ret), path.hasPrefix("/") ? nil : path)
            let kind: FileDescriptor.Kind = flags & 0o200000 != 0 ? .directory : .file
            process.descriptors[Int32(truncatingIfNeeded: ret)] = FileDescriptor(kind: kind, path: path)
            if Self.isWrite(flags) && path.hasPrefix("/") { noteWritten(path, event) }
        case .securityFileOpen:
            guard let path = event[argument: "pathname"]?.string else { return }
            if let recent = process.recentOpen, recent.tid == event.hostThreadId, let fd = recent.fd, recent.path != nil
            {
                process.descriptors[fd]?.path = path  // the openat came first with a relative path
                process.recentOpen = nil
            } else {
                process.recentOpen = (event.hostThreadId, nil, path)
            }
            if Self.isWrite(event[argument: "flags"]?.integer ?? 0) { noteWritten(path, event) }
        case .memfd:
            guard ret >= 0 else { return }
            process.descriptors[Int32(truncatingIfNeeded: ret)] = FileDescriptor(
                kind: .memfd, path: "/memfd:" + (event[argument: "name"]?.string ?? ""))
        case .socket:
            guard ret >= 0 else { return }
            let domain = event[argument: "domain"]?.integer ?? 0
            let type = (event[argument: "type"]?.integer ?? 0) & 0xF
            let kind: FileDescriptor.Kind =
                [1: .unix, 2: .ipv4, 10: .ipv6, 16: .netlink, 17: .packet][domain] ?? .other
            let proto: String? = kind == .ipv4 || kind == .ipv6 ? [1: "tcp", 2: "udp", 3: "raw"][type] : nil
            process.descriptors[Int32(truncatingIfNeeded: ret)] = FileDescriptor(kind: kind, l4proto: proto)
        case .connect, .bind:
            guard ret == 0 || ret == -115, let fd = Self.fdArgument(event, "sockfd"),
                let address = event[argument: "addr"]
            else { return }
            var descriptor = process.descriptors[fd] ?? FileDescriptor(kind: Self.kind(of: address), l4proto: nil)
            let endpoint = Self.endpoint(address)
            if descriptor.kind == .unix || Self.kind(of: address) == .unix {
                descriptor.kind = .unix
                if !endpoint.ip.isEmpty { descriptor.path = endpoint.ip }
            } else if case .connect = action {
                descriptor.remoteIP = endpoint.ip
                descriptor.remotePort = endpoint.port
            } else {
                descriptor.localIP = endpoint.ip
                descriptor.localPort = endpoint.port
            }
            process.descriptors[fd] = descriptor
        case .accept:
            guard ret >= 0 else { return }
            let listening = Self.fdArgument(event, "sockfd").flatMap { process.descriptors[$0] }
            var descriptor =
                listening ?? FileDescriptor(kind: event[argument: "addr"].map(Self.kind(of:)) ?? .other, l4proto: "tcp")
            if let address = event[argument: "addr"] {
                let endpoint = Self.endpoint(address)
                if descriptor.kind != .unix {
                    descriptor.remoteIP = endpoint.ip
                    descriptor.remotePort = endpoint.port
                }
            }
            descriptor.isServer = true
            process.descriptors[Int32(truncatingIfNeeded: ret)] = descriptor
        case .dup:
            guard ret >= 0, let old = Self.fdArgument(event, "oldfd"), let descriptor = process.descriptors[old] else {
                return
            }
            process.descriptors[Int32(truncatingIfNeeded: ret)] = descriptor
        case .placeFile(let to):
            if ret == 0, let path = event[argument: to]?.string, path.hasPrefix("/") { noteWritten(path, event) }
        }
    }

    /// What the event ends, applied after rules saw it (a close's fd.name is still known).
    func applyAfter(_ event: TraceEvent, _ action: StateAction, _ process: ProcessRecord) {
        switch action {
        case .close:
            if event.returnValue == 0, let fd = Self.fdArgument(event, "fd") { process.descriptors[fd] = nil }
        case .exit:
            // The leader's exit ends the process; a thread's exit ends only the thread.
            if event.hostThreadId == event.hostProcessId { processes[process.pid] = nil }
        default:
            break
        }
    }

    // MARK: - Helpers

    /// An absolute path with `.`, `..` and repeated slashes resolved by name.
    static func resolvedPath(_ path: String) -> String {
        // A byte scan: StringProtocol.contains goes through Foundation's CFStringFind, a
        // twentieth of the engine's time when it ran on every open.
        let needsResolving =
            path.utf8.withContiguousStorageIfAvailable { bytes in
                bytes.indices.dropLast().contains {
                    bytes[$0] == UInt8(ascii: "/")
                        && (bytes[$0 + 1] == UInt8(ascii: ".") || bytes[$0 + 1] == UInt8(ascii: "/"))
                }
            } ?? (path.contains("/.") || path.contains("//"))
        guard needsResolving else { return path }
        let directory = directory(path, from: "/")
        return directory == "/" || path.hasSuffix("/") ? directory : String(directory.dropLast())
    }

    /// `path` as a directory ending in '/', relative ones taken from `current`; `.` and
    /// `..` resolved by name (as the kernel would, but for symlinks).
    static func directory(_ path: String, from current: String) -> String {
        var parts: [Substring] = path.hasPrefix("/") ? [] : current.split(separator: "/")
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
            if parts.count > 512 { break }
        }
        return "/" + parts.joined(separator: "/") + (parts.isEmpty ? "" : "/")
    }

    static func fdArgument(_ event: TraceEvent, _ name: String) -> Int32? {
        event[argument: name]?.integer.map { Int32(truncatingIfNeeded: $0) }
    }

    static func isWrite(_ flags: Int64) -> Bool { flags & 3 != 0 || flags & 0o1100 != 0 }

    static func kind(of address: ArgumentValue) -> FileDescriptor.Kind {
        switch address.field("sa_family") {
        case "AF_INET": return .ipv4
        case "AF_INET6": return .ipv6
        case "AF_UNIX": return .unix
        default:
            if case .string(let text) = address {
                return text.hasPrefix("/") ? .unix : text.contains("[") ? .ipv6 : .ipv4
            }
            return .other
        }
    }

    /// An address argument as (ip or unix path, port): Tracee's field lists or "ip:port" text.
    static func endpoint(_ address: ArgumentValue) -> (ip: String, port: Int?) {
        if case .fields = address {
            if let path = address.field("sun_path") { return (path, nil) }
            let ip = address.field("sin_addr") ?? address.field("sin6_addr") ?? ""
            return (ip, (address.field("sin_port") ?? address.field("sin6_port")).flatMap { Int($0) })
        }
        guard case .string(let text) = address else { return ("", nil) }
        if text.hasPrefix("/") { return (text, nil) }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        let host = text[..<colon].trimmingCharacters(in: ["[", "]"])
        return (host, Int(text[text.index(after: colon)...]))
    }

    private func noteWritten(_ path: String, _ event: TraceEvent) {
        guard !event.containerId.isEmpty else { return }
        if writtenFiles.count >= writtenFilesCapacity {
            writtenFiles = Set(writtenFiles.dropFirst(writtenFilesCapacity / 2))
        }
        writtenFiles.insert(event.containerId + "\0" + path)
    }

    private func evictStalest() {
        let stalest = processes.values.map { ($0.lastSeen, $0.pid) }.sorted { $0.0 < $1.0 }.prefix(max(capacity / 4, 1))
        for (_, pid) in stalest { processes[pid] = nil }
        evicted += stalest.count
    }
}

/// Names by id (users or groups) read from each container's own files, cached per container.
/// When a container's file last gave no names (unreadable, hostile, or the process gone) it is
/// not read again for `retry` nanoseconds, so a container cannot make every event cost a read.
struct NamesByContainer {
    static let retry: UInt64 = 10_000_000_000
    private var byContainer: [String: [UInt32: String]] = [:]
    private var missed: [String: UInt64] = [:]

    mutating func name(_ id: UInt32, _ process: ProcessRecord, read: (UInt32) -> [UInt32: String]) -> String? {
        if let names = byContainer[process.containerID] { return names[id] }
        let now = DispatchTime.now().uptimeNanoseconds
        if let last = missed[process.containerID], now &- last < Self.retry { return nil }
        let names = read(process.pid)
        if names.isEmpty {
            if missed.count >= 4096 { missed.removeAll() }
            missed[process.containerID] = now
        } else {
            if byContainer.count >= 4096 { byContainer.removeAll() }
            byContainer[process.containerID] = names
        }
        return names[id]
    }
}
