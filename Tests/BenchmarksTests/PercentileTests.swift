@testable import Benchmarks
import Testing

/// Nearest rank: with 100 samples the p99 is the 99th, so one stall among 100 queries is the
/// maximum, not the p99 (the Synthea benchmark prints both).
@Suite struct PercentileTests {
    @Test func nearestRank() {
        let hundred = (1...100).map(Double.init)
        #expect(Percentile.nearestRank(hundred, 0.99) == 99)
        #expect(Percentile.nearestRank(hundred, 0.5) == 50)
        #expect(Percentile.nearestRank(hundred, 1) == 100)
        let thousand = (1...1000).map(Double.init)
        #expect(Percentile.nearestRank(thousand, 0.99) == 990)
        #expect(Percentile.nearestRank([7], 0.99) == 7)
        #expect(Percentile.nearestRank([1, 2, 3], 0.99) == 3)
        #expect(Percentile.nearestRank([1, 2, 3], 0.01) == 1)
        #expect(Percentile.nearestRank([], 0.99) == 0)
    }

    /// The median the benchmarks have always printed: the upper middle sample for an even count.
    @Test func median() {
        #expect(Percentile.median([1, 2, 3]) == 2)
        #expect(Percentile.median([1, 2, 3, 4]) == 3)
        #expect(Percentile.median([5]) == 5)
        #expect(Percentile.median([]) == 0)
    }
}
