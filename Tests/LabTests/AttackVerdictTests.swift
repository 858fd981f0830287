import Foundation
import JSON
import Lab
import LabReport
import Sensor
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The lab's honesty, without root: a scenario is "prevented" only when its refusal was observed
/// (the sensor saw a guarded syscall return EPERM or EACCES, or a mechanism said "denied (...)"),
/// "killed after the syscall" when enforcement killed it, and "did not run" for every other
/// failure, which counts against the matrix.
@Suite struct AttackVerdictTests {
    static func scenario(_ id: String) -> AttackScenario { AttackScenario.catalogue.first { $0.id == id }! }

    static func refusal(_ syscall: String, _ errno: Int32 = EPERM) -> ObservedRefusal {
        ObservedRefusal(container: "c", timestamp: 1, pid: 42, syscall: syscall, returnValue: -Int64(errno))
    }

    static func verdict(
        _ id: String, exit: Int32, result: String = "", actions: [String] = [], refusals: [ObservedRefusal] = []
    ) -> AttackVerdict {
        AttackLab.verdict(scenario(id), exitStatus: exit, result: result, actions: actions, refusals: refusals)
    }

    /// The four cases the issue names.
    @Test func aMissingToolIsDidNotRunADetectionIsDetectedAnEPERMSeenIsPreventedATimeoutIsDidNotRun() {
        let missing = Self.verdict("shadow", exit: 127, result: "exit 127")
        #expect(missing.name == "did not run" && missing.reason?.contains("missing") == true, "\(missing)")
        #expect(MatrixCell(expectsRules: true, detected: false, verdict: missing) == .didNotRun)

        let ran = Self.verdict("shadow", exit: 0, result: "ran")
        #expect(ran == .ran)
        #expect(MatrixCell(expectsRules: true, detected: true, verdict: ran) == .detected)

        let refused = Self.verdict("shadow", exit: 1, result: "exit 1", refusals: [Self.refusal("openat")])
        #expect(refused == .prevented("openat returned EPERM (seen by the sensor)"))
        #expect(MatrixCell(expectsRules: true, detected: false, verdict: refused) == .prevented)
        #expect(
            Self.verdict("unshare", exit: 1, result: "blocked (EACCES)", refusals: [Self.refusal("unshare", EACCES)])
                == .prevented("unshare returned EACCES (seen by the sensor)"))

        let timedOut = Self.verdict("key-search", exit: 124, result: "exit 124")
        #expect(timedOut.name == "did not run" && timedOut.reason?.contains("timed out") == true, "\(timedOut)")
        #expect(
            MatrixCell(expectsRules: true, detected: true, verdict: timedOut) == .didNotRun,
            "a timeout is a failure even if a rule fired")
    }

    /// What used to score as a win: a judged scenario that printed EPERM but whose refusal no
    /// one saw, a crash, a refusal of a call the scenario does not guard, a play skipped.
    @Test func everyOtherFailureIsDidNotRun() {
        let printed = Self.verdict("unshare", exit: 1, result: "blocked (EPERM)")
        #expect(printed == .didNotRun("exit 1 and no refusal observed (it printed EPERM)"))
        #expect(Self.verdict("sysrq", exit: 1, result: "blocked (ENOENT)").didNotRun)
        #expect(
            Self.verdict("shadow", exit: 139, result: "exit 139")
                == .didNotRun("ended by signal 11, not by enforcement (exit 139)"))
        #expect(Self.verdict("shadow", exit: 126).didNotRun)
        // A refusal, but of a syscall this scenario does not guard: not its refusal.
        #expect(Self.verdict("unshare", exit: 1, refusals: [Self.refusal("openat")]).didNotRun)
        // Another errno is not a refusal (the sensor keeps only EPERM and EACCES).
        #expect(
            !ObservedRefusal.isRefusal(-Int64(ENOENT)) && ObservedRefusal.isRefusal(-Int64(EPERM))
                && ObservedRefusal.isRefusal(-Int64(EACCES)))
        let skipped = Self.verdict("fork-bomb", exit: 0, result: "skipped: the container has no pids limit")
        #expect(skipped == .didNotRun("skipped: the container has no pids limit"))
        #expect(
            Self.verdict("fhir-exfiltration", exit: 1, result: "failed: connection refused")
                == .didNotRun("failed: connection refused"))
        #expect(Self.verdict("request-flood", exit: 0, result: "skipped: no base URL").didNotRun)
    }

    /// A mechanism's verdict in the alert (today's and the coming vocabulary alike): "denied" is a
    /// refusal whatever the exit status; a kill is its own outcome, not a prevention.
    @Test func theMechanismsWordDecidesDeniedFromKilled() {
        for action in ["denied (cgroup)", "denied (fanotify)", "denied (lsm)"] {
            #expect(Self.verdict("reverse-shell", exit: 1, actions: [action]) == .prevented(action))
            #expect(Self.verdict("cron", exit: 0, actions: ["would kill", action]) == .prevented(action))
        }
        for action in [
            "killed (kernel)", "killed (user space)", "killed after the syscall (kernel)",
            "killed after the syscall (user space)",
        ] {
            let killed = Self.verdict("shadow", exit: 137, result: "exit 137", actions: [action])
            #expect(killed == .killed(action) && killed.name == "killed after the syscall")
            #expect(MatrixCell(expectsRules: true, detected: true, verdict: killed) == .killed)
        }
        // A dry run kills nothing: the attack ran.
        #expect(Self.verdict("shadow", exit: 0, actions: ["would kill"]) == .ran)
        // Killed by something else than enforcement (137 with no action): did not run.
        #expect(Self.verdict("shadow", exit: 137).didNotRun)
        // A judged scenario exiting 0 says its syscall succeeded: it ran, whatever else was refused.
        #expect(Self.verdict("unshare", exit: 0, result: "succeeded", refusals: [Self.refusal("unshare")]) == .ran)
        // An unjudged one whose guarded call was refused but whose script went on to exit 0 (the
        // cron file's `echo >` refused, the `rm` after it fine) was prevented.
        #expect(
            Self.verdict("cron", exit: 0, result: "ran", refusals: [Self.refusal("openat", EACCES)]).name == "prevented"
        )
    }

    /// Every guarded syscall is a syscall event, and every scenario played in a container guards
    /// one, but the fork bomb (held by the pids limit, EAGAIN, not refused). Most are traced at
    /// their exit, with the return value; execve and execveat are traced at their entry (no return
    /// value), so an exec refused shows as the mechanism's "denied (fanotify)" instead.
    @Test func everyGuardedSyscallIsASyscallEvent() {
        for scenario in AttackScenario.catalogue {
            for name in scenario.guardedSyscalls {
                let id = EventTable.definition(named: name)?.id ?? -1
                #expect((0..<1000).contains(id), "\(scenario.id): \(name) is not a syscall event (\(id))")
            }
            if case .container = scenario.play {
                #expect(
                    !scenario.guardedSyscalls.isEmpty, "\(scenario.id) guards no syscall: it could never be prevented")
            }
        }
        #expect(Self.scenario("unshare+sys_admin").guardedSyscalls == Self.scenario("unshare").guardedSyscalls)
        #expect(
            AttackScenario.guardedSyscalls(of: [Self.scenario("shadow"), Self.scenario("reverse-shell")]) == [
                "openat", "connect", "execve",
            ])
    }

    /// The printed matrix, the matrix file, the report's JSON and HTML all carry the verdict and
    /// count "did not run" as a failure; a matrix file from before verdicts reads honestly.
    @Test func theReportShowsDidNotRunAsAFailure() throws {
        func outcome(_ id: String, exit: Int32, fired: [String], result: String, verdict: AttackVerdict)
            -> AttackLab.Outcome
        {
            var outcome = AttackLab.Outcome(
                scenario: Self.scenario(id), exitStatus: exit, firedRules: fired,
                secondsToDetect: fired.isEmpty ? nil : 0.1)
            outcome.result = result
            outcome.verdict = verdict
            return outcome
        }
        let outcomes = [
            outcome("shadow", exit: 0, fired: ["CAD-007"], result: "ran", verdict: .ran),
            outcome(
                "memfd", exit: 1, fired: [], result: "blocked (EPERM)",
                verdict: .prevented("memfd_create returned EPERM (seen by the sensor)")),
            outcome(
                "aslr", exit: 137, fired: ["CAD-044"], result: "exit 137",
                verdict: .killed("killed after the syscall (kernel)")),
            outcome(
                "unshare", exit: 1, fired: ["CAD-030"], result: "blocked (EPERM)",
                verdict: .didNotRun("exit 1 and no refusal observed (it printed EPERM)")),
            outcome(
                "cron", exit: 127, fired: [], result: "exit 127",
                verdict: .didNotRun("a tool is missing (exit 127: command not found)")),
            outcome("clear-logs", exit: 0, fired: [], result: "ran", verdict: .ran),
            outcome("timestomp", exit: 0, fired: [], result: "ran", verdict: .ran),
        ]
        #expect(
            outcomes.map(\.cell) == [.detected, .prevented, .killed, .didNotRun, .didNotRun, .missed, .notApplicable])
        let printed = AttackLab.matrix(outcomes)
        let summary =
            "7 scenarios: 1 detected, 1 prevented (refusal observed), 1 killed after the syscall, 1 missed, 2 did not run, "
            + "1 with no rule expected; 3 failures (missed or did not run)"
        #expect(printed.contains(summary), "\(printed)")
        let unshareLine = try #require(printed.split(separator: "\n").first { $0.hasPrefix("unshare ") })
        #expect(unshareLine.contains("DID NOT RUN") && unshareLine.contains("no refusal observed"), "\(unshareLine)")

        let file = AttackLab.matrixJSON(outcomes, falsePositives: 0, workloadInteractions: 0)
        let matrix = try DetectionMatrix(parsing: Array(file.utf8), path: "matrix.json")
        #expect(matrix.scenarios.map(\.verdict) == outcomes.map(\.verdict))
        #expect(matrix.scenarios.map(\.cell) == outcomes.map(\.cell))
        #expect(
            (matrix.detectedCount, matrix.preventedCount, matrix.killedCount, matrix.missedCount, matrix.didNotRunCount)
                == (1, 1, 1, 1, 2))
        #expect(matrix.failureCount == 3 && matrix.notApplicableCount == 1)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-verdict-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(file.utf8).write(to: directory.appendingPathComponent("matrix.json"))
        let written = try ReportData.load(from: directory.path).write(
            htmlPath: directory.appendingPathComponent("report.html").path)
        let json = try JSONParser.parse(try Data(contentsOf: URL(fileURLWithPath: written.json)))
        #expect(json["matrix"]?["didNotRun"] == 2 && json["matrix"]?["failures"] == 3 && json["matrix"]?["killed"] == 1)
        #expect(json["matrix"]?["scenarios"]?.arrayValue?[3]["verdict"] == "did not run")
        let html = try String(contentsOfFile: written.html, encoding: .utf8)
        #expect(
            html.contains("<span class=\"didnotrun\">did not run</span>")
                && html.contains("<span class=\"killed\">killed after the syscall</span>"))
        #expect(html.contains(summary) && html.contains("#f76707"), "the matrix chart has a did-not-run cell")
        #expect(html.contains("no refusal observed (it printed EPERM)"))

        // A file from before verdicts: exit 0 ran; a non-zero exit's "blocked" was never observed.
        let legacy = """
            {"scenarios":[
            {"id":"memfd","name":"m","tactic":"t","technique":"T1620","expected":["CAD-015"],"fired":[],"detected":false,
             "secondsToDetect":null,"exitStatus":1,"result":"blocked (EPERM)"},
            {"id":"shadow","name":"s","tactic":"t","technique":"T1003.008","expected":["CAD-007"],"fired":["CAD-007"],"detected":true,
             "secondsToDetect":0.1,"exitStatus":0,"result":"ran"}],
            "falsePositives":0,"workloadInteractions":0}
            """
        let old = try DetectionMatrix(parsing: Array(legacy.utf8), path: "old.json")
        #expect(old.scenarios.map(\.cell) == [.didNotRun, .detected])
        let bad = legacy.replacingOccurrences(of: #""result":"ran""#, with: #""result":"ran","verdict":"won""#)
        #expect(throws: ReportFileError.self) { try DetectionMatrix(parsing: Array(bad.utf8), path: "bad.json") }
    }
}
