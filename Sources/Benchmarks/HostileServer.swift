import Foundation
import HostileRequests
import LabSupport

/// The server `caduceus bench hostile` attacks: a `caduceus serve` it started on 127.0.0.1 (and
/// starts again on the same database after a crash, so that one crash does not end the count),
/// or one already running at a URL.
final class HostileServer: @unchecked Sendable {
    let executable: String?
    let directory: String?
    let basePath: String
    private let lock = NSLock()
    private(set) var pid: pid_t?
    private(set) var port: Int
    let host: String
    /// Bumped by each restart, so that the connections that lost the old server count its
    /// crash once.
    private(set) var generation = 0
    private(set) var crashes: [String] = []
    /// Dead and not restarted: the run ends.
    private var gone = false

    /// Whether a crash writes its backtrace into the log.
    let backtraces: Bool

    /// Starts `executable serve` on a free loopback port with a fresh SQLite database in `directory`.
    init(executable: String, directory: String, basePath: String, backtraces: Bool) throws {
        self.backtraces = backtraces
        self.executable = executable
        self.directory = directory
        self.basePath = basePath
        host = "127.0.0.1"
        port = 0
        try start()
    }

    /// A server that is already running; `pid`, when known, gives its memory and tells a crash
    /// from a dropped connection.
    init(url: String, pid: pid_t?) throws {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host,
            let port = components.port
        else {
            throw LabError("--url must be http://127.0.0.1:PORT/base-path, not \(url)")
        }
        guard host == "127.0.0.1" || host == "localhost" else {
            throw LabError("bench hostile attacks loopback servers only (127.0.0.1), not \(host)")
        }
        self.host = "127.0.0.1"
        self.port = port
        self.pid = pid
        backtraces = false
        basePath = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
        executable = nil
        directory = nil
    }

    var logPath: String? { directory.map { "\($0)/server-\(generation).log" } }

    private func start() throws {
        guard let executable, let directory, let logPath else { return }
        let pid = try ProcessRunner.spawn(
            [
                executable, "serve", "--host", "127.0.0.1", "--port", "0", "--base-path", basePath, "--database",
                directory + "/fhir.sqlite", "--log-level", "error",
            ],
            output: .file(logPath),
            // A crashing server that writes a backtrace keeps some threads answering for seconds,
            // so requests still waiting look like hangs, and it takes ~15 s to die: many requests
            // die at once without one (the fatal error is still printed); one (--index) gets it.
            environment: [
                "SWIFT_BACKTRACE": backtraces
                    ? "enable=yes,interactive=no,threads=crashed,images=none,registers=none" : "enable=no"
            ])
        self.pid = pid
        for _ in 0..<600 {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            // "... listening on http://127.0.0.1:PORT/base"
            if let line = log.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
                let address = line.components(separatedBy: "http://").last?.split(separator: "/").first,
                let port = address.split(separator: ":").last.flatMap({ Int($0) })
            {
                self.port = port
                return
            }
            guard isRunning(pid) else { throw LabError("caduceus serve exited at start: \(log.suffix(1000))") }
            usleep(100_000)
        }
        stop()
        throw LabError("caduceus serve did not listen within 60 s")
    }

    /// What a lost connection meant.
    enum Loss {
        /// The server lives: the connection alone was dropped.
        case dropped(port: Int)
        /// The server died: this call counted its crash and, when this bench started it,
        /// started it again (`port`), else the run ends (`nil`).
        case crashed(port: Int?)
        /// Another connection already counted this death.
        case counted(port: Int?)
    }

    /// Called by a connection that lost the server of `generation` (`reason`: how); a death is
    /// counted once, with the requests then in flight as suspects.
    func lost(in generation: Int, reason: String, suspects: () -> [String]) -> Loss {
        lock.lock()
        defer { lock.unlock() }
        guard generation == self.generation, !gone else { return .counted(port: gone ? nil : port) }
        if settles() { return .dropped(port: port) }
        // The crash's own lines: the fatal error and the frames in Caduceus's sources.
        let log = logPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
        let cause = log.split(separator: "\n").filter {
            $0.contains("Fatal error") || $0.contains("crashed") || $0.contains("/Sources/")
        }.prefix(8)
        crashes.append(
            "server exited (\(executable == nil ? "the process is gone" : exitDescription)) with these requests in flight:\n"
                + Set(suspects()).sorted().joined(separator: "\n")
                + (cause.isEmpty
                    ? ""
                    : "\n  from its log:\n"
                        + cause.map { "    " + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")))
        self.generation += 1
        guard executable != nil else {
            gone = true
            return .crashed(port: nil)
        }
        do {
            try start()
            return .crashed(port: port)
        } catch {
            crashes.append("restart failed: \(error)")
            gone = true
            return .crashed(port: nil)
        }
    }

    /// Whether the server is alive and answering: it is watched until it answers `metadata`
    /// or exits (a crashing server may hold its connections while it writes a backtrace), for
    /// at most a minute (then it is alive but stuck).
    func settles() -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let pid, !isRunning(pid) { return false }
            let probe = HostileHTTPConnection(host: host, port: port, timeout: 2)
            if case .answered = probe.send(
                HostileRequest(index: -1, kind: "probe", method: "GET", target: basePath + "/metadata"))
            {
                return true
            }
            // without a pid: gone after 10 s of silence
            if pid == nil, Date() > deadline.addingTimeInterval(-50) { return false }
            usleep(200_000)
        }
        return true
    }

    private var lastStatus: Int32 = 0
    private var exitDescription: String {
        let signal = lastStatus & 0x7f
        return signal == 0 ? "exit \((lastStatus >> 8) & 0xff)" : "signal \(signal)"
    }

    private func isRunning(_ pid: pid_t) -> Bool {
        if executable == nil {
            // Another process's child: a zombie (state Z in /proc) has died too.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let state = stat.split(separator: ")").last?.split(separator: " ").first
            return kill(pid, 0) == 0 && state != "Z"
        }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { lastStatus = status }
        return result == 0
    }

    /// The server's resident memory and its peak, in kB, from /proc.
    var memory: (rss: Int, peak: Int)? {
        guard let pid, let memory = ProcessMemory(pid: pid) else { return nil }
        return (memory.residentKB, memory.peakKB)
    }

    /// Stops a server this bench started (SIGTERM, then SIGKILL after 10 s).
    func stop() {
        guard executable != nil, let pid else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where isRunning(pid) { usleep(100_000) }
        if isRunning(pid) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        self.pid = nil
    }
}
