import Foundation
import JSON

/// Everything `caduceus report` shows, read from a results directory (what the demo, the lab and
/// the benchmarks write). Every input is optional: a missing file leaves its part `nil`, and its
/// section says "not measured"; a file that is there but malformed is an error.
public struct ReportData: Sendable {
    /// The files a results directory may hold.
    public enum Input: String, CaseIterable, Sendable {
        case events = "events.json"
        case alerts = "alerts.json"
        case matrix = "matrix.json"
        case overhead = "overhead.json"
    }

    /// When the report was made.
    public let generatedAt: Date
    /// The machine that made it.
    public let host: String
    public let resultsDirectory: String
    public let events: EventStatistics?
    public let alerts: AlertStatistics?
    public let matrix: DetectionMatrix?
    public let overhead: OverheadResults?

    public init(
        generatedAt: Date, host: String, resultsDirectory: String, events: EventStatistics?, alerts: AlertStatistics?,
        matrix: DetectionMatrix?, overhead: OverheadResults?
    ) {
        self.generatedAt = generatedAt
        self.host = host
        self.resultsDirectory = resultsDirectory
        self.events = events
        self.alerts = alerts
        self.matrix = matrix
        self.overhead = overhead
    }

    /// Reads every input present in `directory`.
    public static func load(
        from directory: String, generatedAt: Date = Date(), host: String = ProcessInfo.processInfo.hostName
    ) throws -> ReportData {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportFileError(path: directory, line: nil, message: "no such results directory")
        }
        func present(_ input: Input) -> String? {
            let path = (directory as NSString).appendingPathComponent(input.rawValue)
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        func contents(_ path: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ReportFileError(path: path, line: nil, message: "cannot be read")
            }
            return [UInt8](data)
        }
        return ReportData(
            generatedAt: generatedAt, host: host, resultsDirectory: directory,
            events: try present(.events).map { try EventStatistics(path: $0) },
            alerts: try present(.alerts).map { try AlertStatistics(path: $0) },
            matrix: try present(.matrix).map { try DetectionMatrix(parsing: contents($0), path: $0) },
            overhead: try present(.overhead).map { try OverheadResults(parsing: contents($0), path: $0) })
    }

    /// The inputs that were not there.
    public var notMeasured: [Input] {
        Input.allCases.filter {
            switch $0 {
            case .events: return events == nil
            case .alerts: return alerts == nil
            case .matrix: return matrix == nil
            case .overhead: return overhead == nil
            }
        }
    }
}

/// `caduceus bench overhead`'s results (`overhead.json`): the FHIR server's throughput and
/// latency under a fixed load, without a monitor and under each one, several runs each.
public struct OverheadResults: Sendable, Equatable {
    /// The smallest, median and largest of a figure over the runs.
    public struct Spread: Sendable, Equatable {
        public let min: Double
        public let median: Double
        public let max: Double
    }

    public struct Configuration: Sendable, Equatable {
        /// `none`, `capture`, `detect`, `auditd`, `strace`.
        public let name: String
        /// How the table names it, such as "no monitor".
        public let label: String
        public let runCount: Int
        /// Requests per second.
        public let throughput: Spread
        /// Throughput over the unmonitored run's: 1 is no overhead.
        public let ratio: Spread
        public let p50Milliseconds: Spread?
        public let p99Milliseconds: Spread?
        /// The goal it is held to, in words (nil: measured, not judged; or a file from before verdicts).
        public let goal: String?
        /// The benchmark's verdict on that goal.
        public let verdict: Verdict?
        /// Which runs the verdict was judged on, when not this configuration's rows (the
        /// capture's own runs in turns, `bench overhead` since issue 16's seventh pass).
        public var verdictMethod: String? = nil
    }

    /// `caduceus bench overhead`'s verdict on a configuration's goal, as it printed it.
    public struct Verdict: Sendable, Equatable {
        public let met: Bool
        /// "met (figures)" or "NOT met: reasons (figures)".
        public let text: String
    }

    public let connections: Int
    public let seconds: Double
    public let runsPerConfiguration: Int
    public let configurations: [Configuration]
    /// How the ratios were taken (nil in files from before per-round ratios: median over median).
    public let ratioMethod: String?

    /// The median throughput ratio the capture should keep: 95% of the unmonitored server's.
    public static let goalRatio = 0.95
    /// The capture's every per-round ratio should stay above this.
    public static let floorRatio = 0.90

    /// Reads the document; `path` names the file in errors.
    public init(parsing bytes: [UInt8], path: String) throws {
        let root = ReportField(try ReportField.parseDocument(bytes, path: path), path: path, location: "")
        let load = try root.member("load")
        connections = try load.int("connections")
        seconds = try load.double("seconds")
        runsPerConfiguration = try load.int("runs")
        ratioMethod = try root.optionalString("ratioMethod")
        func spread(_ field: ReportField) throws -> Spread {
            Spread(min: try field.double("min"), median: try field.double("median"), max: try field.double("max"))
        }
        configurations = try root.array("configurations").map { configuration in
            let name = try configuration.string("name")
            return Configuration(
                name: name, label: try configuration.optionalString("label") ?? name,
                runCount: try configuration.optionalMember("runs")?.array().count ?? 0,
                throughput: try spread(configuration.member("throughput")),
                ratio: try spread(configuration.member("ratio")),
                p50Milliseconds: try configuration.optionalMember("p50Ms").map(spread),
                p99Milliseconds: try configuration.optionalMember("p99Ms").map(spread),
                goal: try configuration.optionalString("goal"),
                verdict: try configuration.optionalMember("verdict").map {
                    Verdict(met: try $0.optionalBool("met") ?? false, text: try $0.string("text"))
                },
                verdictMethod: try configuration.optionalString("verdictMethod"))
        }
    }
}
