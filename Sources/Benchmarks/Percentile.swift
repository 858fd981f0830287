/// Percentiles of latency samples by nearest rank: the smallest sample with at least `p` of
/// the samples at or below it.
///
/// Why nearest rank: the benchmarks used to take the sample at index `count × p`, which for
/// 100 samples made the "p99" the slowest one, and one stall among 100 queries its figure.
/// Medians are ``median(_:)``, `sorted[count / 2]` as the benchmarks always took them (the
/// upper of the two middle samples for an even count; nearest rank would take the lower).
public enum Percentile {
    /// The middle sample of `sorted`, ascending (the upper middle one for an even count); 0 for
    /// no samples.
    public static func median(_ sorted: [Double]) -> Double {
        sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// The `p` percentile (0 < p ≤ 1) of `sorted`, ascending; 0 for no samples.
    public static func nearestRank(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((Double(sorted.count) * p).rounded(.up))
        return sorted[min(sorted.count, max(rank, 1)) - 1]
    }
}
