import Foundation
import Sensor

/// What the kernel tests need: root, BPF and a Docker engine with the test image. Off CI
/// they are skipped when something is missing; with CI=true they run and fail, saying what.
public enum SensorTestEnvironment {
    public static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
    public static let image = "caduceus-testbox:latest"

    /// Why the tests cannot run here, or nil.
    public static let missing: String? = {
        if geteuid() != 0 { return "the sensor tests need root (run Scripts/test.sh as root)" }
        if (try? run(["docker", "image", "inspect", image])) == nil {
            return "Docker with the image \(image) is needed: run Scripts/docker.sh start && Scripts/docker.sh testbox"
        }
        return nil
    }()

    public static var shouldRun: Bool { isCI || missing == nil }

    public static func require() throws {
        if let missing { throw SensorConfigurationError(description: missing) }
    }

    /// Runs a command to completion; throws with its output when it fails.
    @discardableResult
    public static func run(_ arguments: [String]) throws -> String {
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

/// A TCP listener on 127.0.0.1 that accepts every connection and hangs up at once (the far
/// end of a connect test, or of a reverse shell, which then reads end-of-file and exits).
public final class LoopbackListener: @unchecked Sendable {
    public let port: UInt16
    private let socketFD: Int32
    private let acceptedOne = DispatchSemaphore(value: 0)

    public init() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(listening, raw, length) == 0, listen(listening, 16) == 0 else { return -1 }
                return getsockname(listening, raw, &length)
            }
        }
        guard bound == 0 else { throw SensorConfigurationError(description: "cannot listen on 127.0.0.1") }
        socketFD = listening
        port = UInt16(bigEndian: address.sin_port)
        let signal = acceptedOne
        Thread.detachNewThread {
            while true {
                let client = accept(listening, nil, nil)
                if client < 0 { return }
                close(client)
                signal.signal()
            }
        }
    }

    /// Whether a client connected (waits up to a second).
    public var accepted: Bool { acceptedOne.wait(timeout: .now() + 1) == .success }

    deinit {
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }
}
