import Foundation
import LabSupport

/// The Docker engine the deployment runs on: Debian's `docker.io` and `docker-compose` (the v1
/// tool), installed when missing, and `dockerd` started when it does not answer.
///
/// dockerd runs with `--bridge=none --iptables=false`: the default bridge cannot be set up on
/// these kernels, and every container of the deployment uses the host's network on 127.0.0.1.
public enum DockerEngine {
    /// Where a dockerd started here logs.
    public static let logPath = "/tmp/caduceus-dockerd.log"

    /// Whether a Docker engine answers the client.
    public static var isAnswering: Bool {
        ProcessRunner.run(["docker", "info", "--format", "{{.ServerVersion}}"]).status == 0
    }

    /// Installs what is missing and starts dockerd if it does not answer; `progress` hears what
    /// is done. Throws when installing needs root and this is not root, or dockerd fails to answer.
    public static func ensureRunning(withCompose: Bool = true, progress: (String) -> Void) throws {
        var packages: [String] = []
        if !ProcessRunner.isInstalled("dockerd") || !ProcessRunner.isInstalled("docker") {
            packages.append("docker.io")
        }
        if withCompose && !ProcessRunner.isInstalled("docker-compose") { packages.append("docker-compose") }
        try installPackages(packages, progress: progress)
        if isAnswering { return }
        guard geteuid() == 0 else { throw LabError("dockerd is not running and starting it needs root (sudo)") }
        progress("starting dockerd --bridge=none --iptables=false (log: \(logPath))")
        // setsid + nohup: the engine outlives this command; a lock keeps two starts from racing.
        // Every descriptor above stderr is closed first: the engine lives on, and an inherited
        // one would hold what it refers to for as long (a `flock` around this command, or our
        // own lock, would stay locked until dockerd stops).
        let closeInherited = "for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && eval \"exec $n>&-\"; done"
        try ProcessRunner.check([
            "flock", "/tmp/caduceus-docker.lock", "sh", "-c",
            "docker info >/dev/null 2>&1 || { bash -c '\(closeInherited); exec setsid nohup dockerd --bridge=none --iptables=false' "
                + ">\(logPath) 2>&1 </dev/null & }",
        ])
        for _ in 0..<120 {
            if isAnswering { return }
            usleep(500_000)
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw LabError("dockerd did not answer within 60 s; the end of \(logPath):\n\(log.suffix(1500))")
    }

    /// `apt-get install` of the Debian packages named, if any.
    public static func installPackages(_ packages: [String], progress: (String) -> Void) throws {
        guard !packages.isEmpty else { return }
        guard geteuid() == 0 else {
            throw LabError(
                "\(packages.joined(separator: ", ")) missing; install as root: apt-get install \(packages.joined(separator: " "))"
            )
        }
        progress("apt-get install \(packages.joined(separator: " "))")
        let environment = ["DEBIAN_FRONTEND": "noninteractive"]
        try ProcessRunner.check(["apt-get", "update", "-qq"], environment: environment)
        try ProcessRunner.check(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + packages, environment: environment)
    }
}
