import Foundation
import Synchronization

/// SIGINT and SIGTERM for the live sensor commands (`trace`, `summary`, `detect`, `profile`),
/// caught by a plain signal handler from before the sensor loads until the process ends.
///
/// Why not a `DispatchSource` for the signal, as before: it had to set the signal to `SIG_IGN`
/// first and libdispatch installs its own handler later, on its manager thread, so a signal
/// in between was dropped; and nothing was caught while the sensor loaded (seconds on a busy
/// machine, the verifier's work), when a command started in the background by a script
/// inherits SIGINT ignored. A benchmark script that sent SIGINT in that time waited 13 minutes
/// on a trace that never stopped. Here a signal at any time after `catchFromNow()` stops the
/// command: at once when it runs, right after loading when it comes earlier.
enum StopSignals {
    /// The signals that stop a live command.
    static let numbers: [Int32] = [SIGINT, SIGTERM]

    /// Set by the handler; read when a command starts running, for a signal that came first.
    fileprivate static let requested = Atomic<Bool>(false)
    /// What stops the running command; nil while none runs.
    private static let action = Mutex<(@Sendable () -> Void)?>(nil)
    private static let installed = Mutex(false)

    /// Installs the handlers (once per process). Call before loading the sensor.
    static func catchFromNow() {
        let first = installed.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        _ = requested.load(ordering: .sequentiallyConsistent)  // initialized before any handler runs
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { fatalError("caduceus: no pipe for the stop signals: errno \(errno)") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }  // not inherited by what a command starts
        stopSignalWriteEnd = ends[1]
        let readEnd = ends[0]
        // A thread of its own (not libdispatch's, whose threads may all be busy) waits for the
        // handler's byte and stops the command.
        let waiter = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return }
                action.withLock { $0 }?()
            }
        }
        waiter.name = "caduceus.stop-signals"
        waiter.start()
        var handler = sigaction()
        handler.__sigaction_handler.sa_handler = stopSignalHandler
        handler.sa_flags = SA_RESTART
        sigemptyset(&handler.sa_mask)
        for number in numbers { sigaction(number, &handler, nil) }
        // Any thread may take the signal: unblock it in this one too (libdispatch's threads block all).
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for number in numbers { sigaddset(&unblock, number) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Runs `body` until SIGINT or SIGTERM calls `stop` (or `body` returns by itself); a signal
    /// that came since `catchFromNow()` calls `stop` before `body` starts.
    static func run<Result>(stop: @escaping @Sendable () -> Void, _ body: () throws -> Result) rethrows -> Result {
        catchFromNow()
        action.withLock { $0 = stop }
        defer { action.withLock { $0 = nil } }
        if requested.load(ordering: .sequentiallyConsistent) { stop() }
        return try body()
    }

    /// Whether a stop signal came (for tests and diagnostics).
    static var wasRequested: Bool { requested.load(ordering: .sequentiallyConsistent) }
}

/// The pipe's write end, for the handler (set once before the handler is installed).
nonisolated(unsafe) private var stopSignalWriteEnd: Int32 = -1

/// Async-signal-safe: an atomic store and a write(2), errno kept for the interrupted code.
private func stopSignalHandler(_ number: Int32) {
    let saved = errno
    StopSignals.requested.store(true, ordering: .sequentiallyConsistent)
    var byte: UInt8 = 1
    _ = write(stopSignalWriteEnd, &byte, 1)
    errno = saved
}
