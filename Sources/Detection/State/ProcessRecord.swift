/// One process (thread group) as the engine knows it: identity, image, ancestry link,
/// terminal, container and open descriptors.
public final class ProcessRecord {
    public let pid: UInt32
    public var vpid: UInt32
    public var ppid: UInt32
    /// The thread-group leader's name (threads may rename themselves; ancestry uses this).
    public var name: String
    public var exePath: String
    /// argv, argv[0] included.
    public private(set) var argv: [String]
    /// The arguments after argv[0] (`proc.args`), kept so rules don't rebuild them.
    public private(set) var arguments: [String]
    /// Falco's `proc.cmdline`: name, then the arguments after argv[0]; kept so rules don't rebuild it.
    public private(set) var cmdline: String
    public var tty: Int64
    public var uid: UInt32
    public var startTime: UInt64
    /// Full container id, "" on the host.
    public var containerID: String
    /// The executable was written inside the container after detection started.
    public var exeWrittenInContainer = false
    /// VAR=value, read from /proc at exec when rules ask for it.
    public var environment: [String]?
    public var descriptors: [Int32: FileDescriptor] = [:]
    /// Working directory ending in '/', "" when unknown (`proc.cwd`).
    public var cwd = ""
    public var gid: UInt32 = 0
    /// Capability sets as the kernel's bit masks, nil when unknown.
    public var capPermitted: UInt64?
    public var capEffective: UInt64?
    /// Audit login uid; UInt32.max when unset (Falco shows -1).
    public var loginUid: UInt32 = .max
    /// Session and process group ids in the process's own pid namespace, nil when unknown.
    public var sid: Int64?
    public var vpgid: Int64?
    /// The executable's inode ctime and mtime at exec, ns since the epoch.
    public var exeCtime: UInt64?
    public var exeMtime: UInt64?
    /// Last time an event touched it, to evict the stalest first when the table is full.
    var lastSeen: UInt64
    /// The last open seen for one of its threads, to pair a relative openat with the absolute
    /// path its security_file_open reports (they arrive in either order).
    var recentOpen: (tid: UInt32, fd: Int32?, path: String?)?

    public init(
        pid: UInt32, vpid: UInt32 = 0, ppid: UInt32, name: String, exePath: String = "", argv: [String] = [],
        tty: Int64 = 0, uid: UInt32 = 0, startTime: UInt64 = 0, containerID: String = ""
    ) {
        self.pid = pid
        self.vpid = vpid
        self.ppid = ppid
        self.name = name
        self.exePath = exePath
        self.argv = argv
        self.tty = tty
        self.uid = uid
        self.startTime = startTime
        self.containerID = containerID
        cmdline = ""
        arguments = Array(argv.dropFirst())
        lastSeen = startTime
        updateCmdline()
    }

    /// A child after fork: the parent's image, terminal and descriptors (copied on write).
    func forked(pid: UInt32, vpid: UInt32, time: UInt64) -> ProcessRecord {
        let child = ProcessRecord(
            pid: pid, vpid: vpid, ppid: self.pid, name: name, exePath: exePath, argv: argv, tty: tty, uid: uid,
            startTime: time, containerID: containerID)
        child.descriptors = descriptors
        child.environment = environment
        child.exeWrittenInContainer = exeWrittenInContainer
        child.cwd = cwd
        child.gid = gid
        child.capPermitted = capPermitted
        child.capEffective = capEffective
        child.loginUid = loginUid
        child.sid = sid
        child.vpgid = vpgid
        child.exeCtime = exeCtime
        child.exeMtime = exeMtime
        return child
    }

    /// After exec: the new image.
    func exec(name: String, exePath: String, argv: [String]) {
        self.name = name
        self.exePath = exePath
        self.argv = argv
        arguments = Array(argv.dropFirst())
        updateCmdline()
    }

    func rename(_ name: String) {
        self.name = name
        updateCmdline()
    }

    private func updateCmdline() {
        cmdline = argv.count > 1 ? ([name] + argv.dropFirst()).joined(separator: " ") : name
    }
}
