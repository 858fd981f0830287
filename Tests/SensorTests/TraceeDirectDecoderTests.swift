import Foundation
import HostileRequests
import Testing

@testable import Sensor

/// The direct decoder against the tree path (the JSON module's parser, then the mapping): on
/// recorded lines both give the same event and the direct decoder reads them itself; on every
/// kind of hostile line both give the same result (an event or the same error), whichever
/// path reads it, and nothing crashes or hangs.
@Suite struct TraceeDirectDecoderTests {
    /// 40 lines of `Scripts/benchmarks/bench.sh detect`'s recording of the FHIR container (8 of each of its
    /// five event types), and the lines of the reader's own tests.
    static func recordedLines() throws -> [[UInt8]] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let sample = try String(
            contentsOf: root.appendingPathComponent("fixtures/fhir-trace-sample.json"), encoding: .utf8)
        let lines = sample.split(separator: "\n").map { Array($0.utf8) }
        #expect(lines.count == 40)
        return lines
            + [TraceeJSONReaderTests.laterTraceeLine, TraceeJSONReaderTests.tracee06Line].map { Array($0.utf8) }
    }

    /// Both paths on one line, with a decoder that has seen the lines before (its caches in use).
    static func agree(
        _ line: [UInt8], _ decoder: inout TraceeDirectDecoder, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        line.withUnsafeBytes { bytes in
            let direct = TraceeJSONReader.decode(bytes, lineNumber: 7, decoder: &decoder)
            let tree = TraceeJSONReader.decodeWithTree(bytes, lineNumber: 7)
            #expect(direct == tree, "\(String(decoding: line, as: UTF8.self))", sourceLocation: sourceLocation)
        }
    }

    @Test func recordedLinesReadDirectlyAsTheTreeReadsThem() throws {
        var decoder = TraceeDirectDecoder()
        for line in try Self.recordedLines() {
            let direct = line.withUnsafeBytes { decoder.event($0) }
            let tree = line.withUnsafeBytes { TraceeJSONReader.decodeWithTree($0, lineNumber: 1) }
            #expect(direct != nil, "the direct decoder reads recorded lines itself")
            #expect(direct.map { .success($0) } == tree)
        }
        // What JSONEventWriter writes (every argument kind, a host and a container process).
        let out = OutputBuffer(capacity: 1 << 20)
        let (resolver, cgroup, _) = try JSONEventWriterTests.fakeHierarchy()
        var writer = JSONEventWriter(bootTimeOffset: 1, containers: resolver)
        for record in JSONEventWriterTests.records(containerCgroup: cgroup) {
            record.withEvent { writer.write($0, to: out) }
        }
        let written = out.bytes.split(separator: 0x0A).map(Array.init)
        #expect(written.count == JSONEventWriterTests.records(containerCgroup: cgroup).count)
        var escaped = 0
        for line in written {
            // A line with an escape (the writer's record of a process named `we"ird\na\tme`)
            // goes to the tree parser; every other one is read directly.
            if line.contains(UInt8(ascii: "\\")) {
                escaped += 1
            } else {
                #expect(line.withUnsafeBytes { decoder.event($0) } != nil, "\(String(decoding: line, as: UTF8.self))")
            }
            Self.agree(line, &decoder)
        }
        #expect(escaped == 1)
    }

    /// A whole file read with the direct decoder gives the tree path's events and errors, and
    /// lines longer than the read buffer (grown to hold them) split as in a large buffer.
    @Test func filesReadAlikeWhateverTheBuffer() throws {
        let lines = try Self.recordedLines().map { String(decoding: $0, as: UTF8.self) }
        let text = (lines + ["", "not json", #"{"eventName":"close","#] + lines.prefix(3)).joined(separator: "\n")
        let path = try TraceeJSONReaderTests.temporaryFile(text)
        defer { unlink(path) }
        func read(_ decoding: TraceeJSONReader.LineDecoding) throws -> (
            [TraceEvent], [TraceeJSONError], TraceeJSONReader.LineCounts
        ) {
            var events: [TraceEvent] = []
            var errors: [TraceeJSONError] = []
            let counts = try TraceeJSONReader.forEach(path: path, decoding: decoding, onError: { errors.append($0) }) {
                events.append($0)
            }
            return (events, errors, counts)
        }
        let (direct, directErrors, directCounts) = try read(.direct)
        let (tree, treeErrors, treeCounts) = try read(.tree)
        #expect(direct == tree && directErrors == treeErrors && directCounts == treeCounts)
        #expect(directCounts == TraceeJSONReader.LineCounts(events: lines.count + 3, errors: 2))
        #expect(directErrors.map(\.lineNumber) == [lines.count + 2, lines.count + 3])

        let handle = try #require(FileHandle(forReadingAtPath: path))
        defer { try? handle.close() }
        var small: [[UInt8]] = []
        try TraceLineChunks.forEach(fileDescriptor: handle.fileDescriptor, chunkSize: 100) { small.append(Array($0)) }
        #expect(small == text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.utf8) })
    }

    /// Every prefix of recorded lines (a file cut off mid-write), and every byte replaced by
    /// each byte that changes JSON's meaning or its encoding.
    @Test func truncatedAndCorruptedLinesAgree() async throws {
        var decoder = TraceeDirectDecoder()
        let lines = try Self.recordedLines()
        for line in [lines[0], lines[41]] {
            for end in 0...line.count { Self.agree(Array(line[..<end]), &decoder) }
            await Task.yield()
        }
        let replacements: [UInt8] = [
            0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x5D, 0x3A, 0x2C, 0x00, 0x1F, 0x80, 0xC3, 0xFF, 0x39, 0x2D, 0x65, 0x2E, 0x6E,
            0x20,
        ]
        for line in [lines[3], lines[40]] {
            for index in line.indices {
                for byte in replacements where line[index] != byte {
                    var mutated = line
                    mutated[index] = byte
                    Self.agree(mutated, &decoder)
                }
            }
            await Task.yield()
        }
    }

    /// Random edits of recorded lines (insert, delete, replace, duplicate a span), seeded.
    @Test func randomlyEditedLinesAgree() async throws {
        var decoder = TraceeDirectDecoder()
        let lines = try Self.recordedLines()
        var random = SeededRandom(seed: 15)  // the same edits every run
        for round in 0..<4000 {
            var line = lines[Int(random.next() % UInt64(lines.count))]
            for _ in 0..<(1 + random.next() % 3) {
                let index = Int(random.next() % UInt64(line.count))
                switch random.next() % 4 {
                case 0: line.insert(UInt8(truncatingIfNeeded: random.next()), at: index)
                case 1: line.remove(at: index)
                case 2: line[index] = UInt8(truncatingIfNeeded: random.next())
                default:
                    let end = min(line.count, index + Int(random.next() % 40))
                    line.insert(contentsOf: line[index..<end], at: index)
                }
            }
            Self.agree(line, &decoder)
            if round % 500 == 0 { await Task.yield() }
        }
    }

    @Test func hostileLinesAgree() throws {
        let base = #"{"eventId":"257","eventName":"openat","processId":1,"#
        let lines: [String] = [
            // huge and odd numbers
            base + #""timestamp":123456789012345678901234567890}"#,
            base + #""timestamp":18446744073709551615,"returnValue":-9223372036854775808}"#,
            base + #""returnValue":-9223372036854775809}"#,
            base + #""returnValue":-0,"threadId":-0}"#,
            base + #""userId":4294967296}"#,
            base + #""userId":1e3,"threadId":1.0}"#,
            base + #""userId":"12","threadId":"+5"}"#,
            base + #""userId":01}"#,
            base
                + #""args":[{"name":"a","type":"int","value":123456789012345678901234567890},{"name":"b","type":"int","value":-0},{"name":"c","type":"u64","value":-5},{"name":"d","type":"int","value":1.5e300},{"name":"e","type":"int","value":18446744073709551615},{"name":"f","type":"int","value":-9223372036854775808},{"name":"g","type":"int","value":-18446744073709551615}]}"#,
            base
                + #""args":[{"name":"mode","type":"mode_t","value":-1},{"name":"flags","type":"int","value":9223372036854775808}]}"#,
            // escapes, good and bad
            base + #""processName":"a\"b\\c\/d\u00e9\ud83d\ude00"}"#,
            base + #""processName":"bad \x escape"}"#,
            base + #""processName":"\u12"}"#,
            base + #""processName":"\ud800 alone"}"#,
            base + #""args":[{"name":"pathname","type":"const char*","value":"/tmp/\n\t"}]}"#,
            base + #""ev\u0065ntName":"close"}"#,
            // deep nesting, in ignored members and in arguments
            base + #""metadata":"# + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}",
            base + #""metadata":"# + String(repeating: "[", count: 60) + String(repeating: "]", count: 60) + "}",
            base + #""metadata":"# + String(repeating: #"{"a":"#, count: 70) + "1" + String(repeating: "}", count: 70)
                + "}",
            base
                + #""args":[{"name":"argv","type":"[]string","value":[["x"]]},{"name":"o","type":"x","value":{"a":{"b":1}}}]}"#,
            base + #""metadata":"# + String(repeating: "[", count: 5000) + "}",
            // duplicates at every level
            base + #""processId":2}"#,
            base + #""argsNum":1,"argsNum":2}"#,
            base + #""container":{"id":"c","id":"d"}}"#,
            base + #""args":[{"name":"a","name":"b","type":"int","value":1}]}"#,
            base + #""args":[{"name":"a","type":"int","value":{"k":"1","k":"2"}}]}"#,
            base + #""metadata":{"x":{"y":1,"y":2}}}"#,
            // unknown event names, arguments before the name, values before their name
            #"{"eventName":"no_such_event","args":[{"name":"x","type":"int","value":null},{"value":7}]}"#,
            #"{"args":[{"name":"mode","type":"mode_t","value":5}],"eventName":"openat"}"#,
            #"{"eventName":"openat","args":[{"value":5,"type":"mode_t","name":"mode"},{"value":null,"name":"dirfd"}]}"#,
            #"{"eventName":"","eventId":null,"container":null,"containerId":null,"args":null}"#,
            #"{"eventName":"openat","container":{},"containerId":"","hostName":null}"#,
            #"{"eventName":"openat","containerId":"abc","containerName":"n","containerImage":"i"}"#,
            #"{"eventName":"openat","container":{"id":7,"name":true}}"#,
            #"{"eventName":"openat","args":[{"name":"argv","type":"const char**","value":["a",1,null,true,false,-2.5]}]}"#,
            #"{"eventName":"connect","args":[{"name":"addr","type":"struct sockaddr*","value":{"sa_family":"AF_INET","sin_port":80,"z":null}}]}"#,
            #"{"eventName":"openat","args":[{"name":"envp","type":"const char*const*","value":null},{"name":"sa","type":"struct sockaddr*","value":null},{"name":"q","type":"[]string","value":null},{"name":"r","type":"char*","value":null},{}]}"#,
            // not events, whitespace, trailing text
            "   {  \"eventName\" :  \"close\" ,\r\n \"args\" : [ ] }  \r",
            #"{"eventName":"close"} {"#,
            #"{"eventName":"close"}x"#,
            #"{"eventName":"close",}"#,
            #"{}"#, "[]", "null", "", " ", #"{"eventName":nul}"#, #"{"eventName":"close""#, #"{"eventName""#,
        ]
        var decoder = TraceeDirectDecoder()
        for line in lines { Self.agree(Array(line.utf8), &decoder) }
        // Invalid UTF-8 in every kind of string, and bytes outside strings.
        let invalid: [[UInt8]] = [[0xC3], [0xFF, 0xFE], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]]
        for bytes in invalid {
            for template in [
                #"{"eventName":"openat","processName":"@"}"#, #"{"eventName":"@"}"#, #"{"@":1,"eventName":"openat"}"#,
                #"{"eventName":"openat","args":[{"name":"p","type":"const char*","value":"/tmp/@/aaaaaaaaaaaaaaaaaaaa"}]}"#,
                #"{"eventName":"openat","metadata":["@"]}"#, #"{"eventName":"openat"}@"#,
            ] {
                let parts = template.split(separator: "@", omittingEmptySubsequences: false).map { Array($0.utf8) }
                Self.agree(parts[0] + bytes + parts[1], &decoder)
            }
        }
        // Valid UTF-8 outside ASCII reads directly.
        let accented = Array(
            #"{"eventName":"openat","processName":"café","args":[{"name":"pathname","type":"const char*","value":"/tmp/naïve-ünïcode-path"}]}"#
                .utf8)
        #expect(accented.withUnsafeBytes { decoder.event($0) }?.processName == "café")
        Self.agree(accented, &decoder)
    }

    /// The caches never carry one line's values into another: alternating containers, hosts and
    /// process names, and the same strings at other lengths.
    @Test func cachesFollowTheLines() throws {
        var decoder = TraceeDirectDecoder()
        let lines = [
            #"{"eventName":"openat","hostName":"a","processName":"p1","container":{"id":"c1","name":"one"}}"#,
            #"{"eventName":"openat","hostName":"ab","processName":"p1","container":{"id":"c1","name":"one!"}}"#,
            #"{"eventName":"openat","hostName":"a","processName":"p2","container":{"id":"c1","name":"one"},"containerId":"c2"}"#,
            #"{"eventName":"openat","hostName":"","processName":"p1","container":{"id":"c1","name":"one"}}"#,
            #"{"eventName":"close","container":{"id":"","name":"one"},"args":[{"name":"fd","type":"int","value":3}]}"#,
            #"{"eventName":"openat","container":{"id":"c1","name":"one"}}"#,
        ]
        for _ in 0..<3 {
            for line in lines {
                let bytes = Array(line.utf8)
                #expect(bytes.withUnsafeBytes { decoder.event($0) } != nil)
                Self.agree(bytes, &decoder)
            }
        }
    }
}
