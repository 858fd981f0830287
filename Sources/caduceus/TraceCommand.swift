import ArgumentParser
import Foundation
import Sensor

/// `caduceus trace`: the sensor's event stream as Tracee-compatible JSON lines, a table or a
/// compact recording; or a recording turned into the JSON it stands for (`--input`).
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Trace containers from the kernel: one Tracee-format JSON event per line.",
        discussion: """
            Needs root. Examples:
              caduceus trace --output events.json            # every container, Tracee's default events
              caduceus trace --container fhir --format table # one container, readable
              caduceus trace --events execve,security_file_open --filter security_file_open.pathname='/etc/*'
              caduceus trace --events all --format record --output fhir.rec   # compact, cheapest to capture
              caduceus trace --input fhir.rec | jq .eventName                 # the same JSON, from the recording
            Exits with status 3 when the kernel dropped events (the last line on stderr counts them per CPU).
            With --allow-pause, SIGUSR1 pauses a live trace (its programs detached: the watched processes pay
            nothing, and their events until SIGUSR2 are not recorded); SIGUSR2 resumes it. Each is said on
            stderr, and the last line counts the pauses.
            With --input, exits with status 1 when the recording is truncated or corrupted, after the
            events before the fault.
            """
    )

    @OptionGroup var options: TraceOptions

    @Option(
        help:
            "json (Tracee's format, one object per line), table, or record (a compact binary recording; turn it into JSON with --input)."
    )
    var format: String = "json"

    @Option(
        help:
            "Read a recording written with --format record and write its events as JSON (no tracing; --filter applies)."
    )
    var input: String?

    @Option(help: "Write events to this file instead of standard output.")
    var output: String?

    @Flag(help: "Only report which kernel hooks (BPF-LSM, fentry) this kernel allows, and exit.")
    var probe = false

    @Flag(
        help:
            "SIGUSR1 pauses the trace (its programs detached, events not recorded) and SIGUSR2 resumes it; without it, a trace cannot be blinded that way."
    )
    var allowPause = false

    /// The options that choose what a live trace watches, as given: none applies to `--input`.
    var liveOnlyOptionsGiven: [String] {
        let watch = options.watch
        var given: [String] = []
        if options.events != "default" { given.append("--events") }
        if watch.scope != "containers" { given.append("--scope") }
        if watch.container != nil { given.append("--container") }
        if !watch.pids.isEmpty { given.append("--pid") }
        if !watch.comms.isEmpty { given.append("--comm") }
        if !watch.uids.isEmpty { given.append("--uid") }
        if watch.wakeupKib != nil { given.append("--wakeup-kib") }
        if watch.ringBufferMb != 64 { given.append("--ring-buffer-mb") }
        if watch.bpfObject != nil { given.append("--bpf-object") }
        if watch.duration != nil { given.append("--duration") }
        if probe { given.append("--probe") }
        if allowPause { given.append("--allow-pause") }
        return given
    }

    func run() throws {
        guard let traceFormat = TraceFormat(rawValue: format), traceFormat != .none else {
            throw ValidationError("--format must be json, table or record, not '\(format)'")
        }
        if input != nil && traceFormat != .json {
            throw ValidationError("--input writes JSON: --format \(format) applies to a live trace")
        }
        if input != nil, let live = liveOnlyOptionsGiven.first {
            // Said, not ignored: a user asking a recording for one container's events must not get every container's.
            throw ValidationError(
                "--input converts a whole recording (only --filter applies to it): \(live) applies to a live trace")
        }
        if traceFormat == .record && output == nil && isatty(STDOUT_FILENO) != 0 {
            throw ValidationError("--format record is binary: give --output FILE, or redirect standard output")
        }
        let filters = try options.argumentFilters()
        let fd: Int32
        if let output {
            fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
            }
        } else {
            fd = STDOUT_FILENO
        }
        defer { if output != nil { close(fd) } }
        if probe {
            print(KernelProbe.run().summary)
            return
        }
        if let input {
            try convert(input, to: fd, filters: filters)
            return
        }
        // A Ctrl-C (or a pause) while the sensor loads is not lost.
        if allowPause { StopSignals.catchPauseSignals() } else { StopSignals.catchFromNow() }
        let sensor = try Sensor(configuration: options.sensorConfiguration())
        writeStandardError("caduceus trace: " + sensor.securityEventSource)
        writeStandardError("caduceus trace: tracing \(sensor.configuration.events.ids.count) events; Ctrl-C to stop")
        let session = TraceSession(sensor: sensor, format: traceFormat, fileDescriptor: fd, filters: filters)
        let pauses = allowPause ? TracePauses(sensor: sensor) : nil
        let report = try options.runUntilStopped(session, pauses: pauses)
        writeStandardError("caduceus trace: " + lossLine(report) + (pauses?.summary ?? ""))
        if report.statistics.lost > 0 { throw ExitCode(3) }
    }

    /// `--input`: a recording to JSON, the counts and the recording's own totals on stderr.
    func convert(_ path: String, to fd: Int32, filters: [ArgumentFilter]) throws {
        do {
            let reader = try RecordingReader(path: path)
            let result = try RecordingConversion.writeJSON(from: reader, to: fd, filters: filters)
            var line = "caduceus trace: \(result.eventsWritten) events converted from \(path)"
            if result.eventsFiltered > 0 { line += ", \(result.eventsFiltered) filtered out" }
            line +=
                "; the trace that recorded it: \(result.totals.events) events written, \(result.totals.lost) lost in the kernel"
            writeStandardError(line)
        } catch let error as RecordingError {
            writeStandardError("caduceus trace: \(path): \(error)")
            throw ExitCode(1)
        }
    }
}
