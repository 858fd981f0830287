/// How a numeric argument also reads as names, so rules can say `evt.arg.request =
/// PTRACE_ATTACH` or `evt.arg.flags contains O_CREAT` (Tracee's parsed arguments and
/// Falco's flag fields show the same names).
public enum ArgumentDecoding: Sendable {
    /// One name per value.
    case enumeration([Int64: String])
    /// A name per set bit (masks checked in order); `zero` names the empty value.
    case flags([(Int64, String)], zero: String?)
    /// open(2) flags: the access mode in the low two bits, then flag bits.
    case openFlags
    /// socket(2) types: the type in the low four bits, then SOCK_NONBLOCK / SOCK_CLOEXEC.
    case socketType

    /// Whether `value` reads as `name`, answered without building the names; nil when `name`
    /// is not one of this argument's names.
    func has(_ name: String, in value: Int64) -> Bool? {
        switch self {
        case .enumeration(let names):
            if names[value] == name { return true }
            return ArgumentSymbols.enumerationNames.contains(name) ? false : nil
        case .flags(let masks, let zero):
            if name == zero { return value == 0 }
            guard let mask = masks.first(where: { $0.1 == name })?.0 else { return nil }
            return value & mask == mask && mask != 0
        case .openFlags, .socketType:
            return nil
        }
    }

    func names(_ value: Int64) -> [String] {
        switch self {
        case .enumeration(let names):
            return names[value].map { [$0] } ?? []
        case .flags(let masks, let zero):
            if value == 0 { return zero.map { [$0] } ?? [] }
            return masks.compactMap { value & $0.0 == $0.0 && $0.0 != 0 ? $0.1 : nil }
        case .openFlags:
            let mode = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"][Int(value & 3)]
            return [mode] + ArgumentSymbols.openFlagBits.compactMap { value & $0.0 == $0.0 ? $0.1 : nil }
        case .socketType:
            let type = ArgumentSymbols.socketTypes[value & 0xF].map { [$0] } ?? []
            return type
                + [(0o4000 as Int64, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")].compactMap {
                    value & $0.0 != 0 ? $0.1 : nil
                }
        }
    }
}

/// The declarative table of symbolic arguments: which argument of which events, and how.
enum ArgumentSymbols {
    static let openFlagBits: [(Int64, String)] = [
        (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"), (0o20000, "O_ASYNC"), (0o40000, "O_DIRECT"),
        (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"),
        (0o4010000, "O_SYNC"), (0o10000000, "O_PATH"), (0o20200000, "O_TMPFILE"),
    ]
    static let socketTypes: [Int64: String] = [
        1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET", 6: "SOCK_DCCP",
        10: "SOCK_PACKET",
    ]
    static let families: [Int64: String] = [
        0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 4: "AF_IPX", 5: "AF_APPLETALK", 10: "AF_INET6", 16: "AF_NETLINK",
        17: "AF_PACKET", 38: "AF_ALG", 40: "AF_VSOCK", 44: "AF_XDP",
    ]
    static let ptraceRequests: [Int64: String] = [
        0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSER", 4: "PTRACE_POKETEXT",
        5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSER", 7: "PTRACE_CONT", 8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP",
        12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS", 14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH",
        17: "PTRACE_DETACH", 24: "PTRACE_SYSCALL", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
        0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET",
        0x4205: "PTRACE_SETREGSET",
        0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN",
    ]
    static let namespaceFlags: [(Int64, String)] = [
        (0x0000_0100, "CLONE_VM"), (0x0000_0200, "CLONE_FS"), (0x0000_0400, "CLONE_FILES"),
        (0x0000_0800, "CLONE_SIGHAND"),
        (0x0001_0000, "CLONE_THREAD"), (0x0002_0000, "CLONE_NEWNS"), (0x0008_0000, "CLONE_SYSVSEM"),
        (0x0200_0000, "CLONE_NEWCGROUP"), (0x0400_0000, "CLONE_NEWUTS"), (0x0800_0000, "CLONE_NEWIPC"),
        (0x1000_0000, "CLONE_NEWUSER"), (0x2000_0000, "CLONE_NEWPID"), (0x4000_0000, "CLONE_NEWNET"),
        (0x80, "CLONE_NEWTIME"),
    ]
    static let protections: [(Int64, String)] = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")]
    static let modeBits: [(Int64, String)] = [
        (0o4000, "S_ISUID"), (0o2000, "S_ISGID"), (0o1000, "S_ISVTX"), (0o111, "S_IXUGO"),
        // Falco's mode names, one per permission bit.
        (0o400, "S_IRUSR"), (0o200, "S_IWUSR"), (0o100, "S_IXUSR"), (0o40, "S_IRGRP"), (0o20, "S_IWGRP"),
        (0o10, "S_IXGRP"),
        (0o4, "S_IROTH"), (0o2, "S_IWOTH"), (0o1, "S_IXOTH"),
    ]
    static let prctlOptions: [Int64: String] = [
        1: "PR_SET_PDEATHSIG", 4: "PR_SET_DUMPABLE", 8: "PR_SET_KEEPCAPS", 15: "PR_SET_NAME", 16: "PR_GET_NAME",
        22: "PR_SET_SECCOMP", 24: "PR_CAPBSET_DROP", 35: "PR_SET_MM", 36: "PR_SET_CHILD_SUBREAPER",
        38: "PR_SET_NO_NEW_PRIVS",
        47: "PR_CAP_AMBIENT", 0x5961_6d61: "PR_SET_PTRACER",
    ]
    /// bpf(2) commands (Falco's `evt.arg.cmd` names).
    static let bpfCommands: [Int64: String] = [
        0: "BPF_MAP_CREATE", 1: "BPF_MAP_LOOKUP_ELEM", 2: "BPF_MAP_UPDATE_ELEM", 3: "BPF_MAP_DELETE_ELEM",
        4: "BPF_MAP_GET_NEXT_KEY",
        5: "BPF_PROG_LOAD", 6: "BPF_OBJ_PIN", 7: "BPF_OBJ_GET", 8: "BPF_PROG_ATTACH", 9: "BPF_PROG_DETACH",
        10: "BPF_PROG_TEST_RUN", 28: "BPF_LINK_CREATE", 17: "BPF_RAW_TRACEPOINT_OPEN", 18: "BPF_BTF_LOAD",
    ]
    static let capabilities: [Int64: String] = Dictionary(
        uniqueKeysWithValues: [
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
        ].enumerated().map { (Int64($0.offset), $0.element) })
    static let signals: [Int64: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
        9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
        17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
    ]
    static let mountFlags: [(Int64, String)] = [
        (1, "MS_RDONLY"), (2, "MS_NOSUID"), (4, "MS_NODEV"), (8, "MS_NOEXEC"), (32, "MS_REMOUNT"), (4096, "MS_BIND"),
        (8192, "MS_MOVE"), (16384, "MS_REC"), (1 << 18, "MS_PRIVATE"), (1 << 20, "MS_SHARED"),
    ]

    /// (events, argument, decoding): the one place that says which arguments have names.
    static let table: [([String], String, ArgumentDecoding)] = [
        (["open", "openat", "security_file_open"], "flags", .openFlags),
        (["ptrace"], "request", .enumeration(ptraceRequests)),
        (["socket"], "domain", .enumeration(families)),
        (["security_socket_create"], "family", .enumeration(families)),
        (["socket", "security_socket_create"], "type", .socketType),
        (["mmap", "mprotect", "pkey_mprotect"], "prot", .flags(protections, zero: "PROT_NONE")),
        (
            ["chmod", "fchmod", "fchmodat", "open", "openat", "creat", "mkdir", "mkdirat", "mknod", "mknodat"], "mode",
            .flags(modeBits, zero: nil)
        ),
        (["unshare"], "unshare_flags", .flags(namespaceFlags, zero: nil)),
        (["setns"], "flags", .flags(namespaceFlags, zero: "0")),
        (
            ["memfd_create"], "flags",
            .flags(
                [
                    (1, "MFD_CLOEXEC"), (2, "MFD_ALLOW_SEALING"), (4, "MFD_HUGETLB"), (8, "MFD_NOEXEC_SEAL"),
                    (16, "MFD_EXEC"),
                ], zero: nil)
        ),
        (["cap_capable"], "cap", .enumeration(capabilities)),
        (["kill", "tkill", "tgkill"], "sig", .enumeration(signals)),
        (["mount"], "mountflags", .flags(mountFlags, zero: nil)),
        (["prctl"], "option", .enumeration(prctlOptions)),
        (["bpf"], "cmd", .enumeration(bpfCommands)),
    ]

    /// Every name of the enumerations, to tell "another value" from "not a name at all".
    static let enumerationNames: Set<String> = Set(
        [ptraceRequests, families, socketTypes, capabilities, signals, prctlOptions, bpfCommands].flatMap(\.values))

    /// Decoding by event, then argument.
    static let byEvent: [String: [String: ArgumentDecoding]] = {
        var result: [String: [String: ArgumentDecoding]] = [:]
        for (events, argument, decoding) in table {
            for event in events { result[event, default: [:]][argument] = decoding }
        }
        return result
    }()

    /// Linux errno names, for `evt.res`.
    static let errnoNames: [Int64: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC", 9: "EBADF",
        10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV",
        19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 25: "ENOTTY",
        26: "ETXTBSY",
        27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 31: "EMLINK", 32: "EPIPE", 36: "ENAMETOOLONG",
        38: "ENOSYS",
        39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 88: "ENOTSOCK", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT",
        98: "EADDRINUSE",
        99: "EADDRNOTAVAIL", 101: "ENETUNREACH", 103: "ECONNABORTED", 104: "ECONNRESET", 110: "ETIMEDOUT",
        111: "ECONNREFUSED", 113: "EHOSTUNREACH", 114: "EALREADY", 115: "EINPROGRESS",
    ]
}
