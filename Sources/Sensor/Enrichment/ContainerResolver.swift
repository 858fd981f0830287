import Foundation

/// A container as events show it: the full id from the cgroup path, and the name and
/// image the Docker Engine reports (empty when no engine answers).
public struct ContainerInfo: Sendable, Equatable, Encodable {
    public let id: String
    public var name: String
    public var image: String
    public var imageDigest: String
    /// Started with --privileged; nil when no engine answered.
    public var privileged: Bool?
    /// When the container started, ns since the epoch; nil when unknown.
    public var startTime: UInt64?
    public var mounts: [Mount] = []
    /// The Kubernetes pod and namespace from the io.kubernetes.pod.* labels; nil outside Kubernetes.
    public var podName: String?
    public var podNamespace: String?

    /// Encoded as Tracee's container object, as `JSONEventWriter` writes it; the inspect details
    /// above serve the rules only.
    enum CodingKeys: String, CodingKey { case id, name, image, imageDigest }

    /// One mount as the engine reports it.
    public struct Mount: Sendable, Equatable, Encodable {
        public var source: String
        public var destination: String
        public var mode: String
        public var readWrite: Bool
        public var propagation: String

        public init(
            source: String, destination: String, mode: String = "", readWrite: Bool = true, propagation: String = ""
        ) {
            self.source = source
            self.destination = destination
            self.mode = mode
            self.readWrite = readWrite
            self.propagation = propagation
        }
    }

    public init(id: String, name: String = "", image: String = "", imageDigest: String = "") {
        self.id = id
        self.name = name
        self.image = image
        self.imageDigest = imageDigest
    }
}

/// The cgroup hierarchy whose ids the kernel reports: cgroup v2, or one v1 subsystem's.
public struct CgroupHierarchy: Sendable {
    public let root: String
    public let isV1: Bool
    /// Index of the v1 subsystem in the kernel's list (/proc/cgroups order).
    public let subsystemIndex: Int

    public init(root: String, isV1: Bool, subsystemIndex: Int) {
        self.root = root
        self.isV1 = isV1
        self.subsystemIndex = subsystemIndex
    }

    /// v2 when /sys/fs/cgroup is cgroup2; otherwise the first mounted v1 subsystem.
    public static func detect() -> CgroupHierarchy {
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        var v1: [String: String] = [:]  // subsystem -> mount point
        for line in mounts.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            let tail = halves[1].split(separator: " ")
            guard fields.count > 4, tail.count >= 3 else { continue }
            let mountPoint = String(fields[4])
            if tail[0] == "cgroup2" && mountPoint == "/sys/fs/cgroup" {
                return CgroupHierarchy(root: mountPoint, isV1: false, subsystemIndex: 0)
            }
            if tail[0] == "cgroup" {
                for option in tail[2].split(separator: ",") { v1[String(option)] = mountPoint }
            }
        }
        let table = (try? String(contentsOfFile: "/proc/cgroups", encoding: .utf8)) ?? ""
        let names = table.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
            String($0.split(separator: "\t").first ?? "")
        }
        for (index, name) in names.enumerated() where index < 16 {
            if let root = v1[name] { return CgroupHierarchy(root: root, isV1: true, subsystemIndex: index) }
        }
        return CgroupHierarchy(root: "/sys/fs/cgroup", isV1: false, subsystemIndex: 0)
    }
}

/// Maps the cgroup id in each record to a container, caching every answer: cgroup ids are
/// never reused, so a cached miss stays right. Called on the reading thread only.
public final class ContainerResolver: @unchecked Sendable {
    public let hierarchy: CgroupHierarchy
    private var paths: [UInt64: String] = [:]
    private var containers: [UInt64: ContainerInfo?] = [:]
    private var engineAnswers: [String: ContainerInfo] = [:]
    private let engine = DockerEngineClient()
    /// Cgroups seen created by the watcher thread, for containers that are gone (and their
    /// cgroup directories with them) by the time the reader gets to their events.
    private let watcher: CgroupWatcher?

    public init(hierarchy: CgroupHierarchy = .detect(), watch: Bool = false) {
        self.hierarchy = hierarchy
        watcher = watch ? CgroupWatcher(root: hierarchy.root) : nil
    }

    /// The container a cgroup belongs to, or nil for host processes.
    public func container(cgroupID: UInt64) -> ContainerInfo? {
        if let known = containers[cgroupID] { return known }
        if paths[cgroupID] == nil, let seen = watcher?.path(of: cgroupID) {
            paths[cgroupID] = String(seen.dropFirst(hierarchy.root.count))
        }
        if paths[cgroupID] == nil { rescan() }
        let info = paths[cgroupID].flatMap(Self.containerID(fromCgroupPath:)).map(describe)
        containers[cgroupID] = info
        return info
    }

    /// The container of a process from its cgroups (procfs, which the kernel writes, not the
    /// container's files); nil for the host or a process gone.
    public static func containerID(ofProcess pid: Int32) -> String? {
        guard let bytes = ContainerFile.readKernelFile("/proc/\(pid)/cgroup", limit: 64 * 1024) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if let id = containerID(fromCgroupPath: String(line)) { return id }
        }
        return nil
    }

    /// The full container id in a cgroup path (Docker, containerd, CRI-O, Podman forms): the
    /// outermost component that names one, which the runtime made. A container given its own
    /// cgroup subtree (a writable cgroupfs, `--cgroupns=private` with delegation) can make
    /// directories below it named like another container's; those never decide.
    public static func containerID(fromCgroupPath path: String) -> String? {
        for component in path.split(separator: "/") {
            var name = Substring(component)
            if name.hasSuffix(".scope") { name = name.dropLast(6) }
            for prefix in ["docker-", "cri-containerd-", "crio-", "libpod-"] where name.hasPrefix(prefix) {
                name = name.dropFirst(prefix.count)
            }
            if name.count == 64 && name.allSatisfy(\.isHexDigit) { return String(name) }
        }
        return nil
    }

    /// The cgroup ids of one container (its directory and any below it), by id, id prefix or name.
    public func cgroupIDs(ofContainer reference: String) throws -> [UInt64] {
        rescan()
        let fullID: String
        if let inspected = engine.inspect(reference) {
            fullID = inspected.id
        } else {
            let matches = Set(
                paths.values.compactMap(Self.containerID(fromCgroupPath:)).filter { $0.hasPrefix(reference) })
            guard matches.count == 1, let only = matches.first else {
                throw SensorConfigurationError(
                    description: matches.isEmpty
                        ? "no running container is named '\(reference)' or has an id starting with it"
                        : "'\(reference)' matches \(matches.count) containers: give more of the id")
            }
            fullID = only
        }
        let ids = paths.filter { Self.containerID(fromCgroupPath: $0.value) == fullID }.map(\.key)
        guard !ids.isEmpty else {
            throw SensorConfigurationError(description: "container \(fullID) has no cgroup under \(hierarchy.root)")
        }
        return ids.sorted()
    }

    private func describe(_ id: String) -> ContainerInfo {
        if let known = engineAnswers[id] { return known }
        let info = engine.inspect(id) ?? ContainerInfo(id: id, name: "", image: "", imageDigest: "")
        engineAnswers[id] = info
        return info
    }

    /// Full ids of the running containers of `image` (as the engine names it, `name:tag`).
    public func runningContainers(image: String) -> [String] {
        rescan()
        let ids = Set(paths.values.compactMap(Self.containerID(fromCgroupPath:)))
        return ids.filter { describe($0).image == image }.sorted()
    }

    /// Walks the hierarchy once, recording every directory's inode (= cgroup id).
    private func rescan() {
        var pending = [hierarchy.root]
        while let directory = pending.popLast() {
            guard let handle = opendir(directory) else { continue }
            defer { closedir(handle) }
            var info = stat()
            if stat(directory, &info) == 0 {
                paths[UInt64(info.st_ino)] = String(directory.dropFirst(hierarchy.root.count))
            }
            while let entry = readdir(handle) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                pending.append(directory + "/" + name)
            }
        }
    }
}

/// Watches the cgroup hierarchy's top two levels with inotify and records the inode (the
/// cgroup id) of every directory created there, at once, on its own thread: a container
/// that lives a few milliseconds has removed its cgroup before a busy reader looks it up.
final class CgroupWatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var created: [UInt64: String] = [:]
    private let fd: Int32
    private let root: String
    private var watched: [Int32: String] = [:]

    init?(root: String) {
        self.root = root
        fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        watch(root)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            var info = stat()
            let path = root + "/" + name
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { watch(path) }
        }
        Thread.detachNewThread { [self] in readEvents() }
    }

    func path(of cgroupID: UInt64) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return created[cgroupID]
    }

    private func watch(_ path: String) {
        let descriptor = inotify_add_watch(fd, path, UInt32(IN_CREATE))
        if descriptor >= 0 {
            lock.lock()
            watched[descriptor] = path
            lock.unlock()
        }
    }

    private func readEvents() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 {
                if count < 0 && errno == EINTR { continue }
                return
            }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let (descriptor, mask, length) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (event.wd, event.mask, Int(event.len))
                }
                let nameStart = offset + MemoryLayout<inotify_event>.size
                let name = String(
                    decoding: buffer[nameStart..<min(nameStart + length, count)].prefix { $0 != 0 }, as: UTF8.self)
                offset = nameStart + length
                guard mask & UInt32(IN_ISDIR) != 0 else { continue }
                lock.lock()
                let parent = watched[descriptor]
                lock.unlock()
                guard let parent else { continue }
                let path = parent + "/" + name
                var info = stat()
                guard stat(path, &info) == 0 else { continue }
                if parent == root { watch(path) }  // a runtime's first container makes its directory
                lock.lock()
                if created.count >= 65536 { created.removeAll() }
                created[UInt64(info.st_ino)] = path
                lock.unlock()
            }
        }
    }
}
