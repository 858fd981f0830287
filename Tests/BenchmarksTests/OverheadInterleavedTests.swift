@testable import Benchmarks
import JSON
import Testing

/// `bench overhead --interleave`: which turns capture, and which of the load's 100 ms counts
/// each side's rate is made of.
@Suite struct OverheadInterleavedTests {
    typealias Turn = OverheadBenchmark.Turn

    @Test func turnsComeInPairsOfOneEachTheirOrderAlternating() {
        let pattern = (0..<8).map(OverheadBenchmark.capturesInTurn)
        #expect(pattern == [true, false, false, true, true, false, false, true])
    }

    /// Seconds to the monotonic nanoseconds of a load started at 1,000 s.
    static func at(_ seconds: Double) -> UInt64 { UInt64((1000 + seconds) * 1e9) }

    @Test func aSideCountsOnlyTheIntervalsWhollyInsideItsTurns() {
        // Ten intervals of 0.1 s, the k-th with k + 1 answers.
        let intervals = Array(1...10)
        let turns = [
            // Capture from 0.05 to 0.45 s: intervals 1, 2, 3 (0.1-0.4) are wholly inside.
            Turn(capture: true, from: Self.at(0.05), to: Self.at(0.45)),
            // None from 0.5 to 1.0 s: intervals 5-9.
            Turn(capture: false, from: Self.at(0.5), to: Self.at(1.0)),
        ]
        let sides = OverheadBenchmark.sides(
            of: turns, intervals: intervals, start: Self.at(0), intervalSeconds: 0.1)
        #expect(sides.capture.requests == 2 + 3 + 4)
        #expect(abs(sides.capture.seconds - 0.3) < 1e-9)
        #expect(sides.none.requests == 6 + 7 + 8 + 9 + 10)
        #expect(abs(sides.none.seconds - 0.5) < 1e-9)
        // The turn without capture came right after a capture turn.
        #expect(sides.noneAfterCapture == sides.none)
        #expect(sides.noneAfterNone.seconds == 0)
    }

    @Test func turnsWithoutCaptureAreTalliedByTheTurnBeforeThem() {
        let intervals = Array(repeating: 10, count: 8)
        let turns = [
            Turn(capture: true, from: Self.at(0), to: Self.at(0.2)),
            Turn(capture: false, from: Self.at(0.2), to: Self.at(0.4)),
            Turn(capture: false, from: Self.at(0.4), to: Self.at(0.7)),
            Turn(capture: true, from: Self.at(0.7), to: Self.at(0.8)),
        ]
        let sides = OverheadBenchmark.sides(of: turns, intervals: intervals, start: Self.at(0), intervalSeconds: 0.1)
        #expect(sides.capture.requests == 30)
        #expect(sides.noneAfterCapture.requests == 20)
        #expect(sides.noneAfterNone.requests == 30)
        #expect(sides.none.requests == 50)
        #expect(abs(sides.none.rate - 100) < 1e-9)
    }

    @Test func turnsBeforeTheLoadOrPastItsEndAddNothing() {
        let intervals = [5, 5, 5]
        let turns = [
            // The load's warm-up: before its measured start.
            Turn(capture: true, from: Self.at(-2), to: Self.at(-1)),
            // Begins before the start: counts from the first interval.
            Turn(capture: false, from: Self.at(-0.5), to: Self.at(0.2)),
            // Past the last interval (0.3 s).
            Turn(capture: true, from: Self.at(0.4), to: Self.at(2)),
            // Settled after its end (a turn shorter than the settle time).
            Turn(capture: true, from: Self.at(0.25), to: Self.at(0.2)),
        ]
        let sides = OverheadBenchmark.sides(
            of: turns, intervals: intervals, start: Self.at(0), intervalSeconds: 0.1)
        #expect(sides.capture.requests == 0 && sides.capture.seconds == 0)
        #expect(sides.none.requests == 10)
        #expect(abs(sides.none.seconds - 0.2) < 1e-9)
        #expect(sides.noneAfterCapture.requests == 10)
    }

    @Test func theLoadCarriesItsStartAndIntervalsThroughItsJSON() throws {
        var result = try LoadGenerator.Result(json: [
            "requests": 10, "errors": 0, "seconds": 1, "p50Ms": 1, "p99Ms": 2,
        ])
        result.intervalRequests = [4, 6]
        result.startNanoseconds = 18_446_744_073_709_551_000  // beyond a double's exact integers
        let again = try LoadGenerator.Result(json: JSONParser.parse(JSONWriter().string(result.json)))
        #expect(again.intervalRequests == [4, 6])
        #expect(again.startNanoseconds == 18_446_744_073_709_551_000)
    }

    /// By default the capture's goal is judged on runs of its own in turns, not on the fresh-server
    /// rounds, whose capture row stays in the table as a comparison.
    @Test func theCapturesGoalIsJudgedOnItsOwnRunsWhenThereAreSome() throws {
        let run = OverheadVerdictTests.run
        let none = try [1000, 1100, 900, 1000, 1050].map { try run($0, nil, nil) }
        // The rounds alone: 0.80 at one round, NOT met.
        let capture = try [960, 1045, 720, 970, 1000].map { try run($0, 100_000, 0) }
        // Runs of its own, in turns: 0.97-0.99.
        let ownNone = try [1000, 1000, 1000, 1000, 1000].map { try run($0, nil, nil) }
        let ownCapture = try [970, 990, 980, 975, 985].map { try run($0, 90_000, 0) }
        let summaries = OverheadBenchmark.summarize(
            [.none: none, .capture: capture], configurations: [.none, .capture],
            verdictRuns: [.none: ownNone, .capture: ownCapture])
        let summary = summaries[1]
        #expect(summary.ratio.min == 0.8)
        let verdict = try #require(summary.verdict)
        #expect(verdict.met, "\(verdict.text)")
        #expect(summary.verdictRatios == [0.97, 0.99, 0.98, 0.975, 0.985])
        let table = OverheadBenchmark.table(
            summaries, connections: 8, seconds: 8, runs: 5, seccompProfile: "p.json", verdictSliceSeconds: 1)
        #expect(
            table.contains(
                "judged on 5 runs of its own after the rounds above: capture and no monitor in turns of 1 s on one server"
            ),
            "\(table)")
        #expect(table.contains("per-run ratios: 0.97 0.99 0.98 0.97 0.98"), "\(table)")
        // A lost event in the runs of its own fails the goal, whatever the rounds lost.
        let lossy = try ownCapture.enumerated().map {
            try run($0.element.load.requests, 90_000, $0.offset == 2 ? 1 : 0)
        }
        let failed = OverheadBenchmark.summarize(
            [.none: none, .capture: capture], configurations: [.none, .capture],
            verdictRuns: [.none: ownNone, .capture: lossy])[1].verdict
        #expect(failed?.met == false && failed?.reasons == ["1 events lost"])
    }
}
