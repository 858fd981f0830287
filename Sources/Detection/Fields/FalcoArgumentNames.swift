/// Falco's names for syscall arguments where they differ from the kernel tracepoint names
/// the sensor reports (its event table's), per event: `evt.arg.name` of an open is the
/// sensor's `pathname`, `evt.arg.oldpath` of a rename its `oldname`. A name Falco gives the
/// syscall's result (`fd` of an open, `res_or_fd` of bpf) reads the return value.
///
/// Falco's names are from its documented event table (falco.org, "Supported Events"); only
/// the arguments whose names differ are listed.
enum FalcoArgumentNames {
    /// The return value, as an alias target.
    static let result = "\u{0}result"

    private static let table: [([String], [String: String])] = [
        (["open", "openat", "openat2", "creat"], ["name": "pathname", "fd": result]),
        (["link", "rename"], ["oldpath": "oldname", "newpath": "newname"]),
        (
            ["linkat", "renameat", "renameat2"],
            [
                "oldpath": "oldname", "newpath": "newname", "olddir": "olddfd", "newdir": "newdfd",
                "olddirfd": "olddfd", "newdirfd": "newdfd",
            ]
        ),
        (["symlinkat"], ["linkdirfd": "newdirfd"]),
        (["chmod", "fchmodat"], ["filename": "pathname"]),
        (["mkdir", "rmdir", "unlink", "mknod", "mknodat"], ["path": "pathname"]),
        (["mkdirat"], ["path": "pathname", "dirfd": "dfd"]),
        (["unlinkat"], ["name": "pathname"]),
        (["chdir"], ["path": "filename"]),
        (["execve", "execveat", "sched_process_exec"], ["filename": "pathname"]),
        (["mount"], ["dev": "source", "dir": "target", "type": "filesystemtype", "flags": "mountflags"]),
        (["umount", "umount2"], ["name": "target"]),
        (["bpf"], ["res_or_fd": result, "fd": result]),
        (["socket"], ["proto": "protocol", "fd": result]),
        (
            ["memfd_create", "accept", "accept4", "dup", "dup2", "dup3", "pidfd_open", "userfaultfd", "eventfd2"],
            ["fd": result]
        ),
        (["connect", "bind", "listen", "getsockopt", "setsockopt"], ["fd": "sockfd"]),
    ]

    /// Arguments that are user ids, per event: Falco shows them (and matches them) as the
    /// user's name too (`evt.arg.uid = nobody`).
    static let userIDArguments: [String: Set<String>] = [
        "setuid": ["uid"], "setfsuid": ["uid"], "setreuid": ["ruid", "euid"], "setresuid": ["ruid", "euid", "suid"],
    ]

    /// Falco name -> sensor name (or `result`), per event name.
    static let byEvent: [String: [String: String]] = {
        var result: [String: [String: String]] = [:]
        for (events, names) in table {
            for event in events { result[event, default: [:]].merge(names) { $1 } }
        }
        return result
    }()
}
