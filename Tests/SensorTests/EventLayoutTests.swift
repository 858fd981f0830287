import CLibbpf
import Sensor
import SensorBPF
import Testing

/// Everything sensor.h shares between the BPF programs and Swift, table-driven: each struct as
/// clang laid it out for the BPF target (read back from the compiled object's BTF) against the
/// host's layout, which Swift imports (sensor_layout.c's tables); each enum's values against
/// its Swift mirror. A drift here would decode every field of every event wrongly.
@Suite struct EventLayoutTests {
    struct Layout: Equatable, CustomStringConvertible {
        var size: Int
        /// Member name to (offset, size); sizes only where the host table has them.
        var members: [String: Int]
        var description: String { "size \(size), members \(members.sorted { $0.key < $1.key })" }
    }

    /// Every struct named `sensor_*` in the BPF object: the ones shared through sensor.h
    /// (structs private to the programs have other names).
    static func bpfLayouts() throws -> [String: Layout] {
        let path = try Sensor.bundledObjectPath()
        guard let btf = btf__parse_elf(path, nil) else {
            throw SensorConfigurationError(description: "no BTF in \(path)")
        }
        defer { btf__free(btf) }
        var layouts: [String: Layout] = [:]
        for id in 1..<btf__type_cnt(btf) {
            guard let type = btf__type_by_id(btf, id), btf_kind(type) == UInt16(BTF_KIND_STRUCT) else { continue }
            let name = String(cString: btf__name_by_offset(btf, type.pointee.name_off))
            guard name.hasPrefix("sensor_") else { continue }
            var members: [String: Int] = [:]
            let list = btf_members(type)!
            for index in 0..<Int(btf_vlen(type)) {
                members[String(cString: btf__name_by_offset(btf, list[index].name_off))] = Int(
                    btf_member_bit_offset(type, UInt32(index)) / 8)
            }
            layouts[name] = Layout(size: Int(type.pointee.size), members: members)
        }
        return layouts
    }

    /// The host compiler's layouts (sensor_layout.c), as Swift imports them.
    static func hostLayouts() -> [String: Layout] {
        var layouts: [String: Layout] = [:]
        var index = 0
        while let entry = sensor_layout_struct_at(index)?.pointee {
            index += 1
            layouts[String(cString: entry.name)] = Layout(size: entry.size, members: [:])
        }
        index = 0
        while let entry = sensor_layout_member_at(index)?.pointee {
            index += 1
            layouts[String(cString: entry.structure), default: Layout(size: -1, members: [:])].members[
                String(cString: entry.member)] = entry.offset
        }
        return layouts
    }

    /// The values of each enum of sensor.h, by enum name.
    static func hostEnumerators() -> [String: [String: Int64]] {
        var enums: [String: [String: Int64]] = [:]
        var index = 0
        while let entry = sensor_layout_enumerator_at(index)?.pointee {
            index += 1
            enums[String(cString: entry.enumeration), default: [:]][String(cString: entry.name)] = entry.value
        }
        return enums
    }

    @Test func everySharedStructHasTheSameLayoutInBothCompilers() throws {
        let bpf = try Self.bpfLayouts(), host = Self.hostLayouts()
        #expect(bpf.count >= 6, "the object's shared structs: \(bpf.keys.sorted())")
        #expect(Set(bpf.keys) == Set(host.keys), "every shared struct is in sensor_layout.c's tables and in the object")
        for (name, layout) in bpf {
            #expect(host[name] == layout, "\(name): BPF \(layout), host \(host[name].map(\.description) ?? "missing")")
        }
    }

    /// Swift sees the host's layout: spot-check the table against Swift's own offsets.
    @Test func swiftImportsTheHostLayout() {
        let host = Self.hostLayouts()
        #expect(host["sensor_event_header"]?.size == MemoryLayout<sensor_event_header>.size)
        #expect(host["sensor_event_header"]?.members["flags"] == MemoryLayout<sensor_event_header>.offset(of: \.flags))
        #expect(host["sensor_config"]?.size == MemoryLayout<sensor_config>.size)
        #expect(host["sensor_config"]?.members["syscalls"] == MemoryLayout<sensor_config>.offset(of: \.syscalls))
        #expect(host["sensor_kill_pattern"]?.size == MemoryLayout<sensor_kill_pattern>.size)
        #expect(host["sensor_arg_header"]?.members["length"] == MemoryLayout<sensor_arg_header>.offset(of: \.length))
    }

    /// Each Swift mirror of a C enum holds exactly the enum's values.
    @Test(arguments: [
        ("sensor_arg_kind", Set(ArgumentKind.allCases.map { Int64($0.rawValue) })),
        ("sensor_kill_kind", Set(KillPattern.Kind.allCases.map { Int64($0.rawValue) })),
    ])
    func swiftMirrorsHoldTheEnumsValues(enumeration: String, swift: Set<Int64>) throws {
        let values = try #require(Self.hostEnumerators()[enumeration])
        #expect(
            Set(values.values) == swift,
            "\(enumeration): C \(values.sorted { $0.value < $1.value }), Swift \(swift.sorted())")
    }

    /// The non-syscall event ids of the kernel are rows of the event table.
    @Test func everyKernelEventIdIsInTheEventTable() throws {
        let ids = try #require(Self.hostEnumerators()["sensor_event_id"])
        for (name, id) in ids {
            #expect(EventTable.definition(id: Int32(id)) != nil, "\(name) = \(id)")
        }
        #expect(Self.hostEnumerators()["sensor_scope"]?.count == 4)
    }
}
