import Detection
import Foundation
import Sensor

/// The sensor and the rule engine on their own thread, as `caduceus detect` runs them, with
/// every alert kept (and events counted per container) for whoever reads them after `stop()`.
public final class LiveDetector: @unchecked Sendable {
    public let sensor: Sensor
    public let engine: DetectionEngine
    /// The drift checks of the learned profile, when one was given.
    public let drift: ProfileDriftDetector?
    private let lock = NSLock()
    private var alerts: [Alert] = []
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
    /// What carries out the rules' actions, with enforcement: which mechanism acts per rule.
    public private(set) var enforcer: Enforcer?
    /// The open/exec guard, when `fanotify` was given with enforcement that has rules it covers.
    public private(set) var fanotify: FanotifyEnforcement?

    /// Loads the sensor with the events the rules need, seeds the process table from /proc,
    /// and starts reading. Needs root and BPF.
    /// With `enforcement`, rules' actions are carried out as `detect --enforce` does (and
    /// drift kills as `--enforce-profile` / `--enforce-rule PROFILE-...` do).
    /// With `profile`, drift from it in `profileContainer` (default: its image's containers) alerts too.
    /// With `watchingRefusalsOf`, those syscalls are traced too (at their exit, with their return
    /// values), and each one a container's process saw refused with EPERM or EACCES is kept: how
    /// the attack lab observes a refusal instead of guessing it from an exit status.
    /// With `fanotify` (and enforcement), enforced open and exec rules are refused by the
    /// fanotify guard as `detect --enforce` does. `refusesSocketCalls` false: socket calls of
    /// enforced rules are killed at entry instead of refused by cgroup programs.
    public init(
        ruleSet: RuleSet, scope: TraceScope = .containers, enforcement: EnforcementOptions? = nil, profile: ContainerProfile? = nil,
        profileContainer: String? = nil, watchingRefusalsOf watched: Set<String> = [], fanotify: FanotifyGuardOptions? = nil,
        refusesSocketCalls: Bool = true
    ) throws {
        watchedRefusals = watched
        let engine = try DetectionEngine(ruleSet: ruleSet, state: SystemState(readsProcFS: true))
        self.engine = engine
        let enforcer = try enforcement.map {
            try Enforcer(rules: engine.rules, options: $0, profile: profile, profileContainer: profileContainer)
        }
        let drift = profile.map {
            ProfileDriftDetector(profile: $0, containerName: profileContainer, state: engine.state, everyTime: enforcer?.profileRules ?? [])
        }
        self.drift = drift
        var configuration = SensorConfiguration()
        configuration.scope = scope
        let names = engine.requiredEvents.union(drift == nil ? [] : ProfileDriftDetector.requiredEvents).union(watched)
        configuration.events = EventSelection(ids: Set(names.compactMap { EventTable.definition(named: $0)?.id }))
        let forward = AlertForward()
        let guarded = try fanotify.flatMap { options in
            try enforcer.flatMap { enforcer in
                try FanotifyEnforcement(enforcer: enforcer, rules: engine.rules, options: options) { forward.detector?.keep($0) }
            }
        }
        self.fanotify = guarded
        enforcer?.fanotifyStarted(guarded != nil)
        configuration.killPatterns = enforcer.map { guarded?.kernelPatterns(of: $0) ?? $0.killPatterns } ?? []
        configuration.killContainers = enforcement?.containers ?? []
        configuration.execAllowList = enforcer?.execAllowList
        configuration.refusesSocketCalls = refusesSocketCalls
        do {
            sensor = try Sensor(configuration: configuration)
        } catch {
            guarded?.stop()  // its marks go with it
            throw error
        }
        enforcer?.sensorStarted(cgroupDenial: sensor.cgroupDenial)
        self.enforcer = enforcer
        engine.state.seedFromProcFS()
        forward.detector = self
        Thread.detachNewThread { [self] in
            let offset = sensor.bootTimeOffset
            let containers = sensor.containers
            let outcome = Result {
                try sensor.run { raw in
                    let event = TraceEvent(raw, bootTimeOffset: offset, containers: containers)
                    self.lock.lock()
                    self.events[event.containerId, default: 0] += 1
                    self.read += 1
                    self.latest = max(self.latest, event.timestamp)
                    if !event.containerId.isEmpty, ObservedRefusal.isRefusal(event.returnValue), watched.contains(event.eventName),
                        self.refusals.count < Self.refusalLimit
                    {
                        self.refusals.append(ObservedRefusal(
                            container: event.containerId, timestamp: event.timestamp, pid: event.hostProcessId, syscall: event.eventName,
                            returnValue: event.returnValue))
                    }
                    self.lock.unlock()
                    let keep: (Alert) -> Void = { alert in
                        var alert = alert
                        if alert.action == nil { enforcer?.enforce(&alert) }
                        self.lock.lock()
                        self.alerts.append(alert)
                        self.lock.unlock()
                    }
                    self.engine.process(event, raise: keep)
                    drift?.check(event, raise: keep)
                }
            }
            result = outcome
            finished.signal()
        }
    }

    /// Keeps an alert raised outside the engine (a fanotify denial).
    private func keep(_ alert: Alert) {
        lock.lock()
        alerts.append(alert)
        lock.unlock()
    }

    /// Alerts so far (the engine keeps running).
    public var alertsSoFar: [Alert] {
        lock.lock()
        defer { lock.unlock() }
        return alerts
    }

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
        fanotify?.stop()
        sensor.stop()
        finished.wait()
        let statistics = try result!.get()
        lock.lock()
        defer { lock.unlock() }
        return (alerts, statistics.lost)
    }
}

/// Lets the fanotify guard's alerts reach a detector not yet initialized when the guard starts.
private final class AlertForward: @unchecked Sendable {
    weak var detector: LiveDetector?
}
