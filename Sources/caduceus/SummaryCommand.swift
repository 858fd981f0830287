import ArgumentParser
import Foundation
import Sensor

/// `caduceus summary`: events per name, from a trace file or from a live trace at Ctrl-C.
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract:
            "Count events per name, most frequent first: from a trace file (JSON or recording), or live until Ctrl-C.",
        discussion: """
            caduceus summary events.json     # the counts the old jq | awk pipeline gave, sorted
            caduceus summary fhir.rec        # the same from a recording (trace --format record)
            caduceus summary --duration 10  # a live trace of every container, counted in the kernel's order
            A live summary also shows the events the kernel dropped, per CPU.
            """
    )

    @Argument(help: "A file written by `caduceus trace` (JSON lines, or a recording). Without it, trace live.")
    var file: String?

    @OptionGroup var options: TraceOptions

    func run() throws {
        if let file, RecordingConversion.isRecording(path: file) {
            do {
                print(Self.table(try RecordingConversion.counts(from: RecordingReader(path: file))))
            } catch let error as RecordingError {
                writeStandardError("caduceus summary: \(file): \(error)")
                throw ExitCode(1)
            }
            return
        }
        if let file {
            let summary = try TraceFileSummary(path: file)
            if summary.skippedLines > 0 {
                writeStandardError("caduceus summary: \(summary.skippedLines) lines without an eventName were skipped")
            }
            let counts = summary.counts
            print(Self.table(counts))
            return
        }
        StopSignals.catchFromNow()  // a Ctrl-C while the sensor loads is not lost
        let sensor = try Sensor(configuration: options.sensorConfiguration())
        writeStandardError("caduceus summary: counting; Ctrl-C to stop")
        let session = TraceSession(
            sensor: sensor, format: .none, fileDescriptor: -1, filters: try options.argumentFilters())
        let report = try options.runUntilStopped(session)
        print(Self.table(report.counts))
        print(lossLine(report))
        if report.statistics.lost > 0 { throw ExitCode(3) }
    }

    static func table(_ counts: [(name: String, count: UInt64)]) -> String {
        let width = max(24, (counts.map(\.name.count).max() ?? 0) + 2)
        var lines = ["EVENT".padding(toLength: width, withPad: " ", startingAt: 0) + "COUNT"]
        for (name, count) in counts {
            lines.append(name.padding(toLength: width, withPad: " ", startingAt: 0) + String(count))
        }
        lines.append(
            "total".padding(toLength: width, withPad: " ", startingAt: 0) + String(counts.reduce(0) { $0 + $1.count }))
        return lines.joined(separator: "\n")
    }
}
