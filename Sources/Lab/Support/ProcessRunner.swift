import Foundation

/// Runs other programs (docker, docker-compose, apt-get, tar, ldd) for the lab, the deployment
/// and the benchmarks: one place that starts a process, collects what it printed and turns a
/// failure into an error that quotes it.
public enum ProcessRunner {
    /// Runs `arguments` (looked up in PATH) to completion; its exit status and its standard
    /// output and error, interleaved and trimmed.
    public static func run(_ arguments: [String], environment: [String: String]? = nil) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (127, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs `arguments` and returns what it printed, or throws a `LabError` quoting the command
    /// and its output when it exits non-zero.
    @discardableResult
    public static func check(_ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let (status, output) = run(arguments, environment: environment)
        guard status == 0 else {
            throw LabError("\(arguments.joined(separator: " ")) failed (exit \(status)): \(output.suffix(2000))")
        }
        return output
    }

    /// Whether `name` is an executable in PATH.
    public static func isInstalled(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }
}

/// Something the lab could not do, and why.
public struct LabError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
