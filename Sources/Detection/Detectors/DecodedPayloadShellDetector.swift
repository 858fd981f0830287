/// Pairs a decoder (`base64 -d`, `xxd -r`, `openssl enc -d`, ...) with a shell reading its script
/// from standard input, both children of the same shell and alive at the same time: `echo ... |
/// base64 -d | sh`, a pipeline whose middle (the pipe) no single event shows but whose ends are
/// siblings that the parent forked before waiting for either. Sequential commands (`base64 -d
/// file; echo hi | sh`) are not paired: the parent waited for the decoder to exit before it
/// forked the shell. Events from different CPUs can arrive out of order, and a decoder can finish
/// before a loaded parent forks the shell, so a pair whose lifetimes do not visibly overlap is
/// still one when the parent's own command line (`sh -c '... | base64 -d | sh'`) shows the two
/// piped together. Which processes count is the rule's condition; this detector only pairs them.
/// Time is the events' own; memory is bounded whatever a container does.
public final class DecodedPayloadShellDetector {
    /// The built-in rule whose matches (decoder and stdin-shell execs and exits) this detector pairs.
    public static let ruleId = "CAD-051"

    /// The names counted as the shell end of the pair; any other matched process is a decoder.
    public static let shells: Set<String> = [
        "sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "busybox", "rbash", "fish",
    ]

    private struct Member {
        let pid: UInt32
        let name: String
        let isShell: Bool
        let forked: UInt64
        let started: UInt64
        /// Known by name only (a busybox applet forked without an exec keeps its parent's
        /// arguments): paired only when the parent's command line pipes it into the shell.
        let byNameOnly: Bool
        var exited: UInt64?
    }

    private struct Siblings {
        var members: [Member] = []
        var last: UInt64
    }

    /// How far apart the two execs may be, nanoseconds.
    public let window: UInt64
    /// Parents followed at once; beyond that, stale ones then the oldest are dropped.
    public let capacity: Int
    /// Children remembered per parent (the most recent).
    static let membersPerParent = 8
    private var parents: [String: Siblings] = [:]

    public init(window: UInt64 = 2_000_000_000, capacity: Int = 4096) {
        self.window = window
        self.capacity = max(capacity, 1)
    }

    /// Parents currently followed (at most `capacity`).
    public var followed: Int { parents.count }

    /// A matched process of `name` (`pid`, child of `parent` in `container`, forked at `forked`):
    /// its exec at `time` (or, `byNameOnly`, its taking the name without an exec), or its exit
    /// when `exited`. Answers the alert's note when it completes a decoder-and-shell pair whose
    /// lifetimes overlap, nil otherwise.
    public func observe(
        container: String, parent: UInt32, pid: UInt32, name: String, forked: UInt64, time: UInt64,
        exited: Bool = false,
        byNameOnly: Bool = false, parentCommandLine: String = ""
    ) -> String? {
        let key = container + "\0" + String(parent)
        if exited {
            if let index = parents[key]?.members.firstIndex(where: { $0.pid == pid }) {
                parents[key]?.members[index].exited = time
            }
            return nil
        }
        var siblings = parents[key] ?? Siblings(last: time)
        // Seen already (an exec'd applet also renames itself): the first sighting stands.
        if siblings.members.contains(where: { $0.pid == pid && $0.name == name }) { return nil }
        siblings.last = max(siblings.last, time)
        let member = Member(
            pid: pid, name: name, isShell: Self.shells.contains(name), forked: forked, started: time,
            byNameOnly: byNameOnly)
        let partner = siblings.members.last { other in
            guard other.isShell != member.isShell && other.pid != pid && Self.distance(other.started, time) <= window
            else { return false }
            let (decoder, shell) = member.isShell ? (other.name, name) : (name, other.name)
            if other.byNameOnly || member.byNameOnly { return Self.piped(decoder, into: shell, in: parentCommandLine) }
            // Alive together: neither had exited when the other was forked.
            if (other.exited.map { $0 > forked } ?? true) && other.forked <= time { return true }
            return Self.piped(decoder, into: shell, in: parentCommandLine)
        }
        if let partner {
            siblings.members.removeAll { $0.pid == partner.pid }
            parents[key] = siblings
            let (decoder, shell) = member.isShell ? (partner, member) : (member, partner)
            return
                "\(decoder.name) pid \(decoder.pid) piped into \(shell.name) pid \(shell.pid), both started by pid \(parent)"
        }
        siblings.members.removeAll { $0.pid == pid || Self.distance($0.started, time) > window }
        if siblings.members.count >= Self.membersPerParent { siblings.members.removeFirst() }
        siblings.members.append(member)
        if parents[key] == nil && parents.count >= capacity { makeRoom(now: time) }
        parents[key] = siblings
        return nil
    }

    /// Whether a shell command line pipes `decoder` straight into `shell` (`... | base64 -d | sh`):
    /// two neighbouring stages of one pipeline (joined by a single `|`, not `;`, `&`, `||` or a
    /// newline) whose first words are those programs (paths allowed).
    static func piped(_ decoder: String, into shell: String, in commandLine: String) -> Bool {
        guard commandLine.utf8.count <= 65536, commandLine.contains("|") else { return false }
        // Stages, each with whether a lone `|` (a pipe) ends it.
        var stages: [(text: Substring, piped: Bool)] = []
        var start = commandLine.startIndex
        var index = start
        while index < commandLine.endIndex {
            let character = commandLine[index]
            let next = commandLine.index(after: index)
            if character == "|" || character == ";" || character == "&" || character == "\n" || character == "("
                || character == ")" || character == "`"
            {
                let doubled = next < commandLine.endIndex && commandLine[next] == character
                stages.append((commandLine[start..<index], character == "|" && !doubled))
                index = doubled ? commandLine.index(after: next) : next
                start = index
            } else {
                index = next
            }
        }
        stages.append((commandLine[start...], false))
        func program(_ stage: Substring) -> Substring? {
            stage.split(whereSeparator: { $0 == " " || $0 == "\t" }).first?.split(separator: "/").last
        }
        for index in stages.indices.dropLast()
        where stages[index].piped && program(stages[index].text) == Substring(decoder) {
            if program(stages[index + 1].text) == Substring(shell) { return true }
        }
        return false
    }

    private static func distance(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }

    private func makeRoom(now: UInt64) {
        let before = parents.count
        parents = parents.filter { Self.distance(now, $0.value.last) <= window }
        if parents.count < before { return }
        if let oldest = parents.min(by: { $0.value.last < $1.value.last })?.key { parents[oldest] = nil }
    }
}
