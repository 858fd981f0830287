import CLibbpf
import Foundation
import SensorBPF

/// One thing the kernel kills a process for (an `action: kill` rule simple enough to be
/// decided in the kernel): see `sensor_kill_pattern` in sensor.h and `enforce()` in sensor.bpf.c.
public struct KillPattern: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// Any call of `syscall` (checked at its entry).
        case syscall = 0
        /// An open-family `syscall` of a path as the caller passed it (at entry, before any read).
        case openPath = 1
        /// An exec of a file by its resolved path (sched_process_exec, before the new image runs).
        case execPath = 2
        /// An exec by the new process name (comm).
        case execName = 3
        /// A connect, bind, sendto or sendmsg (`syscall`) to `address` (4 bytes IPv4, 16 IPv6):
        /// refused by the cgroup programs where they attached (`refusedInCgroup`), else killed
        /// at the syscall's entry.
        case connectAddress = 4
    }

    /// The socket calls the cgroup programs can refuse (connect, bind, sendto, sendmsg).
    public static let socketCalls: Set<Int32> = [
        SyscallNumber.connect, SyscallNumber.bind, SyscallNumber.sendto, SyscallNumber.sendmsg,
    ]

    /// Longest text the kernel compares.
    public static let maxText = Int(SENSOR_KILL_TEXT_LEN) - 1
    /// Most patterns the kernel holds.
    public static let maxPatterns = Int(SENSOR_MAX_KILL_PATTERNS)

    public var kind: Kind
    /// Syscall number, for `.syscall` and `.openPath`.
    public var syscall: Int32
    public var text: String
    /// `text` is a prefix rather than the whole string.
    public var prefix: Bool
    /// Only processes outside the host's mount namespace.
    public var containersOnly: Bool
    /// Reported back in the killed process's records (`TraceEvent.killedBySlot`).
    public var slot: UInt8
    /// For `.connectAddress`: the address's bytes in network order (`text` is its text form).
    public var address: [UInt8] = []
    /// Set by the sensor when every program of `cgroupPrograms` attached: the call is refused
    /// with EPERM before it runs, and not killed for at its entry (an any-call pattern still kills
    /// for calls of other socket families, AF_UNIX say, which those programs do not see).
    public var refusedInCgroup = false

    /// The cgroup programs (sensor.bpf.c) that refuse this pattern's calls; empty when none can.
    /// An IPv4 address needs the IPv6 program too (an IPv4-mapped ::ffff:a.b.c.d reaches it).
    /// Any connect or bind: both families. A send to an address: sendmsg4/6, and connect4/6 for
    /// a UDP socket connected to it (its send(2) reaches no hook). Any sendto or sendmsg: none (a
    /// TCP send or a send on a connected UDP socket never reaches sendmsg4/6).
    public var cgroupPrograms: [String] {
        let bases: [String]
        switch syscall {
        case SyscallNumber.connect: bases = ["cgroup_connect"]
        case SyscallNumber.bind: bases = ["cgroup_bind"]
        case SyscallNumber.sendto where kind == .connectAddress, SyscallNumber.sendmsg where kind == .connectAddress:
            bases = ["cgroup_sendmsg", "cgroup_connect"]
        default: return []
        }
        switch kind {
        case .connectAddress: return bases.flatMap { address.count == 16 ? [$0 + "6"] : [$0 + "4", $0 + "6"] }
        case .syscall: return bases.flatMap { [$0 + "4", $0 + "6"] }
        default: return []
        }
    }

    public init(
        kind: Kind, syscall: Int32 = 0, text: String = "", prefix: Bool = false, containersOnly: Bool = false,
        slot: UInt8 = 0
    ) {
        self.kind = kind
        self.syscall = syscall
        self.text = text
        self.prefix = prefix
        self.containersOnly = containersOnly
        self.slot = slot
    }

    /// A connect to an IPv4 or IPv6 address in text form; nil when it is not one.
    public static func connect(to text: String, syscall: Int32 = SyscallNumber.connect, containersOnly: Bool = false)
        -> KillPattern?
    {
        var v4 = in_addr()
        var v6 = in6_addr()
        var bytes: [UInt8]
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
        var pattern = KillPattern(kind: .connectAddress, syscall: syscall, text: text, containersOnly: containersOnly)
        pattern.address = bytes
        return pattern
    }

    public var description: String {
        let name = EventTable.definition(id: syscall)?.name ?? String(syscall)
        let match = text.isEmpty ? "" : (prefix ? " startswith \(text)" : " = \(text)")
        let scope = containersOnly ? " in containers" : ""
        switch kind {
        case .syscall: return "\(name)\(scope)"
        case .openPath: return "\(name) path\(match)\(scope)"
        case .execPath: return "exec path\(match)\(scope)"
        case .execName: return "exec name\(match)\(scope)"
        case .connectAddress: return "\(name) \(syscall == SyscallNumber.bind ? "of" : "to") \(text)\(scope)"
        }
    }

    var record: sensor_kill_pattern {
        var value = sensor_kill_pattern()
        value.nr = UInt32(bitPattern: syscall)
        value.kind = kind.rawValue
        // An address is compared byte for byte over its length: a "prefix" with no NUL after it.
        let binary = kind == .connectAddress
        value.flags =
            (prefix || binary ? UInt8(SENSOR_KILL_PREFIX) : 0) | (containersOnly ? UInt8(SENSOR_KILL_CONTAINERS) : 0)
            | (refusedInCgroup ? UInt8(SENSOR_KILL_CGROUP) : 0)
        let bytes = binary ? address : Array(text.utf8.prefix(Self.maxText))
        value.length = UInt16(bytes.count)
        value.rule = UInt32(slot)
        withUnsafeMutableBytes(of: &value.text) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return value
    }
}

/// A learned profile's executables, enforced in the kernel (`detect --profile` with PROFILE-EXEC
/// enforced): in the profiled containers' cgroups, an exec of a file whose resolved path is not
/// listed is killed at `sched_process_exec`, before the new image runs an instruction. See
/// `enforce_exec_allow_list()` in sensor.bpf.c.
public struct ExecAllowList: Sendable, Equatable {
    /// Longest path the kernel compares (longer ones cannot be listed).
    public static let maxPathBytes = Int(SENSOR_EXEC_ALLOW_PATH_LEN) - 1
    /// Most paths the kernel holds.
    public static let maxPaths = Int(SENSOR_MAX_EXEC_ALLOW)
    /// The slot a process killed for an exec outside the list reports (`TraceEvent.killedBySlot`).
    public static let slot = UInt8(SENSOR_KILL_SLOT_EXEC_ALLOW)

    /// Resolved paths, as `sched_process_exec`'s `pathname` shows them.
    public var paths: [String]
    /// Containers enforced in (name, id or id prefix), resolved to cgroups at start.
    public var containers: [String]
    /// Also every running container of this image, at start.
    public var image: String?

    public init(paths: [String], containers: [String] = [], image: String? = nil) {
        self.paths = paths
        self.containers = containers
        self.image = image
    }

    /// Whether the kernel can hold this list: at most `maxPaths` paths of at most `maxPathBytes` bytes.
    public var fitsTheKernel: Bool {
        paths.count <= Self.maxPaths && paths.allSatisfy { !$0.isEmpty && $0.utf8.count <= Self.maxPathBytes }
    }

    /// One map key: the path's bytes, NUL-padded to the kernel's key size.
    static func key(_ path: String) -> [UInt8] {
        var bytes = Array(path.utf8.prefix(maxPathBytes))
        bytes += [UInt8](repeating: 0, count: Int(SENSOR_EXEC_ALLOW_PATH_LEN) - bytes.count)
        return bytes
    }
}

extension TraceEvent {
    /// The rule slot of the kill pattern the kernel killed this event's process for, or nil.
    public var killedBySlot: UInt8? {
        enforcementFlags & UInt32(SENSOR_EVENT_KILLED) != 0 ? UInt8(truncatingIfNeeded: enforcementFlags >> 8) : nil
    }

    /// The rule slot of the pattern a cgroup program refused this very call for (EPERM, before
    /// it ran), or nil.
    public var deniedBySlot: UInt8? {
        enforcementFlags & UInt32(SENSOR_EVENT_DENIED) != 0 ? UInt8(truncatingIfNeeded: enforcementFlags >> 16) : nil
    }
}
