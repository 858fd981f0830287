import Detection
import Foundation
import Sensor

/// A `DetectionPipeline` on its own thread, as `caduceus detect` runs it, with every alert
/// kept (and events counted per container) for whoever reads them after `stop()`.
public final class LiveDetector: @unchecked Sendable {
    /// The pipeline this detector runs: its sensor, engine, enforcer and drift checks.
    public let pipeline: DetectionPipeline
    /// The loaded sensor (started by `init`).
    public var sensor: Sensor { pipeline.sensor! }
    /// The rule engine (a rule pipeline always has one).
    public var engine: DetectionEngine { pipeline.engine! }
    /// The drift checks of the learned profile, when one was given.
    public var drift: ProfileDriftDetector? { pipeline.drift }
    /// What carries out the rules' actions, with enforcement: which mechanism acts per rule.
    public var enforcer: Enforcer? { pipeline.enforcer }
    /// The open/exec guard, when `fanotify` was given with enforcement that has rules it covers.
    public var fanotify: FanotifyEnforcement? { pipeline.fanotify }
    private let lock = NSLock()
    private let kept: KeptAlerts
    private var events: [String: Int] = [:]
    private var refusals: [ObservedRefusal] = []
    private var read = 0
    private var latest: UInt64 = 0
    /// The syscalls whose refusals (EPERM, EACCES) in containers are kept (`refusalsSoFar`).
    public let watchedRefusals: Set<String>
    /// At most this many refusals are kept: a storm of them cannot grow the lab without bound.
    public static let refusalLimit = 100_000
    private var result: Result<SensorStatistics, Error>?
    private let finished = DispatchSemaphore(value: 0)

    /// Loads the sensor with the events the rules need, seeds the process table from /proc,
    /// and starts reading. Needs root and BPF.
    /// With `enforcement`, rules' actions are carried out as `detect --enforce` does (and
    /// drift kills as `--enforce-profile` / `--enforce-rule PROFILE-...` do).
    /// With `profile`, drift from it in `profileContainer` (default: its image's containers) alerts too.
    /// With `watchingRefusalsOf`, those syscalls are traced too (at their exit, with their return
    /// values), and each one a container's process saw refused with EPERM or EACCES is kept: how
    /// the attack lab observes a refusal instead of guessing it from an exit status.
    /// With `fanotify` (and enforcement), enforced open and exec rules are refused by the
    /// fanotify guard as `detect --enforce` does (a guard that cannot start is an error here).
    /// `refusesSocketCalls` false: socket calls of enforced rules are killed at entry instead of
    /// refused by cgroup programs.
    public init(
        ruleSet: RuleSet, scope: TraceScope = .containers, enforcement: EnforcementOptions? = nil,
        profile: ContainerProfile? = nil,
        profileContainer: String? = nil, watchingRefusalsOf watched: Set<String> = [],
        fanotify: FanotifyGuardOptions? = nil,
        refusesSocketCalls: Bool = true
    ) throws {
        watchedRefusals = watched
        let kept = KeptAlerts()
        self.kept = kept
        pipeline = try DetectionPipeline(
            ruleSet: ruleSet,
            options: DetectionPipelineOptions(
                enforcement: enforcement, profile: profile, profileContainer: profileContainer),
            outputs: [kept])
        var configuration = SensorConfiguration()
        configuration.scope = scope
        configuration.refusesSocketCalls = refusesSocketCalls
        try pipeline.startSensor(configuration, alsoTracing: watched, fanotify: fanotify)
        if let failure = pipeline.fanotifyFailure {
            pipeline.stop()
            throw failure
        }
        Thread.detachNewThread { [self] in
            let outcome = Result {
                try pipeline.run { event in
                    self.lock.lock()
                    self.events[event.containerId, default: 0] += 1
                    self.read += 1
                    self.latest = max(self.latest, event.timestamp)
                    if !event.containerId.isEmpty, ObservedRefusal.isRefusal(event.returnValue),
                        watched.contains(event.eventName),
                        self.refusals.count < Self.refusalLimit
                    {
                        self.refusals.append(
                            ObservedRefusal(
                                container: event.containerId, timestamp: event.timestamp, pid: event.hostProcessId,
                                syscall: event.eventName,
                                returnValue: event.returnValue))
                    }
                    self.lock.unlock()
                }
            }
            result = outcome
            finished.signal()
        }
    }

    /// Alerts so far (the engine keeps running).
    public var alertsSoFar: [Alert] { kept.alerts }

    /// Waits until the reader has caught up with `time` (ns since the epoch): an event that late
    /// was read, or none came for 300 ms (there is nothing more to read); at most `timeout` s.
    /// What the lab calls before judging windows that end at `time`: on a loaded machine the
    /// reader can lag the kernel by more than the lab's settle time.
    public func waitUntilRead(upTo time: UInt64, timeout: Double = 10) async {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        var last = -1
        var still = 0
        while ContinuousClock.now < deadline {
            let (count, newest) = progress
            if newest >= time { return }
            still = count == last ? still + 1 : 0
            if still >= 3 { return }
            last = count
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Events read so far, and the latest one's time (ns since the epoch).
    private var progress: (events: Int, latest: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        return (read, latest)
    }

    /// The watched syscalls refused so far in containers, oldest first.
    public var refusalsSoFar: [ObservedRefusal] {
        lock.lock()
        defer { lock.unlock() }
        return refusals
    }

    /// Events seen from a container (full id; "" for the host).
    public func eventCount(container id: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return events[id, default: 0]
    }

    /// Stops once the events already sent are read; the alerts, and the events the kernel lost.
    public func stop() throws -> (alerts: [Alert], lost: UInt64) {
        Thread.sleep(forTimeInterval: 0.5)
        pipeline.stop()
        finished.wait()
        let statistics = try result!.get()
        return (kept.alerts, statistics.lost)
    }
}

/// The lab's output: every alert, in memory, for the tests and reports that judge them.
final class KeptAlerts: AlertSink, @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [Alert] = []

    var alerts: [Alert] {
        lock.lock()
        defer { lock.unlock() }
        return kept
    }

    func write(_ alert: Alert) {
        lock.lock()
        kept.append(alert)
        lock.unlock()
    }

    func finish() -> [String] { [] }
}
