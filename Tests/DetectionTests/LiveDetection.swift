import Detection
import Foundation
import KernelTestSupport
import Lab
import Sensor

/// The live tests' detector is the lab's; these are the container helpers they share.
typealias LiveDetection = LiveDetector

extension LiveDetector {
    /// Runs `command` with `sh -c` in a fresh testbox container until it exits; its full id.
    static func runContainer(_ command: String, dockerArguments: [String] = [], environment: [String: String] = [:])
        throws -> String
    {
        let variables = environment.flatMap { ["-e", "\($0.key)=\($0.value)"] }
        let id = try SensorTestEnvironment.run(
            ["docker", "run", "-d", "--network", "host"] + variables + dockerArguments
                + [SensorTestEnvironment.image, "/bin/sh", "-c", command])
        _ = try SensorTestEnvironment.run(["timeout", "20", "docker", "wait", id])
        return id
    }

    static func removeContainers(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        _ = try? SensorTestEnvironment.run(["docker", "rm", "-f"] + ids)
    }

    /// Whether the FHIR server at `base` answers /metadata within 30 s.
    static func waitUntilServing(_ base: String) async throws -> Bool {
        for _ in 0..<60 {
            if (try? await ClinicalWorkload(baseURL: base, rounds: 0, timeoutSeconds: 1).run())?.failureCount == 0 {
                return true
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }
}
