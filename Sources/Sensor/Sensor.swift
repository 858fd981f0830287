import CLibbpf
import Foundation
import SensorBPF
import Synchronization

/// Which processes a trace covers, chosen in the kernel.
public enum TraceScope: Sendable, Equatable {
    /// Every process on the machine.
    case all
    /// Processes in the host's mount namespace.
    case host
    /// Processes in any other mount namespace (containers).
    case containers
    /// Containers started after the trace began.
    case newContainers
    /// One container, by full id, unique id prefix or name (resolved through its cgroup).
    case container(String)
}

/// Everything a trace needs to start.
public struct SensorConfiguration: Sendable {
    public var scope: TraceScope = .containers
    public var events: EventSelection = .default
    /// Only these host process ids (thread-group ids).
    public var pids: [Int32] = []
    /// Only these process names (`comm`, at most 15 bytes).
    public var comms: [String] = []
    /// Only these user ids.
    public var uids: [UInt32] = []
    /// Bytes of ring buffer shared by all CPUs: a power of two, at least a page.
    public var ringBufferBytes = 64 << 20
    /// Wake the reader only once this many bytes wait in the ring buffer (0: at every event).
    /// Batching spares the traced tasks a wakeup per event; records then wait up to the
    /// reader's poll interval (`pollMilliseconds`). For capture, not for low-latency detection.
    public var wakeupBytes: UInt32 = 0
    /// How long the reader sleeps between polls when no wakeup comes.
    public var pollMilliseconds: Int32 = 100
    /// The compiled BPF object; by default the one built into this package.
    public var objectPath: String?
    /// What the kernel kills processes for (enforcement of `action: kill` rules); empty, the
    /// default, loads no enforcement program and kills nothing.
    public var killPatterns: [KillPattern] = []
    /// Kill only in these containers (id, id prefix or name, resolved to cgroups at start);
    /// empty: wherever a pattern matches. Limits `execAllowList` too.
    public var killContainers: [String] = []
    /// A learned profile's executables, enforced in the kernel in its containers; nil, the
    /// default, kills nothing for an exec.
    public var execAllowList: ExecAllowList?
    /// Where the cgroup programs that refuse kill patterns' socket calls attach; nil, the
    /// default: the root of the cgroup v2 hierarchy. Where they cannot attach, those patterns
    /// are killed at the syscall's entry instead (`Sensor.cgroupDenial` says why).
    public var cgroupRoot: String?
    /// False: no cgroup program is loaded and socket calls of kill patterns are killed at the
    /// syscall's entry (`detect --no-cgroup-denial`, and `bench prevent`'s kill mode).
    public var refusesSocketCalls = true

    public init() {}
}

/// A user asked for something the sensor cannot do; the message says what to change.
public struct SensorConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// The sensor: loads the BPF programs for a configuration and hands every record to a
/// handler on the calling thread until `stop()` is called.
///
/// The handler gets records in place (`RawEvent`), so decoding allocates nothing unless
/// the handler asks for a `TraceEvent`.
public final class Sensor: @unchecked Sendable {
    public let configuration: SensorConfiguration
    /// Nanoseconds to add to a record's boot-clock timestamp to get time since the epoch.
    public let bootTimeOffset: UInt64
    /// Container ids and names for cgroup ids.
    public let containers: ContainerResolver
    private(set) var program: SensorProgram!
    /// The cgroups enforcement is limited to (`killContainers` resolved), kept current by `run`.
    private var killCgroups: Set<UInt64> = []
    private let stopped = Atomic<Bool>(false)

    /// Opens, configures, loads and attaches; throws with the reason when any step fails.
    public init(configuration: SensorConfiguration) throws {
        self.configuration = configuration
        let bytes = configuration.ringBufferBytes
        guard bytes >= 4096, bytes & (bytes - 1) == 0 else {
            throw SensorConfigurationError(
                description: "ring buffer size \(bytes) must be a power of two of at least 4096 bytes")
        }
        containers = ContainerResolver(watch: true)
        bootTimeOffset = Self.bootTimeOffset()
        let path = try configuration.objectPath ?? Self.bundledObjectPath()
        SensorProgram.quietLibbpf()

        var config = sensor_config()
        config.sensor_tgid = UInt32(getpid())
        // The host's mount namespace: init's, or kthreadd's where init's is not readable (some
        // VMs' init; a sensor in a container sharing the host's pid namespace), own as a last resort.
        config.host_mnt_ns = UInt32(
            truncatingIfNeeded:
                Self.namespaceInode("/proc/1/ns/mnt") ?? Self.namespaceInode("/proc/2/ns/mnt") ?? Self.namespaceInode(
                    "/proc/self/ns/mnt") ?? 0)
        config.cgroup_v1 = containers.hierarchy.isV1 ? 1 : 0
        config.wakeup_bytes = min(configuration.wakeupBytes, UInt32(configuration.ringBufferBytes / 4))
        config.cgroup_v1_subsys = UInt32(containers.hierarchy.subsystemIndex)
        var filters: UInt32 = 0
        var cgroupIDs: [UInt64] = []
        switch configuration.scope {
        case .all: config.scope = SENSOR_SCOPE_ALL.rawValue
        case .host: config.scope = SENSOR_SCOPE_HOST.rawValue
        case .containers: config.scope = SENSOR_SCOPE_CONTAINERS.rawValue
        case .newContainers: config.scope = SENSOR_SCOPE_NEW_CONTAINERS.rawValue
        case .container(let reference):
            config.scope = SENSOR_SCOPE_ALL.rawValue
            cgroupIDs = try containers.cgroupIDs(ofContainer: reference)
            filters |= UInt32(SENSOR_FILTER_CGROUP)
            // Few enough to compare in the program (config is constant to it); else the map only.
            if cgroupIDs.count <= Int(SENSOR_MAX_FILTER_CGROUPS) {
                config.filter_cgroup_count = UInt32(cgroupIDs.count)
                withUnsafeMutableBytes(of: &config.filter_cgroups) { raw in
                    for (index, id) in cgroupIDs.enumerated() {
                        raw.storeBytes(of: id, toByteOffset: index * 8, as: UInt64.self)
                    }
                }
            }
        }
        if !configuration.pids.isEmpty { filters |= UInt32(SENSOR_FILTER_PID) }
        if !configuration.comms.isEmpty { filters |= UInt32(SENSOR_FILTER_COMM) }
        if !configuration.uids.isEmpty { filters |= UInt32(SENSOR_FILTER_UID) }
        config.filters = filters
        guard configuration.killPatterns.count <= KillPattern.maxPatterns else {
            throw SensorConfigurationError(
                description:
                    "\(configuration.killPatterns.count) kill patterns: the kernel holds at most \(KillPattern.maxPatterns)"
            )
        }
        config.kill_patterns = UInt32(configuration.killPatterns.count)
        var killCgroupIDs: [UInt64] = []
        if !configuration.killPatterns.isEmpty && !configuration.killContainers.isEmpty {
            config.kill_cgroups = 1
            for reference in configuration.killContainers {
                killCgroupIDs += try containers.cgroupIDs(ofContainer: reference)
            }
        }
        var execAllowCgroupIDs: [UInt64] = []
        if let allow = configuration.execAllowList {
            guard allow.fitsTheKernel else {
                throw SensorConfigurationError(
                    description:
                        "the exec allow list holds at most \(ExecAllowList.maxPaths) paths of 1 to \(ExecAllowList.maxPathBytes) bytes"
                )
            }
            let resolver = containers
            let references = allow.containers + (allow.image.map { resolver.runningContainers(image: $0) } ?? [])
            // A container not running yet is not covered here (its exec drift is killed from user space).
            for reference in references {
                execAllowCgroupIDs += (try? containers.cgroupIDs(ofContainer: reference)) ?? []
            }
            if !configuration.killContainers.isEmpty {
                var limit: Set<UInt64> = []
                for reference in configuration.killContainers {
                    limit.formUnion((try? containers.cgroupIDs(ofContainer: reference)) ?? [])
                }
                execAllowCgroupIDs = execAllowCgroupIDs.filter(limit.contains)
            }
            config.exec_allow = execAllowCgroupIDs.isEmpty ? 0 : 1
        }
        execAllowCgroups = execAllowCgroupIDs.count

        // Security events from BPF-LSM where the kernel allows it; if it then refuses the
        // real programs, the same object is loaded again with the tracepoint-derived ones.
        let probe = KernelProbe.run()
        let lsmEvents = configuration.events.ids.intersection(EventTable.lsmPrograms.keys)
        var attempt = probe.allows("BPF-LSM") && !lsmEvents.isEmpty
        // Socket calls of kill patterns are refused by cgroup programs; where they cannot attach,
        // the same object is loaded again with those patterns killed at the syscall's entry.
        let cgroupPrograms = CgroupDenial.programs(for: configuration.killPatterns)
        var cgroupRoot =
            cgroupPrograms.isEmpty || !configuration.refusesSocketCalls
            ? nil : configuration.cgroupRoot ?? CgroupDenial.v2Root()
        var denial = CgroupDenial()
        if !cgroupPrograms.isEmpty && cgroupRoot == nil {
            denial.failure = configuration.refusesSocketCalls ? "no cgroup v2 hierarchy is mounted" : "turned off"
        }
        while true {
            do {
                (program, enforcedPatterns) = try Self.load(
                    path: path, config: config, useLSM: attempt, cgroupRoot: cgroupRoot, configuration: configuration,
                    filters: (cgroupIDs, config.host_mnt_ns), killCgroupIDs: killCgroupIDs,
                    execAllowCgroupIDs: execAllowCgroupIDs)
                securityEventSource =
                    attempt
                    ? "security_* events come from BPF-LSM hooks"
                    : "security_* events come from syscall and sched tracepoints (see README, Event sources); this kernel: "
                        + probe.summary
                if let cgroupRoot { denial = CgroupDenial(root: cgroupRoot, programs: cgroupPrograms) }
                break
            } catch let failure as CgroupAttachFailure where cgroupRoot != nil {
                denial.failure = failure.description
                cgroupRoot = nil
            } catch  where attempt {
                attempt = false
            }
        }
        cgroupDenial = denial
        killCgroups = Set(killCgroupIDs)
    }

    /// Resolves `killContainers` again and brings the kernel's `kill_cgroup` map up to date: a
    /// named container that restarted has new cgroups, which the cgroup programs and the kill
    /// patterns must cover (a red-team pass found its connects no longer refused after a
    /// restart). A container not running now keeps its entries until it is seen again.
    private func refreshKillCgroups() {
        var current: Set<UInt64> = []
        for reference in configuration.killContainers {
            guard let ids = try? containers.cgroupIDs(ofContainer: reference) else { return }
            current.formUnion(ids)
        }
        for id in current.subtracting(killCgroups) { try? program.insert(id, into: "kill_cgroup") }
        for id in killCgroups.subtracting(current) { try? program.remove(id, from: "kill_cgroup") }
        killCgroups = current
    }

    /// Whether and where the cgroup programs refuse the kill patterns' socket calls.
    public let cgroupDenial: CgroupDenial
    /// The kill patterns as the kernel holds them: `refusedInCgroup` set on those the cgroup
    /// programs refuse (their calls are not killed at entry).
    public private(set) var enforcedPatterns: [KillPattern] = []

    /// Where the security_* events of this trace come from, and why.
    public let securityEventSource: String
    /// Cgroups the exec allow list is enforced in (0: none, the allow list is off).
    public let execAllowCgroups: Int

    /// Open, configure, load, fill the filter maps, attach: one try with or without BPF-LSM.
    private static func load(
        path: String, config: sensor_config, useLSM: Bool, cgroupRoot: String?, configuration: SensorConfiguration,
        filters: (cgroupIDs: [UInt64], hostMountNamespace: UInt32), killCgroupIDs: [UInt64],
        execAllowCgroupIDs: [UInt64]
    ) throws -> (SensorProgram, [KillPattern]) {
        let program = try SensorProgram(objectPath: path)
        let plan = SensorLoadPlan(
            configuration: configuration, config: config, useLSM: useLSM, refusesInCgroup: cgroupRoot != nil)
        let (config, programs, kills, cgroupPrograms) = (plan.config, plan.programs, plan.kills, plan.cgroupPrograms)
        try program.configure(config, ringBufferBytes: configuration.ringBufferBytes, programs: programs)
        try program.load()
        for pid in configuration.pids { try program.insert(UInt32(bitPattern: pid), into: "pid_filter") }
        for uid in configuration.uids { try program.insert(uid, into: "uid_filter") }
        for cgroup in filters.cgroupIDs { try program.insert(cgroup, into: "cgroup_filter") }
        for cgroup in killCgroupIDs { try program.insert(cgroup, into: "kill_cgroup") }
        for (index, pattern) in kills.enumerated() {
            try program.set(UInt32(index), pattern.record, in: "kill_patterns")
        }
        if config.exec_allow != 0, let allow = configuration.execAllowList {
            for cgroup in execAllowCgroupIDs { try program.insert(cgroup, into: "exec_allow_cgroup") }
            for path in allow.paths { try program.insert(keyBytes: ExecAllowList.key(path), into: "exec_allow") }
        }
        for comm in configuration.comms {
            var key = (0 as UInt64, 0 as UInt64)  // 16 bytes, NUL-padded like the kernel's comm
            withUnsafeMutableBytes(of: &key) { raw in
                for (index, byte) in comm.utf8.prefix(15).enumerated() { raw[index] = byte }
            }
            try program.insert(key, into: "comm_filter")
        }
        if configuration.scope == .newContainers {
            for namespace in runningMountNamespaces() where namespace != UInt64(filters.hostMountNamespace) {
                try program.insert(UInt32(truncatingIfNeeded: namespace), into: "old_mnt_ns")
            }
        }
        if let cgroupRoot, !cgroupPrograms.isEmpty {
            do {
                try program.attachCgroup(programs: cgroupPrograms, to: cgroupRoot)
            } catch {
                throw CgroupAttachFailure(description: "\(error)")
            }
        }
        try program.attach(programs: programs.subtracting(cgroupPrograms))
        return (program, kills)
    }

    /// Records handled between two looks at `stop()`: libbpf reads the ring until it finds it
    /// empty, which a container issuing syscalls faster than the handler takes them can put off
    /// for as long as it likes; the handler ends each pass after this many records instead.
    static let recordsBetweenStopChecks = 1 << 16
    /// What the handler returns to end a pass early (never an error of epoll_wait).
    static let passEnded = -ECANCELED

    /// Polls the ring buffer, calling `handler` for each record, until `stop()`, and
    /// `afterPass` after each pass over the ring (at least every `pollMilliseconds`).
    /// Runs on the calling thread; returns the kernel's counters at the end.
    @discardableResult
    public func run(_ handler: @escaping (RawEvent) -> Void, afterPass: () -> Void = {}) throws -> SensorStatistics {
        let box = Unmanaged.passRetained(HandlerBox(handler, budget: Self.recordsBetweenStopChecks))
        defer { box.release() }
        let callback: ring_buffer_sample_fn = { context, data, size in
            guard let context, let data else { return 0 }
            let box = Unmanaged<HandlerBox>.fromOpaque(context).takeUnretainedValue()
            if let event = RawEvent(UnsafeRawBufferPointer(start: data, count: size)) { box.handler(event) }
            // The record is consumed either way; a negative answer only ends libbpf's pass.
            box.handled += 1
            box.sincePassStart += 1
            if box.sincePassStart < box.budget { return 0 }
            box.sincePassStart = 0
            return Int32(Sensor.passEnded)
        }
        let ring = try bpfCall("open ring buffer") {
            ring_buffer__new(program.ringBufferFD, callback, box.toOpaque(), nil)
        }
        defer { ring_buffer__free(ring) }
        let refreshes = !configuration.killContainers.isEmpty && (!configuration.killPatterns.isEmpty)
        var nextRefresh = DispatchTime.now() + .seconds(1)
        while !stopped.load(ordering: .relaxed) {
            if refreshes && DispatchTime.now() >= nextRefresh {
                refreshKillCgroups()
                nextRefresh = DispatchTime.now() + .seconds(1)
            }
            box.takeUnretainedValue().sincePassStart = 0
            let result = ring_buffer__poll(ring, configuration.pollMilliseconds)
            if result < 0 && result != -EINTR && result != Int32(Self.passEnded) {
                throw BPFError(operation: "poll ring buffer", errno: -result)
            }
            // Batched records came without a wakeup: epoll does not see them, a consume does. A
            // pass ended at its budget: read on at once (the ring is not empty), stop() permitting.
            if configuration.wakeupBytes > 0 || result == Int32(Self.passEnded) {
                var consumed: Int32
                repeat {
                    box.takeUnretainedValue().sincePassStart = 0
                    consumed = ring_buffer__consume(ring)
                } while consumed == Int32(Self.passEnded) && !stopped.load(ordering: .relaxed)
            }
            afterPass()
        }
        // What arrived before stop() was asked, not what a storm still going on keeps adding:
        // until the ring is empty or as many records were read as the kernel had written when
        // stop() was seen (and never more than a full ring's worth: 16 bytes is less than any record).
        let writtenAtStop = (try? statistics().submitted) ?? 0
        let passes = configuration.ringBufferBytes / 16 / Self.recordsBetweenStopChecks + 1
        for _ in 0..<passes {
            box.takeUnretainedValue().sincePassStart = 0
            if ring_buffer__consume(ring) != Int32(Self.passEnded) { break }
            if box.takeUnretainedValue().handled >= writtenAtStop { break }
        }
        return try statistics()
    }

    /// Ends `run` after its current poll (at most `pollMilliseconds`, or `recordsBetweenStopChecks`
    /// records under a storm), once it has read what the kernel had written by then. Safe from any thread.
    public func stop() { stopped.store(true, ordering: .relaxed) }

    /// The kernel's counters now.
    public func statistics() throws -> SensorStatistics { try program.statistics() }

    // MARK: - Facts about the machine

    /// Where SwiftPM put the object compiled by BPFCompilerPlugin, beside the executable.
    public static func bundledObjectPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["CADUCEUS_BPF_OBJECT"] { return path }
        if let url = Bundle.module.url(forResource: "sensor.bpf", withExtension: "o") { return url.path }
        throw SensorConfigurationError(description: "sensor.bpf.o is not beside the executable: pass --bpf-object PATH")
    }

    static func namespaceInode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    static func runningMountNamespaces() -> Set<UInt64> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return Set(entries.filter { $0.first?.isNumber == true }.compactMap { namespaceInode("/proc/\($0)/ns/mnt") })
    }

    static func bootTimeOffset() -> UInt64 {
        var realtime = timespec()
        var boottime = timespec()
        clock_gettime(CLOCK_REALTIME, &realtime)
        clock_gettime(CLOCK_BOOTTIME, &boottime)
        let real = UInt64(realtime.tv_sec) * 1_000_000_000 + UInt64(realtime.tv_nsec)
        let boot = UInt64(boottime.tv_sec) * 1_000_000_000 + UInt64(boottime.tv_nsec)
        return real - boot
    }
}

private final class HandlerBox {
    let handler: (RawEvent) -> Void
    /// Records a pass of libbpf may hand over before the reader looks at `stop()` again.
    let budget: Int
    var sincePassStart = 0
    /// Records read since `run` began.
    var handled: UInt64 = 0
    init(_ handler: @escaping (RawEvent) -> Void, budget: Int) {
        self.handler = handler
        self.budget = budget
    }
}
