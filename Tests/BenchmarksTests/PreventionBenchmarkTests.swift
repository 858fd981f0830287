@testable import Benchmarks
import Testing

@Suite struct PreventionBenchmarkTests {
    @Test func behavesTimingLineIsRead() throws {
        let sample = try #require(
            PreventionBenchmark.parse(
                "noise\nbehave: time-open /tmp/prevent-guarded calls=2000 ns_per_call=3120.5 refused=2000 errno=1\n"))
        #expect(sample.calls == 2000 && sample.refused == 2000 && sample.nanosecondsPerCall == 3120.5)
        #expect(PreventionBenchmark.parse("behave: open(/x) = -1 (Permission denied)") == nil)
        #expect(PreventionBenchmark.parse("behave: time-open /x calls=abc ns_per_call=1 refused=0 errno=0") == nil)
    }

    /// Ratios are taken round by round against enforcement off, so a slow round moves both sides.
    @Test func ratiosArePerRoundAgainstEnforcementOff() throws {
        let open = PreventionBenchmark.calls[0], guarded = PreventionBenchmark.calls[4]
        func sample(_ ns: Double, refused: Int = 0) -> PreventionBenchmark.Sample {
            .init(nanosecondsPerCall: ns, calls: 10, refused: refused)
        }
        let figures = PreventionBenchmark.figures(
            [
                .enforcementOff: [open: [sample(1000), sample(2000), sample(1500)]],
                .fanotify: [open: [sample(1100, refused: 10), sample(2400, refused: 10), sample(1500, refused: 10)]],
                .kernelKill: [guarded: [sample(5)]],
            ], rounds: 3)
        let fanotify = try #require(figures.first { $0.mode == .fanotify })
        let ratio = try #require(fanotify.ratioToEnforcementOff)
        #expect(abs(ratio.min - 1.0) < 1e-9 && abs(ratio.median - 1.1) < 1e-9 && abs(ratio.max - 1.2) < 1e-9)
        #expect(fanotify.refused == 30 && fanotify.calls == 30)
        #expect(figures.first { $0.mode == .enforcementOff }?.ratioToEnforcementOff == nil)
        // No baseline for the call in every round: no ratio rather than a wrong one.
        #expect(figures.first { $0.mode == .kernelKill }?.ratioToEnforcementOff == nil)
    }

    @Test func aKillIsNotTimedOnTheCallItEnds() {
        let guarded = PreventionBenchmark.calls.filter { $0.guardedBy != nil }
        #expect(!guarded.isEmpty)
        for call in guarded { #expect(!PreventionBenchmark.measures(call, under: .kernelKill)) }
        for call in PreventionBenchmark.calls where call.guardedBy == nil {
            #expect(PreventionBenchmark.measures(call, under: .kernelKill))
        }
    }
}
