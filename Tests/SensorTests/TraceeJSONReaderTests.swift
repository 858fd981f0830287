import Foundation
import Sensor
import SensorBPF
import Testing

/// Recorded events read back: Caduceus's own lines, Tracee's later format, the v0.6 sample of
/// the graduation slides, and files with lines that are not events.
@Suite struct TraceeJSONReaderTests {
    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tracee-\(UUID().uuidString).json")
            .path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Every line `JSONEventWriter` writes reads back as the `TraceEvent` of the same record,
    /// except `cpu`: the JSON, like Tracee v0.6's, does not record it, so it reads as 0.
    @Test func readsBackWhatTheWriterWrote() throws {
        let (resolver, cgroup, id) = try JSONEventWriterTests.fakeHierarchy()
        let offset: UInt64 = 1_631_242_658_000_000_000
        var writer = JSONEventWriter(bootTimeOffset: offset, containers: resolver)
        var records = JSONEventWriterTests.records(containerCgroup: cgroup)
        records[1].header.cpu = 3
        let out = OutputBuffer(capacity: 1 << 20)
        var expected: [TraceEvent] = []
        for record in records {
            record.withEvent { event in
                writer.write(event, to: out)
                var decoded = TraceEvent(event, bootTimeOffset: offset, containers: resolver)
                decoded.cpu = 0
                expected.append(decoded)
            }
        }
        #expect(expected[1].container == nil && expected[0].container?.id == id, "both kinds of process are covered")

        let path = try Self.temporaryFile(String(decoding: out.bytes, as: UTF8.self))
        defer { unlink(path) }
        var read: [TraceEvent] = []
        var errors: [TraceeJSONError] = []
        let counts = try TraceeJSONReader.forEach(path: path, onError: { errors.append($0) }) { read.append($0) }
        #expect(errors.isEmpty, "\(errors)")
        #expect(counts == TraceeJSONReader.LineCounts(events: records.count, errors: 0))
        #expect(read.count == expected.count)
        for (ours, theirs) in zip(read, expected) {
            #expect(ours == theirs)
        }
        #expect(read[1][argument: "mode"] == .uint(0o644), "unsigned arguments stay unsigned")
        #expect(read[9][argument: "buf"] == .uint(UInt64.max) && read[9].returnValue == Int64.min)

        // One line at a time, as bytes or text.
        let firstLine = out.bytes.split(separator: 0x0A)[0]
        #expect(try TraceeJSONReader.event(fromLine: firstLine, lineNumber: 1) == expected[0])
        #expect(try TraceeJSONReader.event(fromLine: String(decoding: firstLine, as: UTF8.self)) == expected[0])
    }

    /// Later Tracee (0.20 and on): processorId, cgroupId, executable, a container object, kubernetes,
    /// matchedPolicies, syscall, contextFlags, metadata, and arguments of every JSON kind.
    static let laterTraceeLine = #"""
        {"timestamp":1718192040281484462,"threadStartTime":1718192040270953417,"processorId":5,"processId":7,"cgroupId":10645,"threadId":9,"parentProcessId":1,"hostProcessId":471253,"hostThreadId":471255,"hostParentProcessId":471232,"userId":101,"userName":"nginx","mountNamespace":4026533179,"pidNamespace":4026533182,"processName":"nginx","executable":{"path":"/usr/sbin/nginx"},"hostName":"web-7f9c6d","containerId":"8e5b3c1f2a","container":{"id":"8e5b3c1f2a","name":"k8s_web_web-7f9c6d","image":"docker.io/library/nginx:1.25","imageDigest":"sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac"},"kubernetes":{"podName":"web-7f9c6d","podNamespace":"default","podUID":"5f6b3e2a-6c1d-4b8e-9a77-2f0d1c3e4b5a"},"eventId":"1019","eventName":"security_socket_connect","matchedPolicies":["default","egress"],"argsNum":6,"returnValue":0,"syscall":"connect","stackAddresses":[],"contextFlags":{"containerStarted":true,"isCompat":false},"threadEntityId":2880311842,"processEntityId":2880311842,"parentEntityId":1796453420,"args":[{"name":"sockfd","type":"int","value":3},{"name":"remote_addr","type":"struct sockaddr*","value":{"sa_family":"AF_INET","sin_port":"80","sin_addr":"10.96.0.10"}},{"name":"argv","type":"[]string","value":["curl","-s","http://10.96.0.10/"]},{"name":"envp","type":"const char**","value":null},{"name":"flags","type":"unsigned long","value":18446744073709551615},{"name":"in_container","type":"bool","value":true}],"metadata":{"Version":"1","Description":"","Tags":null,"Properties":{"Category":"network"}}}
        """#

    @Test func readsTraceesLaterFormat() throws {
        let event = try TraceeJSONReader.event(fromLine: Self.laterTraceeLine, lineNumber: 12)
        let container = ContainerInfo(
            id: "8e5b3c1f2a", name: "k8s_web_web-7f9c6d", image: "docker.io/library/nginx:1.25",
            imageDigest: "sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac")
        let expected = TraceEvent(
            timestamp: 1_718_192_040_281_484_462, processId: 7, threadId: 9, parentProcessId: 1,
            hostProcessId: 471_253, hostThreadId: 471_255, hostParentProcessId: 471_232, userId: 101,
            mountNamespace: 4_026_533_179, pidNamespace: 4_026_533_182, processName: "nginx", hostName: "web-7f9c6d",
            container: container, eventId: "1019", eventName: "security_socket_connect", returnValue: 0,
            args: [
                TraceArgument(name: "sockfd", type: "int", value: .int(3)),
                TraceArgument(
                    name: "remote_addr", type: "struct sockaddr*",
                    value: .fields([
                        .init(key: "sa_family", value: "AF_INET"), .init(key: "sin_port", value: "80"),
                        .init(key: "sin_addr", value: "10.96.0.10"),
                    ])),
                TraceArgument(name: "argv", type: "[]string", value: .strings(["curl", "-s", "http://10.96.0.10/"])),
                TraceArgument(name: "envp", type: "const char**", value: .strings([])),
                TraceArgument(name: "flags", type: "unsigned long", value: .uint(UInt64.max)),
                TraceArgument(name: "in_container", type: "bool", value: .int(1)),
            ],
            cpu: 5)
        #expect(event == expected)
        #expect(event.containerId == "8e5b3c1f2a" && event[argument: "remote_addr"]?.field("sin_addr") == "10.96.0.10")

        // The newest Tracee drops the top-level containerId and writes {} for host processes.
        let nested = try TraceeJSONReader.event(
            fromLine: #"{"eventId":1,"eventName":"write","container":{"id":"c0ffee","name":"db"}}"#)
        #expect(nested.containerId == "c0ffee" && nested.container?.name == "db" && nested.eventId == "1")
        let host = try TraceeJSONReader.event(fromLine: #"{"eventName":"openat","container":{},"args":null}"#)
        #expect(host.containerId == "" && host.container == nil && host.eventId == "257" && host.args.isEmpty)
        // Tracee 0.7 to 0.9: container fields at the top level.
        let flat = try TraceeJSONReader.event(
            fromLine: #"{"eventName":"close","containerId":"abc","containerImage":"alpine:3","containerName":"shell"}"#)
        #expect(flat.container == ContainerInfo(id: "abc", name: "shell", image: "alpine:3"))
    }

    /// The execve of the v0.6 sample, as one line.
    static let tracee06Line = #"""
        {"timestamp":1631242658000505000,"processId":22,"threadId":22,"parentProcessId":1,"hostProcessId":3704142,"hostThreadId":3704142,"hostParentProcessId":3704058,"userId":0,"mountNamespace":4026532858,"pidNamespace":4026532861,"processName":"bash","hostName":"fhir","containerId":"","eventId":"59","eventName":"execve","argsNum":2,"returnValue":0,"stackAddresses":null,"args":[{"name":"pathname","type":"const char*","value":"/usr/bin/basename"},{"name":"argv","type":"const char*const*","value":["basename","/opt/ibm-fhir-server/bootstrap.sh"]}]}
        """#

    static let tracee06Event = TraceEvent(
        timestamp: 1_631_242_658_000_505_000, processId: 22, threadId: 22, parentProcessId: 1,
        hostProcessId: 3_704_142, hostThreadId: 3_704_142, hostParentProcessId: 3_704_058, userId: 0,
        mountNamespace: 4_026_532_858, pidNamespace: 4_026_532_861, processName: "bash", hostName: "fhir",
        eventId: "59", eventName: "execve", returnValue: 0,
        args: [
            TraceArgument(name: "pathname", type: "const char*", value: .string("/usr/bin/basename")),
            TraceArgument(
                name: "argv", type: "const char*const*",
                value: .strings(["basename", "/opt/ibm-fhir-server/bootstrap.sh"])),
        ])

    /// The first event of the slides' `jq | bat` listing: the numbered lines after `STDIN` up to
    /// the closing brace, numbers stripped. Nil when the slides are not beside the package.
    static func slidesSample() throws -> String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("../shared/seed/graduation-project-slides.txt").standardized.path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "STDIN" }) else {
            return nil
        }
        var json: [String] = []
        for line in lines[(start + 1)...] {
            guard let space = line.firstIndex(of: " "), Int(line[..<space]) != nil else { break }
            let text = String(line[line.index(after: space)...])
            json.append(text)
            if text == "}" { break }
        }
        return json.joined(separator: "\n")
    }

    @Test func readsTraceeV06() throws {
        #expect(try TraceeJSONReader.event(fromLine: Self.tracee06Line) == Self.tracee06Event)
        guard let sample = try Self.slidesSample() else { return }  // only the embedded line off this machine
        #expect(sample.hasPrefix("{") && sample.hasSuffix("}") && sample.contains("\"eventName\": \"execve\""))
        #expect(try TraceeJSONReader.event(fromLine: sample, lineNumber: 1) == Self.tracee06Event)
    }

    @Test func badLinesAreReportedAndSkipped() throws {
        let lines = [
            Self.tracee06Line,  // 1
            "not JSON at all",  // 2
            #"[{"eventName":"execve"}]"#,  // 3
            #"{"eventId":"59","processName":"bash"}"#,  // 4
            #"{"eventName":"execve","args":{"name":"pathname"}}"#,  // 5
            "",  // 6: blank, neither an event nor an error
            #"{"eventName":"execve","processId":-1}"#,  // 7
            #"{"eventName":"execve","args":["pathname"]}"#,  // 8
            #"{"eventName":"execve","timestamp":1,"#,  // 9: cut off mid-write
            #"{"eventName":59}"#,  // 10
            Self.laterTraceeLine,  // 11, with no newline after it
        ]
        let path = try Self.temporaryFile(lines.joined(separator: "\n"))
        defer { unlink(path) }
        var errors: [TraceeJSONError] = []
        var names: [String] = []
        let counts = try TraceeJSONReader.forEach(path: path, onError: { errors.append($0) }) {
            names.append($0.eventName)
        }
        #expect(names == ["execve", "security_socket_connect"])
        #expect(counts == TraceeJSONReader.LineCounts(events: 2, errors: 8))
        #expect(errors.map(\.lineNumber) == [2, 3, 4, 5, 7, 8, 9, 10])
        let messages = errors.map(\.message)
        #expect(messages[0].hasPrefix("not JSON: "))
        #expect(messages[1] == "not an event: an array, not an object")
        #expect(messages[2] == "not an event: no eventName")
        #expect(messages[3] == "args is an object, not an array")
        #expect(messages[4] == "processId is -1, not a whole number that fits UInt32")
        #expect(messages[5] == "argument 1 is a string, not an object")
        #expect(messages[6].hasPrefix("not JSON: "))
        #expect(messages[7] == "eventName is a number, not a string")
        #expect(errors[0].description.hasPrefix("line 2: not JSON"))

        #expect(throws: TraceeJSONError(lineNumber: 42, message: "not an event: no eventName")) {
            try TraceeJSONReader.event(fromLine: Array(#"{"eventId":"1"}"#.utf8), lineNumber: 42)
        }
    }

    @Test func anErrorFromTheBodyStopsTheReading() throws {
        struct Enough: Error {}
        let path = try Self.temporaryFile(Array(repeating: Self.tracee06Line, count: 5).joined(separator: "\n") + "\n")
        defer { unlink(path) }
        var seen = 0
        #expect(throws: Enough.self) {
            try TraceeJSONReader.forEach(path: path, onError: { _ in }) { _ in
                seen += 1
                if seen == 2 { throw Enough() }
            }
        }
        #expect(seen == 2)
        #expect(throws: SensorConfigurationError.self) {
            try TraceeJSONReader.forEach(path: path + ".missing", onError: { _ in }) { _ in }
        }
    }
}
