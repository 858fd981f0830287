/// How an enforced rule acts on a matching call, strongest first. Only the first three refuse
/// the call; a kill ends the process after the syscall has run (a truncating open has already
/// truncated, a connect has already connected).
public enum EnforcementMechanism: String, Sendable, CaseIterable, Codable {
    /// A BPF program on the cgroup hook answered EPERM before the call ran (connect, sendmsg, bind).
    case cgroup
    /// A fanotify permission event was answered DENY before the open or exec completed.
    case fanotify
    /// A BPF-LSM program returned -EPERM (kernels with `bpf` in the active LSMs only).
    case lsm
    /// The kernel sent SIGKILL at the syscall's entry; the signal is delivered as the syscall returns.
    case kernelKill
    /// User space sent SIGKILL on the alert.
    case userSpaceKill

    /// Whether the call itself is refused (the process sees EPERM), not only the process ended.
    public var refusesTheCall: Bool {
        switch self {
        case .cgroup, .fanotify, .lsm: true
        case .kernelKill, .userSpaceKill: false
        }
    }

    /// What an alert's `action` says when this mechanism acted.
    public var actionText: String {
        switch self {
        case .cgroup: "denied (cgroup)"
        case .fanotify: "denied (fanotify)"
        case .lsm: "denied (lsm)"
        case .kernelKill: "killed after the syscall (kernel)"
        case .userSpaceKill: "killed after the syscall (user space)"
        }
    }
}
