import Foundation

/// A process's resident memory from /proc/PID/status: now (VmRSS) and its peak (VmHWM), in kB.
public struct ProcessMemory: Sendable, Equatable {
    public let residentKB: Int
    public let peakKB: Int

    /// Of process `pid`, or of this process without one; nil when it is gone (or not Linux).
    public init?(pid: Int32? = nil) {
        let path = "/proc/\(pid.map(String.init) ?? "self")/status"
        guard let status = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }?.split(separator: " ").dropFirst().first
                .flatMap { Int($0) }
        }
        guard let rss = field("VmRSS") else { return nil }
        residentKB = rss
        peakKB = field("VmHWM") ?? rss
    }

    /// The peak in whole MB, as the end-of-run lines print it.
    public var peakMB: Int { (peakKB + 512) / 1024 }
}
