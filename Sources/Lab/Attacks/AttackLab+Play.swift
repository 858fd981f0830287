import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Playing one scenario and judging what it achieved: the matrix's outcome column.
extension AttackLab {
    /// Plays `scenario` against this lab's container: exit status, outcome and figures.
    func play(_ scenario: AttackScenario, listenPort: Int) async throws -> (Int32, String, [String: Double]) {
        let before = scenario.privileged ? Self.hostSettings() : [:]
        var (status, result, figures): (Int32, String, [String: Double])
        switch scenario.play {
        case .container(let judged):
            let (code, output) = execute(
                script: scenario.command, environment: ["LISTEN_PORT": String(listenPort)], timeout: 120)
            (status, figures) = (code, [:])
            result =
                judged
                ? (code == 0 ? "succeeded" : "blocked (\(Self.refusal(in: output) ?? "exit \(code)"))")
                : code == 0 ? "ran" : "exit \(code)"
        case .forkBomb:
            (status, result, figures) = await forkBomb(scenario)
        case .requestFlood:
            guard let baseURL else { return (0, "skipped: no base URL", [:]) }
            let flood = await APIAttacks.flood(baseURL: baseURL)
            let answered = await APIAttacks.answers(baseURL: baseURL)
            status = 0
            figures = [
                "requests": Double(flood.requests), "errors": Double(flood.errors), "seconds": flood.seconds,
                "serverAnswered": answered ? 1 : 0,
            ]
            result =
                String(
                    format: "%d requests in %.1f s (%.0f/s), %d failed; ", flood.requests, flood.seconds,
                    Double(flood.requests) / max(flood.seconds, 0.001), flood.errors)
                + (answered ? "server answered after" : "server DID NOT answer after")
        case .fhirExfiltration:
            guard let baseURL else { return (0, "skipped: no base URL", [:]) }
            do {
                let pulled = try await APIAttacks.exfiltrate(baseURL: baseURL)
                status = 0
                figures = [
                    "present": Double(pulled.present), "patients": Double(pulled.patients),
                    "observations": Double(pulled.observations),
                    "pages": Double(pulled.pages), "seeded": Double(pulled.seeded),
                ]
                result =
                    "\(pulled.patients + pulled.observations) records pulled: \(pulled.patients) of \(pulled.present) patients, "
                    + "\(pulled.observations) observations, \(pulled.pages) pages"
                    + (pulled.seeded > 0 ? " (\(pulled.seeded) patients planted)" : "")
            } catch {
                (status, result, figures) = (1, "failed: \(error)", [:])
            }
        }
        if scenario.privileged {
            // Restore, then say so: the variants are built not to change the host, and this is the proof.
            let changed = Self.restoreHostSettings(before)
            figures["hostChanged"] = Double(changed.count)
            if !changed.isEmpty { result += "; HOST SETTING CHANGED, restored: " + changed.joined(separator: ", ") }
        }
        return (status, result, figures)
    }

    /// The errno named in what a command printed: the first refusal in it, as the syscall's
    /// error name (EPERM, EROFS, ENOENT, …); nil when it names none.
    static func refusal(in output: String) -> String? {
        let text = output.lowercased()
        // busybox mount says "permission denied (are you root?)" for both EPERM and EACCES; a
        // mount refused to root is the seccomp profile or a missing capability: EPERM.
        // busybox sh says "nonexistent directory" for ENOENT on a redirection.
        var found: [(String.Index, String)] = []
        for (phrase, name) in [("permission denied (are you root?)", "EPERM"), ("nonexistent directory", "ENOENT")] {
            if let range = text.range(of: phrase) { found.append((range.lowerBound, name)) }
        }
        for (number, name) in errnoNames {
            if let range = text.range(of: String(cString: strerror(number)).lowercased()) {
                found.append((range.lowerBound, name))
            }
        }
        return found.min { $0.0 < $1.0 }?.1  // the first of equals: the phrases above before strerror's
    }

    static let errnoNames: [(Int32, String)] = [
        (EPERM, "EPERM"), (ENOENT, "ENOENT"), (EACCES, "EACCES"), (EROFS, "EROFS"), (ENOSYS, "ENOSYS"),
        (ENOEXEC, "ENOEXEC"),
        (ENODEV, "ENODEV"), (ENXIO, "ENXIO"), (EINVAL, "EINVAL"), (EBUSY, "EBUSY"), (ECONNREFUSED, "ECONNREFUSED"),
        (EAGAIN, "EAGAIN"), (ENOTDIR, "ENOTDIR"),
    ]

    // MARK: - Fork bomb

    /// The fork bomb, only where a pids limit holds it; then, from the host, whether any of its
    /// processes is left (killed from the host if so: the safety net, not the plan) and whether
    /// the server still answers.
    func forkBomb(_ scenario: AttackScenario) async -> (Int32, String, [String: Double]) {
        let limit = Int((try? Self.docker(["inspect", "-f", "{{.HostConfig.PidsLimit}}", container])) ?? "") ?? 0
        guard limit > 0, limit <= 4096 else {
            return (
                0,
                "skipped: the container has no pids limit (docker run --pids-limit), so nothing would hold a fork bomb",
                [:]
            )
        }
        let server = Int32((try? Self.docker(["inspect", "-f", "{{.State.Pid}}", container])) ?? "") ?? 0
        let fullID = (try? Self.docker(["inspect", "-f", "{{.Id}}", container])) ?? container
        let (status, output) = execute(script: scenario.command, timeout: 60)
        // Anything of the lab's still in the container after the bomb unwound: give it 5 s, then kill it.
        var leftover = Self.processes(inContainer: fullID).filter { $0 != server }
        for _ in 0..<50 where !leftover.isEmpty {
            try? await Task.sleep(for: .milliseconds(100))
            leftover = Self.processes(inContainer: fullID).filter { $0 != server }
        }
        let killed = leftover.count
        for pid in leftover { kill(pid, SIGKILL) }
        var figures: [String: Double] = ["limit": Double(limit), "leftover": Double(killed)]
        var fields: [String: String] = [:]
        if let line = output.split(separator: "\n").last(where: { $0.hasPrefix("bomb: max=") }) {
            for pair in line.dropFirst("bomb: ".count).split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
        }
        for key in ["max", "peak", "refused", "before", "after"] { figures[key] = fields[key].flatMap(Double.init) }
        if let stop = fields["stop"].flatMap(Double.init), let gone = fields["gone"].flatMap(Double.init) {
            figures["unwindSeconds"] = gone - stop
        }
        var answered = true
        if let baseURL {
            answered = await APIAttacks.answers(baseURL: baseURL)
            figures["serverAnswered"] = answered ? 1 : 0
        }
        guard status == 0, let peak = fields["peak"], let refused = figures["refused"] else {
            return (
                status,
                "bomb failed (\(status)): " + String(output.suffix(200))
                    + (killed > 0 ? "; \(killed) processes killed from the host" : ""), figures
            )
        }
        var result = "held at \(peak)/\(fields["max"] ?? "?") pids, \(Int(refused)) forks refused (EAGAIN)"
        result +=
            killed > 0
            ? "; NOT unwound: \(killed) processes killed from the host"
            : String(format: "; unwound in %.1f s", figures["unwindSeconds"] ?? 0)
        result +=
            baseURL == nil
            ? "; server not checked (no base URL)"
            : answered ? "; server answered after" : "; server DID NOT answer after"
        return (status, result, figures)
    }

    /// Host pids of the processes in a container (its full id in their cgroup paths, which
    /// holds for cgroup v1 and v2 and for the cgroupfs and systemd drivers).
    static func processes(inContainer fullID: String) -> [Int32] {
        guard !fullID.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else {
            return []
        }
        return entries.compactMap { entry in
            guard let pid = Int32(entry),
                let cgroup = try? String(contentsOfFile: "/proc/\(entry)/cgroup", encoding: .utf8),
                cgroup.contains(fullID)
            else { return nil }
            return pid
        }
    }

    // MARK: - Containers

    /// Starts a FHIR server container for the lab, serving on 127.0.0.1:`port`, with the compose
    /// deployment's pids limit (512: what holds the fork bomb); its id. `privileged` adds
    /// SYS_ADMIN and unconfined seccomp and AppArmor, what the privileged variants need;
    /// `--privileged` is not used (refused on VMs whose bounding set lacks capabilities, and far more).
    /// `audit` keeps the server's audit trail (`--audit on`, with its bulk-read detector at the
    /// default limit): where the lab finds the exfiltration that the kernel cannot see.
    public static func startServer(
        port: Int, privileged: Bool = false, image: String = "caduceus-fhir:latest", audit: Bool = true
    ) throws -> String {
        let privileges =
            privileged
            ? [
                "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt",
                "apparmor=unconfined",
            ] : []
        // Named, so that alerts and `docker ps` say whose container it is.
        let name = "caduceus-lab-\(privileged ? "privileged" : "fhir")-\(port)"
        return try docker(
            ["run", "-d", "--name", name, "--network", "host", "--pids-limit", "512"] + privileges
                + [image, "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite"]
                + (audit ? ["--audit", "on"] : []))
    }

    // MARK: - Host settings

    /// The host settings a container escape would change: the kernel's core_pattern and the
    /// release_agent of every cgroup v1 hierarchy mounted on the host. Path to value.
    public static func hostSettings() -> [String: String] {
        var settings: [String: String] = [:]
        var paths = ["/proc/sys/kernel/core_pattern"]
        let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        paths += hierarchies.sorted().map { "/sys/fs/cgroup/\($0)/release_agent" }
        for path in paths {
            if let value = try? String(contentsOfFile: path, encoding: .utf8) { settings[path] = value }
        }
        return settings
    }

    /// Writes back every setting of `before` that differs now; the paths that did.
    static func restoreHostSettings(_ before: [String: String]) -> [String] {
        let now = hostSettings()
        return before.keys.sorted().filter { now[$0] != before[$0] }.map { path in
            try? before[path]!.write(toFile: path, atomically: false, encoding: .utf8)
            return path
        }
    }
}
