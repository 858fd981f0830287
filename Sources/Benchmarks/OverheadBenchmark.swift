import Foundation
import JSON
import Lab
import LabSupport

/// What monitoring costs the FHIR server: its throughput and latency under a fixed load from a
/// second process (`caduceus bench load`), with no monitor, with Caduceus capturing every
/// syscall of its container to a file, with Caduceus detecting only, under auditd with an
/// equivalent rule, under `strace -f`, and with no monitor but the server under the seccomp
/// profile the deployment gives it, as ratios to the unmonitored runs of the same round.
///
/// Every run starts a fresh server container on the same seeded database (so auditd can
/// audit its tasks from birth, and no run inherits another's state); configurations take turns
/// within each round, their order rotating, so the machine's drift is shared out.
public final class OverheadBenchmark {
    public enum Configuration: String, CaseIterable, Sendable {
        case none, capture, detect, auditd, strace, seccomp

        public var label: String {
            switch self {
            case .none: "no monitor"
            case .capture: "Caduceus: every syscall to a recording"
            case .detect: "Caduceus: detection only"
            case .auditd: "auditd: every syscall of the server"
            case .strace: "strace -f to a file"
            case .seccomp: "no monitor, generated seccomp"
            }
        }
    }

    /// One measured run.
    public struct Run: Sendable {
        public var load: LoadGenerator.Result
        /// Events the capture wrote and lost (capture only).
        public var eventsWritten: Int?
        public var eventsLost: Int?
        /// Bytes of the capture's file (capture only): its bytes per event are this / eventsWritten.
        public var bytesWritten: Int?

        public init(
            load: LoadGenerator.Result, eventsWritten: Int? = nil, eventsLost: Int? = nil, bytesWritten: Int? = nil
        ) {
            self.load = load
            self.eventsWritten = eventsWritten
            self.eventsLost = eventsLost
            self.bytesWritten = bytesWritten
        }

        /// Takes the counts from the trace's last line: "N events written, M lost in the
        /// kernel (...), B bytes written (...)".
        mutating func countCapture(log: String) {
            let line = log.split(separator: "\n").last { $0.contains("events written") } ?? ""
            let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            if numbers.count >= 2 {
                eventsWritten = numbers[0]
                eventsLost = numbers[1]
            }
            if let bytes = line.range(of: " bytes written")?.lowerBound {
                bytesWritten = Int(line[..<bytes].split(separator: " ").last ?? "")
            }
        }
    }

    public var configurations: [Configuration] = Configuration.allCases
    public var runs = 5
    public var seconds = 10.0
    public var warmupSeconds = 2.0
    public var connections = 8
    public var patients = 50
    public var image = ImageBuilder.serverImage
    /// The seccomp profile of the `seccomp` configuration: the one docker-compose.yml gives the
    /// deployed server (the other configurations run under Docker's default profile).
    public var seccompProfile = "profiles/caduceus-fhir.seccomp.json"
    /// The caduceus executable that runs the load, the capture and the detection.
    public var executable = ImageBuilder.currentExecutable
    public var progress: (String) -> Void

    /// Unmeasured rounds before the measured ones. In seven benchmark runs on a quiet machine
    /// (BENCHMARKS.md, "Overhead verdict"), the first capture run was the slowest of its five
    /// in four, at 0.81-0.91 of its round's unmonitored run where the later rounds ran at
    /// 0.90-1.06 (cause not found; later runs did not repeat it). The warm-up round's figures
    /// are printed beside the table, not counted, so what the verdict leaves out shows.
    public var warmupRounds = 1
    /// How the runs of the capture and of no monitor are placed.
    public enum Pairing: Sendable, Equatable {
        /// A fresh server container per run, every configuration in turns within each round.
        case freshServers
        /// Capture and no monitor only, on one server for the whole benchmark, back to back in
        /// each round, the recording started and stopped between runs (OverheadBenchmark+Paired.swift).
        case backToBack
        /// Capture and no monitor only, on one server, in turns of `sliceSeconds` within each
        /// run, the trace paused and resumed (OverheadBenchmark+Interleaved.swift).
        case interleaved(sliceSeconds: Double)
    }

    public var pairing = Pairing.freshServers
    /// With every configuration on fresh servers, the capture's goal is judged on runs of its
    /// own afterwards: `runs` runs of the capture and no monitor in turns of about this many
    /// seconds (a whole fraction of `seconds`) on one server, as `--interleave` measures them;
    /// nil judges it on the fresh-server rounds, whose noise on a busy machine is larger than the
    /// cost measured (BENCHMARKS.md, issue 16's sixth and seventh passes).
    public var verdictTurnSeconds: Double? = 1
    /// Each side's seconds in a run of `verdictRuns`: with 1 s turns, a run's baseline is a
    /// quarter of its turns (those without capture after one without), so runs of 8 s
    /// (the rounds' default) left 4 s of baseline a run and spread 0.90-1.04 (BENCHMARKS.md).
    public var verdictSeconds = 20.0
    /// The runs the capture's goal was judged on, when `verdictTurnSeconds` made them.
    public private(set) var verdictRuns: [Configuration: [Run]] = [:]
    /// The turns of `verdictRuns` (nil when none were made).
    var verdictSliceSeconds: Double?
    /// The measured interleaved runs' turns, summed (OverheadBenchmark+Interleaved.swift).
    var interleavedTurns = Sides()
    public private(set) var warmupResults: [Configuration: [Run]] = [:]
    public private(set) var results: [Configuration: [Run]] = [:]
    let folder: String
    let port = LoopbackPort.unused()
    var baseURL: String { "http://127.0.0.1:\(port)/fhir-server/api/v4" }

    public init(progress: @escaping (String) -> Void) throws {
        self.progress = progress
        folder =
            FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-overhead-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/seed", withIntermediateDirectories: true)
        chmod(folder, 0o755)
        try ProcessRunner.check(["chown", "1000:1000", folder + "/seed"])  // the image's server user
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    /// Seeds the database, then runs every configuration `runs` times.
    public func run() async throws {
        if configurations.contains(.strace) && !ProcessRunner.isInstalled("strace") {
            try DockerEngine.installPackages(["strace"], progress: progress)
        }
        if configurations.contains(.seccomp) {
            guard FileManager.default.isReadableFile(atPath: seccompProfile) else {
                throw LabError(
                    "no seccomp profile at \(seccompProfile) (Scripts/fhir-seccomp-profile.sh makes it; --seccomp-profile names another)"
                )
            }
            seccompProfile = URL(fileURLWithPath: seccompProfile).standardizedFileURL.path
        }
        var audit: AuditSession?
        if configurations.contains(.auditd) {
            if !ProcessRunner.isInstalled("auditctl") {
                try DockerEngine.installPackages(["auditd"], progress: progress)
            }
            audit = try AuditSession(folder: folder)
        }
        defer { audit?.restore() }
        progress("seeding \(patients) patients")
        let seeder = try await startServer(data: "seed")
        let ids: [String]
        do {
            ids = try await LoadGenerator.seed(baseURL: baseURL, patients: patients)
            stopServer(seeder)
        } catch {
            stopServer(seeder)
            throw error
        }
        try ids.joined(separator: "\n").write(toFile: folder + "/patients.txt", atomically: true, encoding: .utf8)
        switch pairing {
        case .freshServers: break
        case .backToBack:
            try await runPaired()
            return
        case .interleaved(let sliceSeconds):
            try await runInterleaved(sliceSeconds: sliceSeconds)
            return
        }
        for round in -warmupRounds..<runs {
            let order = configurations.indices.map { configurations[($0 + max(round, 0)) % configurations.count] }
            for configuration in order {
                announce(configuration, round: round)
                keep(try await measure(configuration, audit: audit), of: configuration, round: round)
            }
        }
        if configurations.contains(.capture), let slice = verdictTurnSeconds {
            let turnSeconds = verdictSeconds / max(1, (verdictSeconds / slice).rounded(.down))
            progress(
                "the capture's goal, judged on runs of its own: in turns of \(String(format: "%g", turnSeconds)) s")
            try await runInterleaved(sliceSeconds: turnSeconds, runSeconds: verdictSeconds) { round, capture, none in
                self.progress(
                    String(
                        format:
                            "  no monitor %.0f requests/s, capture %.0f requests/s (%.3f), %d events written, %d lost",
                        none.load.throughput, capture.load.throughput, capture.load.throughput / none.load.throughput,
                        capture.eventsWritten ?? 0, capture.eventsLost ?? 0))
                guard round >= 0 else { return }
                self.verdictRuns[.capture, default: []].append(capture)
                self.verdictRuns[.none, default: []].append(none)
            }
            verdictSliceSeconds = turnSeconds
        }
    }

    /// Says which run starts.
    func announce(_ configuration: Configuration, round: Int) {
        progress(
            round < 0
                ? "warm-up round (not counted): \(configuration.label)"
                : "round \(round + 1)/\(runs): \(configuration.label)")
    }

    /// Keeps `run` among the warm-up runs (a negative `round`) or the measured ones, and prints
    /// its figures.
    func keep(_ run: Run, of configuration: Configuration, round: Int) {
        if round < 0 {
            warmupResults[configuration, default: []].append(run)
        } else {
            results[configuration, default: []].append(run)
        }
        let latencies =
            run.load.p50Ms.isNaN ? "" : String(format: ", p50 %.2f ms, p99 %.2f ms", run.load.p50Ms, run.load.p99Ms)
        progress(
            String(format: "  %.0f requests/s", run.load.throughput) + latencies
                + (run.eventsWritten.map { ", \($0) events written, \(run.eventsLost ?? 0) lost" } ?? ""))
    }

    func measure(_ configuration: Configuration, audit: AuditSession?) async throws -> Run {
        if configuration == .auditd { try audit?.enable() }
        defer { if configuration == .auditd { audit?.disable() } }
        // Every run on a copy of the seeded database: the load's creates must not make later
        // runs' searches slower than earlier ones'.
        try? FileManager.default.removeItem(atPath: folder + "/data")
        try ProcessRunner.check(["cp", "-a", folder + "/seed", folder + "/data"])
        // Written back now, not during the measurement: the copy's dirty pages (and those a
        // previous run left) otherwise reached the disk while the server fsynced its commits,
        // at a moment that differed from run to run.
        sync()
        let container = try await startServer(
            data: "data",
            securityOptions: configuration == .seccomp ? ["--security-opt", "seccomp=" + seccompProfile] : [])
        defer { stopServer(container) }
        let pid = try ProcessRunner.check(["docker", "inspect", "-f", "{{.State.Pid}}", container])
        var monitor: MonitorProcess?
        switch configuration {
        case .none, .seccomp: break
        case .capture:
            monitor = try startCapture(container: container)
        case .detect:
            monitor = try MonitorProcess.start(
                [executable, "detect", "--container", container, "--format", "json"], log: folder + "/monitor.log",
                readyWhen: "Ctrl-C to stop")
        case .auditd:
            try audit?.watch(pid: Int32(pid) ?? 0)
        case .strace:
            // -I1: strace otherwise blocks SIGINT while busy, and would not stop when told.
            monitor = try MonitorProcess.start(
                ["strace", "-I1", "-f", "-qq", "-p", pid, "-o", folder + "/strace.out"], log: folder + "/monitor.log",
                readyWhen: nil, ready: { Self.isTraced(pid: pid) })
        }
        defer { monitor?.kill() }
        return try runLoad(under: monitor, configuration)
    }

    /// The load while `monitor` (started for `configuration`, or none) watches; stops it, counts
    /// what a capture wrote, and removes the monitor's files.
    func runLoad(under monitor: MonitorProcess?, _ configuration: Configuration) throws -> Run {
        try finish(runLoad(), under: monitor, configuration)
    }

    /// A run of `load`, which ran while `monitor` watched: stops the monitor, counts what a
    /// capture wrote, removes the monitor's files, and fails on the load's errors.
    func finish(_ load: LoadGenerator.Result, under monitor: MonitorProcess?, _ configuration: Configuration) throws
        -> Run
    {
        var run = Run(load: load)
        if configuration == .capture, let log = try monitor?.stop() {
            run.countCapture(log: log)
        } else {
            _ = try monitor?.stop()
        }
        try? FileManager.default.removeItem(atPath: folder + "/events.rec")
        try? FileManager.default.removeItem(atPath: folder + "/strace.out")
        guard load.errors == 0 else {
            throw LabError("\(configuration.label): \(load.errors) requests failed: \(load.firstError ?? "")")
        }
        return run
    }

    /// `caduceus trace` of `container` to the compact recording (`trace --format record`;
    /// `trace --input` makes it Tracee's JSON), ready once attached; `pausable`: SIGUSR1 and
    /// SIGUSR2 pause and resume it.
    func startCapture(container: String, pausable: Bool = false) throws -> MonitorProcess {
        try MonitorProcess.start(
            [
                executable, "trace", "--container", container, "--events", "all", "--format", "record", "--output",
                folder + "/events.rec",
            ] + (pausable ? ["--allow-pause"] : []),
            log: folder + "/monitor.log", readyWhen: "Ctrl-C to stop")
    }

    /// A warning when the kernel times every BPF program run (`kernel.bpf_stats_enabled`, left
    /// on by a profiling session): two more clock reads a run, which made the storm's traced
    /// rate 0.70 of untraced instead of 0.76 here. Nil when off or unknown.
    public static func bpfStatisticsNote(path: String = "/proc/sys/kernel/bpf_stats_enabled") -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            text.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        else { return nil }
        return
            "warning: kernel.bpf_stats_enabled=1: every BPF program run pays two extra clock reads, so the capture's "
            + "figures here overstate its cost (sysctl kernel.bpf_stats_enabled=0 turns it off)"
    }

    /// `caduceus bench load` in its own process; its JSON result.
    func runLoad() throws -> LoadGenerator.Result {
        let output = try ProcessRunner.check([
            executable, "bench", "load", "--base-url", baseURL, "--seconds", String(seconds), "--warmup",
            String(warmupSeconds),
            "--connections", String(connections), "--patients-file", folder + "/patients.txt",
        ])
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            throw LabError("caduceus bench load printed no result: \(output.suffix(500))")
        }
        return try LoadGenerator.Result(json: JSONParser.parse(String(line)))
    }

    /// A server container on the database in `folder/data`.
    func startServer(data: String, securityOptions: [String] = []) async throws -> String {
        let container = try ProcessRunner.check(
            [
                "docker", "run", "-d", "--network", "host", "--label", "caduceus.bench=overhead", "-v",
                folder + "/\(data):/data",
            ] + securityOptions + [
                image,
                "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/bench.sqlite",
                "--log-level", "warning",
            ])
        for _ in 0..<120 {
            if await Stack.answers(baseURL + "/metadata") { return container }
            try await Task.sleep(for: .milliseconds(250))
        }
        let logs = ProcessRunner.run(["docker", "logs", container]).output
        stopServer(container)
        // The head of the log says why (a fatal error's message precedes its backtrace).
        let shown = logs.count > 2500 ? "\(logs.prefix(1500))\n...\n\(logs.suffix(1000))" : logs
        throw LabError("the benchmark's FHIR server did not answer within 30 s: \(shown)")
    }

    func stopServer(_ container: String) {
        _ = ProcessRunner.run(["docker", "rm", "-f", container])
    }

    /// Whether strace has attached to the process (its main thread has a tracer).
    static func isTraced(pid: String) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return status.split(separator: "\n").contains { $0.hasPrefix("TracerPid:") && !$0.hasSuffix("\t0") }
    }
}

/// A monitor in its own process: started, ready once its log says so, stopped with SIGINT.
final class MonitorProcess {
    let pid: pid_t
    let logPath: String
    let name: String
    private var exited = false

    private init(pid: pid_t, logPath: String, name: String) {
        self.pid = pid
        self.logPath = logPath
        self.name = name
    }

    static func start(_ arguments: [String], log: String, readyWhen marker: String?, ready: () -> Bool = { true })
        throws -> MonitorProcess
    {
        let pid = try ProcessRunner.spawn(arguments, output: .file(log))
        let monitor = MonitorProcess(pid: pid, logPath: log, name: arguments[0...1].joined(separator: " "))
        for _ in 0..<600 {
            guard monitor.isRunning else { throw LabError("\(monitor.name) exited: \(monitor.log.suffix(1000))") }
            if (marker.map { monitor.log.contains($0) } ?? true) && ready() {
                usleep(200_000)  // attached; let the first events through
                return monitor
            }
            usleep(100_000)
        }
        monitor.kill()
        throw LabError("\(monitor.name) was not ready within 60 s: \(monitor.log.suffix(1000))")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Whether it still runs (reaps it once it has exited).
    var isRunning: Bool {
        if exited { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == 0 { return true }
        exited = true
        return false
    }

    /// SIGINT, then its log once it has exited (it drains what it holds first); SIGKILL
    /// after a minute.
    func stop() throws -> String {
        if isRunning { Foundation.kill(pid, SIGINT) }
        for _ in 0..<600 where isRunning { usleep(100_000) }
        if isRunning {
            kill()
            throw LabError("\(name) did not stop within 60 s of SIGINT: \(log.suffix(500))")
        }
        return log
    }

    func kill() {
        guard isRunning else { return }
        Foundation.kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        exited = true
    }
}
