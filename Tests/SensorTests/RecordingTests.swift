import Foundation
import KernelTestSupport
@testable import Sensor
import SensorBPF
import Testing

/// `trace --format record` and `trace --input`: a recording turned back into JSON must be the
/// JSON the direct path writes, byte for byte; a truncated or corrupted recording is refused
/// with a `RecordingError`, never a crash or a hang.
@Suite struct RecordingTests {
    static let bootTime: UInt64 = 1_631_242_658_000_000_000

    /// The synthetic records of `JSONEventWriterTests` (every argument kind, odd strings, a
    /// container and the host), recorded as the live encoder records them.
    static func recording(containerCgroup: UInt64, resolver: ContainerResolver) -> (recording: [UInt8], json: [UInt8]) {
        var encoder = RecordingEncoder { resolver.container(cgroupID: $0) }
        var json = JSONEventWriter(bootTimeOffset: bootTime, containers: resolver)
        let recorded = OutputBuffer(capacity: 4 << 20)
        let direct = OutputBuffer(capacity: 4 << 20)
        recorded.append(Recording.fileHeader(bootTimeOffset: bootTime))
        let records = JSONEventWriterTests.records(containerCgroup: containerCgroup)
        for record in records + records {
            record.withEvent { event in
                encoder.write(event, to: recorded)
                json.write(event, to: direct)
            }
        }
        recorded.append(Recording.endFrame(.init(events: UInt64(records.count * 2), lost: 7, filtered: 1)))
        return (Array(recorded.bytes), Array(direct.bytes))
    }

    /// Writes `bytes` to a temporary file and converts it; the JSON and the result, or the error.
    static func convert(_ bytes: [UInt8]) throws -> (json: [UInt8], result: RecordingConversion.Result) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rec-\(UUID().uuidString)").path
        defer { unlink(path) }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let out = path + ".json"
        defer { unlink(out) }
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        let result = try RecordingConversion.writeJSON(from: RecordingReader(path: path), to: fd)
        return (Array(try Data(contentsOf: URL(fileURLWithPath: out))), result)
    }

    /// An event frame of the recording: its leading word, then the record's bytes.
    static func eventFrame(_ record: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: Recording.frameWord(.event, length: record.count).littleEndian) { Array($0) } + record
    }

    @Test func syntheticRecordConvertsToTheDirectJSON() throws {
        let (resolver, cgroup, _) = try JSONEventWriterTests.fakeHierarchy()
        let (recording, direct) = Self.recording(containerCgroup: cgroup, resolver: resolver)
        let (json, result) = try Self.convert(recording)
        #expect(json == direct, "byte for byte")
        #expect(result.eventsWritten == 20)
        #expect(result.totals == Recording.Totals(events: 20, lost: 7, filtered: 1))
        // Each cgroup's container is recorded once, not per event.
        #expect(recording.count < direct.count / 2)
    }

    /// Every prefix of a recording is refused (a cut file), with the events before the cut.
    @Test func everyTruncationIsRefused() async throws {
        let (resolver, cgroup, _) = try JSONEventWriterTests.fakeHierarchy()
        let (recording, _) = Self.recording(containerCgroup: cgroup, resolver: resolver)
        for length in 0..<recording.count {
            #expect(throws: RecordingError.self, "cut at \(length) of \(recording.count)") {
                _ = try Self.convert(Array(recording[0..<length]))
            }
            if length % 64 == 0 { await Task.yield() }
        }
    }

    /// Named faults, each with its own message.
    @Test(
        arguments: [
            ("magic", 0, [UInt8(ascii: "X")], "not a Caduceus recording"),
            ("version", 8, [9, 0], "format version 9"),
            ("layout", 12, [100, 0], "another record layout"),
            ("frame kind", 32, [0, 0, 0, 9], "frame kind 9"),
            ("frame length", 32, [0xFF, 0xFF, 0xFF, 1], "length 16777215"),
        ] as [(String, Int, [UInt8], String)])
    func corruptedHeaderOrFrameIsRefused(fault: String, offset: Int, bytes: [UInt8], message: String) throws {
        let (resolver, cgroup, _) = try JSONEventWriterTests.fakeHierarchy()
        var (recording, _) = Self.recording(containerCgroup: cgroup, resolver: resolver)
        recording.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        let error = #expect(throws: RecordingError.self, "\(fault)") { _ = try Self.convert(recording) }
        #expect(error?.description.contains(message) == true, "\(fault): \(error?.description ?? "")")
    }

    @Test func eventsWithoutTheirContainerOrLyingAboutTheirSizeAreRefused() throws {
        let header = Recording.fileHeader(bootTimeOffset: 0)
        let end = Recording.endFrame(.init(events: 1, lost: 0, filtered: 0))
        var record = SyntheticRecord(eventID: 257)
        record.string(1, "/etc/passwd")
        let event = record.withEvent { Array($0.bytes) }
        let frame = Self.eventFrame
        let container = Recording.containerFrame(cgroupID: 0, container: nil)
        #expect(try Self.convert(header + container + frame(event) + end).result.eventsWritten == 1)

        let orphan = #expect(throws: RecordingError.self) { _ = try Self.convert(header + frame(event) + end) }
        #expect(orphan?.description.contains("no container frame") == true)
        var lying = event
        lying[64] = 0xFF  // sensor_event_header.size: larger than the frame
        lying[65] = 0xFF
        let size = #expect(throws: RecordingError.self) {
            _ = try Self.convert(header + container + frame(lying) + end)
        }
        #expect(size?.description.contains("whose header says otherwise") == true)
        let twice = #expect(throws: RecordingError.self) {
            _ = try Self.convert(header + container + container + frame(event) + end)
        }
        #expect(twice?.description.contains("second container frame") == true)
        let count = #expect(throws: RecordingError.self) {
            _ = try Self.convert(header + container + frame(event) + frame(event) + end)
        }
        #expect(count?.description.contains("counts 1 events, the file holds 2") == true)
        let trailing = #expect(throws: RecordingError.self) {
            _ = try Self.convert(header + container + frame(event) + end + [0])
        }
        #expect(trailing?.description.contains("after its end frame") == true)
        let short = #expect(throws: RecordingError.self) {
            _ = try Self.convert(header + container + frame(Array(event[0..<50])) + end)
        }
        #expect(short?.description.contains("whose header says otherwise") == true)
    }

    /// Random bytes anywhere: refused or converted, never a crash; and a hostile event (every
    /// argument empty, unknown indexes, the largest record) still fits the JSON buffer.
    @Test func randomCorruptionNeverCrashes() async throws {
        let (resolver, cgroup, _) = try JSONEventWriterTests.fakeHierarchy()
        let (recording, _) = Self.recording(containerCgroup: cgroup, resolver: resolver)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            var damaged = recording
            for _ in 0..<(1 + round % 4) {
                damaged[Int.random(in: Recording.fileHeaderBytes..<damaged.count, using: &generator)] = UInt8.random(
                    in: 0...255, using: &generator)
            }
            _ = try? Self.convert(damaged)
            if round % 20 == 0 { await Task.yield() }
        }
        var hostile = SyntheticRecord(
            eventID: 59, comm: "\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}")
        for index in 0..<(60_000 / 4) { hostile.argument(index % 256, .string, []) }
        var bytes = Recording.fileHeader(bootTimeOffset: 0) + Recording.containerFrame(cgroupID: 0, container: nil)
        bytes += hostile.withEvent { Self.eventFrame(Array($0.bytes)) }
        bytes += Recording.endFrame(.init(events: 1, lost: 0, filtered: 0))
        let (json, result) = try Self.convert(bytes)
        #expect(result.eventsWritten == 1)
        #expect(json.count > 60_000 && json.last == UInt8(ascii: "\n"))
    }
}

extension RecordingTests {
    /// A container frame with every string at its largest, made of bytes that JSON escapes to
    /// six: converted to valid JSON carrying them whole (the fragment buffer is sized from them).
    @Test func largestContainerStringsConvert() throws {
        let control = String(repeating: "\u{1}", count: Recording.maximumStringBytes)
        let container = ContainerInfo(
            id: control, name: control, image: String(repeating: "\"", count: 9_000), imageDigest: control)
        var record = SyntheticRecord(eventID: 257)
        record.header.cgroup_id = 7
        record.string(1, "/etc/passwd")
        var bytes =
            Recording.fileHeader(bootTimeOffset: 0) + Recording.containerFrame(cgroupID: 7, container: container)
        let eventFrame = record.withEvent { Self.eventFrame(Array($0.bytes)) }
        bytes += eventFrame + eventFrame
        bytes += Recording.endFrame(.init(events: 2, lost: 0, filtered: 0))
        let (json, result) = try Self.convert(bytes)
        #expect(result.eventsWritten == 2)
        let lines = json.split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 2)
        let event = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        #expect((event["containerId"] as? String) == control)
        let object = try #require(event["container"] as? [String: Any])
        #expect((object["name"] as? String)?.count == 1000)
        #expect((object["image"] as? String)?.count == 1000)
    }

    /// A file of endless container frames is refused past `Recording.maximumContainers`, not
    /// kept in memory frame after frame.
    @Test func endlessContainerFramesAreRefused() throws {
        var bytes = Recording.fileHeader(bootTimeOffset: 0)
        for cgroup in 0...UInt64(Recording.maximumContainers) {
            bytes += Recording.containerFrame(cgroupID: cgroup, container: nil)
        }
        bytes += Recording.endFrame(.init(events: 0, lost: 0, filtered: 0))
        let error = #expect(throws: RecordingError.self) { _ = try Self.convert(bytes) }
        #expect(error?.description.contains("more than \(Recording.maximumContainers) container frames") == true)
    }
}

/// A real trace of a real container, written as JSON and as a recording by the same session:
/// the recording converted is the JSON file, byte for byte. Needs root, BPF and Docker.
@Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
struct RecordingKernelTests {
    @Test func liveRecordingConvertsToTheLiveJSONByteForByte() throws {
        try SensorTestEnvironment.require()
        let name = "caduceus-test-\(UUID().uuidString.prefix(8).lowercased())"
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("record-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let jsonFD = open(folder + "/live.json", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let recordFD = open(folder + "/live.rec", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var configuration = SensorConfiguration()
        configuration.scope = .newContainers  // not the containers other work runs on this machine
        configuration.events = try EventSelection(parsing: ["all"])
        let session = TraceSession(
            sensor: try Sensor(configuration: configuration), outputs: [(.json, jsonFD), (.record, recordFD)])
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<TraceReport, Error>?
        Thread.detachNewThread {
            outcome = Result { try session.run() }
            finished.signal()
        }
        let script =
            "/bin/cat /etc/hostname; /bin/ls -la /etc >/dev/null; echo 'weird \"name\"\t\u{1}' > /tmp/x; /bin/rm /tmp/x"
        _ = try SensorTestEnvironment.run([
            "docker", "run", "--rm", "--name", name, SensorTestEnvironment.image, "/bin/sh", "-c", script,
        ])
        Thread.sleep(forTimeInterval: 0.5)
        session.stop()
        finished.wait()
        close(jsonFD)
        close(recordFD)
        let report = try #require(outcome).get()
        #expect(report.eventsWritten > 100, "a container's start and its commands")

        let live = try Data(contentsOf: URL(fileURLWithPath: folder + "/live.json"))
        let converted = open(folder + "/converted.json", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let result = try RecordingConversion.writeJSON(from: RecordingReader(path: folder + "/live.rec"), to: converted)
        close(converted)
        #expect(result.eventsWritten == report.eventsWritten)
        #expect(result.totals.events == report.eventsWritten)
        #expect(result.totals.lost == report.statistics.lost)
        let fromRecording = try Data(contentsOf: URL(fileURLWithPath: folder + "/converted.json"))
        #expect(fromRecording == live, "the recording's JSON is the live JSON, byte for byte")
        #expect(live.firstRange(of: Data(name.utf8)) != nil, "with the container's name from the recording")
        let recorded = try FileManager.default.attributesOfItem(atPath: folder + "/live.rec")[.size] as? Int ?? 0
        #expect(recorded * 3 < live.count, "a recording is several times smaller than its JSON")
        let counts = try RecordingConversion.counts(from: RecordingReader(path: folder + "/live.rec"))
        #expect(counts.map(\.name) == report.counts.map(\.name))
        #expect(counts.map(\.count) == report.counts.map(\.count))
    }
}
