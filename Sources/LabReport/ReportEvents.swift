import Foundation
import JSON
import Sensor

/// Counts from a trace file (`caduceus trace --output`, Tracee's JSON lines): per event name,
/// per container and per second, in one streaming pass.
///
/// Trace files run to gigabytes, so events are not parsed: like ``TraceFileSummary`` (whose
/// line reader this shares), each line is searched for the few members the report needs. Only
/// the counts are kept: memory grows with the number of distinct names, containers and
/// seconds, never with the number of events.
public struct EventStatistics: Sendable {
    /// Events in the file.
    public let total: UInt64
    /// Most frequent first, then by name: what `caduceus summary` prints.
    public let countsByName: [(name: String, count: UInt64)]
    /// Per container (its name, else its short id; "host" outside containers), most events first.
    public let countsByContainer: [(container: String, count: UInt64)]
    /// Events per interval over the file's time span.
    public let timeline: EventTimeline

    /// Reads `path`; a line that is not a trace event is an error naming its line number.
    public init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ReportFileError(path: path, line: nil, message: "cannot be read")
        }
        defer { try? handle.close() }
        var scanner = TraceLineScanner(path: path)
        try JSONLines.forEach(in: handle) { try scanner.consume($0) }
        total = scanner.total
        countsByName = scanner.countsByName.map { ($0.key, $0.value) }.sorted {
            $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0
        }
        countsByContainer = scanner.countsByContainerID
            .map { (scanner.containerNames[$0.key] ?? $0.key, $0.value) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        timeline = EventTimeline(countsPerSecond: scanner.countsPerSecond)
    }

    /// The `limit` most frequent names, and what the rest add up to: how many names, how many events.
    public func topNames(_ limit: Int) -> (top: [(name: String, count: UInt64)], otherNames: Int, otherCount: UInt64) {
        let top = Array(countsByName.prefix(limit))
        let rest = countsByName.dropFirst(limit)
        return (top, rest.count, rest.reduce(0) { $0 + $1.count })
    }
}

/// Events per time bucket. The bucket width adapts to the span so that a ten-second demo and
/// a day-long trace both draw as a readable curve: one second while the span fits in
/// ``maximumBuckets`` seconds, then the next round width (2 s, 5 s, 10 s … 1 h, 1 day …).
public struct EventTimeline: Sendable, Equatable {
    public static let maximumBuckets = 240
    /// The first bucket's start, seconds since the epoch (a multiple of the width).
    public let startSeconds: Int64
    public let intervalSeconds: Int64
    /// Events in each bucket, in time order; empty when the file has no events.
    public let counts: [UInt64]

    static let roundWidths: [Int64] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    ]

    public init(countsPerSecond: [Int64: UInt64]) {
        guard let first = countsPerSecond.keys.min(), let last = countsPerSecond.keys.max() else {
            self.init(startSeconds: 0, intervalSeconds: 1, counts: [])
            return
        }
        let span = last - first + 1
        var width = Self.roundWidths.first { (span + $0 - 1) / $0 <= Int64(Self.maximumBuckets) } ?? 86400
        while (span + width - 1) / width > Int64(Self.maximumBuckets) { width *= 2 }  // spans beyond 240 days
        // Aligned to the width, so that buckets start on round clock times.
        let start = first - ((first % width) + width) % width
        var counts = [UInt64](repeating: 0, count: Int((last - start) / width) + 1)
        for (second, count) in countsPerSecond { counts[Int((second - start) / width)] += count }
        self.init(startSeconds: start, intervalSeconds: width, counts: counts)
    }

    public init(startSeconds: Int64, intervalSeconds: Int64, counts: [UInt64]) {
        self.startSeconds = startSeconds
        self.intervalSeconds = intervalSeconds
        self.counts = counts
    }
}

/// The per-line work of ``EventStatistics``: finds the members by their exact key text, as
/// the writer emits them (`"eventName":"`), which an escaped string value cannot contain.
/// It works on the line's raw bytes with memchr and memcmp: the generic collection searches
/// made reading a trace several times slower.
struct TraceLineScanner {
    let path: String
    var lineNumber = 0
    var total: UInt64 = 0
    var countsByName: [String: UInt64] = [:]
    var countsByContainerID: [String: UInt64] = [:]
    /// A readable name per container id, looked up once per container.
    var containerNames: [String: String] = [:]
    var countsPerSecond: [Int64: UInt64] = [:]
    /// The previous line's container id, bytes and key: consecutive events mostly share one,
    /// and comparing bytes is cheaper than making a string of them.
    private var lastContainer: (bytes: [UInt8], key: String)?

    static let eventNameKey = Array("\"eventName\":\"".utf8)
    static let timestampKey = Array("\"timestamp\":".utf8)
    static let containerIDKey = Array("\"containerId\":\"".utf8)
    static let containerObjectKey = Array("\"container\":{".utf8)
    static let nameKey = Array("\"name\":\"".utf8)
    static let quote = Int32(UInt8(ascii: "\""))

    init(path: String) { self.path = path }

    mutating func consume(_ line: Data.SubSequence) throws {
        lineNumber += 1
        try line.withUnsafeBytes { try consume(bytes: $0) }
    }

    private mutating func consume(bytes line: UnsafeRawBufferPointer) throws {
        guard let first = line.firstIndex(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { return }  // blank
        guard line[first] == UInt8(ascii: "{") else { throw failure("not a JSON object") }
        guard let nameStart = Self.end(of: Self.eventNameKey, in: line, from: first),
            let nameEnd = Self.index(of: Self.quote, in: line, from: nameStart)
        else { throw failure("no eventName: not an event of caduceus trace") }
        guard let timestampStart = Self.end(of: Self.timestampKey, in: line, from: first),
            let nanoseconds = Self.integer(in: line, from: timestampStart)
        else { throw failure("no numeric timestamp: not an event of caduceus trace") }

        total += 1
        countsByName[
            String(decoding: UnsafeRawBufferPointer(rebasing: line[nameStart..<nameEnd]), as: UTF8.self), default: 0] +=
            1
        countsPerSecond[Int64(nanoseconds / 1_000_000_000), default: 0] += 1

        var id = UnsafeRawBufferPointer(start: nil, count: 0)
        if let idStart = Self.end(of: Self.containerIDKey, in: line, from: first),
            let idEnd = Self.index(of: Self.quote, in: line, from: idStart)
        {
            id = UnsafeRawBufferPointer(rebasing: line[idStart..<idEnd])
        }
        if let last = lastContainer, last.bytes.elementsEqual(id) {
            countsByContainerID[last.key, default: 0] += 1
            return
        }
        let containerID = String(decoding: id, as: UTF8.self)
        let key = containerID.isEmpty ? "host" : containerID
        if countsByContainerID[key] == nil {
            containerNames[key] =
                containerID.isEmpty ? "host" : Self.containerName(in: line) ?? String(containerID.prefix(12))
        }
        countsByContainerID[key, default: 0] += 1
        lastContainer = (Array(id), key)
    }

    func failure(_ message: String) -> ReportFileError {
        ReportFileError(path: path, line: lineNumber, message: message)
    }

    /// The offset just past the first occurrence of `key` at or after `from`.
    static func end(of key: [UInt8], in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard let base = bytes.baseAddress, from < bytes.count else { return nil }
        // memchr for the key's first byte, memcmp for the rest (Glibc's memmem is not visible to Swift).
        return key.withUnsafeBytes { needle -> Int? in
            guard let needleBase = needle.baseAddress, needle.count > 0 else { return from }
            var start = from
            while bytes.count - start >= needle.count,
                let found = memchr(base + start, Int32(needle[0]), bytes.count - start - needle.count + 1)
            {
                let offset = base.distance(to: UnsafeRawPointer(found))
                if memcmp(found, needleBase, needle.count) == 0 { return offset + needle.count }
                start = offset + 1
            }
            return nil
        }
    }

    /// The offset of the first `byte` at or after `from`.
    static func index(of byte: Int32, in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard let base = bytes.baseAddress, from < bytes.count,
            let found = memchr(base + from, byte, bytes.count - from)
        else {
            return nil
        }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// The unsigned decimal starting at `from`; nil when there is none or it overflows.
    static func integer(in bytes: UnsafeRawBufferPointer, from: Int) -> UInt64? {
        var value: UInt64 = 0
        var index = from
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(UInt64(bytes[index] - 0x30))
            if overflow1 || overflow2 { return nil }
            value = sum
            index += 1
        }
        return index > from ? value : nil
    }

    /// `container.name`, decoded (a name may hold escapes); nil when absent or empty.
    static func containerName(in line: UnsafeRawBufferPointer) -> String? {
        guard let objectEnd = end(of: containerObjectKey, in: line, from: 0),
            let nameStart = end(of: nameKey, in: line, from: objectEnd)
        else { return nil }
        // The string runs to the first quote not escaped by a backslash.
        var index = nameStart
        var escaped = false
        while index < line.count {
            let byte = line[index]
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                let name = (try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: line[(nameStart - 1)...index])))?
                    .stringValue
                return name?.isEmpty == false ? name : nil
            }
            index += 1
        }
        return nil
    }
}
