import Foundation

/// How `caduceus trace` writes events.
public enum TraceFormat: String, Sendable, CaseIterable {
    /// Tracee's JSON, one object per line.
    case json
    /// A readable table.
    case table
    /// A compact binary recording (`Recording`): the kernel's records as they come, for
    /// `caduceus trace --input` to turn into the same JSON later.
    case record
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

/// A sensor wired to its outputs: filters, counts and writes every record on the reading
/// thread, and hands full buffers to an `AsyncFileWriter` per output.
public final class TraceSession: @unchecked Sendable {
    public let sensor: Sensor
    let outputs: [(format: TraceFormat, writer: AsyncFileWriter)]
    let filters: [ArgumentFilter]

    public convenience init(sensor: Sensor, format: TraceFormat, fileDescriptor: Int32, filters: [ArgumentFilter] = [])
    {
        self.init(sensor: sensor, outputs: format == .none ? [] : [(format, fileDescriptor)], filters: filters)
    }

    /// Every event to each output (a JSON file and a recording of the same events, say).
    public init(sensor: Sensor, outputs: [(format: TraceFormat, fileDescriptor: Int32)], filters: [ArgumentFilter] = [])
    {
        self.sensor = sensor
        self.outputs = outputs.filter { $0.format != .none }.map {
            ($0.format, AsyncFileWriter(fileDescriptor: $0.fileDescriptor))
        }
        self.filters = filters
    }

    /// Runs until `stop()`; then flushes everything and returns the report.
    public func run() throws -> TraceReport {
        let pipeline = EventPipeline(session: self)
        let statistics = try sensor.run({ pipeline.handle($0) }, afterPass: { pipeline.flushIfDue() })
        return try pipeline.finish(statistics: statistics)
    }

    public func stop() { sensor.stop() }
}
