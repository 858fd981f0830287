import Foundation
import Sensor
import Testing

/// What the kernel tests need: root, BPF and a Docker engine with the test image. Off CI
/// they are skipped when something is missing; with CI=true they run and fail, saying what.
enum SensorTestEnvironment {
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static let image = "caduceus-testbox:latest"

    /// Why the tests cannot run here, or nil.
    static let missing: String? = {
        if geteuid() != 0 { return "the sensor tests need root (run Scripts/test.sh as root)" }
        if (try? run(["docker", "image", "inspect", image])) == nil {
            return "Docker with the image \(image) is needed: run Scripts/docker.sh start && Scripts/docker.sh testbox"
        }
        return nil
    }()

    static var shouldRun: Bool { isCI || missing == nil }

    static func require() throws {
        if let missing { throw SensorConfigurationError(description: missing) }
    }

    /// Runs a command to completion; throws with its output when it fails.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw SensorConfigurationError(description: "\(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(text)")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

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

/// A TCP listener on 127.0.0.1 that accepts one connection and closes it.
final class LoopbackListener: @unchecked Sendable {
    let port: UInt16
    private let socketFD: Int32
    private let acceptedOne = DispatchSemaphore(value: 0)

    init() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(listening, raw, length) == 0, listen(listening, 4) == 0 else { return -1 }
                return getsockname(listening, raw, &length)
            }
        }
        guard bound == 0 else { throw SensorConfigurationError(description: "cannot listen on 127.0.0.1") }
        socketFD = listening
        port = UInt16(bigEndian: address.sin_port)
        let signal = acceptedOne
        Thread.detachNewThread {
            let client = accept(listening, nil, nil)
            if client >= 0 {
                close(client)
                signal.signal()
            }
        }
    }

    /// Whether a client connected (waits up to a second).
    var accepted: Bool { acceptedOne.wait(timeout: .now() + 1) == .success }

    deinit { close(socketFD) }
}

extension Dictionary where Key == String, Value == Any {
    var name: String { self["eventName"] as? String ?? "" }
    /// An argument's value by name.
    func argument(_ name: String) -> Any? {
        (self["args"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["value"]
    }
    var containerName: String? { (self["container"] as? [String: Any])?["name"] as? String }
}
