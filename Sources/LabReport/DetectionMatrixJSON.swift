import Foundation
import JSON

// The attack lab's detection matrix as a file (`caduceus lab attack --json FILE`) and the
// reader `caduceus report` uses. The format is defined here, beside its reader and the
// vocabulary both sides share (`DetectionSource`, `AttackVerdict`, `MatrixCell`); the writer,
// `AttackLab.matrixJSON` in Lab, builds on them, so that data flows from the lab to the report.
//
//   {"scenarios":[{"id","name","tactic","technique","expected":[…],"fired":[…],
//                  "detected":true|false|null,"secondsToDetect":number|null,"exitStatus":int,
//                  "result":"what the attack achieved","source":"kernel"|"audit trail",
//                  "sourceProblem":string|null,"drift":[…]|null,
//                  "verdict":"ran"|"prevented"|"killed after the syscall"|"did not run","verdictReason":string|null}],
//    "falsePositives":N,"workloadInteractions":N}
//
// `detected` is null when the scenario expects no rule: such a scenario is neither a hit nor a
// miss, and the report shows it as "n/a". `verdict` is what was observed (`AttackVerdict`):
// "prevented" only when the refusal was seen (the sensor saw the guarded syscall return EPERM or
// EACCES, or a mechanism said "denied (...)"), "did not run" for every other failure (a timeout, a
// missing tool, a crash, a non-zero exit with no refusal seen), which counts against the matrix;
// `verdictReason` says how or why. Files written before it existed read as "ran" when the
// scenario exited 0 and "did not run" otherwise: a "blocked" there was never observed. `source` says where the expected rules were looked
// for (the kernel's alerts, or the FHIR server's audit trail for what the kernel cannot see);
// `sourceProblem` why that source could not be asked ("server not auditing: ..."). Files
// written before these two existed read as "kernel" and null. `drift` lists the learned
// profile's PROFILE-* alerts in the scenario's window (`lab attack --profile`), null without one;
// the report shows them in a column of their own when any row has them.

/// Where the lab looks for a scenario's expected rules.
public enum DetectionSource: String, Sendable {
    /// Alerts of the detection engine over what the kernel reports (syscalls, LSM hooks) in the
    /// FHIR server's container.
    case kernel
    /// Security-alert AuditEvents (DICOM 110113) in the FHIR server's own audit trail, asked
    /// through its API: what only the API can see, such as who read how many patients.
    case auditTrail = "audit trail"
}

/// A detection matrix read back from `matrix.json`.
public struct DetectionMatrix: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public let id: String
        public let name: String
        public let tactic: String
        public let technique: String
        public let expected: [String]
        public let fired: [String]
        /// `nil` when the scenario expects no rule.
        public let detected: Bool?
        public let secondsToDetect: Double?
        public let exitStatus: Int
        /// What the attack achieved ("blocked (EPERM)", "succeeded", ...); empty when not judged.
        public let result: String
        /// Where the expected rules were looked for: "kernel" or "audit trail".
        public let source: String
        /// Why that source could not be asked; `nil` when it was.
        public let sourceProblem: String?
        /// The learned profile's drift (PROFILE-*) in the scenario's window; `nil` when no profile was watched.
        public let drift: [String]?
        /// What was observed of the attack (`AttackLab.verdict`).
        public let verdict: AttackVerdict
        /// The row's cell: its verdict and its detection together (`MatrixCell`).
        public var cell: MatrixCell {
            MatrixCell(expectsRules: detected != nil, detected: detected == true, verdict: verdict)
        }
        /// Refused, and the refusal observed.
        public var prevented: Bool { cell == .prevented }
    }

    public let scenarios: [Row]
    public let falsePositives: Int
    public let workloadInteractions: Int

    /// Scenarios that ran and whose expected rules all fired.
    public var detectedCount: Int { count(.detected) }
    /// Scenarios that ran with expected rules of which some did not fire.
    public var missedCount: Int { count(.missed) }
    /// Scenarios whose refusal was observed.
    public var preventedCount: Int { count(.prevented) }
    /// Scenarios a process of which enforcement killed after the syscall.
    public var killedCount: Int { count(.killed) }
    /// Scenarios that did not run (timeout, missing tool, crash, exit with no refusal seen).
    public var didNotRunCount: Int { count(.didNotRun) }
    /// Scenarios that ran and expect no rule.
    public var notApplicableCount: Int { count(.notApplicable) }
    /// What counts against the matrix: missed, or did not run.
    public var failureCount: Int { scenarios.filter(\.cell.isFailure).count }
    func count(_ cell: MatrixCell) -> Int { scenarios.filter { $0.cell == cell }.count }
    /// Whether a learned profile was watched (`lab attack --profile`): the rows carry `drift`.
    public var watchedProfile: Bool { scenarios.contains { $0.drift != nil } }
    /// Scenarios in which the learned profile drifted.
    public var driftCount: Int { scenarios.filter { !($0.drift ?? []).isEmpty }.count }
    /// Scenarios detected through the FHIR audit trail rather than the kernel.
    public var detectedByAuditTrailCount: Int {
        scenarios.filter { $0.cell == .detected && $0.source == DetectionSource.auditTrail.rawValue }.count
    }

    /// Reads the document `matrixJSON` writes; `path` names the file in errors.
    public init(parsing bytes: [UInt8], path: String) throws {
        let document = try ReportField.parseDocument(bytes, path: path)
        let root = ReportField(document, path: path, location: "")
        scenarios = try root.array("scenarios").map { row in
            if let source = try row.optionalMember("source"), DetectionSource(rawValue: try source.string()) == nil {
                throw source.failure("must be \"kernel\" or \"audit trail\", not \"\(try source.string())\"")
            }
            let exitStatus = try row.int("exitStatus")
            let verdict: AttackVerdict
            if let member = try row.optionalMember("verdict") {
                guard
                    let read = AttackVerdict(name: try member.string(), reason: try row.optionalString("verdictReason"))
                else {
                    throw member.failure(
                        "must be \"ran\", \"prevented\", \"killed after the syscall\" or \"did not run\", not \"\(try member.string())\""
                    )
                }
                verdict = read
            } else {
                verdict = exitStatus == 0 ? .ran : .didNotRun("exit \(exitStatus), no verdict recorded")
            }
            return Row(
                id: try row.string("id"), name: try row.string("name"), tactic: try row.string("tactic"),
                technique: try row.string("technique"),
                expected: try row.array("expected").map { try $0.string() },
                fired: try row.array("fired").map { try $0.string() },
                detected: try row.optionalBool("detected"), secondsToDetect: try row.optionalDouble("secondsToDetect"),
                exitStatus: exitStatus, result: try row.optionalString("result") ?? "",
                source: try row.optionalString("source") ?? DetectionSource.kernel.rawValue,
                sourceProblem: try row.optionalString("sourceProblem"),
                drift: try row.optionalMember("drift")?.array().map { try $0.string() }, verdict: verdict)
        }
        falsePositives = try root.int("falsePositives")
        workloadInteractions = try root.int("workloadInteractions")
    }
}
