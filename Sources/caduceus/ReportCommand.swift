import ArgumentParser
import Foundation
import LabReport

/// `caduceus report`: the results of a demo, the lab and the benchmarks as one HTML page with
/// charts, and the same figures as JSON.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract:
            "Turn a results directory into report.html (charts, self-contained) and report.json (the same figures).",
        discussion: """
            Reads, each one optional (a missing one is shown as not measured):
              events.json    from caduceus trace --output
              alerts.json    from caduceus detect --output
              matrix.json    from caduceus lab attack --json
              overhead.json  from caduceus bench overhead
            A malformed file stops the report with its name and line.
              caduceus report --from caduceus-results
              caduceus report --from results --output /tmp/run1.html  # and /tmp/run1.json
            """)

    @Option(help: "The results directory.")
    var from = "caduceus-results"

    @Option(help: "The HTML file to write (default: DIR/report.html); the JSON goes beside it, ending in .json.")
    var output: String?

    func run() throws {
        try Self.write(
            Self.load(from: from), htmlPath: output ?? (from as NSString).appendingPathComponent("report.html"))
    }

    /// The results directory's figures, or a failure naming the file and line at fault.
    static func load(from directory: String) throws -> ReportData {
        do {
            return try ReportData.load(from: directory)
        } catch let error as ReportFileError {
            throw CommandFailure("\(error)")
        }
    }

    /// Writes the page and its JSON, says what was not measured, prints both paths.
    static func write(_ data: ReportData, htmlPath: String) throws {
        let written: (html: String, json: String)
        do {
            written = try data.write(htmlPath: htmlPath)
        } catch let error as ReportFileError {
            throw CommandFailure("\(error)")
        }
        for input in data.notMeasured { writeStandardError("caduceus report: no \(input.rawValue): not measured") }
        print(written.html)
        print(written.json)
    }
}
