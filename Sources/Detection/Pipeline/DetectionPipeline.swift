import Foundation
import Sensor

/// What a `DetectionPipeline` does besides matching rules.
public struct DetectionPipelineOptions {
    /// Carry out the rules' actions (and drift kills) as `detect --enforce` does; nil: alert only.
    public var enforcement: EnforcementOptions?
    /// A learned profile whose drift alerts PROFILE-* (`detect --profile`).
    public var profile: ContainerProfile?
    /// The container `profile` applies to, by name or id prefix (default: its image's containers).
    public var profileContainer: String?
    /// Containers, by name or id prefix, whose alerts are dropped before enforcement (a
    /// deployment's own sensors).
    public var ignoredContainers: [String] = []
    /// Per rule and container, `burst` alerts at once then one per `interval` seconds; nil
    /// raises every alert.
    public var throttle: (burst: Int, interval: Double)?
    /// Whether the process table reads /proc for processes it has not seen start (live only).
    public var readsProcFS = true

    public init(
        enforcement: EnforcementOptions? = nil, profile: ContainerProfile? = nil, profileContainer: String? = nil,
        ignoredContainers: [String] = [], throttle: (burst: Int, interval: Double)? = nil, readsProcFS: Bool = true
    ) {
        self.enforcement = enforcement
        self.profile = profile
        self.profileContainer = profileContainer
        self.ignoredContainers = ignoredContainers
        self.throttle = throttle
        self.readsProcFS = readsProcFS
    }
}

/// The one place the detection loop is wired: kernel events from the `Sensor` become
/// `TraceEvent`s, go through the rule engine and the profile drift checks, and every alert
/// goes through the ignore list, enforcement (before throttling, so a throttled alert still
/// kills), the throttle and then every output, in that order. `caduceus detect`, `profile
/// record`, the lab's live detector and the kill benchmark all run this, live or over a
/// recorded trace (`process(_:)`).
///
/// Data flows one way: the pipeline knows its outputs only as `AlertSink`s; the file, webhook
/// and audit-feed outputs live in `DetectionOutputs`.
///
/// Threads: `run` reads on the calling thread; the fanotify guard raises its refusals from its
/// own thread; alerts from both are serialized by a lock before they reach enforcement and
/// outputs.
public final class DetectionPipeline: @unchecked Sendable {
    /// The rule engine; nil for a pipeline that only learns a profile.
    public let engine: DetectionEngine?
    /// The process and fd table the engine and the drift checks share.
    public let state: SystemState
    /// What carries out the rules' actions, with enforcement.
    public let enforcer: Enforcer?
    /// The drift checks of the learned profile, when one was given.
    public let drift: ProfileDriftDetector?
    /// The profile being learned (`profile record`), fed every event.
    public let learner: ProfileLearner?
    /// The alert throttle, when one was asked for: what it suppressed is read after the run.
    public let throttle: AlertThrottle?
    /// Where kept alerts go, in order.
    public let outputs: [AlertSink]
    let ignoredContainers: [String]

    /// The loaded sensor, once `startSensor` returned.
    public private(set) var sensor: Sensor?
    /// The open/exec guard, when enforced open or exec rules have one.
    public private(set) var fanotify: FanotifyEnforcement?
    /// Why the fanotify guard asked for did not start (it is then not running: open rules kill
    /// at the syscall's entry instead).
    public private(set) var fanotifyFailure: Error?

    private let raiseLock = NSLock()
    private var outsideTheEngine = 0

    /// A pipeline matching `ruleSet`. Throws the loader's `RuleError` for a rule the engine
    /// cannot compile or an enforcement the kernel cannot carry out.
    public init(ruleSet: RuleSet, options: DetectionPipelineOptions = DetectionPipelineOptions(), outputs: [AlertSink])
        throws
    {
        let state = SystemState(readsProcFS: options.readsProcFS)
        let engine = try DetectionEngine(ruleSet: ruleSet, state: state)
        let enforcer = try options.enforcement.map {
            try Enforcer(
                rules: engine.rules, options: $0, profile: options.profile, profileContainer: options.profileContainer)
        }
        self.engine = engine
        self.state = state
        self.enforcer = enforcer
        drift = options.profile.map {
            ProfileDriftDetector(
                profile: $0, containerName: options.profileContainer, state: state,
                everyTime: enforcer?.profileRules ?? [])
        }
        learner = nil
        throttle = options.throttle.flatMap {
            $0.burst > 0 ? AlertThrottle(burst: $0.burst, interval: $0.interval) : nil
        }
        self.outputs = outputs
        ignoredContainers = options.ignoredContainers
    }

    /// A pipeline that only learns a profile (`profile record`): no rules, no alerts.
    public init(learning learner: ProfileLearner) {
        engine = nil
        state = SystemState()
        enforcer = nil
        drift = nil
        self.learner = learner
        throttle = nil
        outputs = []
        ignoredContainers = []
    }

    /// The event types the stages need: what the sensor is asked for.
    public var requiredEvents: Set<String> {
        var names = engine?.requiredEvents ?? []
        if drift != nil { names.formUnion(ProfileDriftDetector.requiredEvents) }
        if learner != nil { names.formUnion(ProfileLearner.requiredEvents) }
        return names
    }

    /// Loads the sensor with `configuration` (its scope, filters, buffers), asking the kernel
    /// for the events the stages need plus `alsoTracing`, with the enforcer's kernel patterns,
    /// exec allow-list and socket refusals; starts the fanotify guard first when `fanotify` is
    /// given and enforced rules have one (a guard that cannot start is `fanotifyFailure`), and
    /// seeds the process table from /proc once the sensor runs. Needs root and BPF.
    @discardableResult
    public func startSensor(
        _ configuration: SensorConfiguration, alsoTracing extra: Set<String> = [],
        fanotify options: FanotifyGuardOptions? = nil
    ) throws -> Sensor {
        precondition(sensor == nil, "one sensor per pipeline")
        var configuration = configuration
        configuration.events = EventSelection(
            ids: Set(requiredEvents.union(extra).compactMap { EventTable.definition(named: $0)?.id }))
        if let enforcer, let engine {
            if let options {
                do {
                    fanotify = try FanotifyEnforcement(enforcer: enforcer, rules: engine.rules, options: options) {
                        [unowned self] in
                        self.raise($0)
                    }
                } catch {
                    fanotifyFailure = error
                }
            }
            enforcer.fanotifyStarted(fanotify != nil)
            configuration.killPatterns = fanotify?.kernelPatterns(of: enforcer) ?? enforcer.killPatterns
            configuration.killContainers = enforcer.options.containers
            configuration.execAllowList = enforcer.execAllowList
        }
        let sensor: Sensor
        do {
            sensor = try Sensor(configuration: configuration)
        } catch {
            fanotify?.stop()  // its marks go with it
            throw error
        }
        enforcer?.sensorStarted(cgroupDenial: sensor.cgroupDenial)
        if engine != nil { state.seedFromProcFS() }
        self.sensor = sensor
        return sensor
    }

    /// Reads the started sensor on this thread until `stop()`: each event goes to `observe`
    /// first (the caller's own bookkeeping), then through the stages. Returns what the kernel
    /// submitted and lost.
    public func run(observe: ((TraceEvent) -> Void)? = nil) throws -> SensorStatistics {
        guard let sensor else { preconditionFailure("startSensor before run") }
        let offset = sensor.bootTimeOffset
        let containers = sensor.containers
        return try sensor.run { raw in
            let event = TraceEvent(raw, bootTimeOffset: offset, containers: containers)
            observe?(event)
            self.process(event)
        }
    }

    /// One event through the engine, the drift checks and the learner: live from `run`, or
    /// from a recorded trace.
    public func process(_ event: TraceEvent) {
        if let engine { engine.process(event, raise: raise) }
        drift?.check(event, raise: raise)
        learner?.observe(event)
    }

    /// One alert through the ignore list, enforcement, the throttle and the outputs. The engine
    /// raises here; so does the fanotify guard, whose refusals come already acted on.
    public func raise(_ alert: Alert) {
        raiseLock.lock()
        defer { raiseLock.unlock() }
        if alert.action != nil { outsideTheEngine += 1 }
        let container = alert.container
        if ignoredContainers.contains(where: {
            $0 == container.name || (!container.id.isEmpty && container.id.hasPrefix($0))
        }) {
            return
        }
        var alert = alert
        if alert.action == nil { enforcer?.enforce(&alert) }
        if let throttle, !throttle.admit(alert) { return }
        for output in outputs { output.write(alert) }
    }

    /// Alerts raised outside the engine (the fanotify guard's refusals).
    public var raisedOutsideTheEngine: Int {
        raiseLock.lock()
        defer { raiseLock.unlock() }
        return outsideTheEngine
    }

    /// Stops the fanotify guard (opens and execs are no longer refused) and the sensor; `run`
    /// returns once the events already sent are read.
    public func stop() {
        fanotify?.stop()
        sensor?.stop()
    }

    /// Delivers what the outputs hold; the problems worth telling the user.
    public func finish() -> [String] {
        outputs.flatMap { $0.finish() }
    }
}
