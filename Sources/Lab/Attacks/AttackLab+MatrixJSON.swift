import Foundation
import JSON
import LabReport

// The detection matrix's writer; the format, its reader and its vocabulary are LabReport's
// (DetectionMatrixJSON.swift), which `caduceus report` reads without linking the lab.

extension AttackLab {
    /// The detection matrix as JSON (indented, with a final newline): one object per scenario,
    /// then the alerts the benign workload raised (`falsePositives`) and how many interactions
    /// that workload made (0 when none ran: false positives were then not measured).
    public static func matrixJSON(_ outcomes: [Outcome], falsePositives: Int, workloadInteractions: Int) -> String {
        let scenarios: [JSONValue] = outcomes.map { outcome in
            let scenario = outcome.scenario
            return .object(
                JSONObject([
                    ("id", .string(scenario.id)),
                    ("name", .string(scenario.name)),
                    ("tactic", .string(scenario.tactic)),
                    ("technique", .string(scenario.technique)),
                    ("expected", .array(scenario.expectedRules.map { .string($0) })),
                    ("fired", .array(outcome.firedRules.map { .string($0) })),
                    ("detected", scenario.expectedRules.isEmpty ? .null : .bool(outcome.detected)),
                    ("secondsToDetect", outcome.secondsToDetect.map { JSONValue.number($0) } ?? .null),
                    ("exitStatus", .number(String(outcome.exitStatus))),
                    ("result", .string(outcome.result)),
                    ("source", .string(outcome.source.rawValue)),
                    ("sourceProblem", outcome.sourceProblem.map { .string($0) } ?? .null),
                    ("drift", outcome.drift.map { .array($0.map { .string($0) }) } ?? .null),
                    ("verdict", .string(outcome.verdict.name)),
                    ("verdictReason", outcome.verdict.reason.map { .string($0) } ?? .null),
                ]))
        }
        let document: JSONValue = .object(
            JSONObject([
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
    public init(
        scenario: AttackScenario, exitStatus: Int32, firedRules: [String], secondsToDetect: Double?,
        sourceProblem: String? = nil,
        verdict: AttackVerdict = .ran
    ) {
        let expected = Set(scenario.expectedRules)
        self.init(
            scenario: scenario, exitStatus: exitStatus, firedRules: firedRules,
            detected: !expected.isEmpty && expected.isSubset(of: Set(firedRules)), secondsToDetect: secondsToDetect,
            sourceProblem: sourceProblem, verdict: verdict)
    }
}
