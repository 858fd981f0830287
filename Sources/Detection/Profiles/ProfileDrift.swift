import Foundation
import Sensor

/// Alerts on a profiled container doing something its `ContainerProfile` does not list: an
/// exec, a write outside the write prefixes, a connect, a listen, a syscall (beyond the
/// profile's and `ContainerProfile.seccompBaseline`, what its seccomp profile allows) or a capability.
/// Containers are matched by name (`containerName`), else by the profile's image. Each
/// distinct deviation alerts once per container, except those of the kinds in `everyTime`
/// (enforced ones: each offending process must be killed, not only the first).
///
/// Not thread-safe: call `check` from the thread that runs the engine, after the engine has seen
/// the event (so the process table knows an exec's new program); `startRound(at:)` may be
/// called from any thread.
public final class ProfileDriftDetector {
    public let profile: ContainerProfile
    public let containerName: String?
    private let state: SystemState
    private let executables: Set<String>
    private let ports: Set<Int>
    private let connects: Set<String>
    private let syscalls: Set<String>
    private let capabilities: Set<String>
    private var raised: Set<String> = []
    public private(set) var alertCount: UInt64 = 0
    /// Rule ids (`PROFILE-EXEC`, ...) whose deviations alert every time they occur.
    public let everyTime: Set<String>
    /// Times (ns since the epoch) from which deviations alert afresh (`startRound(at:)`).
    private var rounds: [UInt64] = []
    private let roundsLock = NSLock()

    /// The rule ids drift alerts carry, one per kind.
    public static let ruleIds = [
        "PROFILE-EXEC", "PROFILE-WRITE", "PROFILE-CONNECT", "PROFILE-LISTEN", "PROFILE-SYSCALL", "PROFILE-CAPABILITY",
    ]

    /// The event names the sensor must send for the checks.
    public static var requiredEvents: Set<String> { ProfileObservation.eventNames }

    public init(
        profile: ContainerProfile, containerName: String? = nil, state: SystemState, everyTime: Set<String> = []
    ) {
        self.profile = profile
        self.containerName = containerName
        self.state = state
        self.everyTime = everyTime
        executables = Set(profile.executables)
        ports = Set(profile.listenPorts)
        connects = Set(profile.connectEndpoints)
        // What the profile's seccomp profile allows: the baseline too (clock_nanosleep in a timer
        // thread that slept once in a while is no intruder, and seccomp would not stop it).
        syscalls = Set(profile.syscalls).union(ContainerProfile.seccompBaseline)
        capabilities = Set(profile.capabilities)
    }

    /// Whether the event comes from a container this profile is for.
    public func applies(to event: TraceEvent) -> Bool {
        guard !event.containerId.isEmpty, let info = event.container else { return false }
        if let containerName {
            return info.name == containerName || info.name == "/" + containerName || info.id.hasPrefix(containerName)
        }
        return info.image == profile.image
    }

    /// Deviations of events from `timestamp` on (ns since the epoch, as `TraceEvent.timestamp`)
    /// alert again even if they did before: the attack lab starts one per scenario, so that each
    /// scenario's row shows all of its own drift. By event time, so that events of an earlier
    /// round still waiting to be read count in theirs.
    public func startRound(at timestamp: UInt64) {
        roundsLock.lock()
        defer { roundsLock.unlock() }
        rounds.append(timestamp)
        rounds.sort()
    }

    private func round(of timestamp: UInt64) -> Int {
        roundsLock.lock()
        defer { roundsLock.unlock() }
        return rounds.lastIndex { $0 <= timestamp }.map { $0 + 1 } ?? 0
    }

    /// Checks one event; `raise` gets an alert for each deviation not alerted in its container
    /// (and round) before, and for every deviation of the `everyTime` kinds.
    public func check(_ event: TraceEvent, raise: (Alert) -> Void) {
        guard applies(to: event) else { return }
        for observation in ProfileObservation.of(event) {
            guard let (kind, entry, message, priority) = deviation(observation) else { continue }
            let key = "\(round(of: event.timestamp))\u{0}" + event.containerId + "\u{0}" + kind + "\u{0}" + entry
            guard raised.insert(key).inserted || everyTime.contains("PROFILE-" + kind) else { continue }
            alertCount += 1
            raise(alert(event, kind: kind, message: message, priority: priority))
        }
    }

    private func deviation(_ observation: ProfileObservation) -> (String, String, String, RulePriority)? {
        switch observation {
        case .exec(let path):
            return executables.contains(path)
                ? nil : ("EXEC", path, "exec of \(path) not in profile executables", .error)
        case .read: return nil
        case .write(let path):
            return ContainerProfile.covers(profile.writePaths, path)
                ? nil : ("WRITE", path, "write open of \(path) outside profile files.write", .warning)
        case .connect(let endpoint):
            return connects.contains(endpoint)
                ? nil : ("CONNECT", endpoint, "connect to \(endpoint) not in profile network.connect", .error)
        case .listen(let port):
            return ports.contains(port)
                ? nil : ("LISTEN", String(port), "listen on port \(port) not in profile network.listen", .warning)
        case .syscall(let name):
            return syscalls.contains(name)
                ? nil : ("SYSCALL", name, "syscall \(name) not in profile syscalls", .warning)
        case .capability(let name):
            return capabilities.contains(name)
                ? nil : ("CAPABILITY", name, "capability \(name) not in profile capabilities", .warning)
        }
    }

    private func alert(_ event: TraceEvent, kind: String, message: String, priority: RulePriority) -> Alert {
        let info = event.container
        let container = Alert.Container(id: event.containerId, name: info?.name ?? "", image: info?.image ?? "")
        let record = state.process(pid: event.hostProcessId)
        let process =
            record.map { Alert.Process($0, uid: event.userId, user: state.userName(uid: event.userId, process: $0)) }
            ?? Alert.Process(
                pid: event.hostProcessId, vpid: event.processId, name: event.processName, exepath: "", cmdline: "",
                uid: event.userId, user: nil, tty: nil)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let place = container.name.isEmpty ? String(container.id.prefix(12)) : container.name
        return Alert(
            ruleId: "PROFILE-" + kind, rule: "Container profile drift (\(kind.lowercased()))",
            priority: priority.rawValue,
            output:
                "\(message) (container \(place), image \(container.image), process \(process.name) pid \(process.pid) exe \(process.exepath))",
            time: EventView.rfc3339(event.timestamp), timestamp: event.timestamp,
            raisedAt: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec), mitre: [], tags: ["profile", "drift"],
            container: container, process: process,
            ancestors: record.map { state.ancestors(of: $0).map { Alert.Process($0, uid: nil, user: nil) } } ?? [],
            events: [event])
    }
}
