import Sensor
import SensorBPF

/// Builds ring buffer records byte for byte as sensor.bpf.c writes them, for tests that
/// need exact control over every field (odd strings, every argument kind).
struct SyntheticRecord {
    var header = sensor_event_header()
    var arguments: [UInt8] = []

    init(eventID: Int32, comm: String = "cat", uts: String = "fhir") {
        header.event_id = UInt32(bitPattern: eventID)
        header.timestamp = 1_000
        header.pid = 22
        header.tid = 23
        header.ppid = 1
        header.host_pid = 3_704_142
        header.host_tid = 3_704_143
        header.host_ppid = 3_704_058
        header.mnt_ns = 4_026_532_858
        header.pid_ns = 4_026_532_861
        header.return_value = -2
        withUnsafeMutableBytes(of: &header.comm) { raw in for (i, b) in comm.utf8.prefix(15).enumerated() { raw[i] = b }
        }
        withUnsafeMutableBytes(of: &header.uts_name) { raw in
            for (i, b) in uts.utf8.prefix(15).enumerated() { raw[i] = b }
        }
    }

    mutating func argument(_ index: Int, _ kind: ArgumentKind, _ payload: [UInt8]) {
        var argumentHeader = sensor_arg_header(index: UInt8(index), kind: kind.rawValue, length: UInt16(payload.count))
        withUnsafeBytes(of: &argumentHeader) { arguments.append(contentsOf: $0) }
        arguments.append(contentsOf: payload)
        header.argc &+= 1  // wraps as the kernel's u8 would: hostile records carry more
    }

    mutating func integer(_ index: Int, _ kind: ArgumentKind, _ value: UInt64) {
        argument(index, kind, withUnsafeBytes(of: value) { Array($0) })
    }

    mutating func string(_ index: Int, _ text: String) { argument(index, .string, Array(text.utf8) + [0]) }

    func withEvent<R>(_ body: (RawEvent) -> R) -> R {
        var header = header
        header.size = UInt16(MemoryLayout<sensor_event_header>.size + arguments.count)
        var bytes = withUnsafeBytes(of: &header) { Array($0) }
        bytes += arguments
        return bytes.withUnsafeBytes { body(RawEvent($0)!) }
    }
}
