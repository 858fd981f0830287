import CLibbpf
import Foundation
import SensorBPF

#if canImport(Glibc)
    import Glibc
#endif

/// The loaded BPF object, in libbpf's order: open, configure, load, fill maps, attach.
/// Closing detaches every program and frees the maps.
final class SensorProgram {
    private let object: OpaquePointer
    private var links: [OpaquePointer] = []
    /// The links of `attach(programs:)`, by program name: what `detach()` removes and
    /// `reattach()` makes again. Guarded by `attachment`, since a pause comes from another thread.
    private var attached: [(name: String, link: OpaquePointer)] = []
    private var detachedNames: [String] = []
    private let attachment = NSLock()

    /// libbpf prints to stderr by default; keep that for `CADUCEUS_BPF_DEBUG=1` only,
    /// since every failure it reports also comes back as a thrown `BPFError`.
    static func quietLibbpf() {
        if ProcessInfo.processInfo.environment["CADUCEUS_BPF_DEBUG"] == "1" { return }
        libbpf_set_print(nil)
    }

    /// Opens the compiled object (no kernel work yet).
    init(objectPath: String) throws {
        object = try bpfCall("open BPF object \(objectPath)") { bpf_object__open_file(objectPath, nil) }
    }

    deinit {
        for link in links { bpf_link__destroy(link) }
        for (_, link) in attached { bpf_link__destroy(link) }
        bpf_object__close(object)
    }

    func map(_ name: String) throws -> OpaquePointer {
        try bpfCall("find map \(name)") { bpf_object__find_map_by_name(object, name) }
    }

    func program(_ name: String) throws -> OpaquePointer {
        try bpfCall("find program \(name)") { bpf_object__find_program_by_name(object, name) }
    }

    /// Writes the `const volatile` settings; must happen before `load()`.
    func configure(_ config: sensor_config, ringBufferBytes: Int, programs wanted: Set<String>) throws {
        let rodata = try map(".rodata.config")
        var size = 0
        guard let initial = bpf_map__initial_value(rodata, &size), size == MemoryLayout<sensor_config>.size else {
            throw BPFError(operation: "settings section .rodata.config has an unexpected size", errno: EINVAL)
        }
        withUnsafeBytes(of: config) {
            UnsafeMutableRawPointer(mutating: initial).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
        }
        try bpfCall("set ring buffer size \(ringBufferBytes)") {
            bpf_map__set_max_entries(try! map("events"), UInt32(ringBufferBytes))
        }
        try select(wanted.contains)
    }

    /// Loads only the named program.
    func selectOnly(_ name: String) throws {
        try select { $0 == name }
    }

    /// Marks each program of the object to be loaded or not, by name.
    private func select(_ isWanted: (String) -> Bool) throws {
        var program: OpaquePointer? = bpf_object__next_program(object, nil)
        while let current = program {
            let name = String(cString: bpf_program__name(current))
            try bpfCall("select program \(name)") { bpf_program__set_autoload(current, isWanted(name)) }
            program = bpf_object__next_program(object, current)
        }
    }

    /// Verifies and loads every selected program into the kernel.
    func load() throws {
        try bpfCall("load BPF programs (verifier)") { bpf_object__load(object) }
    }

    /// Removes `key` from a map; a key that is not there is no error.
    func remove<Key>(_ key: Key, from mapName: String) throws {
        let map = try map(mapName)
        var key = key
        let result = bpf_map__delete_elem(map, &key, MemoryLayout<Key>.size, 0)
        if result < 0 && result != -ENOENT { throw BPFError(operation: "remove from \(mapName)", errno: -result) }
    }

    /// Adds `key` with value 1 to a filter map.
    func insert<Key>(_ key: Key, into mapName: String) throws {
        let map = try map(mapName)
        var key = key
        var one: UInt8 = 1
        try bpfCall("fill \(mapName)") {
            bpf_map__update_elem(map, &key, MemoryLayout<Key>.size, &one, 1, UInt64(BPF_ANY))
        }
    }

    /// Inserts a key given as its bytes (a fixed-size string key) with the value 1.
    func insert(keyBytes: [UInt8], into mapName: String) throws {
        let map = try map(mapName)
        var one: UInt8 = 1
        try keyBytes.withUnsafeBytes { key in
            _ = try bpfCall("fill \(mapName)") {
                bpf_map__update_elem(map, key.baseAddress, key.count, &one, 1, UInt64(BPF_ANY))
            }
        }
    }

    /// Writes one entry of an array or hash map.
    func set<Key, Value>(_ key: Key, _ value: Value, in mapName: String) throws {
        let map = try map(mapName)
        var key = key
        var value = value
        try bpfCall("fill \(mapName)") {
            bpf_map__update_elem(map, &key, MemoryLayout<Key>.size, &value, MemoryLayout<Value>.size, UInt64(BPF_ANY))
        }
    }

    /// Attaches every loaded program to its tracepoint.
    func attach(programs wanted: Set<String>) throws {
        try attachment.withLock {
            for name in wanted.sorted() {
                let program = try program(name)
                let link = try bpfCall("attach \(name)") { bpf_program__attach(program) }
                attached.append((name, link))
            }
        }
    }

    /// Removes the links of `attach(programs:)`: the kernel runs none of those programs until
    /// `reattach()`. The maps, the ring buffer and the cgroup links stay. False when already detached.
    func detach() -> Bool {
        attachment.withLock {
            guard !attached.isEmpty else { return false }
            for (_, link) in attached { bpf_link__destroy(link) }
            detachedNames += attached.map(\.name)
            attached = []
            return true
        }
    }

    /// Attaches again what `detach()` removed (in the order `attach(programs:)` used). False
    /// when nothing was detached.
    func reattach() throws -> Bool {
        try attachment.withLock {
            guard !detachedNames.isEmpty else { return false }
            // One at a time, so that a failure leaves the rest named for the next try.
            while let name = detachedNames.first {
                let program = try program(name)
                let link = try bpfCall("attach \(name)") { bpf_program__attach(program) }
                attached.append((name, link))
                detachedNames.removeFirst()
            }
            return true
        }
    }

    /// Keeps a link for the life of this object (detached in deinit).
    func keep(_ link: OpaquePointer) { links.append(link) }

    /// The per-CPU counters summed, and listed per CPU.
    func statistics() throws -> SensorStatistics {
        let map = try map("stats")
        let cpus = Int(libbpf_num_possible_cpus())
        var values = [sensor_stats](repeating: sensor_stats(), count: max(cpus, 1))
        var key: UInt32 = 0
        try bpfCall("read statistics") {
            values.withUnsafeMutableBytes { bytes in
                bpf_map__lookup_elem(map, &key, 4, bytes.baseAddress, bytes.count, 0)
            }
        }
        return SensorStatistics(
            submittedPerCPU: values.map { $0.submitted }, lostPerCPU: values.map { $0.lost })
    }

    var ringBufferFD: Int32 { bpf_map__fd(try! map("events")) }
}

/// What the kernel side counted: records written and records the full ring buffer refused.
public struct SensorStatistics: Sendable, Equatable {
    public var submittedPerCPU: [UInt64]
    public var lostPerCPU: [UInt64]
    public var submitted: UInt64 { submittedPerCPU.reduce(0, +) }
    public var lost: UInt64 { lostPerCPU.reduce(0, +) }
}
