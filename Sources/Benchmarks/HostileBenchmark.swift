import Foundation
import HostileRequests
import LabSupport

/// `caduceus bench hostile`: thousands of hostile requests (the fuzz test's generator) against a
/// real `caduceus serve` on 127.0.0.1 over a few keep-alive connections, counting crashes, 5xx
/// and hangs, and the server's memory before and after.
public struct HostileBenchmark: Sendable {
    public var requests: Int
    public var seconds: Double
    public var seed: UInt64
    public var concurrency: Int
    /// An answer later than this is a hang.
    public var hangSeconds: Double
    /// Send only this request of the seed (to make a failure again).
    public var index: Int?

    public init(requests: Int, seconds: Double, seed: UInt64, concurrency: Int, hangSeconds: Double, index: Int? = nil)
    {
        self.requests = requests
        self.seconds = seconds
        self.seed = seed
        self.concurrency = concurrency
        self.hangSeconds = hangSeconds
        self.index = index
    }

    /// What a run found.
    public struct Report: Sendable {
        public var sent = 0
        /// Answers by status class (2 for 2xx, ...).
        public var byClass: [Int: Int] = [:]
        public var crashes = 0
        public var serverErrors = 0
        public var hangs = 0
        /// Connections closed without an answer while the server lived.
        public var dropped = 0
        public var withoutOutcome = 0
        public var rssBefore: (Int, Int)?
        public var rssAfter: (Int, Int)?
        public var elapsed = 0.0
        /// The first request of each failure class, with how to send it again.
        public var failures: [String: (count: Int, example: String)] = [:]
        public var crashReports: [String] = []

        public var passed: Bool { crashes == 0 && serverErrors == 0 && hangs == 0 }
    }

    /// Runs against the server at `url` (`pid`: its process, when known), or else against a
    /// `serve` of `executable` that it starts (and restarts after each crash) on 127.0.0.1.
    public func run(executable: String?, url: String?, pid: Int32?) throws -> Report {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-bench-hostile-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server: HostileServer
        if let url {
            server = try HostileServer(url: url, pid: pid)
        } else if let executable {
            server = try HostileServer(
                executable: executable, directory: directory, basePath: "/fhir-server/api/v4", backtraces: index != nil)
        } else {
            throw LabError("bench hostile needs --url or the caduceus executable")
        }
        defer { server.stop() }
        try seed(server)
        let state = State(report: Report())
        state.report.rssBefore = server.memory.map { ($0.rss, $0.peak) }
        let generator = HostileRequestGenerator(seed: seed, basePath: server.basePath)
        let started = Date()
        let deadline = started.addingTimeInterval(seconds)
        let range = index.map { $0..<($0 + 1) } ?? 0..<requests
        let group = DispatchGroup()
        for _ in 0..<max(1, concurrency) {
            group.enter()
            Thread.detachNewThread {
                self.worker(server: server, generator: generator, range: range, deadline: deadline, state: state)
                group.leave()
            }
        }
        group.wait()
        var report = state.report
        report.elapsed = Date().timeIntervalSince(started)
        report.rssAfter = server.memory.map { ($0.rss, $0.peak) }
        report.crashes = server.crashes.filter { $0.hasPrefix("server exited") }.count
        report.crashReports = server.crashes
        return report
    }

    /// The fuzz test's seeded resources, so that reads, chains and patches find data.
    func seed(_ server: HostileServer) throws {
        let connection = HostileHTTPConnection(host: server.host, port: server.port, timeout: 30)
        for resource in HostileRequestGenerator.seedResources {
            let request = HostileRequest(
                index: -1, kind: "seed", method: "PUT", target: "\(server.basePath)/\(resource.target)",
                headers: [HostileHeader("Content-Type", "application/fhir+json")], body: Array(resource.body.utf8))
            let outcome = connection.send(request)
            guard case .answered(let status, _) = outcome, status < 300 else {
                throw LabError("seeding \(resource.target) failed: \(outcome)")
            }
        }
    }

    /// Counters shared by the connections.
    final class State: @unchecked Sendable {
        let lock = NSLock()
        var report: Report
        var next = 0
        var inFlight: [Int: String] = [:]

        init(report: Report) { self.report = report }

        func locked<T>(_ body: (State) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(self)
        }
    }

    func worker(
        server: HostileServer, generator: HostileRequestGenerator, range: Range<Int>, deadline: Date, state: State
    ) {
        var generation = server.generation
        var connection = HostileHTTPConnection(host: server.host, port: server.port, timeout: hangSeconds)
        let reproduce = "caduceus bench hostile --seed \(seed) --index"
        while Date() < deadline {
            let index: Int? = state.locked { state in
                guard state.next < range.count else { return nil }
                state.next += 1
                return range.lowerBound + state.next - 1
            }
            guard let index else { return }
            let request = generator.request(index)
            let slot = Thread.current.hash
            let suspect = "  \(reproduce) \(index): \(request.method) \(request.target.prefix(160))"
            state.locked { $0.inFlight[slot] = suspect }
            let started = Date()
            let outcome = connection.send(request)
            let took = Date().timeIntervalSince(started)
            state.locked { $0.report.sent += 1 }
            // Still a suspect until its outcome is settled: a crash is blamed on every request in flight.
            defer { state.locked { $0.inFlight[slot] = nil } }
            func record(_ failureClass: String, status: String, excerpt: String) {
                state.locked { state in
                    state.report.failures[
                        failureClass,
                        default: (
                            0,
                            "\(reproduce) \(index) (\(request.kind)) -> \(status) in \(String(format: "%.2f", took)) s: \(excerpt)\n\(request.rendered(limit: 300))"
                        )
                    ].count += 1
                }
            }
            switch outcome {
            case .answered(let status, let body):
                let problems = HostileResponseCheck.problems(
                    method: request.method, status: status, body: body, seconds: took, timeLimit: hangSeconds)
                state.locked { state in
                    state.report.byClass[status / 100, default: 0] += 1
                    if status >= 500 { state.report.serverErrors += 1 }
                    if problems.contains("error without OperationOutcome") { state.report.withoutOutcome += 1 }
                }
                if !problems.isEmpty {
                    record(
                        HostileResponseCheck.failureClass(status: status, problems: problems, body: body),
                        status: "\(status)",
                        excerpt: HostileResponseCheck.excerpt(body))
                }
            case .timedOut where server.settles():
                state.locked { $0.report.hangs += 1 }
                record("hang | \(request.kind)", status: "no answer", excerpt: "")
                connection = HostileHTTPConnection(host: server.host, port: server.port, timeout: hangSeconds)
            case .timedOut:
                // Died while this request waited: counted as its crash.
                switch server.lost(
                    in: generation, reason: "no answer",
                    suspects: { state.locked { Array($0.inFlight.values) } + [suspect] })
                {
                case .crashed(nil), .counted(nil): return  // the server is gone and cannot be restarted
                default: break
                }
                generation = server.generation
                connection = HostileHTTPConnection(host: server.host, port: server.port, timeout: hangSeconds)
            case .lost(let reason):
                let loss = server.lost(in: generation, reason: reason) {
                    state.locked { Array($0.inFlight.values) } + [suspect]
                }
                generation = server.generation
                let next: Int?
                switch loss {
                case .dropped(let port):
                    state.locked { $0.report.dropped += 1 }
                    record("dropped: \(reason) | \(request.kind)", status: "no answer", excerpt: reason)
                    next = port
                case .crashed(let port), .counted(let port):
                    next = port
                }
                guard let port = next else { return }  // the server is gone and cannot be restarted
                connection = HostileHTTPConnection(host: server.host, port: port, timeout: hangSeconds)
            }
        }
    }
}

extension HostileBenchmark.Report {
    /// The report as `caduceus bench hostile` prints it; the last line sums it up.
    public func lines(seed: UInt64) -> [String] {
        func megabytes(_ kB: Int) -> String { String(format: "%.1f MB", Double(kB) / 1024) }
        func memory(_ figures: (Int, Int)?) -> String {
            figures.map { "\(megabytes($0.0)) (peak \(megabytes($0.1)))" } ?? "unknown"
        }
        var lines = [
            "requests sent: \(sent)",
            "answers: " + (1...5).map { "\($0)xx \(byClass[$0] ?? 0)" }.joined(separator: ", "),
            "crashes (server process exited): \(crashes)",
            "5xx: \(serverErrors)",
            "hangs (no answer in time): \(hangs)",
            "dropped connections (server alive, no answer): \(dropped)",
            "errors without an OperationOutcome: \(withoutOutcome)",
            "server RSS before: \(memory(rssBefore))",
            "server RSS after: \(memory(rssAfter))",
            String(format: "seconds: %.1f, requests/s: %.0f", elapsed, Double(sent) / max(elapsed, 0.001)),
        ]
        for report in crashReports { lines.append("crash: " + report) }
        if !failures.isEmpty {
            lines.append("failure classes (\(failures.count)), each with its first request:")
            for (failureClass, failure) in failures.sorted(by: { $0.value.count > $1.value.count }).prefix(40) {
                lines.append("- [\(failure.count)x] \(failureClass)")
                lines.append(
                    contentsOf: failure.example.split(separator: "\n", omittingEmptySubsequences: false).map {
                        "    " + $0
                    })
            }
        }
        lines.append(
            "bench hostile: \(passed ? "PASSED" : "FAILED"): seed \(seed), \(sent) requests, \(crashes) crashes, \(serverErrors) 5xx, \(hangs) hangs"
        )
        return lines
    }
}
