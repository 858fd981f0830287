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
    case eventNumber, eventArgs, eventBuffer
    case processParentExe, ancestorExe, ancestorExePath, processCwd, processDuration
    case processExeCtime, processExeMtime, processExeCtimeSinceStart, processExeFromMemfd
    case processVpgid, processIsVpgidLeader, processSid, processSessionName, processIsSidLeader
    case threadCapPermitted, threadCapEffective, userLoginUid, userLoginName, groupId, groupName
    case fdIP, fdPort, fdNet, fdClientNet, fdServerNet, fdLocalNet, fdRemoteNet, fdConnected, fdNameChanged, fdNameRaw
    case fdClientIPName, fdServerIPName, fdLocalIPName, fdRemoteIPName
    case containerPrivileged, containerStartTime, containerMounts, containerMountDest, k8sNamespace, k8sPod
    case eventHostname, fdTypes, processParentVpid
    case processGroupLeaderName, processGroupLeaderExe, processGroupLeaderExePath, processSessionExe,
        processSessionExePath
}

/// One Falco field Caduceus maps, and what it means for Caduceus's events.
public struct FieldDefinition: Sendable {
    public let name: String
    public let kind: FieldKind
    /// Falco's type for it: which operators and values a condition may use.
    public let type: FieldType
    public let meaning: String

    init(name: String, kind: FieldKind, _ type: FieldType = .charbuf, meaning: String) {
        self.name = name
        self.kind = kind
        self.type = type
        self.meaning = meaning
    }
}

/// The Falco fields rules may name: one declarative table. A rule naming any other field
/// is refused at load time, at the field's position.
public enum FieldTable {
    public static let fields: [FieldDefinition] = [
        .init(
            name: "evt.type", kind: .eventType,
            meaning: "event name: the syscall (openat, ...) or sched_process_exec, security_file_open, ..."),
        .init(
            name: "evt.dir", kind: .eventDirection,
            meaning:
                "'<' at syscall exit; '>' for execve/execveat at entry, seen only by rules that test evt.dir (their exit is the sched_process_exec, or a failed exec's exit record)"
        ),
        .init(
            name: "evt.res", kind: .eventResult,
            meaning: "SUCCESS, or the errno name (EPERM, ENOENT, ...) of a failed syscall"),
        .init(name: "evt.rawres", kind: .eventRawResult, .int64, meaning: "the return value as a number"),
        .init(
            name: "evt.arg", kind: .eventArgument,
            meaning:
                "an argument by name (evt.arg.pathname), or by Falco's name where it differs (evt.arg.name of an open: FalcoArgumentNames); flag arguments also read as their names (O_CREAT, PTRACE_ATTACH), uid arguments as user names"
        ),
        .init(name: "evt.time", kind: .eventTime, meaning: "the event time, RFC 3339 with nanoseconds"),
        .init(
            name: "evt.rawtime", kind: .eventRawTime, .abstime, meaning: "the event time, nanoseconds since the epoch"),
        .init(name: "evt.is_open_read", kind: .eventIsOpenRead, .bool, meaning: "true when an open asks for reading"),
        .init(
            name: "evt.is_open_write", kind: .eventIsOpenWrite, .bool,
            meaning: "true when an open asks for writing (or creating, truncating)"),
        .init(
            name: "evt.is_open_exec", kind: .eventIsOpenExec, .bool,
            meaning: "true when an open creates an executable file (mode with an x bit)"),
        .init(name: "proc.name", kind: .processName, meaning: "process name (comm, at most 15 bytes)"),
        .init(name: "proc.exepath", kind: .processExePath, meaning: "the executable's absolute path"),
        .init(name: "proc.exe", kind: .processExe, meaning: "argv[0]"),
        .init(name: "proc.cmdline", kind: .processCmdline, meaning: "name and arguments"),
        .init(name: "proc.args", kind: .processArgs, meaning: "the arguments after argv[0]"),
        .init(name: "proc.pid", kind: .processPid, .int64, meaning: "host process id"),
        .init(name: "proc.vpid", kind: .processVpid, .int64, meaning: "process id in the container"),
        .init(name: "proc.ppid", kind: .processPpid, .int64, meaning: "parent's host process id"),
        .init(name: "proc.pname", kind: .processParentName, meaning: "parent's name"),
        .init(name: "proc.pexepath", kind: .processParentExePath, meaning: "parent's executable path"),
        .init(name: "proc.pcmdline", kind: .processParentCmdline, meaning: "parent's command line"),
        .init(
            name: "proc.aname", kind: .ancestorName,
            meaning: "an ancestor's name: proc.aname[1] is the parent; without [N], any ancestor"),
        .init(name: "proc.apid", kind: .ancestorPid, .int64, meaning: "an ancestor's pid: proc.apid[1] is the parent"),
        .init(
            name: "proc.tty", kind: .processTty, .uint32, meaning: "controlling terminal device number (0 when none)"),
        .init(
            name: "proc.is_exe_upper_layer", kind: .processExeUpperLayer, .bool,
            meaning: "true when the executable was written inside the container since detection started"),
        .init(
            name: "proc.env", kind: .processEnv,
            meaning: "the environment (VAR=value), read from /proc at exec when a rule needs it"),
        .init(
            name: "proc.start_time", kind: .processStartTime, .abstime,
            meaning: "when the process was created, nanoseconds since the epoch"),
        .init(name: "user.uid", kind: .userId, .uint32, meaning: "user id"),
        .init(name: "user.name", kind: .userName, meaning: "user name (from the container's /etc/passwd when live)"),
        .init(name: "fd.num", kind: .fdNumber, .int64, meaning: "the descriptor number"),
        .init(
            name: "fd.name", kind: .fdName,
            meaning:
                "file path ('.', '..' and repeated slashes resolved, relative opens joined to the working directory), or the socket's endpoints (cip:cport->sip:sport), or a unix socket's path"
        ),
        .init(name: "fd.directory", kind: .fdDirectory, meaning: "directory of a file's fd.name"),
        .init(name: "fd.filename", kind: .fdFilename, meaning: "last component of a file's fd.name"),
        .init(
            name: "fd.type", kind: .fdType, meaning: "file, directory, ipv4, ipv6, unix, pipe, memfd, packet, netlink"),
        .init(
            name: "fd.typechar", kind: .fdTypeChar,
            meaning: "f file, 4/6 IPv4/IPv6 socket, u unix socket, p pipe, m memfd, r packet, n netlink"),
        .init(name: "fd.sockfamily", kind: .fdSocketFamily, meaning: "ip or unix"),
        .init(name: "fd.l4proto", kind: .fdL4Protocol, meaning: "tcp, udp, raw"),
        .init(name: "fd.sip", kind: .fdServerIP, .ipaddr, meaning: "server IP"),
        .init(name: "fd.sport", kind: .fdServerPort, .port, meaning: "server port"),
        .init(name: "fd.cip", kind: .fdClientIP, .ipaddr, meaning: "client IP"),
        .init(name: "fd.cport", kind: .fdClientPort, .port, meaning: "client port"),
        .init(name: "fd.rip", kind: .fdRemoteIP, .ipaddr, meaning: "remote IP"),
        .init(name: "fd.rport", kind: .fdRemotePort, .port, meaning: "remote port"),
        .init(name: "fd.lip", kind: .fdLocalIP, .ipaddr, meaning: "local IP"),
        .init(name: "fd.lport", kind: .fdLocalPort, .port, meaning: "local port"),
        .init(name: "fd.dip", kind: .fdRemoteIP, .ipaddr, meaning: "destination IP (the remote end)"),
        .init(name: "fd.dport", kind: .fdRemotePort, .port, meaning: "destination port (the remote end)"),
        .init(
            name: "fs.path.name", kind: .pathName, .fspath,
            meaning: "the path a file syscall acts on (open, unlink, rename's new name, chmod, mount's target, ...)"),
        .init(
            name: "fs.path.source", kind: .pathSource, .fspath,
            meaning: "rename/link: the old name; symlink: the target it points to"),
        .init(
            name: "fs.path.target", kind: .pathTarget, .fspath,
            meaning: "rename/link: the new name; symlink: the link created"),
        .init(
            name: "container.id", kind: .containerId, meaning: "12-character container id, 'host' outside containers"),
        .init(name: "container.name", kind: .containerName, meaning: "container name"),
        .init(name: "container.image", kind: .containerImage, meaning: "image with tag"),
        .init(name: "container.image.repository", kind: .containerImageRepository, meaning: "image without tag"),
        .init(name: "container.image.tag", kind: .containerImageTag, meaning: "image tag"),
        .init(
            name: "evt.num", kind: .eventNumber, .uint64,
            meaning: "the event's number in this engine's stream, counted from 1"),
        .init(
            name: "evt.args", kind: .eventArgs,
            meaning: "every argument as name=value, space-separated (flags by name where known)"),
        .init(
            name: "evt.buffer", kind: .eventBuffer, .bytebuf,
            meaning: "no value here: the sensor captures no I/O buffers (Falco: read/write data)"),
        .init(name: "proc.pexe", kind: .processParentExe, meaning: "parent's argv[0]"),
        .init(
            name: "proc.aexe", kind: .ancestorExe,
            meaning: "an ancestor's argv[0]: proc.aexe[1] is the parent, [0] the process; without [N], any ancestor"),
        .init(
            name: "proc.aexepath", kind: .ancestorExePath,
            meaning: "an ancestor's executable path: proc.aexepath[1] is the parent; without [N], any ancestor"),
        .init(
            name: "proc.cwd", kind: .processCwd,
            meaning:
                "working directory, ending in '/' (from exec, chdir and fchdir; /proc for processes older than detection)"
        ),
        .init(
            name: "proc.duration", kind: .processDuration, .reltime,
            meaning: "nanoseconds from the process's start to this event"),
        .init(
            name: "proc.exe_ino.ctime", kind: .processExeCtime, .abstime,
            meaning: "the executable's inode change time at exec, ns since the epoch"),
        .init(
            name: "proc.exe_ino.mtime", kind: .processExeMtime, .abstime,
            meaning: "the executable's modification time at exec, ns since the epoch"),
        .init(
            name: "proc.exe_ino.ctime_duration_proc_start", kind: .processExeCtimeSinceStart, .abstime,
            meaning: "ns from the executable's ctime to the process's start (no value when the ctime is later)"),
        .init(
            name: "proc.is_exe_from_memfd", kind: .processExeFromMemfd, .bool,
            meaning: "true when the executable is a memfd (its path starts /memfd:)"),
        .init(
            name: "proc.vpgid", kind: .processVpgid, .int64, meaning: "process group id in the process's pid namespace"),
        .init(
            name: "proc.is_vpgid_leader", kind: .processIsVpgidLeader, .bool,
            meaning: "true when proc.vpgid = proc.vpid"),
        .init(name: "proc.sid", kind: .processSid, .int64, meaning: "session id in the process's pid namespace"),
        .init(
            name: "proc.sname", kind: .processSessionName,
            meaning:
                "name of the session leader: the ancestor whose vpid is proc.sid, else the eldest ancestor in the session"
        ),
        .init(name: "proc.is_sid_leader", kind: .processIsSidLeader, .bool, meaning: "true when proc.sid = proc.vpid"),
        .init(
            name: "proc.pvpid", kind: .processParentVpid, .int64, meaning: "parent's process id in its pid namespace"),
        .init(
            name: "proc.vpgid.name", kind: .processGroupLeaderName,
            meaning:
                "name of the process group leader: the ancestor whose vpid is proc.vpgid, else the eldest ancestor in the group"
        ),
        .init(name: "proc.vpgid.exe", kind: .processGroupLeaderExe, meaning: "argv[0] of the process group leader"),
        .init(
            name: "proc.vpgid.exepath", kind: .processGroupLeaderExePath,
            meaning: "executable path of the process group leader"),
        .init(name: "proc.sid.exe", kind: .processSessionExe, meaning: "argv[0] of the session leader"),
        .init(name: "proc.sid.exepath", kind: .processSessionExePath, meaning: "executable path of the session leader"),
        .init(name: "evt.hostname", kind: .eventHostname, meaning: "the host's name, as the sensor reports it"),
        .init(
            name: "fd.types", kind: .fdTypes, .charbufList,
            meaning: "the types (fd.type) of the process's open descriptors, each once; fd.types[N]: descriptor N's"),
        .init(
            name: "thread.cap_permitted", kind: .threadCapPermitted,
            meaning: "permitted capabilities, space-separated names (CAP_CHOWN CAP_KILL ...)"),
        .init(
            name: "thread.cap_effective", kind: .threadCapEffective,
            meaning: "effective capabilities, space-separated names"),
        .init(name: "user.loginuid", kind: .userLoginUid, .int64, meaning: "audit login uid; -1 when unset"),
        .init(name: "user.loginname", kind: .userLoginName, meaning: "name of user.loginuid (no value when unset)"),
        .init(name: "group.gid", kind: .groupId, .uint32, meaning: "group id"),
        .init(name: "group.name", kind: .groupName, meaning: "group name (from the container's /etc/group when live)"),
        .init(name: "fd.ip", kind: .fdIP, .ipaddr, meaning: "matches the client or the server IP"),
        .init(name: "fd.port", kind: .fdPort, .port, meaning: "matches the client or the server port"),
        .init(
            name: "fd.net", kind: .fdNet, .ipnet,
            meaning: "matches when the client or the server IP is in the network (a.b.c.d/n)"),
        .init(name: "fd.cnet", kind: .fdClientNet, .ipnet, meaning: "matches when the client IP is in the network"),
        .init(name: "fd.snet", kind: .fdServerNet, .ipnet, meaning: "matches when the server IP is in the network"),
        .init(name: "fd.lnet", kind: .fdLocalNet, .ipnet, meaning: "matches when the local IP is in the network"),
        .init(name: "fd.rnet", kind: .fdRemoteNet, .ipnet, meaning: "matches when the remote IP is in the network"),
        .init(
            name: "fd.connected", kind: .fdConnected, .bool,
            meaning: "for IP sockets, true once the remote end is known (connected or accepted)"),
        .init(
            name: "fd.name_changed", kind: .fdNameChanged, .bool,
            meaning: "true when this event changed the descriptor's fd.name (a connect to a new address)"),
        .init(
            name: "fd.nameraw", kind: .fdNameRaw,
            meaning: "for an open, the path as the process gave it (duplicate slashes removed); otherwise fd.name"),
        .init(
            name: "fd.cip.name", kind: .fdClientIPName,
            meaning: "no value here: no DNS cache is kept (Falco: the domain of the client IP)"),
        .init(
            name: "fd.sip.name", kind: .fdServerIPName,
            meaning: "no value here: no DNS cache is kept (Falco: the domain of the server IP)"),
        .init(name: "fd.lip.name", kind: .fdLocalIPName, meaning: "no value here: no DNS cache is kept"),
        .init(name: "fd.rip.name", kind: .fdRemoteIPName, meaning: "no value here: no DNS cache is kept"),
        .init(
            name: "container.privileged", kind: .containerPrivileged, .bool,
            meaning: "true for a container started --privileged (Docker inspect)"),
        .init(
            name: "container.start_ts", kind: .containerStartTime, .abstime,
            meaning: "when the container started, ns since the epoch (Docker inspect)"),
        .init(
            name: "container.mounts", kind: .containerMounts,
            meaning: "the mounts as source:dest:mode:rw:propagation, comma-separated (Docker inspect)"),
        .init(
            name: "container.mount.dest", kind: .containerMountDest,
            meaning:
                "container.mount.dest[SOURCE-GLOB]: the destination of the first mount whose source matches; N/A when none does"
        ),
        .init(
            name: "k8s.ns.name", kind: .k8sNamespace,
            meaning:
                "the pod's namespace, from the container's io.kubernetes.pod.namespace label; no value outside Kubernetes"
        ),
        .init(
            name: "k8s.pod.name", kind: .k8sPod,
            meaning: "the pod's name, from the container's io.kubernetes.pod.name label; no value outside Kubernetes"),
    ]

    public static let byName: [String: FieldDefinition] = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
    public static let names: Set<String> = Set(fields.map(\.name))
}
