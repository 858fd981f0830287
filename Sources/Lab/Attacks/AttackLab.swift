import Detection
import Foundation
import LabReport
import LabSupport
import Sensor

/// Plays attack scenarios inside a running FHIR server container under live detection and
/// reports, per scenario, which of its expected rules fired and how fast.
///
/// The FHIR image has no shell, so the lab first drops a toolkit into the container (a static
/// busybox and `behave`, taken from the testbox image) under /opt/lab, as an intruder would,
/// plus bait credentials (/etc/shadow, /root/.ssh/id_rsa); `cleanUp()` removes all of it.
public final class AttackLab {
    public struct Outcome: Sendable {
        public let scenario: AttackScenario
        public let exitStatus: Int32
        public let firedRules: [String]
        /// The scenario's expected rules that fired (all of them: detected).
        public let detected: Bool
        /// From the scenario's start to the first alert of an expected rule.
        public let secondsToDetect: Double?
        /// What the attack achieved: "succeeded", "blocked (EPERM)", "held at 512 pids: …",
        /// "1204 records pulled", … (the matrix's outcome column).
        public var result: String = ""
        /// The measurements behind `result`, by name (`refused`, `leftover`, `patients`,
        /// `requests`, `hostChanged`, …), for tests and reports.
        public var figures: [String: Double] = [:]
        /// Why the scenario's detection source could not be asked ("server not auditing",
        /// "audit trail not readable (HTTP 401)"); `nil` when it was.
        public var sourceProblem: String?
        /// Where the expected rules were looked for: the kernel's alerts or the FHIR audit trail.
        public var source: DetectionSource { scenario.source }
        /// What became of the attack, judged by what was observed (`AttackLab.verdict`): ran,
        /// prevented (a refusal seen), killed after the syscall, or did not run.
        public var verdict: AttackVerdict = .ran
        /// The row's cell in the matrix: its verdict and its detection together.
        public var cell: MatrixCell {
            MatrixCell(expectsRules: !scenario.expectedRules.isEmpty, detected: detected, verdict: verdict)
        }
        /// Refused, and the refusal observed: not a miss that let an attack through.
        public var prevented: Bool { cell == .prevented }
        /// The learned profile's drift raised in the scenario's window (`PROFILE-EXEC`, ...),
        /// kept apart from `firedRules`; nil when no profile was watched.
        public var drift: [String]?
    }

    public let container: String
    public var toolkitImage = "caduceus-testbox:latest"
    /// The FHIR base URL of `container`'s server: the target of the attacks through the API and
    /// of the fork bomb's "does the server still answer" check. Without it those are skipped.
    public var baseURL: String?

    /// `container`: the FHIR server's container (name or id), running.
    public init(container: String, baseURL: String? = nil) {
        self.container = container
        self.baseURL = baseURL
    }

    // MARK: - Toolkit

    /// Copies the toolkit and the bait files into the container.
    public func installToolkit() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-lab-\(UUID().uuidString)")
        let tools = work.appendingPathComponent("opt/lab")
        try FileManager.default.createDirectory(at: tools, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let source = try Self.docker(["create", toolkitImage])
        defer { _ = try? Self.docker(["rm", source]) }
        for (from, name) in [("/bin/busybox", "busybox"), ("/usr/local/bin/behave", "behave")] {
            _ = try Self.docker(["cp", "\(source):\(from)", tools.appendingPathComponent(name).path])
        }
        // Into / as a tree: the image has no /opt for `docker cp` to create /opt/lab in.
        _ = try Self.docker(["cp", work.path + "/.", "\(container):/"])
        try exec(
            script: """
                /opt/lab/busybox mkdir -p /opt/lab/bin /bin /root/.ssh
                /opt/lab/busybox --install -s /opt/lab/bin
                /opt/lab/busybox ln -sf /opt/lab/busybox /bin/busybox
                /opt/lab/busybox ln -sf /opt/lab/busybox /bin/sh
                [ -e /etc/shadow ] || { echo 'root:*:19000:0:99999:7:::' > /etc/shadow; touch /opt/lab/planted-shadow; }
                [ -e /root/.ssh/id_rsa ] || { echo 'bait key' > /root/.ssh/id_rsa; touch /opt/lab/planted-key; }
                """)
    }

    /// Removes the toolkit and the bait files it planted.
    public func cleanUp() {
        _ = try? exec(
            script: """
                [ -e /opt/lab/planted-shadow ] && rm -f /etc/shadow
                [ -e /opt/lab/planted-key ] && rm -rf /root/.ssh
                rm -f /bin/sh /bin/busybox; rmdir /bin 2>/dev/null
                rm -rf /opt/lab
                """)
    }

    // MARK: - Running

    /// Runs each scenario in turn while `detector` watches, then matches the alerts raised in
    /// the container during each scenario's window (its start until the next one's). The
    /// scenarios are all played against this lab's container, privileged ones included: the
    /// caller gives each container its own lab.
    public func run(_ scenarios: [AttackScenario], detector: LiveDetector, listenPort: Int, settle: Double = 0.5)
        async throws -> [Outcome]
    {
        let id = try Self.docker(["inspect", "-f", "{{.Id}}", container])
        // The server's own refusals are not the attack's.
        let server = UInt32((try? Self.docker(["inspect", "-f", "{{.State.Pid}}", container])) ?? "") ?? 0
        let missing = AttackScenario.guardedSyscalls(of: scenarios).subtracting(detector.watchedRefusals)
        if !missing.isEmpty {
            throw LabError(
                "the detector does not watch \(missing.sorted().joined(separator: ", ")) for refusals: "
                    + "LiveDetector(watchingRefusalsOf: AttackScenario.guardedSyscalls(of: scenarios))")
        }
        var windows: [(AttackScenario, Int32, UInt64)] = []
        var played: [(String, [String: Double])] = []
        for scenario in scenarios {
            let start = Self.now()
            // Drift the profile saw before (the toolkit's install, an earlier scenario) alerts
            // again from here: each row shows all of its scenario's own.
            detector.drift?.startRound(at: start)
            let (status, result, figures) = try await play(scenario, listenPort: listenPort)
            windows.append((scenario, status, start))
            played.append((result, figures))
            try await Task.sleep(for: .milliseconds(Int(settle * 1000)))
        }
        try await Task.sleep(for: .milliseconds(Int(settle * 1000)))
        await detector.waitUntilRead(upTo: Self.now())
        let alerts = detector.alertsSoFar.filter { $0.container.id == id }
        let refusals = detector.refusalsSoFar.filter { $0.container == id && $0.pid != server }
        func within(_ index: Int, _ timestamp: UInt64) -> Bool {
            timestamp >= windows[index].2 && (index + 1 == windows.count || timestamp < windows[index + 1].2)
        }
        func window(_ index: Int) -> [Alert] { alerts.filter { within(index, $0.timestamp) } }
        let outcomes = windows.enumerated().map { index, entry in
            let (scenario, status, start) = entry
            let inWindow = window(index).filter { !$0.ruleId.hasPrefix("PROFILE-") }
            let fired = Array(Set(inWindow.map(\.ruleId))).sorted()
            let expected = Set(scenario.expectedRules)
            let first = inWindow.filter { expected.contains($0.ruleId) }.map(\.raisedAt).min()
            var outcome = Outcome(
                scenario: scenario, exitStatus: status, firedRules: fired,
                detected: !expected.isEmpty && expected.isSubset(of: Set(fired)),
                secondsToDetect: first.map { Double($0 &- start) / 1e9 }, result: played[index].0,
                figures: played[index].1)
            outcome.verdict = Self.verdict(
                scenario, exitStatus: status, result: played[index].0, actions: window(index).compactMap(\.action),
                refusals: refusals.filter { within(index, $0.timestamp) })
            return outcome
        }
        // What the kernel cannot see, the FHIR server's audit trail may have (AttackLab+AuditTrail.swift).
        var judged = await withAuditTrailDetections(outcomes, starts: windows.map(\.2))
        if detector.drift != nil {
            for index in judged.indices {
                judged[index].drift = Array(Set(window(index).map(\.ruleId).filter { $0.hasPrefix("PROFILE-") }))
                    .sorted()
            }
        }
        return judged
    }

    /// The matrix as text: one line per scenario.
    public static func matrix(_ outcomes: [Outcome]) -> String {
        // The outcome comes last: it is the one free-length column.
        func pad(_ text: String, _ width: Int) -> String {
            text.padding(toLength: max(width, text.count + 1), withPad: " ", startingAt: 0)
        }
        // The learned profile's drift beside the rules, when one was watched.
        let showsDrift = outcomes.contains { $0.drift != nil }
        func drift(_ outcome: Outcome) -> String {
            guard showsDrift else { return "" }
            let ids = outcome.drift ?? []
            return pad(
                ids.isEmpty
                    ? "-" : ids.map { $0.replacingOccurrences(of: "PROFILE-", with: "") }.joined(separator: ","), 26)
        }
        var lines = [
            pad("scenario", 25) + pad("tactic", 22) + pad("expected", 17) + pad("fired", 23)
                + (showsDrift ? pad("profile drift", 26) : "")
                + pad("source", 12) + pad("detected", 10) + pad("seconds", 9) + pad("verdict", 26) + "outcome"
        ]
        for outcome in outcomes {
            let s = outcome.scenario
            let detected = s.expectedRules.isEmpty ? "n/a" : outcome.detected ? "yes" : "NO"
            let what = [outcome.result.isEmpty ? nil : outcome.result, outcome.verdict.reason].compactMap { $0 }.joined(
                separator: "; ")
            lines.append(
                pad(s.id, 25) + pad(s.tactic, 22)
                    + pad(s.expectedRules.isEmpty ? "-" : s.expectedRules.joined(separator: ","), 17)
                    + pad(outcome.firedRules.isEmpty ? "-" : outcome.firedRules.joined(separator: ","), 23)
                    + drift(outcome)
                    + pad(s.expectedRules.isEmpty ? "-" : outcome.source.rawValue, 12) + pad(detected, 10)
                    + pad(outcome.secondsToDetect.map { String(format: "%.3f", $0) } ?? "-", 9)
                    + pad(
                        outcome.cell == .missed
                            ? "MISSED" : outcome.cell == .didNotRun ? "DID NOT RUN" : outcome.cell.rawValue, 26)
                    + (what.isEmpty ? "-" : what))
        }
        if showsDrift {
            let drifted = outcomes.filter { !($0.drift ?? []).isEmpty }.count
            lines.append("profile drift (PROFILE-*) in \(drifted) of \(outcomes.count) scenarios")
        }
        let throughAudit = outcomes.filter { $0.cell == .detected && $0.source == .auditTrail }.count
        lines.append(
            MatrixCell.summary(outcomes.map(\.cell))
                + (throughAudit > 0 ? "; \(throughAudit) detected by the FHIR audit trail, not the kernel" : ""))
        for outcome in outcomes {
            if let problem = outcome.sourceProblem { lines.append("\(outcome.scenario.id): not detected (\(problem))") }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: - Docker

    @discardableResult
    func exec(script: String, environment: [String: String] = [:], check: Bool = true) throws -> Int32 {
        let (status, output) = execute(script: script, environment: environment)
        if check && status != 0 { throw LabError("in \(container): `\(script)` failed (\(status)): \(output)") }
        return status
    }

    /// Runs `script` as root in the container with the toolkit on the PATH: its exit status and
    /// output. With `timeout`, the docker client is stopped after that many seconds (status 124);
    /// what it ran in the container is then the caller's to end.
    func execute(script: String, environment: [String: String] = [:], timeout: Int? = nil) -> (Int32, String) {
        let variables = (["PATH": "/opt/lab/bin:/opt/lab"].merging(environment) { $1 }).flatMap {
            ["-e", "\($0.key)=\($0.value)"]
        }
        let limit = timeout.map { ["timeout", String($0)] } ?? []
        return ProcessRunner.run(
            limit + ["docker", "exec", "-u", "0"] + variables + [container, "/opt/lab/busybox", "sh", "-c", script])
    }

    /// Runs the docker client; its output, or an error with it when the command fails.
    @discardableResult
    public static func docker(_ arguments: [String], check: Bool = true) throws -> String {
        let (status, output) = ProcessRunner.run(["docker"] + arguments)
        if check && status != 0 {
            throw LabError("docker \(arguments.joined(separator: " ")) failed (\(status)): \(output)")
        }
        return output
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
