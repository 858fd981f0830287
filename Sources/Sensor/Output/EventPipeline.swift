import Dispatch

/// What happens to each record on the reading thread: filter, count, write into each output's
/// current buffer, hand full buffers to its writer. A class so the per-event closure captures
/// one reference instead of boxing every piece of state.
final class EventPipeline {
    let filters: [ArgumentFilter]
    let sinks: [OutputSink]
    let counts: UnsafeMutableBufferPointer<UInt64>
    var unknown: UInt64 = 0
    var filtered: UInt64 = 0

    init(session: TraceSession) {
        filters = session.filters
        sinks = session.outputs.map { OutputSink(format: $0.format, writer: $0.writer, sensor: session.sensor) }
        counts = .allocate(capacity: EventTable.byIndex.count)
        counts.initialize(repeating: 0)
    }

    deinit { counts.deallocate() }

    /// How long an event may wait in a part-filled buffer. Buffers are handed to the writer
    /// when full, which at a quiet trace's rate took until the stop: a user piping
    /// `caduceus trace` to `jq` saw nothing.
    static let flushNanoseconds: UInt64 = 200_000_000
    private var lastFlush = DispatchTime.now().uptimeNanoseconds

    /// Hands each output's part-filled buffer to its writer once `flushNanoseconds` have passed
    /// since the last time (called between passes over the ring, so never inside an event).
    func flushIfDue() {
        let now = DispatchTime.now().uptimeNanoseconds
        guard now &- lastFlush >= Self.flushNanoseconds else { return }
        lastFlush = now
        for sink in sinks { sink.flush() }
    }

    @inline(__always)
    func handle(_ event: RawEvent) {
        if !filters.isEmpty && !filters.allSatisfy({ $0.accepts(event) }) {
            filtered += 1
            return
        }
        if let slot = EventTable.slot(Int32(bitPattern: event.header.event_id)) {
            counts[slot] += 1
        } else {
            unknown += 1
        }
        for sink in sinks { sink.write(event) }
    }

    func finish(statistics: SensorStatistics) throws -> TraceReport {
        var named: [(name: String, count: UInt64)] = []
        for (slot, count) in counts.enumerated() where count > 0 {
            named.append((EventTable.byIndex[slot]?.name ?? "unknown", count))
        }
        if unknown > 0 { named.append(("unknown", unknown)) }
        named.sort { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
        let written = named.reduce(0) { $0 + $1.count }
        var bytes: UInt64 = 0
        for sink in sinks {
            try sink.finish(Recording.Totals(events: written, lost: statistics.lost, filtered: filtered))
            bytes += sink.writer.bytesWritten
        }
        return TraceReport(
            counts: named, eventsWritten: written, eventsFiltered: filtered, statistics: statistics, bytesWritten: bytes
        )
    }
}

/// One output of a pipeline: its format's writer and the buffer being filled.
final class OutputSink {
    let format: TraceFormat
    let writer: AsyncFileWriter
    var buffer: OutputBuffer
    var json: JSONEventWriter
    var recording: RecordingEncoder
    let table: TableEventWriter
    /// Room kept free in the buffer: the largest event this format can write.
    let reserve: Int

    init(format: TraceFormat, writer: AsyncFileWriter, sensor: Sensor) {
        self.format = format
        self.writer = writer
        let containers = sensor.containers
        json = JSONEventWriter(bootTimeOffset: sensor.bootTimeOffset, containers: containers)
        recording = RecordingEncoder { containers.container(cgroupID: $0) }
        table = TableEventWriter(bootTimeOffset: sensor.bootTimeOffset, containers: containers)
        reserve = format == .record ? RecordingEncoder.maximumEventBytes : JSONEventWriter.maximumEventBytes
        buffer = writer.take()
        switch format {
        case .table: buffer.append(Array(TableEventWriter.headerLine.utf8))
        case .record: buffer.append(Recording.fileHeader(bootTimeOffset: sensor.bootTimeOffset))
        case .json, .none: break
        }
    }

    @inline(__always)
    func write(_ event: RawEvent) {
        switch format {
        case .record: recording.write(event, to: buffer)
        case .json: json.write(event, to: buffer)
        case .table: buffer.append(Array(table.line(event).utf8))
        case .none: return
        }
        if buffer.remaining < reserve {
            writer.submit(buffer)
            buffer = writer.take()
        }
    }

    /// Hands the buffer to the writer if it holds anything and another buffer is free: with
    /// the output stalled (a paused `jq`), the reader keeps filling this one instead of waiting
    /// for a buffer, as it did before part-filled buffers were flushed.
    func flush() {
        guard buffer.count > 0, let next = writer.takeIfFree() else { return }
        writer.submit(buffer)
        buffer = next
    }

    /// Writes what is left (a recording's end frame last) and waits for the writes.
    func finish(_ totals: Recording.Totals) throws {
        if format == .record { buffer.append(Recording.endFrame(totals)) }
        writer.submit(buffer)
        try writer.flush()
    }
}
