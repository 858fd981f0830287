extension Sensor {
    /// Detaches the sensor's tracepoint programs: until `resume()`, the kernel runs none of
    /// them, so the watched processes pay nothing for the trace and none of their events is
    /// recorded. That is a gap, not a loss: the kernel's counters do not count it, and the
    /// output carries no mark of it (the caller says it). Records already in the ring buffer are
    /// still read. Safe from any thread; false when already paused.
    ///
    /// Refused for a sensor that enforces (kill patterns, an exec allow list): its programs
    /// are what kills, and a pause would lift the enforcement without a word.
    ///
    /// Why: `caduceus bench overhead --interleave` measures the capture and no capture in
    /// turns of a few seconds against one running server and one trace.
    @discardableResult
    public func pause() throws -> Bool {
        guard configuration.killPatterns.isEmpty, configuration.execAllowList == nil else {
            throw SensorConfigurationError(
                description: "a sensor that enforces (kill patterns, an exec allow list) does not pause")
        }
        return program.detach()
    }

    /// Attaches again what `pause()` detached; false when not paused. Throws when the kernel
    /// refuses a program (the ones not yet attached are tried again by the next call).
    @discardableResult
    public func resume() throws -> Bool { try program.reattach() }
}
