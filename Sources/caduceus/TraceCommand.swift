import ArgumentParser
import Foundation
import Sensor

/// `caduceus trace`: the sensor's event stream as Tracee-compatible JSON lines or a table.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Trace containers from the kernel: one Tracee-format JSON event per line.",
        discussion: """
            Needs root. Examples:
              caduceus trace --output events.json            # every container, Tracee's default events
              caduceus trace --container fhir --format table # one container, readable
              caduceus trace --events execve,security_file_open --filter security_file_open.pathname='/etc/*'
            Exits with status 3 when the kernel dropped events (the last line on stderr counts them per CPU).
            """
    )

    @OptionGroup var options: TraceOptions

    @Option(help: "json (Tracee's format, one object per line) or table.")
    var format: String = "json"

    @Option(help: "Write events to this file instead of standard output.")
    var output: String?

    @Flag(help: "Only report which kernel hooks (BPF-LSM, fentry) this kernel allows, and exit.")
    var probe = false

    func run() throws {
        guard let traceFormat = TraceFormat(rawValue: format), traceFormat != .none else {
            throw ValidationError("--format must be json or table, not '\(format)'")
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
        let sensor = try Sensor(configuration: options.sensorConfiguration())
        writeStandardError("caduceus trace: " + sensor.securityEventSource)
        writeStandardError("caduceus trace: tracing \(sensor.configuration.events.ids.count) events; Ctrl-C to stop")
        let session = TraceSession(sensor: sensor, format: traceFormat, fileDescriptor: fd, filters: filters)
        let report = try options.runUntilStopped(session)
        writeStandardError("caduceus trace: " + lossLine(report))
        if report.statistics.lost > 0 { throw ExitCode(3) }
    }
}
