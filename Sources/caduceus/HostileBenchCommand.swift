import ArgumentParser
import Benchmarks
import Foundation
import HostileRequests
import Lab

/// `caduceus bench hostile`: hostile requests against a real server on 127.0.0.1, counting
/// crashes, 5xx and hangs; fails when there is any.
struct HostileBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostile",
        abstract:
            "Hostile requests (the fuzz test's seeded generator) against caduceus serve on 127.0.0.1: crashes, 5xx, hangs and the server's memory.",
        discussion: """
            Starts `caduceus serve` on a free loopback port with a fresh SQLite database (or attacks
            --url), seeds a few resources, then sends --requests hostile requests over --concurrency
            keep-alive HTTP/1.1 connections, for at most --seconds. A server it started that dies is
            counted as a crash and started again on the same database. Exits 1 on any crash, 5xx or
            hang. A failure prints its seed and index; `--seed S --index I` sends that request alone.
              caduceus bench hostile --requests 10000 --seed 13
            """)

    @Option(help: "Hostile requests to send.")
    var requests = 10_000

    @Option(help: "Stop after this many seconds even if requests remain.")
    var seconds = 900.0

    @Option(help: "The generator's seed (default: a random one, printed).")
    var seed: UInt64?

    @Option(help: "Attack this running server (http://127.0.0.1:PORT/fhir-server/api/v4) instead of starting one.")
    var url: String?

    @Option(help: "With --url: the server's pid, for its memory and to tell a crash from a dropped connection.")
    var serverPid: Int32?

    @Option(help: "Concurrent HTTP/1.1 connections.")
    var concurrency = 4

    @Option(help: "Seconds without an answer that count as a hang.")
    var hangSeconds = 10.0

    @Option(help: "Send only this request of the seed (to make a failure again).")
    var index: Int?

    @Flag(help: "With --index: print the request in full before sending it.")
    var show = false

    func validate() throws {
        guard requests > 0, seconds > 0, concurrency > 0, hangSeconds > 0 else {
            throw ValidationError("--requests, --seconds, --concurrency and --hang-seconds must be positive")
        }
    }

    func run() throws {
        let seed = self.seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print(
            "caduceus bench hostile: seed \(seed), \(index.map { "request \($0) only" } ?? "\(requests) requests"), at most \(Int(seconds)) s, \(concurrency) connections, hang after \(hangSeconds) s, \(url ?? "a caduceus serve started on 127.0.0.1")"
        )
        if show, let index {
            print(HostileRequestGenerator(seed: seed).request(index).rendered(limit: .max))
        }
        let benchmark = HostileBenchmark(
            requests: requests, seconds: seconds, seed: seed, concurrency: concurrency, hangSeconds: hangSeconds,
            index: index)
        let report = try benchmark.run(
            executable: url == nil ? ImageBuilder.currentExecutable : nil, url: url, pid: serverPid)
        for line in report.lines(seed: seed) { print(line) }
        if !report.passed { throw ExitCode.failure }
    }
}
