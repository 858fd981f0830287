import Foundation

/// Runs other programs (docker, docker-compose, apt-get, auditd, strace, tar, ldd) for the lab,
/// the deployment and the benchmarks: one place that starts a process, collects what it printed
/// and turns a failure into an error that quotes it.
///
/// Children are started with `posix_spawn`, not Foundation's `Process`: a `Process` child
/// inherits the socket by which Foundation learns that it ended, and a daemon it starts
/// (auditd started by `apt-get install auditd`'s postinst, or by a shell) keeps that socket,
/// so the wait never ends. For the same reason output goes to an unlinked file, not a pipe:
/// a daemon holding the file does not keep the reader waiting for end of file.
public enum ProcessRunner {
    /// Runs `arguments` (looked up in PATH) to completion; its exit status (128 + signal when a
    /// signal ended it) and its standard output and error, interleaved and trimmed.
    public static func run(_ arguments: [String], environment: [String: String]? = nil) -> (
        status: Int32, output: String
    ) {
        var template = Array("\(NSTemporaryDirectory())/caduceus-output-XXXXXX".utf8CString)
        let output = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard output >= 0 else { return (127, "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        _ = fcntl(output, F_SETFD, FD_CLOEXEC)  // only this child gets it, through dup2
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        defer { close(output) }
        let pid: pid_t
        do {
            pid = try spawn(arguments, output: .descriptor(output), environment: environment)
        } catch {
            return (127, "\(error)")
        }
        let status = wait(for: pid)
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(output, $0.baseAddress, $0.count, offset) }
            if count <= 0 { break }
            data += buffer[0..<count]
            offset += off_t(count)
        }
        return (status, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs `arguments` and returns what it printed, or throws a `LabError` quoting the command
    /// and its output when it exits non-zero.
    @discardableResult
    public static func check(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let (status, output) = run(arguments, environment: environment)
        guard status == 0 else {
            throw LabError("\(arguments.joined(separator: " ")) failed (exit \(status)): \(output.suffix(2000))")
        }
        return output
    }

    /// Whether `name` is an executable in PATH.
    public static func isInstalled(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Where a spawned child's standard output and error go.
    public enum Output {
        /// An open descriptor of the caller's.
        case descriptor(Int32)
        /// A file, created or truncated.
        case file(String)
    }

    /// Starts `arguments` (looked up in PATH) with standard input from /dev/null, standard
    /// output and error to `output`, no signal blocked and every signal's default disposition
    /// (a child otherwise inherits the spawning thread's mask, and strace, say, never sees the
    /// SIGINT that tells it to detach). Returns its pid; the caller waits for it.
    public static func spawn(_ arguments: [String], output: Output, environment: [String: String]? = nil) throws
        -> pid_t
    {
        precondition(!arguments.isEmpty)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        switch output {
        case .descriptor(let descriptor):
            posix_spawn_file_actions_adddup2(&actions, descriptor, 1)
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var variables = ProcessInfo.processInfo.environment
        if let environment { variables.merge(environment) { $1 } }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard status == 0 else { throw LabError("cannot start \(arguments[0]): \(String(cString: strerror(status)))") }
        return pid
    }

    /// Waits for `pid` to end: its exit status, or 128 + the signal that ended it.
    public static func wait(for pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return 127 }
        }
        return exitStatus(status)
    }

    /// A `waitpid` status as a shell would report it.
    static func exitStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// Something the lab could not do, and why.
public struct LabError: Error, CustomStringConvertible {
    /// What failed and why, in words (quoting a command's output when one failed).
    public let description: String
    /// An error that says `description`.
    public init(_ description: String) { self.description = description }
}
