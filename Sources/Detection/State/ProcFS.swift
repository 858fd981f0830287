import Foundation
import Sensor

/// Reads what the event stream cannot tell about a live process from /proc: the image,
/// terminal and start of processes that existed before detection, and the terminal and
/// environment at exec. Every read may fail (the process may be gone): nil then.
///
/// What a process controls is hostile: its command line and environment (any size it can
/// get exec to take), and everything under its root (a container's /etc/passwd may be a
/// symlink to a FIFO, to /dev/zero, out of its root). Every read goes through
/// `ContainerFile`: regular files only, resolved inside the process's root, size- and
/// time-capped; a failure leaves the field empty.
public enum ProcFS {
    /// Bytes read of /proc/PID/cmdline and environ (the kernel's own cap for comm-like
    /// fields is far lower; an argv past this is cut, as Falco cuts it).
    public static let argumentBytes = 64 * 1024
    /// Bytes read of stat, status and cgroup (a few hundred in practice).
    public static let statusBytes = 64 * 1024
    /// Bytes read of a container's /etc/passwd.
    public static let passwdBytes = 1024 * 1024

    public struct Stat {
        public var ppid: UInt32
        public var name: String
        public var tty: Int64
        /// Clock ticks after boot.
        public var startTicks: UInt64
    }

    public static func stat(_ pid: UInt32) -> Stat? {
        guard let text = read("/proc/\(pid)/stat"), let open = text.firstIndex(of: "("),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let rest = text[text.index(close, offsetBy: 2)...].split(separator: " ")
        // After "(comm) ": state ppid pgrp session tty_nr ... starttime is field 22 overall, index 19 here.
        guard rest.count > 19, let ppid = UInt32(rest[1]), let tty = Int64(rest[4]), let start = UInt64(rest[19]) else {
            return nil
        }
        return Stat(ppid: ppid, name: name, tty: tty, startTicks: start)
    }

    public static func argv(_ pid: UInt32) -> [String]? {
        guard let data = ContainerFile.readProcFile("/proc/\(pid)/cmdline", limit: argumentBytes) else { return nil }
        var parts = data.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    public static func environment(_ pid: UInt32) -> [String]? {
        guard let data = ContainerFile.readProcFile("/proc/\(pid)/environ", limit: argumentBytes) else { return nil }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    public static func exePath(_ pid: UInt32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }

    public static func uid(_ pid: UInt32) -> UInt32? {
        guard let text = read("/proc/\(pid)/status"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
        else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
    }

    /// The container id in the process's cgroup paths (`.../docker/<64 hex>`, `docker-<id>.scope`,
    /// ...), "" if none: the sensor's own parser, on each line of /proc/PID/cgroup.
    public static func containerID(_ pid: UInt32) -> String {
        ContainerResolver.containerID(ofProcess: Int32(bitPattern: pid)) ?? ""
    }

    /// User names from the process's own root (a container's /etc/passwd), by uid: read
    /// inside that root, a regular file of at most `passwdBytes`, or none.
    public static func userNames(rootOf pid: UInt32) -> [UInt32: String] {
        userNames(root: "/proc/\(pid)/root")
    }

    /// User names from `root`/etc/passwd, `root` acting as `/`.
    public static func userNames(root: String) -> [UInt32: String] {
        guard let bytes = ContainerFile.read("/etc/passwd", inRoot: root, limit: passwdBytes) else { return [:] }
        let text = String(decoding: bytes, as: UTF8.self)
        var names: [UInt32: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 2, let uid = UInt32(fields[2]) { names[uid] = String(fields[0]) }
        }
        return names
    }

    /// What /proc/PID/status tells beyond the uid: ids and capabilities the exec event may
    /// not carry (processes older than detection, a sensor without those arguments).
    public struct Status {
        public var gid: UInt32?
        public var capPermitted: UInt64?
        public var capEffective: UInt64?
        /// NSpgid and NSsid: the innermost pid namespace's ids.
        public var vpgid: Int64?
        public var sid: Int64?
    }

    public static func status(_ pid: UInt32) -> Status? {
        guard let text = read("/proc/\(pid)/status") else { return nil }
        var status = Status()
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard let key = fields.first, fields.count > 1 else { continue }
            switch key {
            case "Gid:": status.gid = UInt32(fields[1])
            case "CapPrm:": status.capPermitted = UInt64(fields[1], radix: 16)
            case "CapEff:": status.capEffective = UInt64(fields[1], radix: 16)
            case "NSpgid:": status.vpgid = fields.last.flatMap { Int64($0) }
            case "NSsid:": status.sid = fields.last.flatMap { Int64($0) }
            default: continue
            }
        }
        return status
    }

    /// The audit login uid (4294967295 when unset).
    public static func loginUid(_ pid: UInt32) -> UInt32? {
        read("/proc/\(pid)/loginuid").flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The working directory, ending in '/'.
    public static func cwd(_ pid: UInt32) -> String? {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else {
            return nil
        }
        return path.hasSuffix("/") ? path : path + "/"
    }

    /// The executable's inode ctime and mtime, ns since the epoch: statx(2) on /proc/PID/exe
    /// with AT_STATX_DONT_SYNC, so a file on a filesystem a container serves (FUSE) answers
    /// from the kernel's cache instead of making the engine wait for its server; nil where
    /// statx is missing.
    public static func exeTimes(_ pid: UInt32) -> (ctime: UInt64, mtime: UInt64)? {
        guard let call = statxCall else { return nil }
        let dontSync: Int32 = 0x4000, ctimeMask: UInt32 = 0x80, mtimeMask: UInt32 = 0x40
        // struct statx (256 bytes): stx_mask at 0; stx_ctime at 96, stx_mtime at 112, each
        // { s64 tv_sec; u32 tv_nsec; s32 reserved }.
        var buffer = [UInt8](repeating: 0, count: 256)
        let result = buffer.withUnsafeMutableBytes { raw in
            call(AT_FDCWD, "/proc/\(pid)/exe", dontSync, ctimeMask | mtimeMask, raw.baseAddress!)
        }
        guard result == 0 else { return nil }
        return buffer.withUnsafeBytes { raw -> (UInt64, UInt64)? in
            let mask = raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            guard mask & (ctimeMask | mtimeMask) == ctimeMask | mtimeMask else { return nil }
            func ns(_ offset: Int) -> UInt64 {
                let seconds = raw.loadUnaligned(fromByteOffset: offset, as: Int64.self)
                return UInt64(max(seconds, 0)) * 1_000_000_000
                    + UInt64(raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            }
            return (ns(96), ns(112))
        }
    }

    typealias Statx = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UInt32, UnsafeMutableRawPointer) -> Int32
    static let statxCall: Statx? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "statx") else { return nil }
        return unsafeBitCast(symbol, to: Statx.self)
    }()

    /// Group names from the process's own root (a container's /etc/group), by gid; read
    /// like `userNames`.
    public static func groupNames(rootOf pid: UInt32) -> [UInt32: String] {
        guard let bytes = ContainerFile.read("/etc/group", inRoot: "/proc/\(pid)/root", limit: passwdBytes) else {
            return [:]
        }
        var names: [UInt32: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 2, let gid = UInt32(fields[2]) { names[gid] = String(fields[0]) }
        }
        return names
    }

    public static func processIDs() -> [UInt32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { UInt32($0) }
    }

    /// Nanoseconds since the epoch of boot, to turn start ticks into times.
    static let bootTime: UInt64 = {
        guard let text = read("/proc/stat"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let seconds = UInt64(line.dropFirst(6))
        else { return 0 }
        return seconds * 1_000_000_000
    }()

    static let ticksPerSecond = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))

    static func read(_ path: String) -> String? {
        guard let data = ContainerFile.readProcFile(path, limit: statusBytes) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
