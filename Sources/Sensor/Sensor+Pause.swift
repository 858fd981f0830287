extension Sensor {
    /// Detaches the sensor's tracepoint programs: until `resume()`, the kernel runs none of
    /// them, so the watched processes pay nothing for the trace and none of their events is
    /// recorded. That is a gap, not a loss: the kernel's counters do not count it. Records
    /// already in the ring buffer are still read. The cgroup programs that refuse kill patterns'
    /// socket calls stay attached. Safe from any thread; false when already paused.
    ///
    /// Why: `caduceus bench overhead --interleaved` measures the capture and no capture in
    /// turns of a few seconds against one running server and one trace.
    @discardableResult
    public func pause() -> Bool { program.detach() }

    /// Attaches again what `pause()` detached; false when not paused. Throws when the kernel
    /// refuses a program (the ones not yet attached are tried again by the next call).
    @discardableResult
    public func resume() throws -> Bool { try program.reattach() }
}
