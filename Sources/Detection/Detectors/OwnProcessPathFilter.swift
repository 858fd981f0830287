/// Tells a process's own /proc entry named by number (`/proc/42/mem` read by pid 42) from another
/// process's: rule conditions compare a field with constants, not with another field, so CAD-058
/// ("another process's memory") asks this filter after its condition matched.
public enum OwnProcessPathFilter {
    /// The built-in rule whose matches are filtered.
    public static let ruleId = "CAD-058"

    /// The number after `/proc/` (and after `/task/` when present), or nil when the path names
    /// no process by number (`/proc/self/...`, a relative path, hostile text).
    public static func processNumbers(in path: String) -> [UInt32] {
        guard path.utf8.count <= 4096, path.hasPrefix("/proc/") else { return [] }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var numbers: [UInt32] = []
        if parts.count > 1, let pid = UInt32(parts[1]) { numbers.append(pid) }
        if parts.count > 3, parts[2] == "task", let tid = UInt32(parts[3]) { numbers.append(tid) }
        return numbers
    }

    /// Whether `path` names the caller itself: every number in it is one of the caller's own ids
    /// (its pid or thread id, as the container numbers them or as the host does).
    public static func isOwn(_ path: String, ids: [UInt32]) -> Bool {
        let numbers = processNumbers(in: path)
        return !numbers.isEmpty && numbers.allSatisfy(ids.contains)
    }
}
