import FHIR
import FHIRServer
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird
import LabSupport

/// Synthea ingest and clinical search latency (issue 3's benchmark).
///
/// Ingest posts each patient's transaction Bundle through the router and sets it beside a
/// raw bulk insert of the same resources into the same database (one multi-row INSERT per
/// bundle, one transaction each), alternating rounds. Search latency is measured for a
/// fixed set of clinical queries with the 23 patients loaded, and again after loading them
/// `scale` times in all (the server gives every copy new ids, so the copies are distinct
/// patients with the same clinical content).
public struct SyntheaBenchmark {
    public struct IngestFigure: Sendable {
        public var backend: String
        public var resources: Int
        public var fhirPerSecond: Double
        public var rawPerSecond: Double
    }

    public struct LatencyFigure: Sendable {
        public var backend: String
        public var patients: Int
        public var query: String
        public var medianMilliseconds: Double
        public var p99Milliseconds: Double
        /// The slowest query of the kind (the first after a bulk load pays for what the load
        /// left behind: PostgreSQL's statistics refresh, SQLite's checkpoint).
        public var maxMilliseconds: Double
        /// The raw indexed select of the same page (see `SyntheaBenchmark+Search.swift`).
        public var rawMedianMilliseconds: Double
        /// Raw time over FHIR time, one per round, sorted: the FHIR:raw rate ratio's spread.
        public var ratios: [Double]
    }

    public var bundles: [String]
    public var scale: Int
    public var queriesPerKind: Int
    /// Alternating FHIR/raw rounds per query kind and data size.
    public var rounds = 5

    public init(directory: URL, scale: Int = 10, queriesPerKind: Int = 100) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
            .sorted()
        bundles = try files.map { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }
        self.scale = scale
        self.queriesPerKind = queriesPerKind
    }

    /// The clinical queries, each a function of one loaded patient.
    struct PatientSample: Sendable {
        var id: String
        var loinc: String
        var from: String
        var condition: String
    }

    static let queryKinds: [(name: String, path: @Sendable (PatientSample) -> String)] = [
        (
            "Observation by patient, LOINC code, date range",
            { "Observation?subject=Patient/\($0.id)&code=http://loinc.org%7C\($0.loinc)&date=ge\($0.from)" }
        ),
        ("Encounter by patient, _include Patient", { "Encounter?subject=Patient/\($0.id)&_include=Encounter:subject" }),
        ("Patient _has Condition code", { "Patient?_has:Condition:patient:code=\($0.condition)&_count=10" }),
        ("Condition by patient", { "Condition?patient=\($0.id)" }),
        ("Patient/$everything", { "Patient/\($0.id)/$everything" }),
    ]

    public func run(backend: String, store: SQLFHIRStore) async throws -> (IngestFigure, [LatencyFigure]) {
        let database = store.database
        try await database.withTransaction { executor in
            try await executor.query("DROP TABLE IF EXISTS bench_bulk", [])
            try await executor.query(
                "CREATE TABLE bench_bulk (id TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL)", [])
        }
        let client = InProcessFHIRClient(router: FHIRApplication.buildRouter(store: store))
        let bundles = self.bundles
        let scale = self.scale
        let queriesPerKind = self.queriesPerKind
        let base = FHIRServerConfiguration().basePath
        var headers = HTTPFields()
        headers[.contentType] = "application/fhir+json"
        // The ingest figures of BENCHMARKS.md were taken when a transaction's entries came
        // back without their resources by default; asked for explicitly, they stay comparable.
        headers[HTTPField.Name("Prefer")!] = "return=minimal"
        let parsed = try bundles.map { try JSONParser.parse($0) }
        let resourceCount = parsed.reduce(0) { $0 + ($1["entry"]?.arrayValue?.count ?? 0) }
        let samples = LockedArray<PatientSample>(count: bundles.count)

        // Ingest, side by side with a raw bulk insert, one bundle per step.
        var fhirSeconds = 0.0
        var rawSeconds = 0.0
        for (index, text) in bundles.enumerated() {
            let raw = {
                let rows = (parsed[index]["entry"]?.arrayValue ?? []).enumerated().map { offset, entry -> [SQLValue] in
                    let resource = entry["resource"] ?? [:]
                    return [
                        .text("b\(index)-\(offset)"), .text(resource["resourceType"]?.stringValue ?? ""),
                        .text(JSONWriter().string(resource)),
                    ]
                }
                for chunk in stride(from: 0, to: rows.count, by: 200) {
                    let slice = rows[chunk..<min(chunk + 200, rows.count)]
                    _ = try await database.withTransaction { executor in
                        try await executor.query(
                            "INSERT INTO bench_bulk (id, type, body) VALUES "
                                + Array(repeating: "(?, ?, ?)", count: slice.count).joined(separator: ", "),
                            slice.flatMap { $0 })
                    }
                }
            }
            let fhir = {
                let response = try await client.execute(
                    uri: base, method: .post, headers: headers, body: ByteBuffer(string: text))
                guard response.status == .ok else { throw BenchmarkError("transaction answered \(response.status)") }
                samples.set(index, try Self.sample(response: response, bundle: parsed[index]))
            }
            if index % 2 == 0 {
                rawSeconds += try await Self.time(raw)
                fhirSeconds += try await Self.time(fhir)
            } else {
                fhirSeconds += try await Self.time(fhir)
                rawSeconds += try await Self.time(raw)
            }
        }
        let ingest = IngestFigure(
            backend: backend, resources: resourceCount, fhirPerSecond: Double(resourceCount) / fhirSeconds,
            rawPerSecond: Double(resourceCount) / rawSeconds)

        try await Self.createRawSearchTable(database)
        try await Self.fillRawSearchTable(database, bundles: parsed, copy: 0)
        var latencies = try await Self.sideBySideLatencies(
            client: client, base: base, database: database, samples: samples.values, patients: bundles.count,
            backend: backend,
            perKind: queriesPerKind, rounds: rounds)
        for copy in 1..<scale {
            try await Self.fillRawSearchTable(database, bundles: parsed, copy: copy)
            for text in bundles {
                let response = try await client.execute(
                    uri: base, method: .post, headers: headers, body: ByteBuffer(string: text))
                guard response.status == .ok else { throw BenchmarkError("transaction answered \(response.status)") }
            }
        }
        latencies += try await Self.sideBySideLatencies(
            client: client, base: base, database: database, samples: samples.values, patients: bundles.count * scale,
            backend: backend, perKind: queriesPerKind, rounds: rounds)
        return (ingest, latencies)
    }

    /// A patient's id and values to search it by, from its transaction response and bundle.
    static func sample(response: InProcessResponse, bundle: JSONValue) throws -> PatientSample {
        let result = try JSONParser.parse(Array(response.body.readableBytesView))
        let location = result["entry"]?.arrayValue?.compactMap { $0["response"]?["location"]?.stringValue }.first {
            $0.hasPrefix("Patient/")
        }
        guard let id = location?.split(separator: "/").dropFirst().first.map(String.init) else {
            throw BenchmarkError("the bundle holds no Patient")
        }
        var dates: [String: [String]] = [:]
        var condition = "none"
        for entry in bundle["entry"]?.arrayValue ?? [] {
            guard let resource = entry["resource"] else { continue }
            if resource["resourceType"] == "Observation",
                let code = resource["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue,
                let date = resource["effectiveDateTime"]?.stringValue
            {
                dates[code, default: []].append(String(date.prefix(10)))
            }
            if resource["resourceType"] == "Condition",
                let code = resource["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue
            {
                condition = code
            }
        }
        let (loinc, observed) = dates.max { $0.value.count < $1.value.count } ?? ("none", ["2000-01-01"])
        let sorted = observed.sorted()
        return PatientSample(id: id, loinc: loinc, from: sorted[sorted.count / 2], condition: condition)
    }

    static func time(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
