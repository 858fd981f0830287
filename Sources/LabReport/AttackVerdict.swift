import Foundation

/// What became of a played scenario, judged by what was observed rather than by its exit status:
/// a crash, a missing tool or a timeout is not a refusal.
public enum AttackVerdict: Sendable, Equatable {
    /// The attack ran (exit 0; for a judged scenario, the syscall that matters succeeded).
    case ran
    /// The scenario's guarded syscall was refused, and the refusal was observed: the sensor saw
    /// it return EPERM/EACCES, or an enforcing mechanism reported its verdict ("denied (cgroup)").
    case prevented(String)
    /// Enforcement killed a process of the scenario; the syscall that matched had already run.
    case killed(String)
    /// Anything else: a non-zero exit without an observed refusal, a missing tool, a timeout, a
    /// crash, a play skipped. Counts against the matrix.
    case didNotRun(String)

    /// The verdict's name as the matrix file writes it.
    public var name: String {
        switch self {
        case .ran: "ran"
        case .prevented: "prevented"
        case .killed: "killed after the syscall"
        case .didNotRun: "did not run"
        }
    }

    /// How it was observed, or why the scenario did not run; nil for `ran`.
    public var reason: String? {
        switch self {
        case .ran: nil
        case .prevented(let why), .killed(let why), .didNotRun(let why): why
        }
    }

    /// A verdict from the matrix file's two members; nil when `name` is not one.
    public init?(name: String, reason: String?) {
        switch name {
        case "ran": self = .ran
        case "prevented": self = .prevented(reason ?? "")
        case "killed after the syscall": self = .killed(reason ?? "")
        case "did not run": self = .didNotRun(reason ?? "")
        default: return nil
        }
    }

    public var didNotRun: Bool { if case .didNotRun = self { true } else { false } }
}

/// One row's cell in the matrix, from its detection and its verdict. A scenario that did not run
/// is a failure whatever fired; a refusal observed outranks a detection (the attack got nowhere);
/// a kill is shown as one (the syscall ran); then detected, missed, or no rule expected.
public enum MatrixCell: String, Sendable, CaseIterable {
    case didNotRun = "did not run"
    case prevented
    case killed = "killed after the syscall"
    case detected
    case missed
    case notApplicable = "n/a"

    public init(expectsRules: Bool, detected: Bool, verdict: AttackVerdict) {
        switch verdict {
        case .didNotRun: self = .didNotRun
        case .prevented: self = .prevented
        case .killed: self = .killed
        case .ran: self = !expectsRules ? .notApplicable : detected ? .detected : .missed
        }
    }

    /// Counts against the matrix: an attack that got through unseen, or one that never ran.
    public var isFailure: Bool { self == .missed || self == .didNotRun }

    /// The matrix's tally, as the printed matrix and the report say it: every cell that occurs
    /// (detected always), then the failures, which count against the matrix.
    /// "7 scenarios: 3 detected, 1 prevented (refusal observed), 2 did not run, 1 with no rule expected; 2 failures (missed or did not run)"
    public static func summary(_ cells: [MatrixCell]) -> String {
        let phrases: [(MatrixCell, String)] = [
            (.detected, "detected"), (.prevented, "prevented (refusal observed)"),
            (.killed, "killed after the syscall"),
            (.missed, "missed"), (.didNotRun, "did not run"), (.notApplicable, "with no rule expected"),
        ]
        let counts = phrases.compactMap { cell, phrase -> String? in
            let count = cells.filter { $0 == cell }.count
            return count > 0 || cell == .detected ? "\(count) \(phrase)" : nil
        }
        let failures = cells.filter(\.isFailure).count
        return "\(cells.count) scenarios: " + counts.joined(separator: ", ")
            + "; \(failures) failure\(failures == 1 ? "" : "s") (missed or did not run)"
    }

    /// The class of the report's HTML cell.
    public var htmlClass: String {
        switch self {
        case .didNotRun: "didnotrun"
        case .prevented: "prevented"
        case .killed: "killed"
        case .detected: "detected"
        case .missed: "missed"
        case .notApplicable: "na"
        }
    }
}
