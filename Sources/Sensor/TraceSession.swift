import Foundation

/// How `caduceus trace` writes events.
public enum TraceFormat: String, Sendable, CaseIterable {
    /// Tracee's JSON, one object per line.
    case json
    /// A readable table.
    case table
    /// Nothing per event: counts only (`caduceus summary` on a live trace).
    case none
}

/// What a finished trace saw.
public struct TraceReport: Sendable {
    /// Events written (after argument filters), by event name, most frequent first.
    public var counts: [(name: String, count: UInt64)]
    public var eventsWritten: UInt64
    public var eventsFiltered: UInt64
    public var statistics: SensorStatistics
    public var bytesWritten: UInt64
}

/// A sensor wired to an output: filters, counts and writes every record on the reading
/// thread, and hands full buffers to an `AsyncFileWriter`.
public final class TraceSession: @unchecked Sendable {
    public let sensor: Sensor
    let format: TraceFormat
    let filters: [ArgumentFilter]
    let writer: AsyncFileWriter?

    public init(sensor: Sensor, format: TraceFormat, fileDescriptor: Int32, filters: [ArgumentFilter] = []) {
        self.sensor = sensor
        self.format = format
        self.filters = filters
        writer = format == .none ? nil : AsyncFileWriter(fileDescriptor: fileDescriptor)
    }

    /// Runs until `stop()`; then flushes everything and returns the report.
    public func run() throws -> TraceReport {
        let pipeline = EventPipeline(session: self)
        let statistics = try sensor.run { pipeline.handle($0) }
        return try pipeline.finish(statistics: statistics)
    }

    public func stop() { sensor.stop() }
}

/// What happens to each record on the reading thread: filter, count, format into the
/// current buffer, hand full buffers to the writer. A class so the per-event closure
/// captures one reference instead of boxing every piece of state.
final class EventPipeline {
    let format: TraceFormat
    let filters: [ArgumentFilter]
    let writer: AsyncFileWriter?
    var json: JSONEventWriter
    let table: TableEventWriter
    var buffer: OutputBuffer?
    let counts: UnsafeMutableBufferPointer<UInt64>
    var unknown: UInt64 = 0
    var filtered: UInt64 = 0

    init(session: TraceSession) {
        format = session.format
        filters = session.filters
        writer = session.writer
        json = JSONEventWriter(bootTimeOffset: session.sensor.bootTimeOffset, containers: session.sensor.containers)
        table = TableEventWriter(bootTimeOffset: session.sensor.bootTimeOffset, containers: session.sensor.containers)
        counts = .allocate(capacity: EventTable.byIndex.count)
        counts.initialize(repeating: 0)
        buffer = writer?.take()
        if format == .table, let buffer { buffer.append(Array(TableEventWriter.headerLine.utf8)) }
    }

    deinit { counts.deallocate() }

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
        guard let current = buffer, let writer else { return }
        switch format {
        case .json: json.write(event, to: current)
        case .table: current.append(Array(table.line(event).utf8))
        case .none: break
        }
        if current.remaining < JSONEventWriter.maximumEventBytes {
            writer.submit(current)
            buffer = writer.take()
        }
    }

    func finish(statistics: SensorStatistics) throws -> TraceReport {
        if let buffer, let writer { writer.submit(buffer) }
        buffer = nil
        try writer?.flush()
        var named: [(name: String, count: UInt64)] = []
        for (slot, count) in counts.enumerated() where count > 0 {
            named.append((EventTable.byIndex[slot]?.name ?? "unknown", count))
        }
        if unknown > 0 { named.append(("unknown", unknown)) }
        named.sort { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
        return TraceReport(
            counts: named, eventsWritten: named.reduce(0) { $0 + $1.count }, eventsFiltered: filtered,
            statistics: statistics, bytesWritten: writer?.bytesWritten ?? 0)
    }
}
