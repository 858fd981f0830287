import Foundation
import Sensor

/// The enforced rules fanotify refuses instead of killing: those whose kernel patterns
/// (`KernelEnforcement.patterns`) are all opens of a path (`fd.name` on open, openat, openat2,
/// creat, security_file_open) or execs (`proc.exepath` / `proc.name` on execve, execveat,
/// sched_process_exec, security_bprm_check). The verdict uses the kernel patterns' own
/// semantics (`=`, `in`, `startswith`; `container.id != host`), over what fanotify shows:
/// - the path is the opened file's, symlinks and relative paths resolved, as the container
///   names it (the kernel pattern compares the path the caller passed: fanotify also refuses
///   `cd /tmp; echo x > victim` and an open through a symlink to the file, which the kernel
///   pattern missed; a rule on the symlink's own path is not refused);
/// - an exec opens its file for exec (`FAN_OPEN_EXEC_PERM`, matched by exec patterns) and for
///   reading (`FAN_OPEN_PERM`, matched by open patterns as `security_file_open` sees it);
/// - `proc.name` is the executable's file name (15 bytes, as comm): an exec through a symlink
///   (busybox applets) shows the target's name, so exec rules keep their kernel kill at
///   `sched_process_exec` too, which acts only when fanotify let the exec through.
public struct FanotifyRules: Sendable {
    public struct Entry: Sendable {
        public let rule: Rule
        public let patterns: [KillPattern]
    }

    /// The covered rules, in the enforcer's order.
    public let entries: [Entry]

    /// The rules of `rules` that `enforcer` enforces and fanotify can decide (none on a dry run).
    public init(enforcer: Enforcer, rules: [Rule]) {
        guard !enforcer.options.dryRun else {
            entries = []
            return
        }
        // From the rule itself: one the kernel had no room for is refused all the same.
        entries = rules.compactMap { rule in
            guard enforcer.enforced[rule.id] != nil, let patterns = KernelEnforcement.patterns(for: rule),
                Self.covers(patterns)
            else {
                return nil
            }
            return Entry(rule: rule, patterns: patterns)
        }
    }

    init(entries: [Entry]) { self.entries = entries }

    /// Whether fanotify can decide every one of a rule's kernel patterns.
    public static func covers(_ patterns: [KillPattern]) -> Bool {
        !patterns.isEmpty && patterns.allSatisfy { [.openPath, .execPath, .execName].contains($0.kind) }
    }

    /// The first covered rule the access matches (deny), or nil (allow).
    public func decide(_ access: FanotifyAccess) -> Rule? {
        entries.first { $0.patterns.contains { Self.matches($0, access) } }?.rule
    }

    /// Whether some covered rule could refuse this path, wherever the caller runs: the guard
    /// allows the rest without looking up the caller's container.
    public func couldDeny(path: String, isExec: Bool) -> Bool {
        let anywhere = FanotifyAccess(pid: 0, path: path, isExec: isExec, containerID: "")
        return entries.contains { $0.patterns.contains { Self.matches($0, anywhere) } }
    }

    /// One kernel pattern's semantics over a fanotify access.
    static func matches(_ pattern: KillPattern, _ access: FanotifyAccess) -> Bool {
        if pattern.containersOnly && access.containerID == nil { return false }
        let subject: String
        switch pattern.kind {
        case .openPath where !access.isExec:
            subject = access.path
        case .execPath where access.isExec:
            subject = access.path
        case .execName where access.isExec:
            let name = access.path.split(separator: "/").last.map(String.init) ?? access.path
            subject = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        default:
            return false
        }
        // A path the guard could not read (longer than PATH_MAX) could lie under any prefix.
        guard !subject.isEmpty else { return pattern.prefix && pattern.kind != .execName }
        return pattern.prefix ? subject.hasPrefix(pattern.text) : subject == pattern.text
    }

    /// The enforcer's kernel patterns without those the guard refuses instead: a kill at the
    /// open's entry would end the process before fanotify refused the call. Opens in
    /// containers only (`container.id != host`) leave the kernel; an open rule that covers the
    /// host too keeps its kill (in a container the open is then refused and the process killed);
    /// exec patterns stay as the backstop for what fanotify lets through.
    public func kernelPatterns(of enforcer: Enforcer) -> [KillPattern] {
        guard !entries.isEmpty else { return enforcer.killPatterns }
        return enforcer.killPatterns.filter { !($0.kind == .openPath && $0.containersOnly) }
    }
}

/// Runs the fanotify guard for an enforcer's covered rules and raises an alert for each
/// refusal, with `action` "denied (fanotify)". The refused call never reaches the engine as a
/// match (a failed open has no fd.name, a refused exec changes no exepath), so the alert
/// comes from the verdict.
public final class FanotifyEnforcement: @unchecked Sendable {
    public let rules: FanotifyRules
    public let fanotifyGuard: FanotifyGuard

    /// Nil when no enforced rule is covered (or on a dry run). `raise` is called on the guard's
    /// thread, after the answer was written: it must be safe to call from there.
    public init?(
        enforcer: Enforcer, rules: [Rule], options: FanotifyGuardOptions = FanotifyGuardOptions(),
        raise: @escaping (Alert) -> Void
    )
        throws
    {
        let raiser = Raiser(raise)
        let prepared = Prepared()
        let details = DetailBudget(perSecond: 200)
        let covered = FanotifyRules(enforcer: enforcer, rules: rules)
        guard !covered.entries.isEmpty else { return nil }
        self.rules = covered
        let containers = enforcer.options.containers
        fanotifyGuard = try FanotifyGuard(
            options: options,
            shouldGuard: { info in
                containers.isEmpty || containers.contains { $0 == info.name || info.id.hasPrefix($0) }
            },
            couldDeny: { path, isExec in covered.couldDeny(path: path, isExec: isExec) },
            // The alert is made while the caller still waits in its open (its /proc is as it was),
            // raised once the answer is written (it cannot delay the call); both on the guard's reader thread.
            verdict: { access in
                guard let rule = covered.decide(access) else { return .allow }
                // Reading the caller's /proc costs about a millisecond: under a flood of refused
                // calls it would hold every other event past its deadline, so beyond a budget the
                // alert names the pid, path and container only.
                prepared.set(access, Self.alert(rule, access, detailed: details.admit()))
                return .deny
            },
            answered: { access, verdict, reason in
                guard verdict == .deny, reason == .verdict, let alert = prepared.take(access) else { return }
                raiser.raise(alert)
            })
    }

    /// The kernel patterns to load beside the guard (`SensorConfiguration.killPatterns`).
    public func kernelPatterns(of enforcer: Enforcer) -> [KillPattern] { rules.kernelPatterns(of: enforcer) }

    /// Removes the marks: opens and execs are no longer refused.
    public func stop() { fanotifyGuard.stop() }

    /// The alert for a refused access, with what /proc says of the caller (waiting in its open or exec).
    static func alert(_ rule: Rule, _ access: FanotifyAccess, detailed: Bool = true) -> Alert {
        let pid = UInt32(bitPattern: access.pid)
        let stat = detailed ? ProcFS.stat(pid) : nil
        let name = stat?.name ?? ""
        let exepath = detailed ? ProcFS.exePath(pid) ?? "" : ""
        let cmdline = detailed ? (ProcFS.argv(pid) ?? []).joined(separator: " ") : ""
        let uid = detailed ? ProcFS.uid(pid) : nil
        let vpid = detailed ? namespacePid(pid) ?? pid : pid
        let containerID = access.containerID ?? "host"
        let info = access.fileSystemOf?.id == access.containerID ? access.fileSystemOf : nil
        let what = access.isExec ? "exec" : "open"
        let eventName = access.isExec ? "security_bprm_check" : "security_file_open"
        let event = TraceEvent(
            timestamp: access.time, processId: vpid, threadId: vpid, parentProcessId: 0, hostProcessId: pid,
            hostThreadId: pid,
            userId: uid ?? 0, processName: String(decoding: name.utf8.prefix(15), as: UTF8.self),
            containerId: access.containerID ?? "", container: info,
            eventId: String(EventTable.definition(named: eventName)?.id ?? 0), eventName: eventName,
            returnValue: -Int64(EPERM),
            args: [TraceArgument(name: "pathname", type: "const char*", value: .string(access.path))])
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var alert = Alert(
            ruleId: rule.id, rule: rule.name, priority: rule.priority.rawValue,
            output:
                "\(what) of \(access.path.isEmpty ? "(a path longer than PATH_MAX)" : access.path) refused before it completed (proc=\(name) pid=\(pid))",
            time: EventView.rfc3339(access.time), timestamp: access.time,
            raisedAt: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec), mitre: rule.mitre, tags: rule.tags,
            container: Alert.Container(id: containerID, name: info?.name ?? "", image: info?.image ?? ""),
            process: Alert.Process(
                pid: pid, vpid: vpid, name: name, exepath: exepath, cmdline: cmdline, uid: uid, user: nil, tty: nil),
            ancestors: [], events: [event])
        alert.action = EnforcementMechanism.fanotify.actionText
        return alert
    }

    /// The caller's alert handler, which promised to be callable from the guard's thread.
    private final class Raiser: @unchecked Sendable {
        let raise: (Alert) -> Void
        init(_ raise: @escaping (Alert) -> Void) { self.raise = raise }
    }

    /// At most `perSecond` detailed alerts a second (a token bucket refilled each second).
    final class DetailBudget: @unchecked Sendable {
        private let lock = NSLock()
        private let perSecond: Int
        private var left: Int
        private var second: Int = 0

        init(perSecond: Int) {
            self.perSecond = perSecond
            left = perSecond
        }

        func admit() -> Bool {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            lock.lock()
            defer { lock.unlock() }
            if now.tv_sec != second {
                second = now.tv_sec
                left = perSecond
            }
            guard left > 0 else { return false }
            left -= 1
            return true
        }
    }

    /// The alert of the last denial, from its verdict to its answer.
    private final class Prepared: @unchecked Sendable {
        private let lock = NSLock()
        private var last: (access: FanotifyAccess, alert: Alert)?

        func set(_ access: FanotifyAccess, _ alert: Alert) {
            lock.lock()
            last = (access, alert)
            lock.unlock()
        }

        func take(_ access: FanotifyAccess) -> Alert? {
            lock.lock()
            defer { lock.unlock() }
            guard let last, last.access == access else { return nil }
            self.last = nil
            return last.alert
        }
    }

    /// The process's id in its own pid namespace (the last NSpid), or nil.
    static func namespacePid(_ pid: UInt32) -> UInt32? {
        guard let text = ProcFS.read("/proc/\(pid)/status"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") })
        else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last.flatMap { UInt32($0) }
    }
}
