import Foundation
import Sensor
import Testing
import KernelTestSupport

/// A trace running on its own thread, its JSON lines read back through a pipe. Only lines
/// containing `marker` are parsed and kept, so a busy machine (a benchmark storm in another
/// container) cannot fill memory or disk.
final class BackgroundTrace: @unchecked Sendable {
    let session: TraceSession
    private let writeEnd: Int32
    private let traced = DispatchSemaphore(value: 0)
    private let drained = DispatchSemaphore(value: 0)
    private var result: Result<TraceReport, Error>?
    private var kept: [[String: Any]] = []
    private var malformed: [String] = []

    init(_ configuration: SensorConfiguration, marker: String = "") throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SensorConfigurationError(description: "pipe failed") }
        let readEnd = fds[0]
        writeEnd = fds[1]
        let sensor = try Sensor(configuration: configuration)
        session = TraceSession(sensor: sensor, format: .json, fileDescriptor: writeEnd)
        let needle = Data(marker.utf8)
        Thread.detachNewThread { [self] in
            let input = FileHandle(fileDescriptor: readEnd, closeOnDealloc: true)
            try? JSONLines.forEach(in: input) { line in
                guard needle.isEmpty || line.firstRange(of: needle) != nil else { return }
                if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] {
                    kept.append(object)
                } else {
                    malformed.append(String(decoding: line, as: UTF8.self))
                }
            }
            drained.signal()
        }
        Thread.detachNewThread { [self] in
            result = Result { try session.run() }
            traced.signal()
        }
    }

    /// Stops after the events in flight have arrived; returns the report and the kept events.
    func finish() throws -> (TraceReport, [[String: Any]]) {
        Thread.sleep(forTimeInterval: 0.5)
        session.stop()
        traced.wait()
        close(writeEnd)
        drained.wait()
        let report = try result!.get()
        guard malformed.isEmpty else {
            throw SensorConfigurationError(description: "lines that are not JSON objects: \(malformed.prefix(3))")
        }
        return (report, kept)
    }
}

extension Dictionary where Key == String, Value == Any {
    var name: String { self["eventName"] as? String ?? "" }
    /// An argument's value by name.
    func argument(_ name: String) -> Any? {
        (self["args"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["value"]
    }
    var containerName: String? { (self["container"] as? [String: Any])?["name"] as? String }
}
