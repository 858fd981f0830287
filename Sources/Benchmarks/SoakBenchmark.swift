import Foundation
import Lab
import LabSupport

/// Whether the FHIR server's throughput holds as its data grows: the overhead benchmark's
/// closed-loop mix (reads, searches by name and by patient, one create in ten) against a
/// `caduceus serve` process of its own for minutes, with the requests answered per interval,
/// the server's resident memory and the errors.
///
/// Every create adds an Observation to one of the seeded patients, so a per-patient search
/// matches more resources as the run goes on: a search whose cost follows its matches (a count
/// of them all, a sort of them all) shows as a falling rate. The verdict: the last interval's
/// rate at least ``goal`` of the first's, with no error.
public struct SoakBenchmark: Sendable {
    /// The caduceus executable that serves (this one, normally).
    public var executable: String
    /// `sqlite` (a fresh file in a temporary folder) or a `postgres://` URL of a database to use.
    public var database: String
    public var seconds: Double
    public var connections: Int
    public var patients: Int
    public var intervalSeconds: Double
    /// The least last:first ratio of rates that passes.
    public static let goal = 0.8

    public init(
        executable: String, database: String, seconds: Double, connections: Int, patients: Int = 20,
        intervalSeconds: Double = 30
    ) {
        self.executable = executable
        self.database = database
        self.seconds = seconds
        self.connections = connections
        self.patients = patients
        self.intervalSeconds = intervalSeconds
    }

    public struct Figures: Sendable {
        /// Requests per second in each whole interval.
        public var rates: [Double]
        /// The server's resident memory (MiB) at the end of each interval.
        public var residentMiB: [Double]
        public var load: LoadGenerator.Result
        /// Resources in the store at the start (the seed) and added by the load.
        public var seeded: Int
        /// Bytes of the SQLite database and its WAL at the end; nil on PostgreSQL.
        public var databaseBytes: Int?

        public var first: Double { rates.first ?? 0 }
        public var last: Double { rates.last ?? 0 }
        public var ratio: Double { first > 0 ? last / first : 0 }
        public var met: Bool { ratio >= SoakBenchmark.goal && load.errors == 0 }
    }

    public func run(progress: (String) -> Void = { _ in }) async throws -> Figures {
        let folder = NSTemporaryDirectory() + "caduceus-soak-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let sqlitePath = folder + "/soak.sqlite"
        let databaseURL = database == "sqlite" ? sqlitePath : database
        let port = LoopbackPort.unused()
        let baseURL = "http://127.0.0.1:\(port)/fhir-server/api/v4"
        let pid = try ProcessRunner.spawn(
            [
                executable, "serve", "--host", "127.0.0.1", "--port", String(port), "--database", databaseURL,
                "--log-level", "warning",
            ],
            output: .file(folder + "/server.log"))
        defer {
            kill(pid, SIGINT)
            _ = ProcessRunner.wait(for: pid)
        }
        var ready = false
        for _ in 0..<120 where !ready {
            ready = await Stack.answers(baseURL + "/metadata")
            if !ready { try await Task.sleep(for: .milliseconds(250)) }
        }
        guard ready else {
            let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
            throw LabError("the soak's FHIR server did not answer within 30 s: \(log.suffix(1000))")
        }
        progress("seeding \(patients) patients with 3 Observations each")
        let ids = try await LoadGenerator.seed(baseURL: baseURL, patients: patients)
        progress("load: \(connections) connections for \(Int(seconds)) s")
        let memory = MemorySampler(pid: pid, every: intervalSeconds)
        let sampling = Task { await memory.run() }
        let load = try await LoadGenerator(
            baseURL: baseURL, connections: connections, seconds: seconds, patientIDs: ids,
            intervalSeconds: intervalSeconds
        ).run()
        sampling.cancel()
        let whole = Int(seconds / intervalSeconds)
        let rates = load.intervalRequests.prefix(whole).map { Double($0) / intervalSeconds }
        var bytes: Int?
        if database == "sqlite" {
            bytes = ["", "-wal"].reduce(0) { sum, suffix in
                sum + ((try? FileManager.default.attributesOfItem(atPath: sqlitePath + suffix)[.size] as? Int) ?? 0)
            }
        }
        return Figures(
            rates: rates, residentMiB: await memory.samples, load: load, seeded: patients * 4, databaseBytes: bytes)
    }

    /// The figures as the command prints them.
    public static func table(
        _ figures: Figures, seconds: Double, connections: Int, intervalSeconds: Double, database: String
    ) -> String {
        var lines = [
            "Soak: \(Int(seconds)) s of reads, searches and creates at \(connections) connections on \(database == "sqlite" ? "SQLite" : "PostgreSQL")"
        ]
        lines.append("interval  requests/s  server RSS MiB")
        for (index, rate) in figures.rates.enumerated() {
            let rss = index < figures.residentMiB.count ? String(format: "%.0f", figures.residentMiB[index]) : "-"
            lines.append(
                String(
                    format: "%3.0f-%-4.0f  %-10.0f  ", Double(index) * intervalSeconds,
                    Double(index + 1) * intervalSeconds, rate) + rss)
        }
        let size = figures.databaseBytes.map { String(format: ", database %.0f MB", Double($0) / 1e6) } ?? ""
        lines.append("resources: \(figures.seeded) seeded, \(figures.load.created) created\(size)")
        lines.append(
            "requests: \(figures.load.requests), errors: \(figures.load.errors)"
                + (figures.load.firstError.map { " (first: \($0.prefix(200)))" } ?? ""))
        lines.append(String(format: "latency: p50 %.2f ms, p99 %.2f ms", figures.load.p50Ms, figures.load.p99Ms))
        lines.append(
            String(
                format:
                    "first %.0f s: %.0f requests/s, last %.0f s: %.0f requests/s, last:first %.2f (goal >= %.2f, 0 errors): %@",
                intervalSeconds, figures.first, intervalSeconds, figures.last, figures.ratio, goal,
                figures.met ? "met" : "NOT met"))
        return lines.joined(separator: "\n")
    }
}

/// Samples a process's resident memory once per interval.
actor MemorySampler {
    let pid: Int32
    let every: Double
    private(set) var samples: [Double] = []

    init(pid: Int32, every: Double) {
        self.pid = pid
        self.every = every
    }

    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(every * 1000)))
            if Task.isCancelled { break }
            if let memory = ProcessMemory(pid: pid) { samples.append(Double(memory.residentKB) / 1024) }
        }
    }
}
