/// Pairs a decoder (`base64 -d`, `xxd -r`, `openssl enc -d`, ...) with a shell reading its script
/// from standard input, both started by the same shell within a moment: `echo ... | base64 -d |
/// sh`, a pipeline whose middle is invisible to a single event (the pipe between them) but whose
/// ends are siblings. Which execs count is the rule's condition; this detector only pairs them.
/// Time is the events' own; memory is bounded whatever a container does.
public final class DecodedPayloadShellDetector {
    /// The built-in rule whose matches (decoder and stdin-shell execs) this detector pairs.
    public static let ruleId = "CAD-051"

    /// The names counted as the shell end of the pair; any other matched exec is a decoder.
    public static let shells: Set<String> = ["sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "busybox", "rbash", "fish"]

    private struct Siblings {
        var decoder: (name: String, time: UInt64)?
        var shell: (name: String, time: UInt64)?
        var last: UInt64
    }

    /// How far apart the two execs may be, nanoseconds.
    public let window: UInt64
    /// Parents followed at once; beyond that, stale ones then the oldest are dropped.
    public let capacity: Int
    private var parents: [String: Siblings] = [:]

    public init(window: UInt64 = 2_000_000_000, capacity: Int = 4096) {
        self.window = window
        self.capacity = max(capacity, 1)
    }

    /// Parents currently followed (at most `capacity`).
    public var followed: Int { parents.count }

    /// One matched exec of `name` whose parent is `parent` in `container`; answers the alert's
    /// note when it completes a decoder-and-shell pair, nil otherwise.
    public func observe(container: String, parent: UInt32, name: String, time: UInt64) -> String? {
        let key = container + "\0" + String(parent)
        var siblings = parents[key] ?? Siblings(last: time)
        siblings.last = max(siblings.last, time)
        let isShell = Self.shells.contains(name)
        if isShell { siblings.shell = (name, time) } else { siblings.decoder = (name, time) }
        if parents[key] == nil && parents.count >= capacity { makeRoom(now: time) }
        if let decoder = siblings.decoder, let shell = siblings.shell, Self.distance(decoder.time, shell.time) <= window {
            parents[key] = nil
            return "\(decoder.name) and \(shell.name) started together by parent pid \(parent)"
        }
        parents[key] = siblings
        return nil
    }

    private static func distance(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }

    private func makeRoom(now: UInt64) {
        let before = parents.count
        parents = parents.filter { Self.distance(now, $0.value.last) <= window }
        if parents.count < before { return }
        if let oldest = parents.min(by: { $0.value.last < $1.value.last })?.key { parents[oldest] = nil }
    }
}
