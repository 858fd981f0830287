import ArgumentParser
import Dispatch
import Foundation
import Sensor

/// The options `trace` and a live `summary` share: what to watch (`WatchOptions`), which
/// events, and which of them to keep.
struct TraceOptions: ParsableArguments {
    @OptionGroup var watch: WatchOptions

    @Option(
        help:
            "Events and sets, comma-separated: names (openat, sched_process_exec), sets (syscalls fs net proc security default all), -name to remove."
    )
    var events: String = "default"

    @Option(
        name: .customLong("filter"),
        help: "Keep only events whose argument matches a glob, e.g. openat.pathname=/etc/* (repeatable; != negates).")
    var filters: [String] = []

    func sensorConfiguration() throws -> SensorConfiguration {
        let selection: EventSelection
        do {
            selection = try EventSelection(parsing: [events])
        } catch {
            throw ValidationError("--events: \(error)")
        }
        guard !selection.ids.isEmpty else {
            throw ValidationError("--events '\(events)' selects no event")
        }
        var configuration = try watch.sensorConfiguration(events: selection)
        if watch.wakeupKib == nil {
            // Recording: batches of 256 KiB, or every 20 ms (see WatchOptions.wakeupKib).
            configuration.wakeupBytes = 256 << 10
            configuration.pollMilliseconds = 20
        }
        return configuration
    }

    func argumentFilters() throws -> [ArgumentFilter] {
        try filters.map { text in
            do { return try ArgumentFilter(parsing: text) } catch { throw ValidationError("--filter: \(error)") }
        }
    }

    /// Runs a session until Ctrl-C, SIGTERM or `--duration`, whichever comes first; with
    /// `pauses`, SIGUSR1 and SIGUSR2 pause and resume it.
    func runUntilStopped(_ session: TraceSession, pauses: TracePauses? = nil) throws -> TraceReport {
        var pause: (@Sendable (Bool) -> Void)?
        if let pauses { pause = { pauses.set(paused: $0) } }
        return try watch.runUntilStopped(stop: { session.stop() }, pause: pause) { try session.run() }
    }
}

/// What to watch and for how long: the options every live sensor command shares
/// (`trace`, `summary`, `detect`).
struct WatchOptions: ParsableArguments {
    @Option(help: "Which processes: all, host, containers, new-containers.")
    var scope: String = "containers"

    @Option(help: "Only this container (full id, unique id prefix, or name).")
    var container: String?

    @Option(name: .customLong("pid"), help: "Only this host process id (repeatable).")
    var pids: [Int32] = []

    @Option(
        name: .customLong("comm"),
        help: "Only processes with this name, its first 15 bytes as the kernel keeps it (repeatable).")
    var comms: [String] = []

    @Option(name: .customLong("uid"), help: "Only this user id (repeatable).")
    var uids: [UInt32] = []

    @Option(
        help:
            "Wake the reader once this many KiB wait in the ring buffer, else every 20 ms (0: at every event). Default: 256 for trace and summary, 0 for detect."
    )
    var wakeupKib: Int?

    @Option(help: "Ring buffer size in MiB (a power of two).")
    var ringBufferMb: Int = 64

    @Option(help: "The compiled BPF object (default: the one built with caduceus).")
    var bpfObject: String?

    @Option(help: "Stop after this many seconds (default: at Ctrl-C).")
    var duration: Double?

    func sensorConfiguration(events: EventSelection) throws -> SensorConfiguration {
        var configuration = SensorConfiguration()
        switch scope {
        case "all": configuration.scope = .all
        case "host": configuration.scope = .host
        case "containers": configuration.scope = .containers
        case "new-containers": configuration.scope = .newContainers
        default: throw ValidationError("--scope must be all, host, containers or new-containers, not '\(scope)'")
        }
        if let container { configuration.scope = .container(container) }
        configuration.pids = pids
        configuration.comms = comms
        configuration.uids = uids
        configuration.events = events
        if let duration, !(duration > 0 && duration < 1e9) {
            throw ValidationError("--duration must be a positive number of seconds, not \(duration)")
        }
        guard ringBufferMb > 0, ringBufferMb & (ringBufferMb - 1) == 0, ringBufferMb <= 1024 else {
            throw ValidationError("--ring-buffer-mb must be a power of two up to 1024, not \(ringBufferMb)")
        }
        configuration.ringBufferBytes = ringBufferMb << 20
        if let wakeupKib {
            guard wakeupKib >= 0 else { throw ValidationError("--wakeup-kib must be 0 or more") }
            configuration.wakeupBytes = UInt32(min(wakeupKib, 1 << 20)) << 10
            // Batched records wait for the reader's timer: keep it short.
            if wakeupKib > 0 { configuration.pollMilliseconds = 20 }
        }
        configuration.objectPath = bpfObject
        return configuration
    }

    /// Runs `body` until Ctrl-C, SIGTERM or `--duration`, whichever comes first calls `stop`.
    /// The signals are caught from `StopSignals.catchFromNow()`, which the command calls before
    /// loading the sensor: one that came while it loaded stops `body` at once.
    func runUntilStopped<Result>(
        stop: @escaping @Sendable () -> Void, pause: (@Sendable (Bool) -> Void)? = nil, _ body: () throws -> Result
    ) throws -> Result {
        if let duration {
            DispatchQueue.global().asyncAfter(deadline: .now() + duration) { stop() }
        }
        return try StopSignals.run(stop: stop, pause: pause, body)
    }
}

/// The line printed at the end of every trace: loss is never silent.
func lossLine(_ report: TraceReport) -> String {
    let stats = report.statistics
    let perCPU = stats.lostPerCPU.enumerated().map { "cpu\($0.offset): \($0.element)" }.joined(separator: ", ")
    var line = "\(report.eventsWritten) events written, \(stats.lost) lost in the kernel (\(perCPU))"
    if report.eventsFiltered > 0 { line += ", \(report.eventsFiltered) filtered out" }
    if report.bytesWritten > 0 {
        let perEvent = report.eventsWritten > 0 ? Double(report.bytesWritten) / Double(report.eventsWritten) : 0
        line += ", \(report.bytesWritten) bytes written (" + String(format: "%.1f", perEvent) + " bytes/event)"
    }
    return line
}

/// One line on stderr, after what `print` has buffered for stdout is flushed: on a terminal, or
/// with both streams sent to one file, the lines come in the order they were written (the lab's
/// notes used to cut the detection matrix's rows, which stdout still held in its buffer).
func writeStandardError(_ text: String) {
    fflush(nil)  // every C stream: Swift 6 refuses the global `stdout` (shared mutable state)
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A failure to report as is, without the usage text a `ValidationError` adds (a rule
/// file's error at file:line:column is about the file, not the command line).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
