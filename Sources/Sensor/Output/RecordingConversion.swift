import Foundation

/// A recording turned back into what `caduceus trace` would have written live: Tracee's JSON
/// byte for byte (the same `JSONEventWriter`, the recording's boot time and container frames
/// instead of the live ones), or counts per event for `caduceus summary`.
public enum RecordingConversion {
    /// What a conversion wrote.
    public struct Result: Sendable {
        /// Events written as JSON.
        public var eventsWritten: UInt64
        /// Events the filters left out.
        public var eventsFiltered: UInt64
        /// Bytes of JSON written.
        public var bytesWritten: UInt64
        /// The end frame's counters (what the trace that wrote the recording said).
        public var totals: Recording.Totals
    }

    /// Writes every event of `reader` as JSON lines to `fileDescriptor`, keeping those every
    /// filter accepts. On a fault in the recording the events before it are written, then
    /// the `RecordingError` is thrown.
    public static func writeJSON(from reader: RecordingReader, to fileDescriptor: Int32, filters: [ArgumentFilter] = [])
        throws -> Result
    {
        let recorded = reader
        var json = JSONEventWriter(bootTimeOffset: reader.bootTimeOffset) { cgroup in
            recorded.containers[cgroup] ?? nil
        }
        let out = OutputBuffer(capacity: 8 << 20)
        var result = Result(
            eventsWritten: 0, eventsFiltered: 0, bytesWritten: 0, totals: .init(events: 0, lost: 0, filtered: 0))
        func flush() throws {
            var offset = 0
            while offset < out.count {
                let written = write(fileDescriptor, out.storage + offset, out.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw RecordingError("writing the JSON failed: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
            result.bytesWritten += UInt64(out.count)
            out.count = 0
        }
        do {
            try reader.forEachEvent { event in
                if !filters.isEmpty && !filters.allSatisfy({ $0.accepts(event) }) {
                    result.eventsFiltered += 1
                    return
                }
                if out.remaining < JSONEventWriter.bound(recordBytes: event.bytes.count) { try flush() }
                json.write(event, to: out)
                result.eventsWritten += 1
            }
        } catch {
            try flush()
            throw error
        }
        try flush()
        result.totals = reader.totals!
        return result
    }

    /// Events per name in a recording, most frequent first (as `TraceFileSummary` counts JSON).
    public static func counts(from reader: RecordingReader) throws -> [(name: String, count: UInt64)] {
        var bySlot = [UInt64](repeating: 0, count: EventTable.byIndex.count)
        var unknown: [Int32: UInt64] = [:]
        try reader.forEachEvent { event in
            let id = Int32(bitPattern: event.header.event_id)
            if let slot = EventTable.slot(id), EventTable.byIndex[slot] != nil {
                bySlot[slot] += 1
            } else {
                unknown[id, default: 0] += 1
            }
        }
        var named: [(name: String, count: UInt64)] = []
        for (slot, count) in bySlot.enumerated() where count > 0 {
            named.append((EventTable.byIndex[slot]!.name, count))
        }
        for (id, count) in unknown { named.append(("unknown_\(id)", count)) }
        return named.sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
    }

    /// Whether the file at `path` starts with a recording's magic (else it is taken for JSON lines).
    public static func isRecording(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: Recording.magic.count)
        return read(fd, &magic, magic.count) == magic.count && magic == Recording.magic
    }
}
