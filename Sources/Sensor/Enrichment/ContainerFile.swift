import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Reads files a container controls, as a root process must: the container can make any of
/// its paths a symlink (out of its root, to a FIFO that never answers, to /dev/zero that never
/// ends), so every read here
/// - resolves the path inside the process's root, never out of it (`openat2` with
///   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` below an `O_PATH` descriptor of
///   `/proc/PID/root`; symlinks are followed as the container sees them, within its root);
/// - opens only regular files: the path is opened `O_PATH` first, its type checked, and only
///   then re-opened for reading (a FIFO or device is never opened, so never waited on);
/// - reads at most a size cap, and within a time cap on a worker thread (a read from a FUSE
///   file, or of /proc/PID/cmdline while the process holds its memory map's lock, can block);
///   a read still running after the time cap is abandoned, and while `maximumStalled` are
///   abandoned further reads fail at once;
/// - fails to nil: the caller's field stays empty; nothing stalls the sensor.
public enum ContainerFile {
    /// What one read may take.
    public static let defaultTimeout: TimeInterval = 0.25
    /// Reads abandoned at their time cap and still blocked; past this many, reads fail at once.
    public static let maximumStalled = 4

    private static let lock = NSLock()
    nonisolated(unsafe) private static var stalled = 0

    /// Opens (O_PATH) a process's root directory: the magic link the kernel keeps, which the
    /// process cannot redirect.
    static func openRoot(_ root: String) -> Int32 {
        open(root, oPath | O_DIRECTORY | O_CLOEXEC)
    }

    /// `path` (absolute, as the container names it) inside the root of process `pid`.
    public static func read(_ path: String, inRootOf pid: UInt32, limit: Int, timeout: TimeInterval = defaultTimeout)
        -> [UInt8]?
    {
        read(path, inRoot: "/proc/\(pid)/root", limit: limit, timeout: timeout)
    }

    /// `path` inside the directory `root`, which acts as `/` (for tests, a temporary directory).
    public static func read(_ path: String, inRoot root: String, limit: Int, timeout: TimeInterval = defaultTimeout)
        -> [UInt8]?
    {
        bounded(timeout: timeout) {
            let rootFD = openRoot(root)
            guard rootFD >= 0 else { return nil }
            defer { close(rootFD) }
            let fd = openRegular(at: rootFD, path, resolve: resolveInRoot | resolveNoMagicLinks)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            return readAll(fd, limit: limit)
        }
    }

    /// A file the kernel writes about a process (`/proc/PID/cmdline`, `environ`, `stat`,
    /// `status`, `cgroup`): no symlink followed, regular only, size and time capped.
    public static func readProcFile(_ path: String, limit: Int, timeout: TimeInterval = defaultTimeout) -> [UInt8]? {
        bounded(timeout: timeout) { readKernelFile(path, limit: limit) }
    }

    /// `readProcFile` on the calling thread, without the time cap: for callers that cannot
    /// wait for a worker (the fanotify guard answers opens) and files no process can stall.
    public static func readKernelFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = openRegular(at: AT_FDCWD, path, resolve: resolveNoSymlinks | resolveNoMagicLinks)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd, limit: limit)
    }

    // MARK: - openat2

    /// O_PATH of asm-generic/fcntl.h (Glibc's module does not export it).
    static let oPath: Int32 = 0o10000000
    static let resolveNoMagicLinks: UInt64 = 0x02
    static let resolveNoSymlinks: UInt64 = 0x04
    static let resolveInRoot: UInt64 = 0x10
    static let openat2Number = 437

    /// `struct open_how` of linux/openat2.h.
    struct OpenHow {
        var flags: UInt64
        var mode: UInt64
        var resolve: UInt64
    }

    /// glibc's `syscall` with the argument types of openat2 (Swift cannot call a variadic C
    /// function; on Linux's x86-64 and arm64 ABIs integer arguments pass the same either way).
    typealias SyscallOpenat2 = @convention(c) (Int, Int32, UnsafePointer<CChar>, UnsafeMutableRawPointer, Int) -> Int
    static let syscallOpenat2: SyscallOpenat2? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syscall") else { return nil }
        return unsafeBitCast(symbol, to: SyscallOpenat2.self)
    }()

    /// openat2(2), or -1 with errno ENOSYS where it cannot be called.
    static func openat2(_ directory: Int32, _ path: String, flags: Int32, resolve: UInt64) -> Int32 {
        guard let call = syscallOpenat2 else {
            errno = ENOSYS
            return -1
        }
        var how = OpenHow(flags: UInt64(UInt32(bitPattern: flags)), mode: 0, resolve: resolve)
        while true {
            let result = path.withCString { name in
                withUnsafeMutablePointer(to: &how) {
                    call(openat2Number, directory, name, UnsafeMutableRawPointer($0), MemoryLayout<OpenHow>.size)
                }
            }
            if result < 0 && errno == EINTR { continue }
            return Int32(truncatingIfNeeded: result)
        }
    }

    /// A descriptor for reading `path` if it is a regular file, or -1. The path is opened
    /// O_PATH (which opens nothing: no FIFO waits, no device acts), checked, then re-opened
    /// through /proc/self/fd, which names the same inode.
    static func openRegular(at directory: Int32, _ path: String, resolve: UInt64) -> Int32 {
        let pathFD = openat2(directory, path, flags: oPath | O_CLOEXEC, resolve: resolve)
        guard pathFD >= 0 else { return -1 }
        defer { close(pathFD) }
        var info = stat()
        guard fstat(pathFD, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return -1 }
        let fd = open("/proc/self/fd/\(pathFD)", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return -1 }
        var opened = stat()
        guard fstat(fd, &opened) == 0, opened.st_dev == info.st_dev, opened.st_ino == info.st_ino else {
            close(fd)
            return -1
        }
        return fd
    }

    /// At most `limit` bytes; procfs files report size 0, so this reads to the end or the cap.
    static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(max(limit, 1), 64 * 1024))
        while bytes.count < limit {
            let wanted = min(chunk.count, limit - bytes.count)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                return bytes.isEmpty ? nil : bytes
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes
    }

    // MARK: - The time cap

    /// Runs `work` on a worker thread and waits at most `timeout` for it.
    static func bounded(timeout: TimeInterval, _ work: @escaping @Sendable () -> [UInt8]?) -> [UInt8]? {
        lock.lock()
        let tooMany = stalled >= maximumStalled
        lock.unlock()
        if tooMany { return nil }
        final class Box: @unchecked Sendable {
            var result: [UInt8]?
            var gaveUp = false
        }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let abandoned = NSLock()
        DispatchQueue.global(qos: .utility).async {
            let result = work()
            abandoned.lock()
            if box.gaveUp {
                lock.lock()
                stalled -= 1
                lock.unlock()
            } else {
                box.result = result
            }
            abandoned.unlock()
            done.signal()
        }
        if done.wait(timeout: .now() + timeout) == .success { return box.result }
        abandoned.lock()
        defer { abandoned.unlock() }
        // The worker may have finished between the wait and the lock.
        if done.wait(timeout: .now()) == .success { return box.result }
        box.gaveUp = true
        lock.lock()
        stalled += 1
        lock.unlock()
        return nil
    }

    /// Reads abandoned and still blocked (for tests and diagnostics).
    public static var stalledReads: Int {
        lock.lock()
        defer { lock.unlock() }
        return stalled
    }
}
