import CLibbpf
import Sensor
import SensorBPF
import Testing

/// The event structs as clang laid them out for the BPF target (read back from the
/// compiled object's BTF) must match what Swift imported for the host: a drift here
/// would decode every field of every event wrongly.
@Suite struct EventLayoutTests {
    /// Byte offset of each member of `structName` in the BPF object, and the struct's size.
    static func bpfLayout(_ structName: String) throws -> (size: Int, offsets: [String: Int]) {
        let path = try Sensor.bundledObjectPath()
        guard let btf = btf__parse_elf(path, nil) else {
            throw SensorConfigurationError(description: "no BTF in \(path)")
        }
        defer { btf__free(btf) }
        let id = btf__find_by_name_kind(btf, structName, UInt32(BTF_KIND_STRUCT))
        guard id > 0, let type = btf__type_by_id(btf, UInt32(id)) else {
            throw SensorConfigurationError(description: "struct \(structName) not in the object's BTF")
        }
        var offsets: [String: Int] = [:]
        let members = btf_members(type)!
        for index in 0..<Int(btf_vlen(type)) {
            let name = String(cString: btf__name_by_offset(btf, members[index].name_off))
            offsets[name] = Int(btf_member_bit_offset(type, UInt32(index)) / 8)
        }
        return (Int(type.pointee.size), offsets)
    }

    @Test func eventHeaderMatches() throws {
        let layout = try Self.bpfLayout("sensor_event_header")
        typealias H = sensor_event_header
        #expect(layout.size == MemoryLayout<H>.size)
        let swift: [String: Int?] = [
            "timestamp": MemoryLayout<H>.offset(of: \.timestamp), "cgroup_id": MemoryLayout<H>.offset(of: \.cgroup_id),
            "return_value": MemoryLayout<H>.offset(of: \.return_value), "event_id": MemoryLayout<H>.offset(of: \.event_id),
            "host_pid": MemoryLayout<H>.offset(of: \.host_pid), "host_tid": MemoryLayout<H>.offset(of: \.host_tid),
            "host_ppid": MemoryLayout<H>.offset(of: \.host_ppid), "pid": MemoryLayout<H>.offset(of: \.pid),
            "tid": MemoryLayout<H>.offset(of: \.tid), "ppid": MemoryLayout<H>.offset(of: \.ppid),
            "uid": MemoryLayout<H>.offset(of: \.uid), "mnt_ns": MemoryLayout<H>.offset(of: \.mnt_ns),
            "pid_ns": MemoryLayout<H>.offset(of: \.pid_ns), "size": MemoryLayout<H>.offset(of: \.size),
            "argc": MemoryLayout<H>.offset(of: \.argc), "cpu": MemoryLayout<H>.offset(of: \.cpu),
            "flags": MemoryLayout<H>.offset(of: \.flags), "comm": MemoryLayout<H>.offset(of: \.comm),
            "uts_name": MemoryLayout<H>.offset(of: \.uts_name),
        ]
        #expect(Set(layout.offsets.keys) == Set(swift.keys), "every C member has a Swift mirror")
        for (name, offset) in swift { #expect(layout.offsets[name] == offset, "\(name)") }
    }

    @Test func argumentHeaderStatsAndRulesMatch() throws {
        let argument = try Self.bpfLayout("sensor_arg_header")
        #expect(argument.size == MemoryLayout<sensor_arg_header>.size)
        #expect(argument.offsets["index"] == MemoryLayout<sensor_arg_header>.offset(of: \.index))
        #expect(argument.offsets["kind"] == MemoryLayout<sensor_arg_header>.offset(of: \.kind))
        #expect(argument.offsets["length"] == MemoryLayout<sensor_arg_header>.offset(of: \.length))

        let stats = try Self.bpfLayout("sensor_stats")
        #expect(stats.size == MemoryLayout<sensor_stats>.size)
        #expect(stats.offsets["lost"] == MemoryLayout<sensor_stats>.offset(of: \.lost))

        let rule = try Self.bpfLayout("sensor_syscall_rule")
        #expect(rule.size == MemoryLayout<sensor_syscall_rule>.size)
        #expect(rule.offsets["kinds"] == MemoryLayout<sensor_syscall_rule>.offset(of: \.kinds))
    }

    @Test func settingsMatch() throws {
        let config = try Self.bpfLayout("sensor_config")
        typealias C = sensor_config
        #expect(config.size == MemoryLayout<C>.size)
        #expect(config.offsets["scope"] == MemoryLayout<C>.offset(of: \.scope))
        #expect(config.offsets["events"] == MemoryLayout<C>.offset(of: \.events))
        #expect(config.offsets["host_mnt_ns"] == MemoryLayout<C>.offset(of: \.host_mnt_ns))
        #expect(config.offsets["cgroup_v1_subsys"] == MemoryLayout<C>.offset(of: \.cgroup_v1_subsys))
        #expect(config.offsets["wakeup_bytes"] == MemoryLayout<C>.offset(of: \.wakeup_bytes))
        #expect(config.offsets["kill_patterns"] == MemoryLayout<C>.offset(of: \.kill_patterns))
        #expect(config.offsets["kill_cgroups"] == MemoryLayout<C>.offset(of: \.kill_cgroups))
        #expect(config.offsets["syscalls"] == MemoryLayout<C>.offset(of: \.syscalls))
    }
}
