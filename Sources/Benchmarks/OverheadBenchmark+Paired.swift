import Foundation
import LabSupport

extension OverheadBenchmark {
    /// The capture against no monitor, back to back on one server.
    ///
    /// Why: with a fresh server container per run, the unmonitored runs alone spread 0.68-1.12
    /// around their median on a noisy machine (BENCHMARKS.md, issue 16's sixth pass), more than
    /// the capture's cost. Here one container serves every run, on one copy of the seeded
    /// database; each round measures the two sides one right after the other, the recording
    /// attached before its run and stopped after it, and the order alternates from round to
    /// round (none then capture, capture then none), so that a drift of the machine, or the
    /// database growing with the load's creates, weighs on both sides alike. What it does not
    /// measure: the cost of a server started under the recording (its start-up syscalls).
    func runPaired() async throws {
        let container = try await startServerOnSeedCopy()
        defer { stopServer(container) }
        for round in -warmupRounds..<runs {
            let order: [Configuration] = max(round, 0) % 2 == 0 ? [.none, .capture] : [.capture, .none]
            for configuration in order {
                announce(configuration, round: round)
                keep(try measureOnServer(configuration, container: container), of: configuration, round: round)
            }
        }
    }

    /// One run of `configuration` (none or capture) on the running `container`.
    private func measureOnServer(_ configuration: Configuration, container: String) throws -> Run {
        let monitor = configuration == .capture ? try startCapture(container: container) : nil
        defer { monitor?.kill() }
        return try runLoad(under: monitor, configuration)
    }

    /// A server container on a fresh copy of the seeded database (written to disk first), for
    /// every run of a benchmark.
    func startServerOnSeedCopy() async throws -> String {
        try? FileManager.default.removeItem(atPath: folder + "/data")
        try ProcessRunner.check(["cp", "-a", folder + "/seed", folder + "/data"])
        sync()
        return try await startServer(data: "data")
    }
}
