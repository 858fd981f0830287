/// What a field reads, resolved once when rules load so evaluation never looks names up.
public enum FieldKind: Int, Sendable, Equatable, CaseIterable {
    case eventType, eventDirection, eventResult, eventRawResult, eventTime, eventRawTime, eventArgument
    case eventIsOpenRead, eventIsOpenWrite, eventIsOpenExec
    case processName, processExePath, processExe, processCmdline, processArgs, processPid, processVpid, processPpid
    case processParentName, processParentExePath, processParentCmdline, ancestorName, ancestorPid
    case processTty, processExeUpperLayer, processEnv, processStartTime
    case userId, userName
    case fdNumber, fdName, fdDirectory, fdFilename, fdType, fdTypeChar, fdSocketFamily, fdL4Protocol
    case fdServerIP, fdServerPort, fdClientIP, fdClientPort, fdRemoteIP, fdRemotePort, fdLocalIP, fdLocalPort
    case pathName, pathSource, pathTarget
    case containerId, containerName, containerImage, containerImageRepository, containerImageTag
}

/// One Falco field Caduceus maps, and what it means for Caduceus's events.
public struct FieldDefinition: Sendable {
    public let name: String
    public let kind: FieldKind
    public let meaning: String
}

/// The Falco fields rules may name: one declarative table. A rule naming any other field
/// is refused at load time, at the field's position.
public enum FieldTable {
    public static let fields: [FieldDefinition] = [
        .init(name: "evt.type", kind: .eventType, meaning: "event name: the syscall (openat, ...) or sched_process_exec, security_file_open, ..."),
        .init(name: "evt.dir", kind: .eventDirection, meaning: "'<' at syscall exit; '>' for execve/execveat at entry (their exit is the sched_process_exec)"),
        .init(name: "evt.res", kind: .eventResult, meaning: "SUCCESS, or the errno name (EPERM, ENOENT, ...) of a failed syscall"),
        .init(name: "evt.rawres", kind: .eventRawResult, meaning: "the return value as a number"),
        .init(name: "evt.arg", kind: .eventArgument, meaning: "an argument by name (evt.arg.pathname); flag arguments also read as their names (O_CREAT, PTRACE_ATTACH)"),
        .init(name: "evt.time", kind: .eventTime, meaning: "the event time, RFC 3339 with nanoseconds"),
        .init(name: "evt.rawtime", kind: .eventRawTime, meaning: "the event time, nanoseconds since the epoch"),
        .init(name: "evt.is_open_read", kind: .eventIsOpenRead, meaning: "true when an open asks for reading"),
        .init(name: "evt.is_open_write", kind: .eventIsOpenWrite, meaning: "true when an open asks for writing (or creating, truncating)"),
        .init(name: "evt.is_open_exec", kind: .eventIsOpenExec, meaning: "true when an open creates an executable file (mode with an x bit)"),
        .init(name: "proc.name", kind: .processName, meaning: "process name (comm, at most 15 bytes)"),
        .init(name: "proc.exepath", kind: .processExePath, meaning: "the executable's absolute path"),
        .init(name: "proc.exe", kind: .processExe, meaning: "argv[0]"),
        .init(name: "proc.cmdline", kind: .processCmdline, meaning: "name and arguments"),
        .init(name: "proc.args", kind: .processArgs, meaning: "the arguments after argv[0]"),
        .init(name: "proc.pid", kind: .processPid, meaning: "host process id"),
        .init(name: "proc.vpid", kind: .processVpid, meaning: "process id in the container"),
        .init(name: "proc.ppid", kind: .processPpid, meaning: "parent's host process id"),
        .init(name: "proc.pname", kind: .processParentName, meaning: "parent's name"),
        .init(name: "proc.pexepath", kind: .processParentExePath, meaning: "parent's executable path"),
        .init(name: "proc.pcmdline", kind: .processParentCmdline, meaning: "parent's command line"),
        .init(name: "proc.aname", kind: .ancestorName, meaning: "an ancestor's name: proc.aname[1] is the parent; without [N], any ancestor"),
        .init(name: "proc.apid", kind: .ancestorPid, meaning: "an ancestor's pid: proc.apid[1] is the parent"),
        .init(name: "proc.tty", kind: .processTty, meaning: "controlling terminal device number (0 when none)"),
        .init(name: "proc.is_exe_upper_layer", kind: .processExeUpperLayer, meaning: "true when the executable was written inside the container since detection started"),
        .init(name: "proc.env", kind: .processEnv, meaning: "the environment (VAR=value), read from /proc at exec when a rule needs it"),
        .init(name: "proc.start_time", kind: .processStartTime, meaning: "when the process was created, nanoseconds since the epoch"),
        .init(name: "user.uid", kind: .userId, meaning: "user id"),
        .init(name: "user.name", kind: .userName, meaning: "user name (from the container's /etc/passwd when live)"),
        .init(name: "fd.num", kind: .fdNumber, meaning: "the descriptor number"),
        .init(name: "fd.name", kind: .fdName, meaning: "file path, or the socket's endpoints (cip:cport->sip:sport), or a unix socket's path"),
        .init(name: "fd.directory", kind: .fdDirectory, meaning: "directory of a file's fd.name"),
        .init(name: "fd.filename", kind: .fdFilename, meaning: "last component of a file's fd.name"),
        .init(name: "fd.type", kind: .fdType, meaning: "file, directory, ipv4, ipv6, unix, pipe, memfd, packet, netlink"),
        .init(name: "fd.typechar", kind: .fdTypeChar, meaning: "f file, 4/6 IPv4/IPv6 socket, u unix socket, p pipe, m memfd, r packet, n netlink"),
        .init(name: "fd.sockfamily", kind: .fdSocketFamily, meaning: "ip or unix"),
        .init(name: "fd.l4proto", kind: .fdL4Protocol, meaning: "tcp, udp, raw"),
        .init(name: "fd.sip", kind: .fdServerIP, meaning: "server IP"),
        .init(name: "fd.sport", kind: .fdServerPort, meaning: "server port"),
        .init(name: "fd.cip", kind: .fdClientIP, meaning: "client IP"),
        .init(name: "fd.cport", kind: .fdClientPort, meaning: "client port"),
        .init(name: "fd.rip", kind: .fdRemoteIP, meaning: "remote IP"),
        .init(name: "fd.rport", kind: .fdRemotePort, meaning: "remote port"),
        .init(name: "fd.lip", kind: .fdLocalIP, meaning: "local IP"),
        .init(name: "fd.lport", kind: .fdLocalPort, meaning: "local port"),
        .init(name: "fd.dip", kind: .fdRemoteIP, meaning: "destination IP (the remote end)"),
        .init(name: "fd.dport", kind: .fdRemotePort, meaning: "destination port (the remote end)"),
        .init(name: "fs.path.name", kind: .pathName, meaning: "the path a file syscall acts on (open, unlink, rename's new name, chmod, mount's target, ...)"),
        .init(name: "fs.path.source", kind: .pathSource, meaning: "rename/link: the old name; symlink: the target it points to"),
        .init(name: "fs.path.target", kind: .pathTarget, meaning: "rename/link: the new name; symlink: the link created"),
        .init(name: "container.id", kind: .containerId, meaning: "12-character container id, 'host' outside containers"),
        .init(name: "container.name", kind: .containerName, meaning: "container name"),
        .init(name: "container.image", kind: .containerImage, meaning: "image with tag"),
        .init(name: "container.image.repository", kind: .containerImageRepository, meaning: "image without tag"),
        .init(name: "container.image.tag", kind: .containerImageTag, meaning: "image tag"),
    ]

    public static let byName: [String: FieldDefinition] = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
    public static let names: Set<String> = Set(fields.map(\.name))
}
