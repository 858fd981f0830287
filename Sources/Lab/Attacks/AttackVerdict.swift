import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A guarded syscall that the sensor saw return EPERM or EACCES in a container: the refusal
/// itself, observed, not read from what the attack printed.
public struct ObservedRefusal: Sendable, Equatable {
    /// The container's full id.
    public let container: String
    /// When the call returned, nanoseconds since the epoch.
    public let timestamp: UInt64
    /// The host pid (thread group) of the process refused.
    public let pid: UInt32
    /// The syscall's event name (`openat`, `connect`, ...).
    public let syscall: String
    /// The negative errno the call returned (-EPERM or -EACCES).
    public let returnValue: Int64

    public init(container: String, timestamp: UInt64, pid: UInt32, syscall: String, returnValue: Int64) {
        self.container = container
        self.timestamp = timestamp
        self.pid = pid
        self.syscall = syscall
        self.returnValue = returnValue
    }

    /// The return values that are a refusal: -EPERM and -EACCES.
    public static func isRefusal(_ returnValue: Int64) -> Bool { returnValue == -Int64(EPERM) || returnValue == -Int64(EACCES) }

    /// "EPERM" or "EACCES".
    public var errnoName: String { returnValue == -Int64(EACCES) ? "EACCES" : "EPERM" }
}

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
            (.detected, "detected"), (.prevented, "prevented (refusal observed)"), (.killed, "killed after the syscall"),
            (.missed, "missed"), (.didNotRun, "did not run"), (.notApplicable, "with no rule expected"),
        ]
        let counts = phrases.compactMap { cell, phrase -> String? in
            let count = cells.filter { $0 == cell }.count
            return count > 0 || cell == .detected ? "\(count) \(phrase)" : nil
        }
        let failures = cells.filter(\.isFailure).count
        return "\(cells.count) scenarios: " + counts.joined(separator: ", ") + "; \(failures) failure\(failures == 1 ? "" : "s") (missed or did not run)"
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

extension AttackLab {
    /// Judges a played scenario from what was observed in its window: `actions` are the
    /// enforcement actions of the alerts raised in its container ("denied (cgroup)",
    /// "killed after the syscall (kernel)", ...), `refusals` the calls the sensor saw refused
    /// there (by processes other than the server). Only a refusal of one of the scenario's
    /// guarded syscalls, or a mechanism's "denied", makes it prevented; a non-zero exit alone
    /// makes it "did not run".
    public static func verdict(
        _ scenario: AttackScenario, exitStatus: Int32, result: String, actions: [String], refusals: [ObservedRefusal]
    ) -> AttackVerdict {
        if result.hasPrefix("skipped") { return .didNotRun(result) }
        // A judged scenario that exits 0 says the syscall that matters succeeded.
        if case .container(judged: true) = scenario.play, exitStatus == 0 { return .ran }
        if let denied = actions.first(where: { $0.hasPrefix("denied") }) { return .prevented(denied) }
        if let refused = refusals.first(where: { scenario.guardedSyscalls.contains($0.syscall) }) {
            return .prevented("\(refused.syscall) returned \(refused.errnoName) (seen by the sensor)")
        }
        if let killed = actions.first(where: { $0.hasPrefix("killed") }) { return .killed(killed) }
        if exitStatus == 0 { return .ran }
        guard scenario.runsInContainer else { return .didNotRun(result.isEmpty ? "exit \(exitStatus)" : result) }
        switch exitStatus {
        case 124: return .didNotRun("timed out (exit 124)")
        case 125: return .didNotRun("docker exec failed (exit 125)")
        case 126: return .didNotRun("a command could not be executed (exit 126)")
        case 127: return .didNotRun("a tool is missing (exit 127: command not found)")
        case 129...192: return .didNotRun("ended by signal \(exitStatus - 128), not by enforcement (exit \(exitStatus))")
        default:
            let errno = result.hasPrefix("blocked (") ? String(result.dropFirst("blocked (".count).dropLast()) : ""
            let printed = errno.isEmpty || errno.hasPrefix("exit") ? "" : " (it printed \(errno))"
            return .didNotRun("exit \(exitStatus) and no refusal observed\(printed)")
        }
    }
}
