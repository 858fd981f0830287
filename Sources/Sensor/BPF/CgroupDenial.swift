import CLibbpf
import Foundation

/// Refusal of socket calls by the cgroup programs of sensor.bpf.c (`cgroup/connect4`, ...):
/// where they attach, which programs a set of kill patterns needs, and what happened at start.
///
/// The programs are attached with links (`bpf_program__attach_cgroup`) to the root of the
/// cgroup v2 hierarchy, so every cgroup below it (every container's) inherits them and they
/// filter by scope, cgroup and mount namespace themselves. A link is a file descriptor of the
/// sensor's: when the sensor exits, however it exits (`kill -9` included), the kernel closes
/// it and detaches the program; nothing is pinned.
public struct CgroupDenial: Sendable, Equatable {
    /// The cgroup v2 root the programs were attached to (nil when none were wanted or they failed).
    public var root: String?
    /// The programs attached.
    public var programs: [String]
    /// Why the programs could not attach (their patterns are then killed at the syscall's entry), or nil.
    public var failure: String?

    public init(root: String? = nil, programs: [String] = [], failure: String? = nil) {
        self.root = root
        self.programs = programs
        self.failure = failure
    }

    /// One line for the operator.
    public var summary: String {
        if let failure {
            return "cgroup programs did not attach (\(failure)): their calls are killed after the syscall (kernel)"
        }
        guard let root else { return "no cgroup program needed" }
        return "refused with EPERM by \(programs.joined(separator: ", ")) on \(root)"
    }

    /// The cgroup programs `patterns` need, in a stable order.
    public static func programs(for patterns: [KillPattern]) -> [String] {
        Set(patterns.flatMap(\.cgroupPrograms)).sorted()
    }

    /// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a v2 system,
    /// /sys/fs/cgroup/unified on a hybrid one; nil when it is not mounted.
    public static func v2Root(mountInfo: String? = nil) -> String? {
        let text = mountInfo ?? (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        var found: [String] = []
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count > 4, halves[1].split(separator: " ").first == "cgroup2" else { continue }
            found.append(String(fields[4]))
        }
        // The shortest mount point: the host's root, not a bind mount of a sub-tree below it.
        return found.min { $0.count < $1.count }
    }
}

extension CgroupDenial {
    /// The hooks the sensor's programs use, by the program name for each.
    static let hooks: [(program: String, type: bpf_attach_type)] = [
        ("cgroup_connect4", BPF_CGROUP_INET4_CONNECT), ("cgroup_connect6", BPF_CGROUP_INET6_CONNECT),
        ("cgroup_bind4", BPF_CGROUP_INET4_BIND), ("cgroup_bind6", BPF_CGROUP_INET6_BIND),
        ("cgroup_sendmsg4", BPF_CGROUP_UDP4_SENDMSG), ("cgroup_sendmsg6", BPF_CGROUP_UDP6_SENDMSG),
    ]

    /// The names of the programs attached to those hooks at the cgroup `root` now (any loader's,
    /// with the kernel's 15-byte names): what a stopped or killed sensor must not leave behind.
    public static func attachedPrograms(root: String) throws -> [String] {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw BPFError(operation: "open cgroup \(root)", errno: errno) }
        defer { close(fd) }
        var names: [String] = []
        for hook in hooks {
            var ids = [UInt32](repeating: 0, count: 64)
            var count = UInt32(ids.count)
            var flags: UInt32 = 0
            try bpfCall("query \(hook.program)'s hook on \(root)") {
                bpf_prog_query(fd, hook.type, 0, &flags, &ids, &count)
            }
            for id in ids.prefix(Int(count)) {
                let program = bpf_prog_get_fd_by_id(id)
                guard program >= 0 else { continue }  // detached meanwhile
                defer { close(program) }
                var info = bpf_prog_info()
                var length = UInt32(MemoryLayout<bpf_prog_info>.size)
                guard bpf_obj_get_info_by_fd(program, &info, &length) == 0 else { continue }
                names.append(withUnsafeBytes(of: info.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
            }
        }
        return names
    }
}

/// The cgroup programs could not attach; the sensor loads again with those patterns killed at entry.
struct CgroupAttachFailure: Error, CustomStringConvertible {
    let description: String
}

extension SensorProgram {
    /// Attaches each program to the cgroup at `path` with a link (destroyed with this object).
    func attachCgroup(programs names: [String], to path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw BPFError(operation: "open cgroup \(path)", errno: errno) }
        defer { close(fd) }
        for name in names {
            let program = try program(name)
            let link = try bpfCall("attach \(name) to cgroup \(path)") { bpf_program__attach_cgroup(program, fd) }
            keep(link)
        }
    }
}
