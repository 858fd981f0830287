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
    private var result: Result<SensorStatistics, Error>?
    private let finished = DispatchSemaphore(value: 0)
    /// The open/exec guard, when `fanotify` was given with enforcement that has rules it covers.
    public private(set) var fanotify: FanotifyEnforcement?

    /// Loads the sensor with the events the rules need, seeds the process table from /proc,
    /// and starts reading. Needs root and BPF.
    /// With `enforcement`, rules' actions are carried out as `detect --enforce` does (and
    /// drift kills as `--enforce-profile` / `--enforce-rule PROFILE-...` do).
    /// With `profile`, drift from it in `profileContainer` (default: its image's containers) alerts too.
    /// With `fanotify` (and enforcement), enforced open and exec rules are refused by the
    /// fanotify guard as `detect --enforce` does (off by default here: the lab and the older
    /// live tests expect kills).
    public init(
        ruleSet: RuleSet, scope: TraceScope = .containers, enforcement: EnforcementOptions? = nil, profile: ContainerProfile? = nil,
        profileContainer: String? = nil, fanotify: FanotifyGuardOptions? = nil
    ) throws {
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
        let names = engine.requiredEvents.union(drift == nil ? [] : ProfileDriftDetector.requiredEvents)
        configuration.events = EventSelection(ids: Set(names.compactMap { EventTable.definition(named: $0)?.id }))
        let forward = AlertForward()
        let guarded = try fanotify.flatMap { options in
            try enforcer.flatMap { enforcer in
                try FanotifyEnforcement(enforcer: enforcer, rules: engine.rules, options: options) { forward.detector?.keep($0) }
            }
        }
        self.fanotify = guarded
        configuration.killPatterns = enforcer.map { guarded?.kernelPatterns(of: $0) ?? $0.killPatterns } ?? []
        configuration.killContainers = enforcement?.containers ?? []
        configuration.execAllowList = enforcer?.execAllowList
        do {
            sensor = try Sensor(configuration: configuration)
        } catch {
            guarded?.stop()  // its marks go with it
            throw error
        }
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
