import CLibbpf
import Foundation
import Synchronization

/// A fanotify call failed; `errno` is kept with what was being done.
public struct FanotifyError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public var description: String {
        let hint = errno == EPERM ? ". fanotify permission events need CAP_SYS_ADMIN." : ""
        return "\(operation): \(String(cString: strerror(errno))) (errno \(errno))\(hint)"
    }
}

/// Runs a call that returns -1 and sets `errno` on failure: every failing C call of the guard goes through here.
@discardableResult
func fanotifyCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws -> Int32 {
    let result = body()
    if result < 0 { throw FanotifyError(operation: operation(), errno: errno) }
    return result
}

/// The answer to a permission event.
public enum FanotifyVerdict: String, Sendable, CaseIterable {
    case allow, deny
}

/// One open or exec waiting for its answer, as the guard describes it to the verdict.
public struct FanotifyAccess: Sendable, Equatable {
    /// The caller's host process id (thread-group id).
    public var pid: Int32
    /// The file as the caller's mount namespace names it (`readlink /proc/self/fd/N` of the
    /// event's descriptor: a container's `/tmp/victim`, not its overlay directory on the host),
    /// symlinks resolved.
    public var path: String
    /// An exec (`FAN_OPEN_EXEC_PERM`), not an open (`FAN_OPEN_PERM`).
    public var isExec: Bool
    /// The caller's container (from `/proc/<pid>/cgroup`, which the caller cannot write); nil: the host.
    public var containerID: String?
    /// The guarded container whose root file system holds the file (a file on one of its other
    /// mounts: the caller's guarded container), with the engine's name and image.
    public var fileSystemOf: ContainerInfo?
    /// When the event was read, nanoseconds since the epoch.
    public var time: UInt64

    public init(
        pid: Int32, path: String, isExec: Bool, containerID: String?, fileSystemOf: ContainerInfo? = nil,
        time: UInt64 = 0
    ) {
        self.pid = pid
        self.path = path
        self.isExec = isExec
        self.containerID = containerID
        self.fileSystemOf = fileSystemOf
        self.time = time
    }
}

/// How the guard behaves when the verdict is slow or the queue is full.
public struct FanotifyGuardOptions: Sendable {
    /// How long an open or exec waits for its verdict, from the moment the guard reads it,
    /// before `timeoutVerdict` answers it (events not yet read wait in the kernel, unanswered).
    public var timeoutMilliseconds = 250
    /// The answer when the verdict is late, for a path some rule could refuse (any other path
    /// is allowed: no rule names it).
    ///
    /// Default `.deny` (fail closed): only the paths the enforced rules name are refused while
    /// the sensor is starved or flooded, which is what the operator asked to protect; every other
    /// open and exec is allowed, so the clinical service keeps running. `.allow` would let a
    /// container that floods a guarded path with opens get some of them through (a red-team
    /// pass emptied the guarded file that way). `--fanotify-timeout-verdict allow` trades the
    /// guarantee for those paths' availability: a late match is then killed from user space
    /// after the call.
    public var timeoutVerdict: FanotifyVerdict = .deny
    /// Most events read and not yet answered; more are left in the kernel's queue until room is made.
    public var maxPending = 256
    /// How often running containers are looked for (a container started after the guard is
    /// marked at the next look; until then its opens are not refused).
    public var rescanMilliseconds = 100

    public init(timeoutMilliseconds: Int = 250, timeoutVerdict: FanotifyVerdict = .deny, maxPending: Int = 256) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.timeoutVerdict = timeoutVerdict
        self.maxPending = maxPending
    }
}

/// Why an event got its answer.
public enum FanotifyAnswerReason: String, Sendable {
    /// The verdict closure decided in time.
    case verdict
    /// The deadline passed first: `timeoutVerdict`.
    case timeout
    /// `maxPending` events were waiting: `timeoutVerdict`.
    case overflow
    /// The guard's own process: always allowed, at once.
    case ownProcess
}

/// What the guard did so far.
public struct FanotifyStatistics: Sendable, Equatable {
    public var allowed = 0
    public var denied = 0
    public var timedOut = 0
    public var overflowed = 0
    /// Verdicts that came after the deadline had answered.
    public var late = 0
    /// Containers whose file systems were marked.
    public var marked = 0
}

/// Refuses opens and execs in containers before they complete: `FAN_OPEN_PERM` and
/// `FAN_OPEN_EXEC_PERM` marked on each running container's root file system (its overlayfs
/// superblock, `FAN_MARK_FILESYSTEM` on `/proc/<pid>/root`; `FAN_MARK_MOUNT` where the file
/// system cannot be marked) and a mount mark on each of its other mounts (bind mounts,
/// volumes, tmpfs), answered `FAN_ALLOW` or `FAN_DENY` from a verdict closure.
///
/// What a refusal stops: the open's O_TRUNC and every byte written through it (the truncation
/// comes after the permission event); an exec before the new program's first instruction. Not
/// an O_CREAT of a new file: it is created (empty) before the open's permission event.
///
/// Never hangs the host: the host's root file system is never marked (a root on the host's
/// device is refused); the guard's own opens are allowed before any verdict; every event has a
/// deadline and the number waiting is bounded; `stop()` (or the process's death, `kill -9`
/// included) closes the fanotify descriptor, which removes every mark and allows what waits.
///
/// Threads (none from the Swift cooperative pool): one reads events and decides them in
/// order (describes the access, calls `verdict`, answers): no hand-over between threads on
/// the path of every open; a watchdog answers what passed its deadline, and while a verdict
/// is stuck past the deadline it reads and answers the queue itself; one looks for new containers.
public final class FanotifyGuard: @unchecked Sendable {
    public let options: FanotifyGuardOptions
    private let fd: Int32
    /// A pipe whose write end ends the reader's poll at stop().
    private let wake: (read: Int32, write: Int32)
    private let verdict: @Sendable (FanotifyAccess) -> FanotifyVerdict
    private let couldDeny: @Sendable (_ path: String, _ isExec: Bool) -> Bool
    private let answered: @Sendable (FanotifyAccess, FanotifyVerdict, FanotifyAnswerReason) -> Void
    private let shouldGuard: @Sendable (ContainerInfo) -> Bool
    private let ownPid = getpid()
    private let hostRootDevices: Set<UInt64>
    private let hierarchy = CgroupHierarchy.detect()
    /// Monotonic ns since the reader started deciding an event (0: not deciding).
    private let decidingSince = Atomic<UInt64>(0)
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchGroup()

    private let lock = NSLock()
    /// Events read and not answered: descriptor -> (sequence number, deadline in monotonic ns).
    private var pending: [Int32: (sequence: UInt64, deadline: UInt64, isExec: Bool)] = [:]
    private var sequence: UInt64 = 0
    private var counters = FanotifyStatistics()
    /// Marked root file systems (device) -> the container.
    private var markedDevices: [UInt64: ContainerInfo] = [:]
    private var markedContainers: Set<String> = []
    /// Guarded containers by id.
    private var knownContainers: [String: ContainerInfo] = [:]

    /// Whether this process may create a fanotify group of the permission class (root with
    /// CAP_SYS_ADMIN, a kernel with FANOTIFY_ACCESS_PERMISSIONS); the group is closed at once.
    public static func probe() -> (available: Bool, reason: String) {
        let fd = fanotify_init(UInt32(FAN_CLASS_CONTENT | FAN_CLOEXEC), UInt32(O_RDONLY | largeFile | O_CLOEXEC))
        guard fd >= 0 else { return (false, String(cString: strerror(errno))) }
        close(fd)
        return (true, "")
    }

    /// Opens the fanotify group and marks the running containers `shouldGuard` accepts; the
    /// threads start at once. An access whose path `couldDeny` rules out is allowed at once
    /// (no look at the caller's cgroup, no `verdict`): the path of nearly every open.
    /// `verdict` is called on the guard's reader thread, one event at a time; `answered`
    /// after each answer was written (never before: it cannot delay the call), on the reader
    /// (a verdict, an overflow) or the watchdog (a timeout).
    public init(
        options: FanotifyGuardOptions = FanotifyGuardOptions(),
        shouldGuard: @escaping @Sendable (ContainerInfo) -> Bool = { _ in true },
        couldDeny: @escaping @Sendable (_ path: String, _ isExec: Bool) -> Bool = { _, _ in true },
        verdict: @escaping @Sendable (FanotifyAccess) -> FanotifyVerdict,
        answered: @escaping @Sendable (FanotifyAccess, FanotifyVerdict, FanotifyAnswerReason) -> Void = { _, _, _ in }
    ) throws {
        self.options = options
        self.verdict = verdict
        self.couldDeny = couldDeny
        self.answered = answered
        self.shouldGuard = shouldGuard
        fd = try fanotifyCall("fanotify_init(FAN_CLASS_CONTENT)") {
            fanotify_init(
                UInt32(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK), UInt32(O_RDONLY | Self.largeFile | O_CLOEXEC))
        }
        var ends: [Int32] = [-1, -1]
        do {
            try fanotifyCall("pipe") { pipe(&ends) }
        } catch {
            close(fd)
            throw error
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        wake = (ends[0], ends[1])
        var devices: Set<UInt64> = []
        for path in ["/", "/proc/1/root", "/proc/self/root"] {
            var info = stat()
            if stat(path, &info) == 0 { devices.insert(UInt64(info.st_dev)) }
        }
        hostRootDevices = devices
        markRunningContainers()
        finished.enter()
        Thread.detachNewThread { [self] in
            readEvents()
            finished.leave()
        }
        finished.enter()
        Thread.detachNewThread { [self] in
            watch()
            finished.leave()
        }
        finished.enter()
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                usleep(UInt32(max(options.rescanMilliseconds, 10)) * 1000)
                if !stopped.load(ordering: .relaxed) { markRunningContainers() }
            }
            finished.leave()
        }
    }

    deinit { stop() }

    /// Removes every mark and answers what waits (closing the group allows it); returns when
    /// the threads have ended. Safe to call more than once, from any thread.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)
        finished.wait()
        lock.lock()
        for (descriptor, _) in pending { respond(descriptor, options.timeoutVerdict) }
        pending.removeAll()
        lock.unlock()
        close(fd)
        close(wake.read)
        close(wake.write)
    }

    public var statistics: FanotifyStatistics {
        lock.lock()
        defer { lock.unlock() }
        return counters
    }

    /// The containers whose root file system is marked.
    public var guardedContainers: [ContainerInfo] {
        lock.lock()
        defer { lock.unlock() }
        return markedDevices.values.sorted { $0.id < $1.id }
    }

    // MARK: - Marking

    /// Marks the root file system of every running container not marked yet (and accepted
    /// by `shouldGuard`). A container whose first process has not entered its root yet (its
    /// root is still the host's) is tried again at the next look.
    public func markRunningContainers() {
        var directories = [hierarchy.root]
        var depth = [0]
        while let directory = directories.popLast(), let level = depth.popLast() {
            if let id = ContainerResolver.containerID(fromCgroupPath: directory) {
                lock.lock()
                let known = markedContainers.contains(id)
                lock.unlock()
                if !known { mark(container: id, cgroupDirectory: directory) }
                continue
            }
            guard level < 6, let handle = opendir(directory) else { continue }
            while let entry = readdir(handle) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                directories.append(directory + "/" + name)
                depth.append(level + 1)
            }
            closedir(handle)
        }
    }

    private func mark(container id: String, cgroupDirectory: String) {
        let pids = (Self.readKernelFile(cgroupDirectory + "/cgroup.procs") ?? "").split(separator: "\n").compactMap {
            Int32($0)
        }
        guard let pid = pids.first(where: { $0 != ownPid }) else { return }
        let root = "/proc/\(pid)/root"
        var info = stat()
        guard stat(root, &info) == 0 else { return }
        let device = UInt64(info.st_dev)
        // Still the host's root (runc has not entered the container's yet), or a container
        // sharing the host's file system: never marked.
        if hostRootDevices.contains(device) { return }
        let container = DockerEngineClient().inspect(id) ?? ContainerInfo(id: id)
        guard shouldGuard(container) else {
            lock.lock()
            markedContainers.insert(id)  // looked at once: not ours
            lock.unlock()
            return
        }
        // Marked again even when the device is known: an anonymous device number (overlayfs)
        // is reused once a container's file system is gone, and its marks went with it.
        let mask = UInt64(FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)
        let marked =
            fanotify_mark(fd, UInt32(FAN_MARK_ADD | FAN_MARK_FILESYSTEM), mask, AT_FDCWD, root) == 0
            || fanotify_mark(fd, UInt32(FAN_MARK_ADD | FAN_MARK_MOUNT), mask, AT_FDCWD, root) == 0
        guard marked else { return }  // gone, or not markable: tried again at the next look
        lock.lock()
        markedDevices[device] = container
        knownContainers[id] = container
        counters.marked += 1
        markedContainers.insert(id)
        lock.unlock()
        markMounts(pid: pid, rootDevice: device)
    }

    /// File systems whose opens are the kernel's business, not a file's: not marked.
    static let pseudoFileSystems: Set<String> = [
        "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs", "tracefs", "bpf", "configfs",
        "pstore", "fusectl", "binfmt_misc", "autofs", "nsfs",
    ]

    /// Marks the container's other mounts (the engine's bind mounts of /etc/hosts,
    /// /etc/hostname and /etc/resolv.conf, volumes, tmpfs such as /dev/shm) with mount marks:
    /// a mount mark covers that mount of the container's namespace only, never the host's view of
    /// the same file system. Each mount point is reached from the container's root one component
    /// at a time without following a symlink, and marked only if the descriptor's mount is the
    /// one mountinfo lists (a container cannot steer the mark onto another mount).
    private func markMounts(pid: Int32, rootDevice: UInt64) {
        guard let table = Self.readKernelFile("/proc/\(pid)/mountinfo", limit: 512 * 1024) else { return }
        let mask = UInt64(FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)
        for line in table.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            let type = halves[1].split(separator: " ").first.map(String.init) ?? ""
            guard fields.count >= 5, let mountID = Int(fields[0]) else { continue }
            let point = String(fields[4])
            let numbers = fields[2].split(separator: ":").compactMap { UInt64($0) }
            let device = numbers.count == 2 ? Self.device(major: numbers[0], minor: numbers[1]) : 0
            // The root's file system is marked whole; mount points with escaped characters are skipped.
            guard point != "/", point.hasPrefix("/"), !point.contains("\\"), device != rootDevice,
                !Self.pseudoFileSystems.contains(type)
            else { continue }
            guard let object = Self.openInRoot(pid: pid, path: point) else { continue }
            defer { close(object) }
            guard Self.mountID(of: object) == mountID else { continue }
            // Through the descriptor's magic link (fanotify_mark takes no O_PATH descriptor alone):
            // it names the object opened above, whatever the container has put at the path since.
            _ = fanotify_mark(fd, UInt32(FAN_MARK_ADD | FAN_MARK_MOUNT), mask, AT_FDCWD, "/proc/self/fd/\(object)")
        }
    }

    /// An O_PATH descriptor of `path` inside the process's root, no symlink followed on the way.
    static func openInRoot(pid: Int32, path: String) -> Int32? {
        var current = ContainerFile.openRoot("/proc/\(pid)/root")
        guard current >= 0 else { return nil }
        for component in path.split(separator: "/") {
            guard component != "..", component != "." else {
                close(current)
                return nil
            }
            let next = openat(current, String(component), ContainerFile.oPath | O_NOFOLLOW | O_CLOEXEC)
            close(current)
            guard next >= 0 else { return nil }
            current = next
        }
        return current
    }

    /// The mount id of a descriptor's mount (`mnt_id` in its fdinfo; by pid: the reader follows no symlink, /proc/self is one).
    static func mountID(of descriptor: Int32) -> Int? {
        guard let info = readKernelFile("/proc/\(getpid())/fdinfo/\(descriptor)", limit: 4096) else { return nil }
        let line = info.split(separator: "\n").first { $0.hasPrefix("mnt_id:") }
        return line.flatMap { Int($0.dropFirst(7).trimmingCharacters(in: .whitespaces)) }
    }

    // MARK: - Events

    private func readEvents() {
        var buffer = [UInt8](repeating: 0, count: options.maxPending * MemoryLayout<fanotify_event_metadata>.size)
        while !stopped.load(ordering: .relaxed) {
            var descriptors = [
                pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
            ]
            _ = poll(&descriptors, 2, 100)
            if stopped.load(ordering: .relaxed) { break }
            // No more than `maxPending` events are read and unanswered: the rest wait in the
            // kernel, their callers blocked, and none is answered without a look at its path
            // (a container flooding opens of other files once pushed guarded ones past the bound).
            lock.lock()
            let room = options.maxPending - pending.count
            lock.unlock()
            if room <= 0 {
                usleep(1000)
                continue
            }
            let events = readBatch(&buffer, limit: room)
            // Every event of the batch gets its deadline before the first is decided.
            var admitted: [(event: fanotify_event_metadata, sequence: UInt64)] = []
            lock.lock()
            let deadline = Self.monotonicNanoseconds() + UInt64(options.timeoutMilliseconds) * 1_000_000
            var overflowed = 0
            for event in events {
                if event.pid == ownPid {
                    respond(event.fd, .allow)
                } else if pending.count >= options.maxPending {
                    counters.overflowed += 1
                    overflowed += 1
                    respond(event.fd, lateAnswer(event.fd, isExec: Self.isExec(event)))
                } else {
                    sequence &+= 1
                    pending[event.fd] = (sequence, deadline, Self.isExec(event))
                    admitted.append((event, sequence))
                }
            }
            lock.unlock()
            for _ in 0..<overflowed {
                answered(
                    FanotifyAccess(pid: 0, path: "", isExec: false, containerID: nil), options.timeoutVerdict, .overflow
                )
            }
            for (event, number) in admitted { decide(event, number) }
        }
    }

    static func isExec(_ event: fanotify_event_metadata) -> Bool { event.mask & UInt64(FAN_OPEN_EXEC_PERM) != 0 }

    /// The answer to an event no verdict was made for in time: `allow` when no rule could
    /// refuse its path (nearly every open: a flood of them must not carry a guarded one
    /// through), else the operator's `timeoutVerdict`.
    private func lateAnswer(_ descriptor: Int32, isExec: Bool) -> FanotifyVerdict {
        couldDeny(Self.path(of: descriptor), isExec) ? options.timeoutVerdict : .allow
    }

    /// The events one read returns (none on EAGAIN); events without a descriptor (a queue
    /// overflow notice) are left out.
    private func readBatch(_ buffer: inout [UInt8], limit: Int) -> [fanotify_event_metadata] {
        let metadataSize = MemoryLayout<fanotify_event_metadata>.size
        // Events without info records are `metadataSize` bytes each: the read takes `limit` at most.
        let size = min(buffer.count, max(1, limit) * metadataSize)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, size) }
        guard count > 0 else { return [] }
        var events: [fanotify_event_metadata] = []
        var offset = 0
        while offset + metadataSize <= count {
            let event = buffer.withUnsafeBytes {
                $0.loadUnaligned(fromByteOffset: offset, as: fanotify_event_metadata.self)
            }
            guard event.event_len >= metadataSize, offset + Int(event.event_len) <= count else { break }
            offset += Int(event.event_len)
            if event.vers == FANOTIFY_METADATA_VERSION && event.fd >= 0 { events.append(event) }
        }
        return events
    }

    /// Describes, decides and answers one admitted event, unless the watchdog answered it first.
    private func decide(_ event: fanotify_event_metadata, _ number: UInt64) {
        lock.lock()
        let waiting = pending[event.fd]?.sequence == number
        lock.unlock()
        guard waiting else { return }  // answered at its deadline while an earlier one was decided
        decidingSince.store(Self.monotonicNanoseconds(), ordering: .relaxed)
        let isExec = Self.isExec(event)
        let path = Self.path(of: event.fd)
        let access: FanotifyAccess
        let decision: FanotifyVerdict
        if couldDeny(path, isExec) {
            access = describe(descriptor: event.fd, path: path, pid: event.pid, isExec: isExec)
            decision = verdict(access)
        } else {
            access = FanotifyAccess(pid: event.pid, path: path, isExec: isExec, containerID: nil)
            decision = .allow
        }
        decidingSince.store(0, ordering: .relaxed)
        lock.lock()
        let current = pending[event.fd]?.sequence == number
        if current {
            pending[event.fd] = nil
            respond(event.fd, decision)
        } else {
            counters.late += 1
        }
        lock.unlock()
        if current { answered(access, decision, .verdict) }
    }

    /// Writes the answer, counts it and closes the event's descriptor. Called with `lock` held
    /// (the descriptor's number is free for reuse only after this).
    private func respond(_ descriptor: Int32, _ answer: FanotifyVerdict) {
        var response = fanotify_response(fd: descriptor, response: UInt32(answer == .allow ? FAN_ALLOW : FAN_DENY))
        _ = write(fd, &response, MemoryLayout<fanotify_response>.size)
        close(descriptor)
        if answer == .allow { counters.allowed += 1 } else { counters.denied += 1 }
    }

    /// The watchdog: answers overdue events with `timeoutVerdict`; while the reader has been
    /// deciding one event for longer than the deadline, empties the queue the same way (the
    /// events the reader has not read yet have waited as long).
    private func watch() {
        let timeout = UInt64(options.timeoutMilliseconds) * 1_000_000
        var buffer = [UInt8](repeating: 0, count: options.maxPending * MemoryLayout<fanotify_event_metadata>.size)
        while !stopped.load(ordering: .relaxed) {
            var descriptors = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 1, Int32(nextTimeout()))
            if stopped.load(ordering: .relaxed) { break }
            let now = Self.monotonicNanoseconds()
            lock.lock()
            let overdue = pending.filter { $0.value.deadline <= now }.map { ($0.key, $0.value.isExec) }
            for (descriptor, isExec) in overdue {
                pending[descriptor] = nil
                counters.timedOut += 1
                respond(descriptor, lateAnswer(descriptor, isExec: isExec))
            }
            lock.unlock()
            var stuck = 0
            let since = decidingSince.load(ordering: .relaxed)
            if since != 0 && now > since && now - since > timeout {
                let events = readBatch(&buffer, limit: options.maxPending)
                lock.lock()
                for event in events {
                    if event.pid == ownPid {
                        respond(event.fd, .allow)
                    } else {
                        counters.timedOut += 1
                        stuck += 1
                        respond(event.fd, lateAnswer(event.fd, isExec: Self.isExec(event)))
                    }
                }
                lock.unlock()
            }
            for _ in 0..<(overdue.count + stuck) {
                answered(
                    FanotifyAccess(pid: 0, path: "", isExec: false, containerID: nil), options.timeoutVerdict, .timeout)
            }
        }
    }

    /// Milliseconds until the watchdog looks again: the earliest deadline, and at most a fifth
    /// of the timeout (a verdict stuck past it is noticed that late at worst).
    private func nextTimeout() -> Int {
        let step = max(1, min(100, options.timeoutMilliseconds / 5))
        lock.lock()
        defer { lock.unlock() }
        guard let earliest = pending.values.map(\.deadline).min() else { return step }
        let now = Self.monotonicNanoseconds()
        return earliest <= now ? 0 : min(step, Int((earliest - now) / 1_000_000) + 1)
    }

    /// The access of one event: its file's path and file system, the caller's container.
    private func describe(descriptor: Int32, path: String, pid: Int32, isExec: Bool) -> FanotifyAccess {
        var info = stat()
        let device = fstat(descriptor, &info) == 0 ? UInt64(info.st_dev) : nil
        let caller = ContainerResolver.containerID(ofProcess: pid)
        lock.lock()
        let owner = device.flatMap { markedDevices[$0] } ?? caller.flatMap { knownContainers[$0] }
        lock.unlock()
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return FanotifyAccess(
            pid: pid, path: path, isExec: isExec, containerID: caller, fileSystemOf: owner,
            time: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec))
    }

    /// The path of an event's descriptor as the caller's mount namespace names it; "" if unreadable.
    static func path(of descriptor: Int32) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(PATH_MAX) + 1) { buffer in
            let length = buffer.withMemoryRebound(to: CChar.self) {
                readlink("/proc/self/fd/\(descriptor)", $0.baseAddress!, $0.count - 1)
            }
            return length > 0 ? String(decoding: UnsafeBufferPointer(rebasing: buffer[..<length]), as: UTF8.self) : ""
        }
    }

    /// A file the kernel writes (procfs, cgroupfs), read on this thread with a cap.
    static func readKernelFile(_ path: String, limit: Int = 64 * 1024) -> String? {
        ContainerFile.readKernelFile(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// glibc's `makedev`, as `st_dev` holds it.
    static func device(major: UInt64, minor: UInt64) -> UInt64 {
        ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
    }

    /// The kernel's O_LARGEFILE (Glibc's is 0 on 64-bit machines, where the kernel sets it anyway).
    static let largeFile: Int32 = 0o100000

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
