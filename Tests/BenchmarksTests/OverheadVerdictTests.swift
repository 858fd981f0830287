@testable import Benchmarks
import Foundation
import JSON
import Testing

/// The overhead benchmark's verdict: per-round ratios, and "met" only when the interval of at
/// least five runs clears the capture's goal with nothing lost.
@Suite struct OverheadVerdictTests {
    /// A run of `requests` requests in one second (throughput = requests).
    static func run(_ requests: Int, written: Int? = nil, lost: Int? = nil) throws -> OverheadBenchmark.Run {
        let load = try LoadGenerator.Result(json: [
            "requests": .number(String(requests)), "errors": 0, "seconds": 1, "p50Ms": .number("4.5"),
            "p99Ms": .number("20"),
        ])
        return OverheadBenchmark.Run(load: load, eventsWritten: written, eventsLost: lost)
    }

    @Test func ratiosArePairedRoundByRound() {
        let ratios = OverheadBenchmark.roundRatios([900, 1000, 950], baseline: [1000, 1250, 950])
        #expect(ratios == [0.9, 0.8, 1.0])
        // A round without an unmonitored run (or with none answered) gives no ratio.
        #expect(OverheadBenchmark.roundRatios([900, 1000], baseline: [1000]) == [0.9])
        #expect(OverheadBenchmark.roundRatios([900], baseline: [0]) == [])
    }

    /// One row: per-round ratios and the capture's counts over all runs -> the verdict's reasons.
    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var ratios: [Double]
        var written: Int?
        var lost: Int?
        var reasons: [String]
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(name: "met", ratios: [0.96, 0.97, 0.95, 0.99, 0.93], written: 5_000_000, lost: 0, reasons: []),
        Row(
            name: "median exactly at the goal, floor cleared", ratios: [0.95, 0.95, 0.95, 0.96, 0.91], written: 1,
            lost: 0, reasons: []),
        Row(
            name: "one slow round", ratios: [0.96, 0.97, 0.89, 0.99, 0.98], written: 10, lost: 0,
            reasons: ["min 0.890 <= 0.90"]),
        Row(
            name: "min exactly at the floor", ratios: [0.96, 0.97, 0.90, 0.99, 0.98], written: 10, lost: 0,
            reasons: ["min 0.900 <= 0.90"]),
        Row(
            name: "median short", ratios: [0.94, 0.93, 0.96, 0.92, 0.97], written: 10, lost: 0,
            reasons: ["median 0.940 < 0.95"]),
        Row(
            name: "too few runs", ratios: [0.99, 0.98, 0.97], written: 10, lost: 0,
            reasons: ["3 runs with a ratio, fewer than 5"]),
        Row(name: "one run", ratios: [1.2], written: 10, lost: 0, reasons: ["1 run with a ratio, fewer than 5"]),
        Row(
            name: "events lost", ratios: [0.96, 0.97, 0.95, 0.99, 0.98], written: 10, lost: 12,
            reasons: ["60 events lost"]),  // 12 in each of 5 runs
        Row(
            name: "nothing captured", ratios: [0.96, 0.97, 0.95, 0.99, 0.98], written: 0, lost: 0,
            reasons: ["a run wrote no events"]),
        Row(
            name: "counts not reported", ratios: [0.96, 0.97, 0.95, 0.99, 0.98], written: nil, lost: nil,
            reasons: ["a run did not report its events written and lost"]),
        Row(
            name: "everything wrong", ratios: [0.80, 0.70], written: 10, lost: 3,
            reasons: ["2 runs with a ratio, fewer than 5", "median 0.750 < 0.95", "min 0.700 <= 0.90", "6 events lost"]),
        Row(name: "no ratio at all", ratios: [], written: 10, lost: 0, reasons: ["0 runs with a ratio, fewer than 5"]),
    ]

    @Test(arguments: rows) func captureGoal(_ row: Row) {
        // Each run with the row's counts.
        let runs = row.ratios.map { _ in (written: row.written, lost: row.lost) }
        let verdict = OverheadBenchmark.Goal.capture.judge(ratios: row.ratios, runs: runs)
        #expect(verdict.reasons == row.reasons)
        #expect(verdict.met == row.reasons.isEmpty)
        #expect(
            verdict.text.hasPrefix(row.reasons.isEmpty ? "met (" : "NOT met: " + row.reasons.joined(separator: "; ")),
            "\(verdict.text)")
    }

    /// From runs to the table: the capture judged on its rounds' ratios, the others not judged,
    /// the baseline's ratios against its own median.
    @Test func summariesJudgeTheCaptureOnItsRounds() throws {
        let none = try [1000, 1100, 900, 1000, 1050].map { try Self.run($0) }
        // 0.96, 0.95, 1.0, 0.97, 0.88: median 0.96, but the last round dips below the floor.
        var capture = try [(960, 0), (1045, 0), (900, 0), (970, 0), (924, 0)].map {
            try Self.run($0.0, written: 100_000, lost: $0.1)
        }
        for index in capture.indices { capture[index].bytesWritten = 14_000_000 }
        let detect = try [990, 1000, 880, 1000, 1000].map { try Self.run($0) }
        let summaries = OverheadBenchmark.summarize(
            [.none: none, .capture: capture, .detect: detect], configurations: [.none, .capture, .detect, .strace])
        #expect(summaries.map(\.configuration) == [.none, .capture, .detect])
        #expect(summaries[0].ratios == [1.0, 1.1, 0.9, 1.0, 1.05] && summaries[0].verdict == nil)
        let ratios = summaries[1].ratios.map { ($0 * 1000).rounded() / 1000 }
        #expect(ratios == [0.96, 0.95, 1.0, 0.97, 0.88])
        #expect(summaries[1].eventsWritten == 500_000 && summaries[1].eventsLost == 0)
        let verdict = try #require(summaries[1].verdict)
        #expect(!verdict.met && verdict.reasons == ["min 0.880 <= 0.90"])
        #expect(summaries[2].goal == nil && summaries[2].verdict == nil)

        let table = OverheadBenchmark.table(summaries, connections: 8, seconds: 8, runs: 5, seccompProfile: "p.json")
        #expect(table.contains("ratio: each run's throughput over the unmonitored run of the same round"))
        #expect(table.contains("    per-round ratios: 0.96 0.95 1.00 0.97 0.88"))
        #expect(
            table.contains(
                "    captured 500000 events in 5 runs, 0 lost in the kernel, 70000000 bytes written (140 bytes an event)"
            ), "\(table)")
        #expect(
            table.contains(
                "goal, \(OverheadBenchmark.Configuration.capture.label): median ratio >= 0.95 and every ratio > 0.90 over >= 5 runs, 0 events lost: "
                    + "NOT met: min 0.880 <= 0.90 (median 0.960, min 0.880, max 1.000 over 5 runs, 0 lost)"), "\(table)"
        )
        #expect(!table.contains("seccomp:"))
        #expect(table.split(separator: "\n").filter { $0.hasPrefix("goal") }.count == 1)
    }

    /// A capture run that did not report its counts cannot be met, even if the others did.
    @Test func oneUnreportedRunSpoilsTheCounts() throws {
        let none = try (0..<5).map { _ in try Self.run(1000) }
        var capture = try (0..<5).map { _ in try Self.run(990, written: 1000, lost: 0) }
        capture[2] = try Self.run(990)
        let summary = try #require(
            OverheadBenchmark.summarize([.none: none, .capture: capture], configurations: [.none, .capture]).last)
        #expect(summary.verdict?.reasons == ["a run did not report its events written and lost"])
        // A run that wrote nothing spoils it too, whatever the others wrote.
        capture[2] = try Self.run(990, written: 0, lost: 0)
        let empty = try #require(
            OverheadBenchmark.summarize([.none: none, .capture: capture], configurations: [.none, .capture]).last)
        #expect(empty.verdict?.reasons == ["a run wrote no events"])
    }

    /// The warning printed when the kernel times every BPF program run.
    @Test func bpfStatisticsAreNamedOnlyWhenOn() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bpf-stats-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "1\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(OverheadBenchmark.bpfStatisticsNote(path: path)?.contains("kernel.bpf_stats_enabled=1") == true)
        try "0\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(OverheadBenchmark.bpfStatisticsNote(path: path) == nil)
        #expect(OverheadBenchmark.bpfStatisticsNote(path: path + ".missing") == nil)
    }
}
