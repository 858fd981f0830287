import ArgumentParser
import Detection
import FHIRServer
import Foundation
import Lab
import LabSupport
import Sensor

/// `caduceus lab attack`: attack scenarios played inside the FHIR server's container under
/// live detection, and the detection matrix.
struct LabAttackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attack",
        abstract: "Play attack scenarios inside the FHIR container under detection and print the detection matrix.",
        discussion: """
            Needs root, BPF and Docker (Scripts/docker.sh start and testbox; caduceus images). Without --container,
            a fresh caduceus-fhir:latest container (--pids-limit 512, as in the compose deployment) is started on
            127.0.0.1 and removed afterwards, and a second one with SYS_ADMIN and seccomp unconfined for the
            escapes that privileges change (id+sys_admin; --no-privileged skips them). Before the attacks, the
            clinical workload runs against the server under the same rules: any alert then is a false positive,
            counted in the matrix, and so is any bulk-read alert (CAD-API-001) the server's audit trail records
            then. The lab's own containers keep an audit trail (serve --audit on): the exfiltration scenario is
            judged by it, not by the kernel; with --container, start the server with --audit on for that.
            A scenario is "prevented" only when its refusal is observed: the sensor saw its guarded syscall
            return EPERM or EACCES, or an enforcing mechanism said "denied (...)". A kill by enforcement is
            "killed after the syscall" (the call ran). Every other failure (a timeout, a missing tool, a crash,
            a non-zero exit with no refusal seen) is "did not run" and counts against the matrix.
              caduceus lab attack                                   # every scenario
              caduceus lab attack --container caduceus-fhir --base-url http://127.0.0.1:9080/fhir-server/api/v4
              caduceus lab attack --scenario reverse-shell --scenario shadow
              caduceus lab attack --profile fhir-profile.yaml              # and drift from a learned profile
              caduceus lab attack --list
            """)

    @Option(help: "The FHIR server's running container (name or id).")
    var container: String?

    @Option(
        help:
            "With --container: a running FHIR container with SYS_ADMIN and seccomp unconfined for the privileged variants."
    )
    var privilegedContainer: String?

    @Flag(help: "Skip the privileged variants (id+sys_admin).")
    var noPrivileged = false

    @Option(name: .customLong("scenario"), help: "Only this scenario (repeatable; see --list).")
    var scenarios: [String] = []

    @Flag(help: "List the scenarios and exit.")
    var list = false

    @Option(help: "The FHIR base URL of --container, for the benign workload (the lab's own container needs none).")
    var baseURL: String?

    @Option(help: "Admissions of the benign workload before the attacks (0: none).")
    var workloadRounds = 10

    @Flag(
        help:
            "Carry out the rules' actions in the lab's containers, as `detect --enforce` does; the matrix says what acted."
    )
    var enforce = false

    @Option(help: "Also write the matrix as JSON to this file (matrix.json for `caduceus report`).")
    var json: String?

    /// With a profile, the matrix shows each scenario's PROFILE-* alerts.
    @OptionGroup var profileOptions: ProfileOptions

    @OptionGroup var rules: RuleOptions

    func run() async throws {
        if list {
            for s in AttackScenario.catalogue {
                print(
                    "\(s.id.padding(toLength: 22, withPad: " ", startingAt: 0)) \(s.tactic.padding(toLength: 21, withPad: " ", startingAt: 0)) \(s.technique.padding(toLength: 10, withPad: " ", startingAt: 0)) \(s.name)"
                )
            }
            return
        }
        // The privileged variants need a privileged container: --privileged-container, or one the lab starts.
        let privilegedTarget = !noPrivileged
        let everything = AttackScenario.all + (privilegedTarget ? AttackScenario.privilegedVariants : [])
        let chosen =
            try scenarios.isEmpty
            ? everything
            : scenarios.map { id in
                guard let scenario = everything.first(where: { $0.id == id }) else {
                    if AttackScenario.catalogue.contains(where: { $0.id == id }) {
                        throw ValidationError("'\(id)' is a privileged variant: drop --no-privileged")
                    }
                    throw ValidationError("no scenario '\(id)' (see --list)")
                }
                return scenario
            }
        let ruleSet = try rules.load()
        let learned = try profileOptions.load()
        var started: [String] = []
        defer { if !started.isEmpty { _ = try? AttackLab.docker(["rm", "-f"] + started) } }
        let target: String
        var base = baseURL
        var privilegedLab: AttackLab?
        if let container {
            target = container
            if chosen.contains(where: \.privileged) {
                if let privilegedContainer {
                    privilegedLab = AttackLab(container: privilegedContainer)
                } else {
                    let privileged = try AttackLab.startServer(port: Int.random(in: 20000..<30000), privileged: true)
                    started.append(privileged)
                    privilegedLab = AttackLab(container: privileged)
                }
            }
        } else {
            let port = Int.random(in: 20000..<30000)
            base = "http://127.0.0.1:\(port)/fhir-server/api/v4"
            target = try AttackLab.startServer(port: port)
            started.append(target)
            if chosen.contains(where: \.privileged) {
                let privileged = try AttackLab.startServer(port: port + 1, privileged: true)
                started.append(privileged)
                privilegedLab = AttackLab(container: privileged)
            }
        }
        let listener = try LoopbackListener()
        let lab = AttackLab(container: target, baseURL: base)
        let labs = [lab] + (privilegedLab.map { [$0] } ?? [])
        var installed: [AttackLab] = []
        defer { installed.forEach { $0.cleanUp() } }
        func install(_ lab: AttackLab) throws {
            try lab.installToolkit()
            installed.append(lab)
        }
        // Under enforcement the toolkits go in before the detector starts: planting the bait
        // (/etc/shadow, a private key) would trip the very rules the scenarios test.
        if enforce { try labs.forEach(install) }
        // Enforcement, when asked, only in the lab's own containers.
        let labContainers = [target] + (privilegedLab.map { [$0.container] } ?? [])
        let enforcement = enforce ? EnforcementOptions(all: true, containers: labContainers) : nil
        // The guarded syscalls are traced too: a scenario is prevented only when the sensor sees one
        // refused. Enforced as `detect --enforce` does: opens and execs refused by fanotify.
        let detector = try LiveDetector(
            ruleSet: ruleSet, enforcement: enforcement, profile: learned,
            profileContainer: profileOptions.profileContainer,
            watchingRefusalsOf: AttackScenario.guardedSyscalls(of: chosen),
            fanotify: enforce ? FanotifyGuardOptions() : nil)
        let containerID = try AttackLab.docker(["inspect", "-f", "{{.Id}}", target])
        var falsePositives: [Alert] = []
        var auditFalsePositives: [AuditTrailQuery.Alert] = []
        var workloadInteractions = 0
        if let base, workloadRounds > 0 {
            let workloadStart = Date()
            let workload = try await Self.benignWorkload(base: base, rounds: workloadRounds)
            try await Task.sleep(for: .milliseconds(500))  // the reader catches up with the last requests
            falsePositives = detector.alertsSoFar.filter { $0.container.id == containerID }
            // The audit trail's bulk-read alerts too (none when the server does not audit).
            if case .alerts(let found) = await AuditTrailQuery.securityAlerts(
                baseURL: base, rules: [ExfiltrationDetector.ruleId], since: workloadStart, patience: 0)
            {
                auditFalsePositives = found
            }
            workloadInteractions = workload.interactions
            writeStandardError(
                "caduceus lab: benign workload: \(workload.interactions) interactions, \(workload.failureCount) failed; "
                    + "\(falsePositives.count) alerts in the container and \(auditFalsePositives.count) in the audit trail (false positives)"
            )
        }
        writeStandardError(
            "caduceus lab: installing the toolkit in \(target.prefix(12)) and playing \(chosen.count) scenarios")
        if !enforce { try install(lab) }
        var outcomes = try await lab.run(
            chosen.filter { !$0.privileged }, detector: detector, listenPort: Int(listener.port))
        if let privilegedLab {
            if !enforce { try install(privilegedLab) }
            outcomes += try await privilegedLab.run(
                chosen.filter(\.privileged), detector: detector, listenPort: Int(listener.port))
        }
        let (_, lost) = try detector.stop()
        withExtendedLifetime(listener) {}
        print(AttackLab.matrix(outcomes))
        if let base, workloadRounds > 0 {
            print(
                "false positives during the benign workload (\(workloadRounds) admissions against \(base)): "
                    + "\(falsePositives.count + auditFalsePositives.count)")
            for alert in falsePositives.prefix(10) { print("  " + alert.line) }
            for alert in auditFalsePositives.prefix(10) { print("  audit trail: \(alert.rule) \(alert.description)") }
        }
        if lost > 0 { writeStandardError("caduceus lab: \(lost) events lost in the kernel: alerts may be missing") }
        for outcome in outcomes where outcome.scenario.note != nil {
            writeStandardError("note: \(outcome.scenario.id): \(outcome.scenario.note!)")
        }
        if let json {
            let document = AttackLab.matrixJSON(
                outcomes, falsePositives: falsePositives.count + auditFalsePositives.count,
                workloadInteractions: workloadInteractions)
            do {
                try Data(document.utf8).write(to: URL(fileURLWithPath: json), options: .atomic)
            } catch {
                throw CommandFailure("cannot write \(json): \(error.localizedDescription)")
            }
        }
    }

    /// The clinical workload, once the server answers (a fresh container needs a moment).
    static func benignWorkload(base: String, rounds: Int) async throws -> WorkloadReport {
        for _ in 0..<60 {
            if let probe = try? await ClinicalWorkload(baseURL: base, rounds: 0, timeoutSeconds: 1).run(),
                probe.failureCount == 0
            {
                break
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        return try await ClinicalWorkload(baseURL: base, rounds: rounds, concurrency: 4).run()
    }
}
