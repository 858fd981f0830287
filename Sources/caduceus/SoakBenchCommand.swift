import ArgumentParser
import Benchmarks
import Foundation

/// `caduceus bench soak`: whether throughput holds while the data grows.
struct SoakBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract:
            "Reads, searches and creates against a fresh server for minutes: first and last interval's rate, memory, errors."
    )

    @Option(help: "Minutes of load.")
    var minutes = 5.0

    @Option(help: "Concurrent connections.")
    var connections = 8

    @Option(help: "sqlite (a fresh file) or a postgres:// URL of a database to fill.")
    var database = "sqlite"

    @Option(help: "Seconds per interval: the first and the last are compared.")
    var interval = 30.0

    @Option(help: "The caduceus executable that serves (default: this one); another build's, to compare.")
    var server: String?

    func run() async throws {
        guard minutes * 60 >= 2 * interval else { throw ValidationError("--minutes must cover at least two intervals") }
        let executable = server ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let benchmark = SoakBenchmark(
            executable: executable, database: database, seconds: minutes * 60, connections: connections,
            intervalSeconds: interval)
        let figures = try await benchmark.run { print($0) }
        print(
            SoakBenchmark.table(
                figures, seconds: minutes * 60, connections: connections, intervalSeconds: interval, database: database)
        )
    }
}
