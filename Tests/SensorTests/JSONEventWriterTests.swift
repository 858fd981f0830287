import Foundation
import Sensor
import SensorBPF
import Testing

/// The hand-written JSON writer must say what `JSONEncoder` says for the same event decoded
/// into `TraceEvent`: the same document, and every string escaped byte for byte the same
/// (JSONEncoder on Linux does not keep key order, so whole lines cannot be compared).
@Suite struct JSONEventWriterTests {
    /// A cgroup hierarchy in a temporary directory with one Docker-style container cgroup.
    static func fakeHierarchy() throws -> (ContainerResolver, containerCgroup: UInt64, id: String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString)")
        let id = String(repeating: "0123456789abcdef", count: 4)
        let directory = root.appendingPathComponent("docker/\(id)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var info = stat()
        #expect(stat(directory.path, &info) == 0)
        let resolver = ContainerResolver(hierarchy: CgroupHierarchy(root: root.path, isV1: true, subsystemIndex: 0))
        return (resolver, UInt64(info.st_ino), id)
    }

    static func records(containerCgroup: UInt64) -> [SyntheticRecord] {
        var execve = SyntheticRecord(eventID: 59, comm: "bash")
        execve.header.cgroup_id = containerCgroup
        execve.string(0, "/usr/bin/basename")
        execve.argument(1, .stringArray, Array("basename\u{0}/opt/ibm-fhir-server/bootstrap.sh\u{0}".utf8))

        var openat = SyntheticRecord(eventID: 257, comm: "we\"ird\\na\tme")
        openat.integer(0, .s32, UInt64(bitPattern: -100))
        openat.argument(1, .string, Array("/tmp/\u{1}\u{8}\u{c}\n\r/é/💊/".utf8) + [0xFF, 0xC3, 0x28, 0])
        openat.integer(2, .s32, 0o2101)
        openat.integer(3, .u32, 0o644)

        var connect = SyntheticRecord(eventID: 42)
        connect.integer(0, .s32, 3)
        connect.argument(1, .sockaddr, [2, 0, 0x1F, 0x90, 127, 0, 0, 1] + [UInt8](repeating: 0, count: 8))
        connect.integer(2, .s32, 16)

        var bind6 = SyntheticRecord(eventID: 1021)
        bind6.integer(0, .s32, 4)
        bind6.argument(
            1, .sockaddr, [10, 0, 0x23, 0x82, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 15) + [1, 0, 0, 0, 0])

        var unix = SyntheticRecord(eventID: 1019)
        unix.integer(0, .s32, 5)
        unix.argument(1, .sockaddr, [1, 0] + Array("/var/run/docker.sock".utf8) + [0])

        var abstract = SyntheticRecord(eventID: 1019)
        abstract.integer(0, .s32, 5)
        abstract.argument(1, .sockaddr, [1, 0, 0] + Array("hidden".utf8))

        var exit = SyntheticRecord(eventID: 1004)
        exit.integer(0, .s64, 3)
        exit.integer(1, .s32, 0)

        var truncatedArgv = SyntheticRecord(eventID: 1003)
        truncatedArgv.string(0, "")
        truncatedArgv.argument(4, .stringArray, Array("a\u{0}\u{0}cut-off".utf8))
        let unknownEvent = SyntheticRecord(eventID: 999)
        var bigNumbers = SyntheticRecord(eventID: 0)
        bigNumbers.header.return_value = Int64.min
        bigNumbers.integer(0, .s32, UInt64(bitPattern: Int64(Int32.min)))
        bigNumbers.integer(1, .u64, UInt64.max)
        return [execve, openat, connect, bind6, unix, abstract, exit, truncatedArgv, unknownEvent, bigNumbers]
    }

    @Test func matchesJSONEncoderByteForByte() throws {
        let (resolver, cgroup, id) = try Self.fakeHierarchy()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var writer = JSONEventWriter(bootTimeOffset: 1_631_242_658_000_000_000, containers: resolver)
        for record in Self.records(containerCgroup: cgroup) {
            let (ours, decoded) = record.withEvent { event -> (String, TraceEvent) in
                let out = OutputBuffer(capacity: JSONEventWriter.maximumEventBytes)
                writer.write(event, to: out)
                return (
                    String(decoding: out.bytes, as: UTF8.self),
                    TraceEvent(event, bootTimeOffset: 1_631_242_658_000_000_000, containers: resolver)
                )
            }
            let theirs = try encoder.encode(decoded)
            let ourObject = try JSONSerialization.jsonObject(with: Data(ours.utf8)) as? NSDictionary
            let theirObject = try JSONSerialization.jsonObject(with: theirs) as? NSDictionary
            #expect(ourObject != nil && ourObject == theirObject, "\(ours)")
            #expect(ours.hasSuffix("}\n") && ours.filter { $0 == "\n" }.count == 1, "one event, one line")
            for text in Self.strings(in: decoded) {
                let escaped = String(decoding: try encoder.encode(text), as: UTF8.self)
                #expect(ours.contains(escaped), "\(escaped) is escaped as JSONEncoder does")
            }
        }
        let execve = Self.records(containerCgroup: cgroup)[0].withEvent {
            TraceEvent($0, bootTimeOffset: 0, containers: resolver)
        }
        #expect(execve.containerId == id)
        #expect(execve[argument: "argv"] == .strings(["basename", "/opt/ibm-fhir-server/bootstrap.sh"]))
    }

    static func strings(in event: TraceEvent) -> [String] {
        var strings = [event.processName, event.hostName, event.containerId, event.eventName]
        for argument in event.args {
            switch argument.value {
            case .string(let text): strings.append(text)
            case .strings(let list): strings += list
            case .fields(let fields): strings += fields.flatMap { [$0.key, $0.value] }
            default: break
            }
        }
        return strings
    }

    @Test func fieldOrderIsTracees() throws {
        let (resolver, _, _) = try Self.fakeHierarchy()
        var writer = JSONEventWriter(bootTimeOffset: 0, containers: resolver)
        let line = Self.records(containerCgroup: 1)[2].withEvent { event -> String in
            let out = OutputBuffer(capacity: JSONEventWriter.maximumEventBytes)
            writer.write(event, to: out)
            return String(decoding: out.bytes, as: UTF8.self)
        }
        let keys = [
            "timestamp", "processId", "threadId", "parentProcessId", "hostProcessId", "hostThreadId",
            "hostParentProcessId", "userId", "mountNamespace", "pidNamespace", "processName", "hostName",
            "containerId", "eventId", "eventName", "argsNum", "returnValue", "stackAddresses", "args",
        ]
        let positions = keys.map { line.range(of: "\"\($0)\":")?.lowerBound }
        #expect(!positions.contains(nil))
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
        #expect(line.contains(#""eventId":"42","eventName":"connect","argsNum":3"#))
        #expect(line.contains(#"{"sa_family":"AF_INET","sin_addr":"127.0.0.1","sin_port":"8080"}"#))
        #expect(line.contains(#""containerId":"","eventId""#), "host events carry no container object")
    }

    @Test func summaryCountsWrittenEventsPerName() throws {
        let (resolver, cgroup, _) = try Self.fakeHierarchy()
        var writer = JSONEventWriter(bootTimeOffset: 0, containers: resolver)
        let out = OutputBuffer(capacity: 1 << 20)
        let records = Self.records(containerCgroup: cgroup)
        for _ in 0..<3 { records[1].withEvent { writer.write($0, to: out) } }
        for record in records { record.withEvent { writer.write($0, to: out) } }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("summary-\(UUID().uuidString).json")
            .path
        var text = String(decoding: out.bytes, as: UTF8.self)
        text += "not an event\n"
        text.removeLast()  // the last line without its newline still counts
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let summary = try TraceFileSummary(path: path)
        #expect(summary.counts.first?.name == "openat" && summary.counts.first?.count == 4)
        #expect(summary.counts.first { $0.name == "security_socket_connect" }?.count == 2)
        #expect(summary.counts.reduce(0) { $0 + $1.count } == UInt64(records.count + 3))
        #expect(summary.skippedLines == 1)
    }
}
