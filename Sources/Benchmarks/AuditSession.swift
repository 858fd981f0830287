import Foundation
import LabSupport

/// auditd with one rule equivalent to "every syscall of the FHIR server's process", on only
/// while the auditd configuration of the overhead benchmark runs.
///
/// Starts a private auditd (its log in a temporary folder) when none runs. Once audit has been
/// enabled, every new task takes the syscall-audit slow path even with auditing off;
/// `-a never,task` (Fedora's default rule) keeps the other configurations' containers, started
/// while it is in place, free of it. `restore()` puts back what it found.
final class AuditSession {
    let folder: String
    private var prior: [String: String] = [:]
    private var startedPID: Int32 = 0
    private var addedNeverTask = false
    private var rule: [String]?

    init(folder: String) throws {
        self.folder = folder
        guard ProcessRunner.isInstalled("auditctl"), ProcessRunner.isInstalled("auditd") else {
            throw LabError("auditd is not installed (apt-get install auditd)")
        }
        prior = try Self.status()
        let rules = try ProcessRunner.check(["auditctl", "-l"])
        // A pid that no longer runs (an auditd killed without deregistering) counts as none.
        if let pid = Int32(prior["pid"] ?? "0"), pid == 0 || kill(pid, 0) != 0 {
            let configuration = folder + "/auditd"
            try FileManager.default.createDirectory(atPath: configuration, withIntermediateDirectories: true)
            chmod(configuration, 0o750)
            var text = (try? String(contentsOfFile: "/etc/audit/auditd.conf", encoding: .utf8)) ?? ""
            text = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                if line.hasPrefix("log_file") { return "log_file = \(configuration)/audit.log" }
                if line.hasPrefix("max_log_file_action") { return "max_log_file_action = IGNORE" }
                return String(line)
            }.joined(separator: "\n")
            try text.write(toFile: configuration + "/auditd.conf", atomically: false, encoding: .utf8)
            chmod(configuration + "/auditd.conf", 0o640)
            try ProcessRunner.check(["auditd", "-c", configuration])  // forks itself into the background
            for _ in 0..<100 where (try Self.status())["pid"] == "0" { usleep(100_000) }
            startedPID = Int32(try Self.status()["pid"] ?? "0") ?? 0
            guard startedPID != 0 else { throw LabError("auditd did not register with the kernel") }
        }
        try ProcessRunner.check(["auditctl", "-b", "8192"])  // Debian's audit.rules value; the kernel's is 64
        if !rules.hasPrefix("-") {
            try ProcessRunner.check(["auditctl", "-a", "never,task"])
            addedNeverTask = true
        }
        try ProcessRunner.check(["auditctl", "-e", "0"])
    }

    static func status() throws -> [String: String] {
        var fields: [String: String] = [:]
        for line in try ProcessRunner.check(["auditctl", "-s"]).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// Auditing on: tasks created from now on are audited (start the server after this).
    func enable() throws {
        if addedNeverTask { try ProcessRunner.check(["auditctl", "-d", "never,task"]) }
        try ProcessRunner.check(["auditctl", "-e", "1"])
    }

    /// The rule: every syscall of the process `pid` (all its threads: audit's pid is the tgid).
    func watch(pid: Int32) throws {
        let rule = ["always,exit", "-F", "arch=b64", "-S", "all", "-F", "pid=\(pid)", "-F", "key=caduceus-bench"]
        try ProcessRunner.check(["auditctl", "-a"] + rule)
        self.rule = rule
    }

    /// Rule removed, backlog drained, auditing back as it was.
    func disable() {
        if let rule { _ = ProcessRunner.run(["auditctl", "-d"] + rule) }
        rule = nil
        for _ in 0..<200 where ((try? Self.status())?["backlog"] ?? "0") != "0" { usleep(50_000) }
        _ = ProcessRunner.run(["auditctl", "-e", prior["enabled"] ?? "0"])
        if addedNeverTask { _ = ProcessRunner.run(["auditctl", "-a", "never,task"]) }
    }

    func restore() {
        disable()
        if addedNeverTask { _ = ProcessRunner.run(["auditctl", "-d", "never,task"]) }
        if startedPID != 0 {
            kill(startedPID, SIGTERM)
            for _ in 0..<100 where kill(startedPID, 0) == 0 { usleep(100_000) }
        }
        _ = ProcessRunner.run(["auditctl", "-e", prior["enabled"] ?? "0"])
        _ = ProcessRunner.run(["auditctl", "-b", prior["backlog_limit"] ?? "64"])
    }
}
