import Foundation

/// Counts a container's TCP connects to its own loopback ports: many different ports in a short
/// time, most of them refused, is a scan for local services (a database, an admin port, a
/// runtime's API) after a foothold. One connect, or many to the same few ports (health checks, a
/// connection pool), is not. Time is the events' own; memory is bounded whatever a container does.
public final class PortScanDetector {
    /// The built-in rule whose matches (loopback connects) this detector counts.
    public static let ruleId = "CAD-065"

    /// When a window's count is a scan, and how much is kept.
    public struct Limits: Sendable {
        /// Different ports within one window that make a scan.
        public var ports: Int
        /// Of those, how many must have been refused (ECONNREFUSED: closed ports answer so) or left
        /// unanswered (a non-blocking connect's EINPROGRESS, whose refusal comes later).
        public var refused: Int
        /// The window, nanoseconds from a container's first counted connect.
        public var window: UInt64
        /// Containers followed at once; the one seen longest ago is dropped for a new one.
        public var containers: Int

        public init(ports: Int = 10, refused: Int = 7, window: UInt64 = 10_000_000_000, containers: Int = 1024) {
            self.ports = max(ports, 1)
            self.refused = max(min(refused, ports), 0)
            self.window = window
            self.containers = max(containers, 1)
        }
    }

    private struct Window {
        var start: UInt64
        var last: UInt64
        /// Distinct ports, at most `limits.ports` (beyond that the answer is known).
        var ports: Set<Int> = []
        var refused: Set<Int> = []
        var reported = false
    }

    public let limits: Limits
    private var windows: [String: Window] = [:]

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Containers currently followed (at most `limits.containers`).
    public var followed: Int { windows.count }

    /// One connect to a loopback `port` from `container` (`refused`: ECONNREFUSED, or no answer
    /// yet); answers the alert's note when this connect completes a scan (once per window and
    /// container), nil otherwise.
    public func observe(container: String, port: Int, refused: Bool, time: UInt64) -> String? {
        var window = windows[container] ?? Window(start: time, last: time)
        if time < window.start || time - window.start > limits.window { window = Window(start: time, last: time) }
        window.last = max(window.last, time)
        if window.ports.count < limits.ports || window.ports.contains(port) {
            window.ports.insert(port)
            if refused && window.refused.count < limits.ports { window.refused.insert(port) }
        }
        var note: String?
        if !window.reported && window.ports.count >= limits.ports && window.refused.count >= limits.refused {
            window.reported = true
            let seconds = Double(window.last - window.start) / 1e9
            note =
                "\(window.ports.count) loopback ports in \(String(format: "%.1f", seconds)) s, \(window.refused.count) refused or unanswered"
        }
        if windows[container] == nil && windows.count >= limits.containers { dropOldest(now: time) }
        windows[container] = window
        return note
    }

    /// Makes room: every window already over, or else the one seen longest ago.
    private func dropOldest(now: UInt64) {
        let before = windows.count
        windows = windows.filter { now >= $0.value.start && now - $0.value.start <= limits.window }
        if windows.count < before { return }
        if let oldest = windows.min(by: { $0.value.last < $1.value.last })?.key { windows[oldest] = nil }
    }
}
