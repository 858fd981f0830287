/// When validation work running in the current task should stop: the task was cancelled (its
/// request abandoned, the server stopping) or it is past the instant a caller set for it (a
/// transaction's time limit). FHIRPath evaluation and invariant validation look at it as they
/// go, so that a costly resource does not hold a core after its answer stopped mattering.
public enum WorkDeadline {
    /// The instant past which the current task's validation stops; set around a piece of work
    /// with `WorkDeadline.$instant.withValue(...)`, inherited by the child tasks it starts.
    @TaskLocal public static var instant: ContinuousClock.Instant?

    /// Whether the current task was cancelled or is past its `instant`.
    public static var shouldStop: Bool {
        if Task.isCancelled { return true }
        guard let instant else { return false }
        return ContinuousClock.now >= instant
    }
}
