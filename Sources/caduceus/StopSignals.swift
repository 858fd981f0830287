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
///
/// `trace --allow-pause` also takes SIGUSR1 (pause: its programs detached) and SIGUSR2 (resume)
/// the same way (`catchPauseSignals()`): the handler notes the state asked for (that of the
/// signal handled last: POSIX sets no order between signals sent at once) and wakes the waiter,
/// which brings the trace to it, so a burst of signals is merged and a full pipe loses nothing.
/// A pause that comes while the sensor loads applies when the trace starts.
enum StopSignals {
    /// The signals that stop a live command.
    static let numbers: [Int32] = [SIGINT, SIGTERM]
    /// The signals that pause and resume a live trace.
    static let pauseNumbers: [Int32] = [SIGUSR1, SIGUSR2]

    /// Set by the handler; read when a command starts running, for a signal that came first.
    fileprivate static let requested = Atomic<Bool>(false)
    /// What stops the running command; nil while none runs.
    private static let action = Mutex<(@Sendable () -> Void)?>(nil)
    /// What the last pause signal asked (true: paused), set by the handler; and what carries it
    /// out, nil while no trace runs.
    fileprivate static let wantsPause = Atomic<Bool>(false)
    private static let pauseAction = Mutex<(@Sendable (Bool) -> Void)?>(nil)
    private static let installed = Mutex(false)

    /// Installs the handlers (once per process). Call before loading the sensor.
    static func catchFromNow() {
        let first = installed.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        _ = requested.load(ordering: .sequentiallyConsistent)  // initialized before any handler runs
        _ = wantsPause.load(ordering: .sequentiallyConsistent)
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { fatalError("caduceus: no pipe for the stop signals: errno \(errno)") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }  // not inherited by what a command starts
        // A full pipe must not block the handler (in the waiter's own thread, it never would
        // return): a byte is only a wake-up, the state is in the atomics.
        _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
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
                if byte == UInt8(SIGUSR1) || byte == UInt8(SIGUSR2) {
                    // Under the lock that `run` sets the action with: a stale state cannot win.
                    pauseAction.withLock { $0?(wantsPause.load(ordering: .sequentiallyConsistent)) }
                }
                if requested.load(ordering: .sequentiallyConsistent) { action.withLock { $0 }?() }
            }
        }
        waiter.name = "caduceus.stop-signals"
        waiter.start()
        install(numbers)
    }

    /// Also catches SIGUSR1 and SIGUSR2 from now (after `catchFromNow()`), for `run(stop:pause:_:)`.
    static func catchPauseSignals() {
        catchFromNow()
        install(pauseNumbers)
    }

    /// The handler for `signals`, which are unblocked in this thread too: any thread may take
    /// them (libdispatch's threads block all).
    private static func install(_ signals: [Int32]) {
        var handler = sigaction()
        handler.__sigaction_handler.sa_handler = stopSignalHandler
        handler.sa_flags = SA_RESTART
        sigemptyset(&handler.sa_mask)
        for number in signals { sigaction(number, &handler, nil) }
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for number in signals { sigaddset(&unblock, number) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Runs `body` until SIGINT or SIGTERM calls `stop` (or `body` returns by itself); a signal
    /// that came since `catchFromNow()` calls `stop` before `body` starts. With `pause`, SIGUSR1
    /// calls it with true and SIGUSR2 with false (see `catchPauseSignals()`); a SIGUSR1 that came
    /// before calls it with true before `body` starts.
    static func run<Result>(
        stop: @escaping @Sendable () -> Void, pause: (@Sendable (Bool) -> Void)? = nil, _ body: () throws -> Result
    ) rethrows -> Result {
        catchFromNow()
        action.withLock { $0 = stop }
        defer { action.withLock { $0 = nil } }
        if let pause {
            pauseAction.withLock { action in
                action = pause
                if wantsPause.load(ordering: .sequentiallyConsistent) { pause(true) }
            }
        }
        defer { pauseAction.withLock { $0 = nil } }
        if requested.load(ordering: .sequentiallyConsistent) { stop() }
        return try body()
    }

    /// Whether a stop signal came (for tests and diagnostics).
    static var wasRequested: Bool { requested.load(ordering: .sequentiallyConsistent) }
}

/// The pipe's write end, for the handler (set once before the handler is installed).
nonisolated(unsafe) private var stopSignalWriteEnd: Int32 = -1

/// Async-signal-safe: an atomic store and a write(2) of the signal's number, errno kept for
/// the interrupted code.
private func stopSignalHandler(_ number: Int32) {
    let saved = errno
    switch number {
    case SIGUSR1: StopSignals.wantsPause.store(true, ordering: .sequentiallyConsistent)
    case SIGUSR2: StopSignals.wantsPause.store(false, ordering: .sequentiallyConsistent)
    default: StopSignals.requested.store(true, ordering: .sequentiallyConsistent)
    }
    var byte = UInt8(truncatingIfNeeded: number)
    _ = write(stopSignalWriteEnd, &byte, 1)
    errno = saved
}
