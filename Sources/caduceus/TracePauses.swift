import Foundation
import Sensor
import Synchronization

/// `trace --allow-pause`'s pauses: SIGUSR1 detaches the sensor's programs, SIGUSR2 attaches
/// them again (`Sensor.pause()`), each said on standard error as it happens, the count and the
/// time paused on the closing line, so that a recording's gaps are said where the trace reports.
final class TracePauses: Sendable {
    private struct State {
        var count = 0
        /// Since when the trace has not been wholly attached (a resume that failed halfway
        /// leaves it so).
        var pausedSince: ContinuousClock.Instant?
        var paused: Duration = .zero
    }

    private let sensor: Sensor
    private let state = Mutex(State())

    init(sensor: Sensor) { self.sensor = sensor }

    /// Pauses (`paused`) or resumes, once per change; called from the signal thread.
    func set(paused: Bool) {
        state.withLock { state in
            if paused {
                do {
                    guard try sensor.pause(), state.pausedSince == nil else { return }
                } catch {
                    writeStandardError("caduceus trace: not paused: \(error)")
                    return
                }
                state.count += 1
                state.pausedSince = .now
                writeStandardError("caduceus trace: paused: programs detached, events are not recorded until SIGUSR2")
            } else {
                do {
                    guard try sensor.resume() else { return }
                } catch {
                    writeStandardError(
                        "caduceus trace: resuming failed, some events are not recorded (SIGUSR2 tries again): \(error)")
                    return
                }
                if let since = state.pausedSince { state.paused += since.duration(to: .now) }
                state.pausedSince = nil
                writeStandardError("caduceus trace: resumed")
            }
        }
    }

    /// "; 2 pauses, 4.1 s paused (…)" for the closing line, empty when never paused.
    var summary: String {
        state.withLock { state in
            guard state.count > 0 else { return "" }
            var paused = state.paused
            if let since = state.pausedSince { paused += since.duration(to: .now) }
            let seconds = Double(paused.components.seconds) + Double(paused.components.attoseconds) / 1e18
            return "; \(state.count) pause\(state.count == 1 ? "" : "s"), "
                + String(format: "%.1f", seconds) + " s paused (events of those times not recorded)"
        }
    }
}
