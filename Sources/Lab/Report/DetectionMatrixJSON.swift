import Foundation
import JSON

// The attack lab's detection matrix as a file (`caduceus lab attack --json FILE`), and the
// reader `caduceus report` uses: writer and reader live together so that the format has one
// definition.
//
//   {"scenarios":[{"id","name","tactic","technique","expected":[…],"fired":[…],
//                  "detected":true|false|null,"secondsToDetect":number|null,"exitStatus":int,
//                  "result":"what the attack achieved"}],
//    "falsePositives":N,"workloadInteractions":N}
//
// `detected` is null when the scenario expects no rule: such a scenario is neither a hit nor a
// miss, and the report shows it as "n/a".

extension AttackLab {
    /// The detection matrix as JSON (indented, with a final newline): one object per scenario,
    /// then the alerts the benign workload raised (`falsePositives`) and how many interactions
    /// that workload made (0 when none ran: false positives were then not measured).
    public static func matrixJSON(_ outcomes: [Outcome], falsePositives: Int, workloadInteractions: Int) -> String {
        let scenarios: [JSONValue] = outcomes.map { outcome in
            let scenario = outcome.scenario
            return .object(JSONObject([
                ("id", .string(scenario.id)),
                ("name", .string(scenario.name)),
                ("tactic", .string(scenario.tactic)),
                ("technique", .string(scenario.technique)),
                ("expected", .array(scenario.expectedRules.map { .string($0) })),
                ("fired", .array(outcome.firedRules.map { .string($0) })),
                ("detected", scenario.expectedRules.isEmpty ? .null : .bool(outcome.detected)),
                ("secondsToDetect", outcome.secondsToDetect.map(ReportNumber.json) ?? .null),
                ("exitStatus", .number(String(outcome.exitStatus))),
                ("result", .string(outcome.result)),
            ]))
        }
        let document: JSONValue = .object(JSONObject([
            ("scenarios", .array(scenarios)),
            ("falsePositives", .number(String(falsePositives))),
            ("workloadInteractions", .number(String(workloadInteractions))),
        ]))
        return JSONWriter(pretty: true).string(document) + "\n"
    }
}

extension AttackLab.Outcome {
    /// An outcome from its parts, for replaying a matrix or testing what is built on one;
    /// `run` makes them from live alerts.
    public init(scenario: AttackScenario, exitStatus: Int32, firedRules: [String], secondsToDetect: Double?) {
        let expected = Set(scenario.expectedRules)
        self.init(
            scenario: scenario, exitStatus: exitStatus, firedRules: firedRules,
            detected: !expected.isEmpty && expected.isSubset(of: Set(firedRules)), secondsToDetect: secondsToDetect)
    }
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
    }

    public let scenarios: [Row]
    public let falsePositives: Int
    public let workloadInteractions: Int

    /// Scenarios whose expected rules all fired.
    public var detectedCount: Int { scenarios.filter { $0.detected == true }.count }
    /// Scenarios with expected rules of which some did not fire.
    public var missedCount: Int { scenarios.filter { $0.detected == false }.count }
    /// Scenarios that expect no rule.
    public var notApplicableCount: Int { scenarios.filter { $0.detected == nil }.count }

    /// Reads the document `matrixJSON` writes; `path` names the file in errors.
    public init(parsing bytes: [UInt8], path: String) throws {
        let document = try ReportField.parseDocument(bytes, path: path)
        let root = ReportField(document, path: path, location: "")
        scenarios = try root.array("scenarios").map { row in
            Row(
                id: try row.string("id"), name: try row.string("name"), tactic: try row.string("tactic"),
                technique: try row.string("technique"),
                expected: try row.array("expected").map { try $0.string() },
                fired: try row.array("fired").map { try $0.string() },
                detected: try row.optionalBool("detected"), secondsToDetect: try row.optionalDouble("secondsToDetect"),
                exitStatus: try row.int("exitStatus"), result: try row.optionalString("result") ?? "")
        }
        falsePositives = try root.int("falsePositives")
        workloadInteractions = try root.int("workloadInteractions")
    }
}
