import AsyncHTTPClient
import Foundation
import JSON
import LabSupport
import NIOCore

/// A fixed load on a FHIR server for the overhead benchmark: `connections` clients, each
/// sending its next request as soon as the last is answered (a closed loop), for `seconds`.
///
/// The mix is a clinic's reading day on the seeded patients: reads by id, searches by name and
/// by patient, and one write in ten (a vital sign). It runs in its own process (`caduceus bench
/// load`), so the load's CPU is not the measuring process's.
public struct LoadGenerator: Sendable {
    public struct Result: Sendable {
        public var requests: Int
        public var errors: Int
        public var seconds: Double
        public var throughput: Double { Double(requests) / seconds }
        public var p50Ms: Double
        public var p99Ms: Double
        public var firstError: String?
        /// Requests answered in each interval of ``LoadGenerator/intervalSeconds`` from the
        /// start (the last one may be shorter); empty when not asked for.
        public var intervalRequests: [Int] = []
        /// Resources the load created (answered 201).
        public var created = 0
        /// `MonotonicTime` when the measured load began: where ``intervalRequests`` start
        /// (with intervals only).
        public var startNanoseconds: UInt64?

        public var json: JSONValue {
            var fields: [(key: String, value: JSONValue)] = [
                ("requests", .number(requests)), ("errors", .number(errors)), ("seconds", .number(seconds)),
                ("throughput", .number(throughput)), ("p50Ms", .number(p50Ms)), ("p99Ms", .number(p99Ms)),
            ]
            if let firstError { fields.append(("firstError", .string(firstError))) }
            if !intervalRequests.isEmpty {
                fields.append(("intervalRequests", .array(intervalRequests.map { .number($0) })))
            }
            fields.append(("created", .number(created)))
            if let startNanoseconds { fields.append(("startNanoseconds", .string(String(startNanoseconds)))) }
            return .object(JSONObject(fields))
        }

        public init(json: JSONValue) throws {
            guard let requests = json["requests"]?.intValue, let errors = json["errors"]?.intValue,
                let seconds = json["seconds"]?.doubleValue, let p50 = json["p50Ms"]?.doubleValue,
                let p99 = json["p99Ms"]?.doubleValue
            else { throw LabError("not a load result: \(json)") }
            self.init(
                requests: requests, errors: errors, seconds: seconds, p50Ms: p50, p99Ms: p99,
                firstError: json["firstError"]?.stringValue)
            intervalRequests = json["intervalRequests"]?.arrayValue?.compactMap(\.intValue) ?? []
            created = json["created"]?.intValue ?? 0
            startNanoseconds = json["startNanoseconds"]?.stringValue.flatMap { UInt64($0) }
        }

        init(requests: Int, errors: Int, seconds: Double, p50Ms: Double, p99Ms: Double, firstError: String?) {
            self.requests = requests
            self.errors = errors
            self.seconds = seconds
            self.p50Ms = p50Ms
            self.p99Ms = p99Ms
            self.firstError = firstError
        }
    }

    public var baseURL: String
    public var connections: Int
    public var seconds: Double
    /// Patients created by `seed`, the targets of reads and searches.
    public var patientIDs: [String]
    /// With a value, ``Result/intervalRequests`` counts the requests answered in each interval
    /// of this many seconds, so that a long run shows whether its rate holds.
    public var intervalSeconds: Double?

    public init(
        baseURL: String, connections: Int, seconds: Double, patientIDs: [String], intervalSeconds: Double? = nil
    ) {
        self.baseURL = baseURL
        self.connections = connections
        self.seconds = seconds
        self.patientIDs = patientIDs
        self.intervalSeconds = intervalSeconds
    }

    /// Creates `count` patients with a few observations each; their ids.
    public static func seed(baseURL: String, patients count: Int) async throws -> [String] {
        var ids: [String] = []
        for index in 0..<count {
            let patient =
                #"{"resourceType":"Patient","name":[{"family":"Bench\#(index % 20)","given":["Load\#(index)"]}],"gender":"\#(index % 2 == 0 ? "female" : "male")","birthDate":"19\#(50 + index % 50)-01-15"}"#
            let created = try await send("POST", baseURL + "/Patient", body: patient, expect: 201, representation: true)
            guard let id = created["id"]?.stringValue else {
                throw LabError("the server's created Patient has no id: \(created)")
            }
            ids.append(id)
            for value in [72, 118, 37] {
                _ = try await send(
                    "POST", baseURL + "/Observation", body: observation(patient: id, value: value), expect: 201)
            }
        }
        return ids
    }

    static func observation(patient: String, value: Int) -> String {
        #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/\#(patient)"},"effectiveDateTime":"2026-11-29T10:00:00Z","valueQuantity":{"value":\#(value),"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}"#
    }

    /// One request; the answer's body. `representation`: ask a create to answer with the
    /// resource; else a write asks for `return=minimal`, the empty body every figure of
    /// BENCHMARKS.md was taken with (the server's default was minimal then; it is the resource now).
    static func send(
        _ method: String, _ url: String, body: String? = nil, expect: Int, representation: Bool = false,
        client: HTTPClient = .shared
    ) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        request.headers.add(name: "Accept", value: "application/fhir+json")
        if representation {
            request.headers.add(name: "Prefer", value: "return=representation")
        } else if body != nil {
            request.headers.add(name: "Prefer", value: "return=minimal")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/fhir+json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 32 << 20)
        guard Int(response.status.code) == expect else {
            throw LabError("\(method) \(url): \(response.status.code) \(String(buffer: bytes).prefix(300))")
        }
        return bytes.readableBytes == 0 ? .null : try JSONParser.parse(bytes.readableBytesView)
    }

    /// Runs the load; every connection's latencies merged.
    public func run() async throws -> Result {
        guard !patientIDs.isEmpty else { throw LabError("no patients to load: seed first") }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let start = ContinuousClock.now
        let startNanoseconds = MonotonicTime.nanoseconds()
        let deadline = start + .milliseconds(Int(seconds * 1000))
        let perWorker: [WorkerResult]
        do {
            perWorker = try await withThrowingTaskGroup(of: WorkerResult.self) { group in
                for worker in 0..<connections {
                    group.addTask { try await self.worker(worker, client: client, from: start, until: deadline) }
                }
                var all: [WorkerResult] = []
                for try await result in group { all.append(result) }
                return all
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
        let elapsed = start.duration(to: .now)
        var latencies = perWorker.flatMap(\.latencies)
        latencies.sort()
        var result = Result(
            requests: perWorker.map(\.answered).reduce(0, +), errors: perWorker.map(\.errors).reduce(0, +),
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            p50Ms: Percentile.median(latencies), p99Ms: Percentile.nearestRank(latencies, 0.99),
            firstError: perWorker.compactMap(\.firstError).first)
        result.created = perWorker.map(\.created).reduce(0, +)
        if intervalSeconds != nil {
            result.startNanoseconds = startNanoseconds
            result.intervalRequests = perWorker.map(\.intervals).reduce(into: [Int]()) { sum, counts in
                if sum.count < counts.count { sum += Array(repeating: 0, count: counts.count - sum.count) }
                for (index, count) in counts.enumerated() { sum[index] += count }
            }
        }
        return result
    }

    /// What one closed-loop client saw: latencies (ms) of answered requests, answers per
    /// interval, creates, errors and the first one.
    struct WorkerResult: Sendable {
        var latencies: [Double] = []
        var answered = 0
        var intervals: [Int] = []
        var created = 0
        var errors = 0
        var firstError: String?
    }

    /// One closed-loop client.
    func worker(
        _ index: Int, client: HTTPClient, from start: ContinuousClock.Instant, until deadline: ContinuousClock.Instant
    ) async throws -> WorkerResult {
        var random = SystemRandomNumberGenerator()
        var outcome = WorkerResult()
        // Bounded: a long soak keeps per-interval counts, not an ever-growing latency list.
        let keptLatencies = 2_000_000 / max(1, connections)
        outcome.latencies.reserveCapacity(min(keptLatencies, Int(seconds) * 2000))
        var step = index
        while ContinuousClock.now < deadline {
            let patient = patientIDs.randomElement(using: &random)!
            let (method, url, body, expect): (String, String, String?, Int) =
                switch step % 10 {
                case 0, 3, 6, 8: ("GET", "\(baseURL)/Patient/\(patient)", nil, 200)
                case 1, 5:
                    (
                        "GET", "\(baseURL)/Patient?family=Bench\(Int.random(in: 0..<20, using: &random))&_count=10",
                        nil, 200
                    )
                case 2, 4, 7: ("GET", "\(baseURL)/Observation?subject=Patient/\(patient)&code=8867-4", nil, 200)
                default:
                    (
                        "POST", "\(baseURL)/Observation",
                        Self.observation(patient: patient, value: Int.random(in: 50..<120, using: &random)), 201
                    )
                }
            step += 1
            let sent = ContinuousClock.now
            do {
                _ = try await Self.send(method, url, body: body, expect: expect, client: client)
                let now = ContinuousClock.now
                let took = sent.duration(to: now)
                if outcome.latencies.count < keptLatencies {
                    outcome.latencies.append(
                        Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15)
                }
                outcome.answered += 1
                if method == "POST" { outcome.created += 1 }
                if let intervalSeconds {
                    let offset = start.duration(to: now)
                    let slot = Int(
                        (Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18)
                            / intervalSeconds)
                    if outcome.intervals.count <= slot {
                        outcome.intervals += Array(repeating: 0, count: slot + 1 - outcome.intervals.count)
                    }
                    outcome.intervals[slot] += 1
                }
            } catch {
                outcome.errors += 1
                if outcome.firstError == nil { outcome.firstError = "\(error)" }
            }
        }
        return outcome
    }
}
