import ArgumentParser
import Detection
import DetectionOutputs
import Foundation
import LabSupport
import Sensor

/// `caduceus detect`: the sensor and the rule engine in one process, or the engine over a
/// recorded Tracee-format file.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract:
            "Detect attacks on containers with Falco-format rules: live from the kernel, or from a recorded trace.",
        discussion: """
            Live (needs root): the kernel sends only the events the loaded rules need.
              caduceus detect                                   # built-in rules, every container
              caduceus detect --rules my-rules/ --webhook http://127.0.0.1:9000/alerts
            Recorded (Caduceus's or Tracee's own JSON lines; - for standard input):
              caduceus detect --events events.json --format json
            Alerts go to standard output (one readable line each on a terminal, JSON lines otherwise),
            and also as JSON lines to --output and as JSON POSTs to each --webhook.
            Enforcement (off unless asked): rules with `action: kill` kill the process, from the kernel
            at the matching syscall when the kernel can evaluate the rule, else from user space.
              caduceus detect --rules kill.yaml --enforce                  # every rule with an action
              caduceus detect --enforce-rule CAD-022 --enforce-container web
              caduceus detect --rules kill.yaml --enforce --dry-run        # alerts say "would kill"
            Audit feed: each alert also becomes a DICOM 110113 Security Alert AuditEvent on a FHIR server
            (caduceus serve --audit on --audit-feed-token-file FILE), searchable beside the record accesses.
              caduceus detect --audit-url http://127.0.0.1:9080/fhir-server/api/v4 --audit-token-file FILE
            One sensor per node feeding a central server names its node (the events' source.site):
              caduceus detect --audit-url http://fhir:9080/fhir-server/api/v4 --audit-token-file FILE --audit-site node-7
            Learned profiles (caduceus profile record): anything a profiled container does outside its
            profile alerts PROFILE-EXEC, -WRITE, -CONNECT, -LISTEN, -SYSCALL or -CAPABILITY, once each.
              caduceus detect --profile fhir-profile.yaml --profile-container fhir
            and kills for it when asked (every occurrence then alerts): an exec outside the profile's
            executables is killed in the kernel before the program runs (containers running at start),
            other drift from user space.
              caduceus detect --profile fhir-profile.yaml --profile-container fhir --enforce-rule PROFILE-EXEC
              caduceus detect --profile fhir-profile.yaml --enforce-profile --dry-run     # every kind, "would kill"
            """
    )

    @OptionGroup var rules: RuleOptions
    @OptionGroup var watch: WatchOptions

    @Option(
        name: .customLong("events"),
        help: "Read this recorded trace (Tracee JSON lines; - for standard input) instead of the kernel.")
    var eventsFile: String?

    @Option(help: "Standard output form: line or json (default: line on a terminal, json otherwise).")
    var format: String?

    @Option(help: "Also append alerts as JSON lines to this file.")
    var output: String?

    @Option(help: "Also POST each alert as JSON to this http(s) URL (repeatable).")
    var webhook: [String] = []

    @Option(
        help:
            "Also feed each alert as a Security Alert AuditEvent to this FHIR server's base URL (BASE/AuditEvent; queued, never slowing detection)."
    )
    var auditURL: String?

    @Option(
        help:
            "The bearer token for --audit-url: the server's --audit-feed-token-file, or a JWT granting system/AuditEvent.c."
    )
    var auditTokenFile: String?

    @Option(
        help:
            "The AuditEvents' source.site for --audit-url: the machine watched (default: this host's name; in a Kubernetes pod pass the node's name, spec.nodeName)."
    )
    var auditSite: String?

    @Option(
        help:
            "Alerts of one rule in one container raised at once before throttling (then --alert-interval); 0 raises every one."
    )
    var alertBurst = 10

    @Option(help: "Seconds between alerts of one rule in one container once its burst is spent.")
    var alertInterval = 1.0

    @Option(
        help:
            "Raise no alert for this container, by name or id prefix (repeatable): a deployment's own sensors, whose work looks like an intruder's."
    )
    var ignoreContainer: [String] = []

    @Flag(
        help:
            "Carry out the actions of every rule with one (action: kill). Without --enforce, --enforce-rule, --enforce-container or --dry-run nothing is killed."
    )
    var enforce = false

    @Option(
        help:
            "Carry out the action of this rule only, by id or name (repeatable); PROFILE-EXEC, PROFILE-CONNECT, ... kill for that kind of drift from --profile."
    )
    var enforceRule: [String] = []

    @Flag(
        help:
            "Kill for every kind of drift from --profile (PROFILE-*), the server's own included: PROFILE-EXEC alone (--enforce-rule) is the cautious choice."
    )
    var enforceProfile = false

    @Option(
        help:
            "Carry out actions only in this container, by name or id prefix (repeatable); kernel enforcement covers containers running at start."
    )
    var enforceContainer: [String] = []

    @Flag(help: "Kill nothing: alerts of rules with an action say \"would kill\".")
    var dryRun = false

    @Flag(
        help:
            "Do not refuse opens and execs with fanotify permission events: enforced open rules kill at the syscall's entry instead (the open runs)."
    )
    var noFanotify = false

    @Flag(
        help:
            "Do not refuse socket calls with cgroup BPF programs: enforced connect, bind and send rules kill at the syscall's entry instead (the call runs)."
    )
    var noCgroupDenial = false

    @Option(
        help:
            "Milliseconds an open or exec in a guarded container waits for its fanotify verdict before --fanotify-timeout-verdict answers."
    )
    var fanotifyTimeoutMs = 250

    @Option(
        help:
            "The answer when a fanotify verdict is late, for a path an enforced rule names (other paths are allowed): deny (default: the guarded paths stay guarded while the sensor is starved or flooded) or allow (they stay available; a late match is killed after the call)."
    )
    var fanotifyTimeoutVerdict = "deny"

    @OptionGroup var profileOptions: ProfileOptions

    func run() throws {
        let format =
            try self.format.map {
                guard let parsed = StreamAlertSink.Format(rawValue: $0) else {
                    throw ValidationError("--format must be line or json, not '\($0)'")
                }
                return parsed
            } ?? (isatty(STDOUT_FILENO) == 1 ? .line : .json)
        let ruleSet = try rules.load()
        var outputs: [AlertSink] = [StreamAlertSink(handle: .standardOutput, format: format)]
        do {
            if let output { outputs.append(try StreamAlertSink(path: output, format: .json)) }
            for url in webhook { outputs.append(try WebhookAlertSink(url: url)) }
            if let auditURL {
                let token = try auditTokenFile.map(AuditEventAlertSink.token(fromFile:))
                outputs.append(
                    try AuditEventAlertSink(
                        base: auditURL, token: token, site: auditSite,
                        warn: { writeStandardError("caduceus detect: " + $0) }))
            } else if auditTokenFile != nil || auditSite != nil {
                throw ValidationError("--audit-token-file and --audit-site need --audit-url")
            }
        } catch let error as AlertOutputError {
            throw CommandFailure("\(error)")
        }
        let enforcement = EnforcementOptions(
            all: enforce, rules: enforceRule, containers: enforceContainer, dryRun: dryRun, profile: enforceProfile)
        if eventsFile != nil && enforcement.isOn && !dryRun {
            throw ValidationError("--enforce needs the live kernel; with --events only --dry-run applies")
        }
        guard let timeoutVerdict = FanotifyVerdict(rawValue: fanotifyTimeoutVerdict) else {
            throw ValidationError("--fanotify-timeout-verdict must be allow or deny, not '\(fanotifyTimeoutVerdict)'")
        }
        guard (1...60_000).contains(fanotifyTimeoutMs) else {
            throw ValidationError("--fanotify-timeout-ms must be 1 to 60000")
        }
        let options = DetectionPipelineOptions(
            enforcement: enforcement.isOn ? enforcement : nil, profile: try profileOptions.load(),
            profileContainer: profileOptions.profileContainer,
            ignoredContainers: ignoreContainer, throttle: (alertBurst, alertInterval), readsProcFS: eventsFile == nil)
        let pipeline: DetectionPipeline
        do {
            pipeline = try DetectionPipeline(ruleSet: ruleSet, options: options, outputs: outputs)
        } catch let error as RuleError {
            // The enforcer's refusals (an --enforce-rule no rule answers to) have no place in a file.
            throw CommandFailure(error.location.file.isEmpty ? error.message : "\(error)")
        }
        guard let engine = pipeline.engine else { preconditionFailure("a rule pipeline has an engine") }
        if let enforcer = pipeline.enforcer {
            if enforcer.enforced.isEmpty && enforcer.profileRules.isEmpty {
                writeStandardError("caduceus detect: enforcement is on, but no loaded rule has an action")
            }
            // Live, what acts is known once the fanotify guard and the sensor have started.
            if eventsFile != nil {
                for line in enforcer.summary { writeStandardError("caduceus detect: enforce " + line) }
            }
            for id in enforcer.overflow {
                writeStandardError(
                    "caduceus detect: \(id): no room left for its kernel patterns; enforced from user space")
            }
        }
        writeStandardError("caduceus detect: \(engine.rules.count) rules loaded")
        // The loader's warnings (an undefined list-like name, a rule no event can match) as `rules check` prints them.
        for warning in engine.warnings { writeStandardError("caduceus detect: warning: " + warning) }

        var lost: UInt64 = 0
        if let eventsFile {
            var badLines = 0
            let counts = try TraceeJSONReader.forEach(
                path: eventsFile,
                onError: { error in
                    badLines += 1
                    if badLines <= 5 { writeStandardError("caduceus detect: \(eventsFile): \(error)") }
                }
            ) { event in
                pipeline.process(event)
            }
            if counts.errors > 0 { writeStandardError("caduceus detect: \(counts.errors) lines were not events") }
        } else {
            lost = try runLive(pipeline, timeoutVerdict: timeoutVerdict)
        }
        for problem in pipeline.finish() { writeStandardError("caduceus detect: " + problem) }
        for (rule, container, count) in pipeline.throttle?.suppressed ?? [] {
            writeStandardError(
                "caduceus detect: \(count) more alerts of \(rule) in \(container) throttled (--alert-burst \(alertBurst), --alert-interval \(alertInterval))"
            )
        }
        let stats = engine.statistics
        if let drift = pipeline.drift {
            writeStandardError("caduceus detect: \(drift.alertCount) profile drift alerts (\(drift.profile.image))")
        }
        let byRule = stats.alertsByRule.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(
            separator: ", ")
        let outside = pipeline.raisedOutsideTheEngine
        writeStandardError(
            "caduceus detect: \(stats.events) events, \(stats.alerts) alerts" + (byRule.isEmpty ? "" : " (\(byRule))")
                + (outside > 0 ? ", \(outside) refusals alerted by the fanotify guard" : "")
                + ", \(pipeline.state.processes.count) processes tracked, \(lost) events lost"
                + (ProcessMemory().map { ", peak RSS \($0.peakMB) MB" } ?? ""))
        if lost > 0 { throw ExitCode(3) }
    }

    /// Starts the pipeline's sensor (and fanotify guard), says what acts, and reads until
    /// Ctrl-C or --duration; the events the kernel lost.
    private func runLive(_ pipeline: DetectionPipeline, timeoutVerdict: FanotifyVerdict) throws -> UInt64 {
        var configuration = try watch.sensorConfiguration(events: .default)
        configuration.refusesSocketCalls = !noCgroupDenial
        let guardOptions =
            noFanotify
            ? nil : FanotifyGuardOptions(timeoutMilliseconds: fanotifyTimeoutMs, timeoutVerdict: timeoutVerdict)
        StopSignals.catchFromNow()  // a Ctrl-C while the sensor loads is not lost
        let sensor = try pipeline.startSensor(configuration, fanotify: guardOptions)
        defer { pipeline.fanotify?.stop() }
        if let failure = pipeline.fanotifyFailure {
            writeStandardError(
                "caduceus detect: fanotify is not available (\(failure)): open rules kill at the syscall's entry")
        }
        writeStandardError("caduceus detect: " + sensor.securityEventSource)
        if pipeline.enforcer != nil, sensor.cgroupDenial.root != nil || sensor.cgroupDenial.failure != nil {
            writeStandardError("caduceus detect: socket calls of enforced rules: " + sensor.cgroupDenial.summary)
        }
        for line in pipeline.enforcer?.summary ?? [] { writeStandardError("caduceus detect: enforce " + line) }
        if pipeline.enforcer?.execAllowList != nil {
            writeStandardError(
                sensor.execAllowCgroups > 0
                    ? "caduceus detect: the profile's executables are enforced in the kernel in \(sensor.execAllowCgroups) cgroups"
                    : "caduceus detect: no profiled container runs yet: PROFILE-EXEC is enforced from user space")
        }
        writeStandardError(
            "caduceus detect: the kernel sends \(pipeline.requiredEvents.count) event types; Ctrl-C to stop")
        let statistics = try watch.runUntilStopped(stop: { pipeline.stop() }) { try pipeline.run() }
        if let fanotify = pipeline.fanotify {
            fanotify.stop()
            let counts = fanotify.fanotifyGuard.statistics
            writeStandardError(
                "caduceus detect: fanotify: \(counts.denied) denied, \(counts.allowed) allowed, \(counts.timedOut) timed out, "
                    + "\(counts.overflowed) over the queue bound, \(counts.marked) container file systems marked")
        }
        if statistics.lost > 0 {
            let perCPU = statistics.lostPerCPU.enumerated().map { "cpu\($0.offset): \($0.element)" }.joined(
                separator: ", ")
            writeStandardError(
                "caduceus detect: \(statistics.lost) events lost in the kernel (\(perCPU)): alerts may be missing")
        }
        return statistics.lost
    }
}

/// Which rules to load: the built-in ones, plus or instead of the user's.
struct RuleOptions: ParsableArguments {
    @Option(
        name: .customLong("rules"),
        help:
            "A rule file or directory of *.yaml files (repeatable). A file named like a built-in one replaces it; others add to them."
    )
    var paths: [String] = []

    @Flag(help: "Load only the --rules files, not the built-in rules.")
    var noBuiltinRules = false

    func load() throws -> RuleSet {
        do {
            return try RuleFiles.load(includeBuiltin: !noBuiltinRules, paths: paths)
        } catch let error as RuleError {
            throw CommandFailure("\(error)")
        }
    }
}
