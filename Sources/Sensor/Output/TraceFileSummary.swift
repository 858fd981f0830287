import Foundation

/// Events per name in a JSON-lines trace file, counted without parsing whole events
/// (trace files run to gigabytes): the `jq '.eventName' | awk` pipeline, sorted.
public struct TraceFileSummary: Sendable {
    /// Most frequent first, then by name.
    public let counts: [(name: String, count: UInt64)]
    /// Lines that are not events (no `eventName`).
    public let skippedLines: Int

    public init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SensorConfigurationError(description: "cannot read \(path)")
        }
        defer { try? handle.close() }
        var counts: [String: UInt64] = [:]
        var skipped = 0
        let key = Array("\"eventName\":\"".utf8)
        func consume(line: Data.SubSequence) {
            guard !line.isEmpty else { return }
            guard let range = line.firstRange(of: key),
                let end = line[range.upperBound...].firstIndex(of: UInt8(ascii: "\""))
            else {
                skipped += 1
                return
            }
            counts[String(decoding: line[range.upperBound..<end], as: UTF8.self), default: 0] += 1
        }
        try JSONLines.forEach(in: handle, consume)
        self.counts = counts.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        skippedLines = skipped
    }
}

/// Reads a file or pipe of JSON lines in large chunks and hands each line (without its
/// newline) to `body`; a last line without a newline counts too. An error thrown by `body`
/// stops the reading.
public enum JSONLines {
    public static func forEach(in handle: FileHandle, _ body: (Data.SubSequence) throws -> Void) throws {
        var carry = Data()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            carry.append(chunk)
            // memchr over the bytes: Data's generic firstIndex(of:) reads one byte at a time and
            // was a sixth of reading a trace file back.
            let consumed = try carry.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                var start = 0
                while start < raw.count, let newline = memchr(base + start, 0x0A, raw.count - start) {
                    let end = base.distance(to: UnsafeRawPointer(newline))
                    try body(carry[(carry.startIndex + start)..<(carry.startIndex + end)])
                    start = end + 1
                }
                return start
            }
            carry = Data(carry[(carry.startIndex + consumed)...])
        }
        if !carry.isEmpty { try body(carry[...]) }
    }
}
