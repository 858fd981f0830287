/// The Falco fields rules may name, with what each means for Caduceus's events. A rule
/// naming any other field is refused at load time, at the field's position.
public enum FieldTable {
    /// Field name (without `[N]` or `.NAME` argument) and its meaning.
    public static let fields: [(name: String, meaning: String)] = [
        ("evt.type", "event name: the syscall (openat, execve, ...) or sched_process_exec, security_file_open, ..."),
        ("evt.res", "the return value (0 or a positive result, or a negative errno)"),
        ("evt.rawres", "the return value as a number"),
        ("evt.arg", "an argument by name: evt.arg.pathname, evt.arg.flags"),
        ("evt.time", "the event time, nanoseconds since the epoch"),
        ("evt.dir", "'<' (Caduceus reports syscalls at exit, execve at entry as '>')"),
        ("proc.name", "process name (comm)"),
        ("proc.exepath", "the executable's path"),
        ("proc.exe", "argv[0]"),
        ("proc.cmdline", "name and arguments"),
        ("proc.args", "the arguments"),
        ("proc.pid", "host process id"),
        ("proc.vpid", "process id in the container"),
        ("proc.ppid", "parent's host process id"),
        ("proc.pname", "parent's name"),
        ("proc.pcmdline", "parent's command line"),
        ("proc.aname", "an ancestor's name: proc.aname[1] is the parent"),
        ("proc.apid", "an ancestor's pid"),
        ("proc.tty", "controlling terminal (0 when none)"),
        ("proc.is_exe_upper_layer", "the executable was written in the container"),
        ("proc.env", "the environment"),
        ("user.uid", "user id"),
        ("user.name", "user name"),
        ("group.gid", "group id"),
        ("fd.name", "file path, or the socket's endpoints"),
        ("fd.directory", "directory of fd.name"),
        ("fd.filename", "last component of fd.name"),
        ("fd.typechar", "f file, 4/6 IPv4/IPv6 socket, u unix socket, p pipe"),
        ("fd.sip", "server IP"), ("fd.sport", "server port"), ("fd.cip", "client IP"), ("fd.cport", "client port"),
        ("fd.dip", "destination IP"), ("fd.dport", "destination port"), ("fd.l4proto", "tcp, udp, ..."),
        ("fd.num", "the descriptor number"),
        ("container.id", "12-character container id, 'host' on the host"),
        ("container.name", "container name"),
        ("container.image", "image with tag"),
        ("container.image.repository", "image without tag"),
        ("container.image.tag", "image tag"),
    ]

    public static let names: Set<String> = Set(fields.map(\.name))
}
