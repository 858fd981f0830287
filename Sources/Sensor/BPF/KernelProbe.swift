import CLibbpf
import Foundation

/// Whether this kernel lets the sensor use the attach types it would prefer for security
/// events (BPF-LSM, fentry) and for refusing socket calls (`cgroup`: a `cgroup/connect4`
/// program on the cgroup v2 root). Each probe really loads and attaches an empty program
/// (probe.bpf.c).
public struct KernelProbe: Sendable {
    public struct Result: Sendable {
        public let name: String
        public let available: Bool
        /// Why not, when not (the kernel's errno).
        public let reason: String
    }

    public let results: [Result]

    /// Loads each probe program on its own; a refusal is a result, not an error.
    public static func run(objectPath: String? = nil) -> KernelProbe {
        SensorProgram.quietLibbpf()
        let path = objectPath ?? Bundle.module.url(forResource: "probe.bpf", withExtension: "o")?.path ?? ""
        let probes = [("BPF-LSM", "probe_lsm"), ("fentry", "probe_fentry"), ("cgroup", "probe_cgroup_connect4")]
        return KernelProbe(
            results: probes.map { name, program in
                do {
                    let object = try SensorProgram(objectPath: path)
                    try object.selectOnly(program)
                    try object.load()
                    if name == "cgroup" {
                        // An allow-everything program on the cgroup v2 root, detached when `object` goes.
                        guard let root = CgroupDenial.v2Root() else {
                            return Result(name: name, available: false, reason: "no cgroup v2 hierarchy mounted")
                        }
                        try object.attachCgroup(programs: [program], to: root)
                    } else {
                        try object.attach(programs: [program])
                    }
                    return Result(name: name, available: true, reason: "")
                } catch let error as BPFError {
                    return Result(name: name, available: false, reason: String(cString: strerror(error.errno)))
                } catch {
                    return Result(name: name, available: false, reason: "\(error)")
                }
            })
    }

    /// Whether the probe of that name loaded and attached.
    public func allows(_ name: String) -> Bool { results.contains { $0.name == name && $0.available } }

    /// What this kernel allows, for `caduceus trace --probe`.
    public var summary: String {
        results.map { "\($0.name): \($0.available ? "available" : "refused (\($0.reason))")" }.joined(separator: ", ")
    }
}
