import Foundation
import LabReport

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
    public static func isRefusal(_ returnValue: Int64) -> Bool {
        returnValue == -Int64(EPERM) || returnValue == -Int64(EACCES)
    }

    /// "EPERM" or "EACCES".
    public var errnoName: String { returnValue == -Int64(EACCES) ? "EACCES" : "EPERM" }
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
        case 129...192:
            return .didNotRun("ended by signal \(exitStatus - 128), not by enforcement (exit \(exitStatus))")
        default:
            let errno = result.hasPrefix("blocked (") ? String(result.dropFirst("blocked (".count).dropLast()) : ""
            let printed = errno.isEmpty || errno.hasPrefix("exit") ? "" : " (it printed \(errno))"
            return .didNotRun("exit \(exitStatus) and no refusal observed\(printed)")
        }
    }
}
