import Foundation

/// The machine's monotonic clock (`CLOCK_MONOTONIC`) in nanoseconds: one clock for every
/// process, so that a benchmark can line up what another process counted with what it did
/// itself (`bench overhead --interleave`: the load's answers with the trace's pauses).
public enum MonotonicTime {
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
