import ArgumentParser
import Detection
import Foundation
import Lab
import Sensor

/// `caduceus detect`: the sensor and the rule engine in one process, or the engine over a
/// recorded Tracee-format file.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Detect attacks on containers with Falco-format rules: live from the kernel, or from a recorded trace.",
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

    @Option(name: .customLong("events"), help: "Read this recorded trace (Tracee JSON lines; - for standard input) instead of the kernel.")
    var eventsFile: String?

    @Option(help: "Standard output form: line or json (default: line on a terminal, json otherwise).")
    var format: String?

    @Option(help: "Also append alerts as JSON lines to this file.")
    var output: String?

    @Option(help: "Also POST each alert as JSON to this http(s) URL (repeatable).")
    var webhook: [String] = []

    @Option(help: "Also feed each alert as a Security Alert AuditEvent to this FHIR server's base URL (BASE/AuditEvent; queued, never slowing detection).")
    var auditURL: String?

    @Option(help: "The bearer token for --audit-url: the server's --audit-feed-token-file, or a JWT granting system/AuditEvent.c.")
    var auditTokenFile: String?

    @Option(help: "Alerts of one rule in one container raised at once before throttling (then --alert-interval); 0 raises every one.")
    var alertBurst = 10

    @Option(help: "Seconds between alerts of one rule in one container once its burst is spent.")
    var alertInterval = 1.0

    @Option(help: "Raise no alert for this container, by name or id prefix (repeatable): a deployment's own sensors, whose work looks like an intruder's.")
    var ignoreContainer: [String] = []

    @Flag(help: "Carry out the actions of every rule with one (action: kill). Without --enforce, --enforce-rule, --enforce-container or --dry-run nothing is killed.")
    var enforce = false

    @Option(help: "Carry out the action of this rule only, by id or name (repeatable); PROFILE-EXEC, PROFILE-CONNECT, ... kill for that kind of drift from --profile.")
    var enforceRule: [String] = []

    @Flag(help: "Kill for every kind of drift from --profile (PROFILE-*), the server's own included: PROFILE-EXEC alone (--enforce-rule) is the cautious choice.")
    var enforceProfile = false

    @Option(help: "Carry out actions only in this container, by name or id prefix (repeatable); kernel enforcement covers containers running at start.")
    var enforceContainer: [String] = []

    @Flag(help: "Kill nothing: alerts of rules with an action say \"would kill\".")
    var dryRun = false

    @Flag(help: "Do not refuse opens and execs with fanotify permission events: enforced open rules kill at the syscall's entry instead (the open runs).")
    var noFanotify = false

    @Flag(help: "Do not refuse socket calls with cgroup BPF programs: enforced connect, bind and send rules kill at the syscall's entry instead (the call runs).")
    var noCgroupDenial = false

    @Option(help: "Milliseconds an open or exec in a guarded container waits for its fanotify verdict before --fanotify-timeout-verdict answers.")
    var fanotifyTimeoutMs = 250

    @Option(help: "The answer when a fanotify verdict is late, for a path an enforced rule names (other paths are allowed): deny (default: the guarded paths stay guarded while the sensor is starved or flooded) or allow (they stay available; a late match is killed after the call).")
    var fanotifyTimeoutVerdict = "deny"

    @OptionGroup var profileOptions: ProfileOptions

    func run() throws {
        let format = try self.format.map {
            guard let parsed = StreamAlertSink.Format(rawValue: $0) else { throw ValidationError("--format must be line or json, not '\($0)'") }
            return parsed
        } ?? (isatty(STDOUT_FILENO) == 1 ? .line : .json)
        let ruleSet = try rules.load()
        let state = SystemState(readsProcFS: eventsFile == nil)
        let engine: DetectionEngine
        do {
            engine = try DetectionEngine(ruleSet: ruleSet, state: state)
        } catch let error as RuleError {
            throw CommandFailure("\(error)")
        }
        var sinks: [AlertSink] = [StreamAlertSink(handle: .standardOutput, format: format)]
        do {
            if let output { sinks.append(try StreamAlertSink(path: output, format: .json)) }
            for url in webhook { sinks.append(try WebhookAlertSink(url: url)) }
            if let auditURL {
                let token = try auditTokenFile.map(AuditEventAlertSink.token(fromFile:))
                sinks.append(try AuditEventAlertSink(base: auditURL, token: token, warn: { writeStandardError("caduceus detect: " + $0) }))
            } else if auditTokenFile != nil {
                throw ValidationError("--audit-token-file needs --audit-url")
            }
        } catch let error as RuleError {
            throw CommandFailure("\(error)")
        }
        let options = EnforcementOptions(all: enforce, rules: enforceRule, containers: enforceContainer, dryRun: dryRun, profile: enforceProfile)
        if eventsFile != nil && options.isOn && !dryRun {
            throw ValidationError("--enforce needs the live kernel; with --events only --dry-run applies")
        }
        let learned = try profileOptions.load()
        let profileContainer = profileOptions.profileContainer
        let enforcer: Enforcer?
        do {
            enforcer = options.isOn ? try Enforcer(rules: engine.rules, options: options, profile: learned, profileContainer: profileContainer) : nil
        } catch let error as RuleError {
            throw CommandFailure(error.message)
        }
        if let enforcer {
            if enforcer.enforced.isEmpty && enforcer.profileRules.isEmpty {
                writeStandardError("caduceus detect: enforcement is on, but no loaded rule has an action")
            }
            // Live, what acts is known once the fanotify guard and the sensor have started.
            if eventsFile != nil { for line in enforcer.summary { writeStandardError("caduceus detect: enforce " + line) } }
            for id in enforcer.overflow { writeStandardError("caduceus detect: \(id): no room left for its kernel patterns; enforced from user space") }
        }
        guard let timeoutVerdict = FanotifyVerdict(rawValue: fanotifyTimeoutVerdict) else {
            throw ValidationError("--fanotify-timeout-verdict must be allow or deny, not '\(fanotifyTimeoutVerdict)'")
        }
        guard (1...60_000).contains(fanotifyTimeoutMs) else { throw ValidationError("--fanotify-timeout-ms must be 1 to 60000") }
        let drift = learned.map {
            ProfileDriftDetector(profile: $0, containerName: profileContainer, state: state, everyTime: enforcer?.profileRules ?? [])
        }
        let ignored = ignoreContainer
        let throttle = alertBurst > 0 ? AlertThrottle(burst: alertBurst, interval: alertInterval) : nil
        // The fanotify guard raises its denials from its own thread.
        let raiseLock = NSLock()
        let outside = RaisedOutsideTheEngine()
        let raise: (Alert) -> Void = { alert in
            raiseLock.lock()
            defer { raiseLock.unlock() }
            if alert.action != nil { outside.count += 1 }  // the guard's denials come acted on
            var alert = alert
            let container = alert.container
            if ignored.contains(where: { $0 == container.name || (!container.id.isEmpty && container.id.hasPrefix($0)) }) { return }
            // Enforced before throttling: a throttled alert still kills. A fanotify denial comes acted on.
            if alert.action == nil { enforcer?.enforce(&alert) }
            if let throttle, !throttle.admit(alert) { return }
            sinks.forEach { $0.write(alert) }
        }
        writeStandardError("caduceus detect: \(engine.rules.count) rules loaded")
        // The loader's warnings (an undefined list-like name, a rule no event can match) as `rules check` prints them.
        for warning in engine.warnings { writeStandardError("caduceus detect: warning: " + warning) }

        var lost: UInt64 = 0
        if let eventsFile {
            var badLines = 0
            let counts = try TraceeJSONReader.forEach(path: eventsFile, onError: { error in
                badLines += 1
                if badLines <= 5 { writeStandardError("caduceus detect: \(eventsFile): \(error)") }
            }) { event in
                engine.process(event, raise: raise)
                drift?.check(event, raise: raise)
            }
            if counts.errors > 0 { writeStandardError("caduceus detect: \(counts.errors) lines were not events") }
        } else {
            let names = engine.requiredEvents.union(drift == nil ? [] : ProfileDriftDetector.requiredEvents)
            let selection = EventSelection(ids: Set(names.compactMap { EventTable.definition(named: $0)?.id }))
            var configuration = try watch.sensorConfiguration(events: selection)
            var fanotify: FanotifyEnforcement?
            if let enforcer, !noFanotify {
                do {
                    fanotify = try FanotifyEnforcement(
                        enforcer: enforcer, rules: engine.rules,
                        options: FanotifyGuardOptions(timeoutMilliseconds: fanotifyTimeoutMs, timeoutVerdict: timeoutVerdict), raise: raise)
                } catch {
                    writeStandardError("caduceus detect: fanotify is not available (\(error)): open rules kill at the syscall's entry")
                }
                enforcer.fanotifyStarted(fanotify != nil)
            }
            defer { fanotify?.stop() }
            configuration.killPatterns = enforcer.map { fanotify?.kernelPatterns(of: $0) ?? $0.killPatterns } ?? []
            configuration.killContainers = enforceContainer
            configuration.execAllowList = enforcer?.execAllowList
            configuration.refusesSocketCalls = !noCgroupDenial
            let sensor = try Sensor(configuration: configuration)
            writeStandardError("caduceus detect: " + sensor.securityEventSource)
            if let enforcer, sensor.cgroupDenial.root != nil || sensor.cgroupDenial.failure != nil {
                enforcer.sensorStarted(cgroupDenial: sensor.cgroupDenial)
                writeStandardError("caduceus detect: socket calls of enforced rules: " + sensor.cgroupDenial.summary)
            }
            for line in enforcer?.summary ?? [] { writeStandardError("caduceus detect: enforce " + line) }
            if configuration.execAllowList != nil {
                writeStandardError(
                    sensor.execAllowCgroups > 0
                        ? "caduceus detect: the profile's executables are enforced in the kernel in \(sensor.execAllowCgroups) cgroups"
                        : "caduceus detect: no profiled container runs yet: PROFILE-EXEC is enforced from user space")
            }
            writeStandardError("caduceus detect: the kernel sends \(names.count) event types; Ctrl-C to stop")
            state.seedFromProcFS()
            let offset = sensor.bootTimeOffset
            let containers = sensor.containers
            let statistics = try watch.runUntilStopped(stop: { sensor.stop() }) {
                try sensor.run { raw in
                    let event = TraceEvent(raw, bootTimeOffset: offset, containers: containers)
                    engine.process(event, raise: raise)
                    drift?.check(event, raise: raise)
                }
            }
            lost = statistics.lost
            if let fanotify {
                fanotify.stop()
                let counts = fanotify.fanotifyGuard.statistics
                writeStandardError(
                    "caduceus detect: fanotify: \(counts.denied) denied, \(counts.allowed) allowed, \(counts.timedOut) timed out, "
                        + "\(counts.overflowed) over the queue bound, \(counts.marked) container file systems marked")
            }
            if lost > 0 {
                let perCPU = statistics.lostPerCPU.enumerated().map { "cpu\($0.offset): \($0.element)" }.joined(separator: ", ")
                writeStandardError("caduceus detect: \(lost) events lost in the kernel (\(perCPU)): alerts may be missing")
            }
        }
        for sink in sinks { for problem in sink.finish() { writeStandardError("caduceus detect: " + problem) } }
        for (rule, container, count) in throttle?.suppressed ?? [] {
            writeStandardError("caduceus detect: \(count) more alerts of \(rule) in \(container) throttled (--alert-burst \(alertBurst), --alert-interval \(alertInterval))")
        }
        let stats = engine.statistics
        if let drift { writeStandardError("caduceus detect: \(drift.alertCount) profile drift alerts (\(drift.profile.image))") }
        let byRule = stats.alertsByRule.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        writeStandardError(
            "caduceus detect: \(stats.events) events, \(stats.alerts) alerts" + (byRule.isEmpty ? "" : " (\(byRule))")
                + (outside.count > 0 ? ", \(outside.count) refusals alerted by the fanotify guard" : "")
                + ", \(state.processes.count) processes tracked, \(lost) events lost"
                + (ProcessMemory().map { ", peak RSS \($0.peakMB) MB" } ?? ""))
        if lost > 0 { throw ExitCode(3) }
    }
}

/// Which rules to load: the built-in ones, plus or instead of the user's.
struct RuleOptions: ParsableArguments {
    @Option(name: .customLong("rules"), help: "A rule file or directory of *.yaml files (repeatable). A file named like a built-in one replaces it; others add to them.")
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

/// Alerts raised outside the rule engine (the fanotify guard's refusals), for the last line.
private final class RaisedOutsideTheEngine: @unchecked Sendable {
    var count = 0
}
