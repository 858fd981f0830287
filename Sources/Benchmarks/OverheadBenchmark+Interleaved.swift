import Foundation
import JSON
import LabSupport

extension OverheadBenchmark {
    /// The capture against no capture in turns of a few seconds within each run: one server
    /// container, one load process and one trace per run, the trace paused (its programs
    /// detached, `caduceus trace` on SIGUSR1) and resumed (SIGUSR2) at every turn.
    ///
    /// Why: even back to back (`--paired`), two runs of 10 s are far enough apart that the
    /// machine's noise moves one and not the other; here both sides of a run's ratio are made
    /// of turns spread over the same 2 × `seconds`, in the order capture, none, none, capture,
    /// capture, none, … so that a steady drift weighs on both alike.
    ///
    /// What a side's rate counts: the load's answers (counted per 100 ms by `bench load
    /// --interval`) in the whole intervals of its turns, from `settleSeconds` after the trace
    /// said it had paused or resumed to the turn's end. The capture side is every capture turn;
    /// the unmonitored side only the turns without capture that follow another such turn: work
    /// the capture leaves behind when it pauses (the last records read and written, the
    /// recording's write-back) would slow the turn right after it, and so count as the
    /// capture's cost, not the baseline's. `leftoverLine` compares the two kinds of turns
    /// without capture. What is still not separated: write-back the kernel does later, in any
    /// turn, and the paused trace's idle reader (a wake-up every 20 ms) in the unmonitored turns.
    ///
    /// `record` gets each round's runs (a negative round is a warm-up); by default they are the
    /// benchmark's results (`--interleave`).
    /// `runSeconds`: each side's seconds in a run (the load lasts twice as long); by default `seconds`.
    func runInterleaved(
        sliceSeconds: Double, runSeconds: Double? = nil, record: ((Int, _ capture: Run, _ none: Run) -> Void)? = nil
    ) async throws {
        let runSeconds = runSeconds ?? seconds
        let container = try await startServerOnSeedCopy()
        defer { stopServer(container) }
        for round in -warmupRounds..<runs {
            progress(
                (round < 0 ? "warm-up round (not counted): " : "round \(round + 1)/\(runs): ")
                    + "capture and no monitor in turns of \(String(format: "%g", sliceSeconds)) s")
            let (capture, none) = try measureInterleaved(
                container: container, sliceSeconds: sliceSeconds, seconds: runSeconds, round: round)
            if let record {
                record(round, capture, none)
            } else {
                keep(none, of: .none, round: round)
                keep(capture, of: .capture, round: round)
            }
        }
    }

    /// The measured interleaved runs' turns without capture, after a capture turn against after
    /// another (nil without such runs): near 1, the capture leaves no cost behind in the turns that
    /// follow it.
    var leftoverLine: String? {
        guard interleavedTurns.noneAfterNone.rate > 0 else { return nil }
        let after = interleavedTurns.noneAfterCapture, before = interleavedTurns.noneAfterNone
        return String(
            format:
                "left behind by the capture: turns without it ran at %.0f/s right after a capture turn, %.0f/s after a turn without (%.3f)",
            after.rate, before.rate, after.rate / before.rate)
    }

    /// Seconds after a pause or a resume is confirmed before a turn's answers count.
    static let settleSeconds = 0.2
    /// The load's counting interval.
    static let bucketSeconds = 0.1

    /// One run: the load for 2 × `seconds`, the trace paused and resumed in turns.
    private func measureInterleaved(container: String, sliceSeconds: Double, seconds: Double, round: Int) throws -> (
        capture: Run, none: Run
    ) {
        let monitor = try startCapture(container: container, pausable: true)
        defer { monitor.kill() }
        var capturing = true
        func turn(capture: Bool) throws {
            guard capture != capturing else { return }
            try Self.signal(monitor, paused: !capture)
            capturing = capture
        }
        try turn(capture: false)
        let load = try MonitorProcess.start(
            [
                executable, "bench", "load", "--base-url", baseURL, "--seconds", String(2 * seconds), "--warmup",
                String(warmupSeconds), "--connections", String(connections), "--patients-file",
                folder + "/patients.txt", "--interval", String(Self.bucketSeconds),
            ], log: folder + "/load.out", readyWhen: nil)
        defer { load.kill() }
        // The turns start when the load's measured part does (after its warm-up), so that the
        // run is exactly its turns, as many of each side.
        let begin = try Self.measuredStart(of: load)
        var turns: [Turn] = []
        let nanosecondsPerSlice = UInt64(sliceSeconds * 1e9)
        let count = Int((2 * seconds / sliceSeconds).rounded())
        for index in 0..<count where load.isRunning {
            let capture = Self.capturesInTurn(index)
            try turn(capture: capture)
            let from = MonotonicTime.nanoseconds() + UInt64(Self.settleSeconds * 1e9)
            let end = begin + UInt64(index + 1) * nanosecondsPerSlice
            while load.isRunning && MonotonicTime.nanoseconds() < end { usleep(2_000) }
            turns.append(Turn(capture: capture, from: from, to: min(end, MonotonicTime.nanoseconds())))
        }
        for _ in 0..<600 where load.isRunning { usleep(100_000) }  // its last requests: 30 s at most each
        guard let line = load.log.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            throw LabError("caduceus bench load printed no result: \(load.log.suffix(500))")
        }
        let result = try LoadGenerator.Result(json: JSONParser.parse(String(line)))
        guard let start = result.startNanoseconds else { throw LabError("caduceus bench load gave no start time") }
        // The intervals of the measured seconds only: the last one counts answers past the end.
        let measured = Int((2 * seconds / Self.bucketSeconds).rounded(.down))
        let sides = Self.sides(
            of: turns, intervals: Array(result.intervalRequests.prefix(measured)), start: start,
            intervalSeconds: Self.bucketSeconds)
        guard sides.capture.seconds > 0, sides.noneAfterNone.seconds > 0 else {
            throw LabError("a run of \(2 * seconds) s left no whole interval on one side: give more --seconds")
        }
        if round >= 0 { interleavedTurns += sides }
        let capture = try finish(sideResult(result, sides.capture), under: monitor, .capture)
        return (capture, Run(load: sideResult(result, sides.noneAfterNone)))
    }

    /// The load's figures for one side: its answers over its seconds. Latencies are the whole
    /// run's, which mixes both sides: not printed (NaN).
    private func sideResult(_ whole: LoadGenerator.Result, _ side: Tally) -> LoadGenerator.Result {
        var result = whole
        result.requests = side.requests
        result.seconds = side.seconds
        result.p50Ms = .nan
        result.p99Ms = .nan
        return result
    }

    /// Capture in turns 0, 3, 4, 7, 8, …: each pair of turns has one of each, their order
    /// alternating from pair to pair.
    static func capturesInTurn(_ index: Int) -> Bool {
        (index / 2) % 2 == 0 ? index % 2 == 0 : index % 2 == 1
    }

    /// One turn: whether the capture was attached, and the monotonic nanoseconds its answers count over.
    struct Turn: Equatable {
        var capture: Bool
        var from: UInt64
        var to: UInt64
    }

    /// Answers and seconds of some turns.
    struct Tally: Equatable {
        var requests = 0
        var seconds = 0.0
        var rate: Double { seconds > 0 ? Double(requests) / seconds : 0 }

        static func += (left: inout Tally, right: Tally) {
            left.requests += right.requests
            left.seconds += right.seconds
        }
    }

    /// Each side's tally, and the turns without capture split by what came before them.
    struct Sides: Equatable {
        var capture = Tally()
        var none = Tally()
        /// Turns without capture right after a capture turn: what the capture leaves behind
        /// when it pauses would slow these and not those after a turn without capture.
        var noneAfterCapture = Tally()
        var noneAfterNone = Tally()

        static func += (left: inout Sides, right: Sides) {
            left.capture += right.capture
            left.none += right.none
            left.noneAfterCapture += right.noneAfterCapture
            left.noneAfterNone += right.noneAfterNone
        }
    }

    /// Each side's answers and seconds: the load's intervals (`intervals[k]` answers between
    /// `start + k × intervalSeconds` and the next) that lie wholly within a turn of that side.
    static func sides(of turns: [Turn], intervals: [Int], start: UInt64, intervalSeconds: Double) -> Sides {
        var sides = Sides()
        let width = intervalSeconds * 1e9
        for (index, turn) in turns.enumerated() where turn.to > turn.from && turn.to > start {
            // Intervals from the first that starts at or after `from` to the last that ends by `to`.
            let first = turn.from <= start ? 0 : Int((Double(turn.from - start) / width).rounded(.up))
            let last = min(intervals.count, Int((Double(turn.to - start) / width).rounded(.down)))
            guard last > first else { continue }
            let tally = Tally(
                requests: intervals[first..<last].reduce(0, +), seconds: Double(last - first) * intervalSeconds)
            if turn.capture {
                sides.capture += tally
            } else {
                sides.none += tally
                if index > 0 {
                    if turns[index - 1].capture {
                        sides.noneAfterCapture += tally
                    } else {
                        sides.noneAfterNone += tally
                    }
                }
            }
        }
        return sides
    }

    /// When `load` (`bench load`) began its measured part, from the line it writes then.
    static func measuredStart(of load: MonitorProcess) throws -> UInt64 {
        let marker = "caduceus bench load: measuring from "
        for _ in 0..<30_000 {
            if let line = load.log.split(separator: "\n").first(where: { $0.hasPrefix(marker) }),
                let stamp = UInt64(line.dropFirst(marker.count).prefix { $0.isNumber })
            {
                return stamp
            }
            guard load.isRunning else { throw LabError("caduceus bench load exited: \(load.log.suffix(500))") }
            usleep(2_000)
        }
        throw LabError("caduceus bench load did not start measuring within 60 s: \(load.log.suffix(500))")
    }

    /// SIGUSR1 (pause) or SIGUSR2 (resume) to a trace, and waits until its log says it did.
    static func signal(_ monitor: MonitorProcess, paused: Bool) throws {
        let marker = paused ? "caduceus trace: paused" : "caduceus trace: resumed"
        let before = monitor.log.components(separatedBy: marker).count
        kill(monitor.pid, paused ? SIGUSR1 : SIGUSR2)
        for _ in 0..<2_000 {
            if monitor.log.components(separatedBy: marker).count > before { return }
            guard monitor.isRunning else { throw LabError("the trace exited: \(monitor.log.suffix(500))") }
            usleep(2_000)
        }
        throw LabError("the trace did not say \"\(marker)\" within 4 s: \(monitor.log.suffix(500))")
    }
}
