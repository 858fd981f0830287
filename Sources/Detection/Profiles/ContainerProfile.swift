import Foundation
import Yams

/// What one container image was seen doing while a profile was recorded: the programs it ran,
/// the files it opened, its network endpoints, its syscalls and the capabilities it used.
/// Written as readable YAML (`caduceus profile record`), edited by hand if need be, and read
/// back by `caduceus detect --profile`, which alerts on anything outside it.
///
/// File paths are prefixes: an entry ending in `/` covers everything below that directory,
/// any other entry (kept for /etc) covers exactly that file.
public struct ContainerProfile: Sendable, Equatable {
    public var image: String
    /// When recording started, RFC 3339.
    public var recordedAt: String
    /// Seconds recorded.
    public var duration: Double
    /// Events seen from the container while recording.
    public var events: UInt64
    public var executables: [String]
    public var readPaths: [String]
    public var writePaths: [String]
    public var listenPorts: [Int]
    /// `address:port` (IPv6 as `[address]:port`), or a Unix socket's path.
    public var connectEndpoints: [String]
    public var syscalls: [String]
    /// `CAP_...` names.
    public var capabilities: [String]

    public init(
        image: String, recordedAt: String = "", duration: Double = 0, events: UInt64 = 0, executables: [String] = [],
        readPaths: [String] = [], writePaths: [String] = [], listenPorts: [Int] = [], connectEndpoints: [String] = [],
        syscalls: [String] = [], capabilities: [String] = []
    ) {
        self.image = image
        self.recordedAt = recordedAt
        // Tenths of a second, as the YAML keeps it.
        self.duration = (duration * 10).rounded() / 10
        self.events = events
        self.executables = executables.uniqueSorted()
        self.readPaths = readPaths.uniqueSorted()
        self.writePaths = writePaths.uniqueSorted()
        self.listenPorts = Array(Set(listenPorts)).sorted()
        self.connectEndpoints = connectEndpoints.uniqueSorted()
        self.syscalls = syscalls.uniqueSorted()
        self.capabilities = capabilities.uniqueSorted()
    }

    /// Whether `path` is covered by one of `prefixes` (a directory entry ending in `/`, or the exact file).
    public static func covers(_ prefixes: [String], _ path: String) -> Bool {
        prefixes.contains { $0.hasSuffix("/") ? path.hasPrefix($0) || path + "/" == $0 : path == $0 }
    }

    // MARK: YAML

    /// The profile as YAML, keys in a fixed order, lists sorted.
    public func yaml() throws -> String {
        func scalar(_ text: String) -> Node { Node(text) }
        func list(_ items: [String], flow: Bool = false) -> Node {
            .sequence(Node.Sequence(items.map(scalar), .implicit, flow ? .flow : .block))
        }
        func mapping(_ pairs: [(String, Node)]) -> Node {
            .mapping(Node.Mapping(pairs.map { (scalar($0.0), $0.1) }))
        }
        let root = mapping([
            ("image", scalar(image)),
            (
                "recorded",
                mapping([
                    ("time", scalar(recordedAt)), ("duration", Node(String(format: "%.1f", duration), .implicit)),
                    ("events", Node(String(events), .implicit)),
                ])
            ),
            ("executables", list(executables)),
            ("files", mapping([("read", list(readPaths)), ("write", list(writePaths))])),
            (
                "network",
                mapping([
                    (
                        "listen",
                        .sequence(Node.Sequence(listenPorts.map { Node(String($0), .implicit) }, .implicit, .flow))
                    ),
                    ("connect", list(connectEndpoints)),
                ])
            ),
            ("syscalls", list(syscalls, flow: true)),
            ("capabilities", list(capabilities)),
        ])
        return "# Caduceus learned container profile (caduceus profile record); edit freely.\n"
            + (try Yams.serialize(node: root, width: 100, sortKeys: false))
    }

    /// Reads a profile written by `yaml()` (or by hand): unknown keys are refused, missing lists are empty.
    public init(yaml text: String) throws {
        // Yams recurses: deep YAML is refused before it sees it, as in rule files.
        guard text.utf8.count <= RuleFileBounds.fileBytes else {
            throw ProfileError(
                "the profile is \(text.utf8.count) bytes, more than the \(RuleFileBounds.fileBytes) a profile may have")
        }
        if let deep = RuleFileBounds.nestingProblem(text) {
            throw ProfileError(
                "line \(deep.line), column \(deep.column): the YAML nests more than \(RuleFileBounds.yamlNesting) levels deep"
            )
        }
        guard let root = try Yams.compose(yaml: text), let top = root.mapping else {
            throw ProfileError("the profile is not a YAML mapping")
        }
        let known: Set<String> = ["image", "recorded", "executables", "files", "network", "syscalls", "capabilities"]
        for key in top.keys.compactMap(\.string) where !known.contains(key) {
            throw ProfileError("unknown key '\(key)' in the profile (known: \(known.sorted().joined(separator: ", ")))")
        }
        func strings(_ node: Node?, _ name: String) throws -> [String] {
            guard let node else { return [] }
            if case .scalar(let s) = node, s.string.isEmpty || s.string == "null" || s.string == "~" { return [] }
            guard let sequence = node.sequence else { throw ProfileError("'\(name)' must be a list") }
            return try sequence.map { item in
                guard let value = item.string else { throw ProfileError("'\(name)' must list strings") }
                return value
            }
        }
        guard let image = top["image"]?.string else { throw ProfileError("the profile names no image") }
        let recorded = top["recorded"]
        let ports = try strings(top["network"]?["listen"], "network.listen").map { text in
            guard let port = Int(text), (0...65535).contains(port) else {
                throw ProfileError("network.listen: '\(text)' is not a port")
            }
            return port
        }
        self.init(
            image: image, recordedAt: recorded?["time"]?.string ?? "", duration: recorded?["duration"]?.float ?? 0,
            events: UInt64(recorded?["events"]?.string ?? "") ?? 0,
            executables: try strings(top["executables"], "executables"),
            readPaths: try strings(top["files"]?["read"], "files.read"),
            writePaths: try strings(top["files"]?["write"], "files.write"),
            listenPorts: ports, connectEndpoints: try strings(top["network"]?["connect"], "network.connect"),
            syscalls: try strings(top["syscalls"], "syscalls"),
            capabilities: try strings(top["capabilities"], "capabilities"))
    }

    public static func load(path: String) throws -> ContainerProfile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ProfileError("\(path): \(error.localizedDescription)")
        }
        do { return try ContainerProfile(yaml: text) } catch let error as ProfileError {
            throw ProfileError("\(path): \(error.message)")
        } catch {
            throw ProfileError("\(path): \(error)")
        }
    }

    /// One profile covering this one and `others` (recordings of the same image under different
    /// workloads or configurations, such as SQLite and PostgreSQL): every list is the union, the
    /// recording times are the first one's, durations and events add up. File prefixes covered
    /// by a shorter directory of the union are dropped.
    public func merged(with others: [ContainerProfile]) throws -> ContainerProfile {
        for other in others where other.image != image {
            throw ProfileError("cannot merge profiles of different images: \(image) and \(other.image)")
        }
        let all = [self] + others
        func union<T>(_ list: (ContainerProfile) -> [T]) -> [T] { all.flatMap(list) }
        return ContainerProfile(
            image: image, recordedAt: recordedAt, duration: all.map(\.duration).reduce(0, +),
            events: all.map(\.events).reduce(0, +),
            executables: union(\.executables), readPaths: ProfileLearner.dropCovered(union(\.readPaths)),
            writePaths: ProfileLearner.dropCovered(union(\.writePaths)), listenPorts: union(\.listenPorts),
            connectEndpoints: union(\.connectEndpoints), syscalls: union(\.syscalls),
            capabilities: union(\.capabilities))
    }

    // MARK: seccomp

    /// Syscalls a container runtime (runc installs the filter before it calls execve) and a
    /// process's own start (the dynamic loader, libc and thread setup) need before anything a
    /// recording can see, and those libc makes on its own depending on sizes rather than on what
    /// the program does (mremap when realloc grows a large block, sysinfo for sysconf's memory
    /// size): allowed in every generated seccomp profile.
    public static let seccompBaseline: [String] = [
        "access", "arch_prctl", "brk", "capget", "capset", "chdir", "clock_gettime", "clock_nanosleep", "clone",
        "clone3", "close",
        "close_range", "dup", "dup2", "dup3", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "execve",
        "execveat", "exit",
        "exit_group", "faccessat", "faccessat2", "fchdir", "fcntl", "fstat", "fstatfs", "futex", "getcwd", "getdents64",
        "getegid",
        "geteuid", "getgid", "getpid", "getppid", "getrandom", "getrlimit", "gettid", "gettimeofday", "getuid", "ioctl",
        "lseek",
        "madvise", "mmap", "mprotect", "mremap", "munmap", "nanosleep", "newfstatat", "open", "openat", "openat2",
        "pipe", "pipe2", "poll",
        "ppoll", "prctl", "pread64", "prlimit64", "read", "readlink", "readlinkat", "rseq", "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn", "sched_getaffinity", "sched_yield", "set_robust_list", "set_tid_address", "setgid", "setgroups",
        "setuid",
        "sigaltstack", "stat", "statx", "sysinfo", "tgkill", "uname", "write", "writev",
    ]

    /// Syscalls a shell started by `docker exec` needs to run commands and manage files (an
    /// operator's, or the attack lab's busybox toolkit): waiting for its children, process
    /// groups, and the file operations of coreutils (mkdir, ln -s, rm, mv, chmod, touch). Allowed
    /// in every generated seccomp profile so that the container can still be entered and
    /// inspected; `detect --profile` still reports them as drift when the container itself never
    /// used them. Nothing here reaches beyond the container's files and processes: namespaces,
    /// mounts, ptrace, bpf, keyrings, modules, memfd_create and the like stay refused.
    public static let seccompShellBaseline: [String] = [
        "chmod", "fchmod", "fchmodat", "getpgid", "getpgrp", "kill", "link", "linkat", "mkdir", "mkdirat", "rename",
        "renameat",
        "renameat2", "rmdir", "setpgid", "symlink", "symlinkat", "umask", "unlink", "unlinkat", "utimensat", "wait4",
        "waitid",
    ]

    /// The syscalls the generated seccomp profile allows: those seen, `seccompBaseline` and
    /// `seccompShellBaseline`.
    public var seccompAllowed: [String] {
        Array(Set(syscalls).union(Self.seccompBaseline).union(Self.seccompShellBaseline)).sorted()
    }

    /// A Docker/OCI seccomp profile allowing `seccompAllowed`, refusing everything else with
    /// EPERM: for `docker run --security-opt seccomp=FILE`.
    public func seccompJSON() throws -> Data {
        let names = seccompAllowed
        let object: [String: Any] = [
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [["names": names, "action": "SCMP_ACT_ALLOW"]],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}

public struct ProfileError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Array where Element == String {
    func uniqueSorted() -> [String] { Array(Set(self)).sorted() }
}
