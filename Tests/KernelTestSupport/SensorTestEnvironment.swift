import Foundation
import LabSupport
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

    /// Runs a command to completion (the lab's runner); throws with its output when it fails.
    @discardableResult
    public static func run(_ arguments: [String]) throws -> String {
        let (status, text) = ProcessRunner.run(arguments)
        guard status == 0 else {
            throw SensorConfigurationError(
                description: "\(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
        return text
    }
}
