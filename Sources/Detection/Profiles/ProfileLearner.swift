import Foundation
import Sensor

/// What one event means for a profile: the entry it adds (learning) or must find (drift).
enum ProfileObservation: Equatable {
    case exec(String)
    case read(String)
    case write(String)
    case connect(String)
    case listen(Int)
    case syscall(String)
    case capability(String)

    /// The sensor events a profile is learned and checked from: every syscall, exec, opens
    /// with their flags, connect, bind, listen and capability checks (fork and exit keep the
    /// process table right).
    static let eventNames: Set<String> = {
        var names: Set<String> = [
            "sched_process_fork", "sched_process_exec", "sched_process_exit", "security_file_open",
            "security_socket_connect",
            "security_socket_bind", "security_socket_listen", "cap_capable",
        ]
        names.formUnion(EventTable.all.filter { $0.id < 1000 }.map(\.name))
        return names
    }()

    /// Nothing from the runtime's own set-up of a process (runc's init, named `runc:[N:INIT]`,
    /// before it execs the container's program): it is the same for every image.
    static func of(_ event: TraceEvent) -> [ProfileObservation] {
        if event.processName.hasPrefix("runc:[") { return [] }
        switch event.eventName {
        case "sched_process_exec":
            let path = event[argument: "pathname"]?.string ?? event[argument: "cmdpath"]?.string ?? ""
            return path.isEmpty ? [] : [.exec(path)]
        case "security_file_open":
            guard let path = event[argument: "pathname"]?.string, path.hasPrefix("/") else { return [] }
            let flags = event[argument: "flags"]?.integer ?? 0
            // O_WRONLY, O_RDWR; O_CREAT, O_TRUNC, O_APPEND.
            let writes = flags & 3 != 0 || flags & (0o100 | 0o1000 | 0o2000) != 0
            return [writes ? .write(path) : .read(path)]
        case "security_socket_connect":
            return endpoint(event[argument: "remote_addr"]).map { [.connect($0)] } ?? []
        case "security_socket_listen", "security_socket_bind":
            guard let address = event[argument: "local_addr"],
                let port = Int(address.field("sin_port") ?? address.field("sin6_port") ?? ""), port != 0
            else { return [] }
            return [.listen(port)]
        case "cap_capable":
            guard let cap = event[argument: "cap"]?.integer else { return [] }
            return [.capability(ArgumentSymbols.capabilities[cap] ?? "CAP_\(cap)")]
        default:
            if let definition = EventTable.definition(named: event.eventName), definition.id < 1000 {
                return [.syscall(event.eventName)]
            }
            return []
        }
    }

    /// `a.b.c.d:port`, `[v6]:port`, or a Unix socket's path; nil for other families.
    static func endpoint(_ address: ArgumentValue?) -> String? {
        guard let address else { return nil }
        switch address.field("sa_family") {
        case "AF_INET": return "\(address.field("sin_addr") ?? ""):\(address.field("sin_port") ?? "")"
        case "AF_INET6": return "[\(address.field("sin6_addr") ?? "")]:\(address.field("sin6_port") ?? "")"
        case "AF_UNIX":
            let path = address.field("sun_path") ?? ""
            return path.isEmpty ? nil : path
        default: return nil
        }
    }
}

/// Learns a `ContainerProfile` from the events of the containers it is given: by name, every
/// container of an image, or (without either) every container, the profile taking the image of
/// the first one seen.
///
/// Not thread-safe: feed it from the thread that reads the events.
public final class ProfileLearner {
    public let containerName: String?
    /// With it, every container of this image (`name` or `name:tag`, `:latest` implied) is learned from.
    public let imageName: String?
    public private(set) var image = ""
    public private(set) var events: UInt64 = 0
    private var executables: Set<String> = []
    private var reads: Set<String> = []
    private var writes: Set<String> = []
    private var connects: Set<String> = []
    private var ports: Set<Int> = []
    private var syscalls: Set<String> = []
    private var capabilities: Set<String> = []
    private let started = Date()

    /// The event names the sensor must send.
    public static var requiredEvents: Set<String> { ProfileObservation.eventNames }

    public init(containerName: String? = nil, imageName: String? = nil) {
        self.containerName = containerName
        self.imageName = imageName
    }

    /// Whether `image` (as the container runtime names it) is `imageName`.
    static func sameImage(_ image: String, _ imageName: String) -> Bool {
        func full(_ name: String) -> String {
            name.split(separator: "/").last?.contains(":") == true ? name : name + ":latest"
        }
        return full(image) == full(imageName)
    }

    /// Learns from one event (ignored unless it is from the profiled container).
    public func observe(_ event: TraceEvent) {
        guard !event.containerId.isEmpty else { return }
        if let containerName {
            guard let info = event.container,
                info.name == containerName || info.name == "/" + containerName || info.id.hasPrefix(containerName)
            else { return }
        }
        if let imageName {
            guard let info = event.container, Self.sameImage(info.image, imageName) else { return }
        }
        if image.isEmpty, let name = event.container?.image, !name.isEmpty { image = name }
        events += 1
        for observation in ProfileObservation.of(event) {
            switch observation {
            case .exec(let path): executables.insert(path)
            case .read(let path): reads.insert(path)
            case .write(let path): writes.insert(path)
            case .connect(let endpoint): connects.insert(endpoint)
            case .listen(let port): ports.insert(port)
            case .syscall(let name): syscalls.insert(name)
            case .capability(let name): capabilities.insert(name)
            }
        }
    }

    /// The profile so far.
    public func profile(duration: Double? = nil) -> ContainerProfile {
        ContainerProfile(
            image: image, recordedAt: ISO8601DateFormatter().string(from: started),
            duration: duration ?? Date().timeIntervalSince(started), events: events, executables: Array(executables),
            readPaths: Self.collapse(reads), writePaths: Self.collapse(writes), listenPorts: Array(ports),
            connectEndpoints: Array(connects), syscalls: Array(syscalls), capabilities: Array(capabilities))
    }

    /// Files to prefixes: a file under /etc stays exact; anything under /proc becomes `/proc/`
    /// (process ids differ from run to run); any other file becomes its directory (`/data/`).
    /// Entries covered by a shorter directory are dropped.
    public static func collapse<S: Sequence>(_ paths: S) -> [String] where S.Element == String {
        var entries: Set<String> = []
        for path in paths {
            if path.hasPrefix("/proc/") {
                entries.insert("/proc/")
            } else if path.hasPrefix("/etc/") {
                entries.insert(path)
            } else if let slash = path.lastIndex(of: "/") {
                entries.insert(String(path[...slash]))
            }
        }
        return dropCovered(entries)
    }

    /// The entries not covered by another, shorter directory entry among them, sorted and unique.
    static func dropCovered<S: Sequence>(_ entries: S) -> [String] where S.Element == String {
        let unique = Set(entries)
        let directories = unique.filter { $0.hasSuffix("/") }
        return unique.filter { entry in
            !directories.contains { $0 != entry && entry.hasPrefix($0) }
        }.sorted()
    }
}
