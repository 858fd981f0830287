import FHIR
import FHIRServer
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird
import LabSupport

/// Measures the FHIR API's create, read and search rates against the raw rate of the same
/// database doing the least work that returns the same documents, all in one run, so that
/// the ratio survives the noise of a shared machine.
///
/// The FHIR side goes through the whole router (parsing, validation, indexing, Bundles)
/// without a socket; the raw side is one table `(id, type, body)` with a primary key.
public struct FHIRStoreBenchmark {
    /// One measured operation: FHIR rate, raw rate, per second.
    public struct Figure: Sendable {
        public var backend: String
        public var operation: String
        public var fhirPerSecond: Double
        public var rawPerSecond: Double
        public var ratio: Double { fhirPerSecond / rawPerSecond }
    }

    /// The documents: resources taken from Synthea transaction bundles.
    public var documents: [(type: String, json: String)]
    public var concurrency: Int
    public var searches: Int

    public init(documents: [(type: String, json: String)], concurrency: Int = 4, searches: Int = 500) {
        self.documents = documents
        self.concurrency = concurrency
        self.searches = searches
    }

    /// Loads up to `limit` resources from the Synthea bundles in `directory`.
    public static func loadSynthea(directory: URL, limit: Int) throws -> [(type: String, json: String)] {
        var documents: [(type: String, json: String)] = []
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
            .sorted()
        for file in files where documents.count < limit {
            let bundle = try JSONParser.parse(Array(try Data(contentsOf: directory.appendingPathComponent(file))))
            for entry in bundle["entry"]?.arrayValue ?? [] where documents.count < limit {
                guard case .object(var resource)? = entry["resource"], let type = resource["resourceType"]?.stringValue
                else { continue }
                resource["id"] = nil
                documents.append((type, JSONWriter().string(.object(resource))))
            }
        }
        return documents
    }

    /// Runs every operation on `store`'s database, FHIR and raw side by side.
    public func run(backend: String, store: SQLFHIRStore) async throws -> [Figure] {
        let database = store.database
        try await database.withTransaction { executor in
            try await executor.query("DROP TABLE IF EXISTS bench_raw", [])
            try await executor.query(
                "CREATE TABLE bench_raw (id TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL)", [])
            try await executor.query("CREATE INDEX bench_raw_type ON bench_raw (type)", [])
        }
        let client = InProcessFHIRClient(router: FHIRApplication.buildRouter(store: store))
        let documents = self.documents
        let concurrency = self.concurrency
        let searches = self.searches
        var figures: [Figure] = []
        let base = FHIRServerConfiguration().basePath

        // Create: POST each document vs INSERT it, one transaction each.
        let rawIds = documents.indices.map { "raw-\($0)" }
        let locations = LockedArray<String>(count: documents.count)
        let (create, rawInsert) = try await Self.sideBySide(count: documents.count, concurrency: concurrency) { index in
            _ = try await database.withTransaction { executor in
                try await executor.query(
                    "INSERT INTO bench_raw (id, type, body) VALUES (?, ?, ?)",
                    [.text(rawIds[index]), .text(documents[index].type), .text(documents[index].json)])
            }
        } fhir: { index in
            var headers = HTTPFields()
            headers[.contentType] = "application/fhir+json"
            // The figures of BENCHMARKS.md were taken when a create answered with an empty
            // body by default; asked for explicitly, they keep measuring the same work.
            headers[HTTPField.Name("Prefer")!] = "return=minimal"
            let response = try await client.execute(
                uri: "\(base)/\(documents[index].type)", method: .post, headers: headers,
                body: ByteBuffer(string: documents[index].json))
            guard response.status == .created, let location = response.headers[.location] else {
                throw BenchmarkError("create answered \(response.status)")
            }
            locations.set(index, String(location.split(separator: "/").dropLast(2).suffix(2).joined(separator: "/")))
        }
        figures.append(Figure(backend: backend, operation: "create", fhirPerSecond: create, rawPerSecond: rawInsert))

        // Read: GET each resource vs SELECT its body by primary key.
        let paths = locations.values
        let (read, rawSelect) = try await Self.sideBySide(count: documents.count, concurrency: concurrency) { index in
            let rows = try await database.withConnection { executor in
                try await executor.query("SELECT body FROM bench_raw WHERE id = ?", [.text(rawIds[index])])
            }
            guard rows.count == 1 else { throw BenchmarkError("raw select found \(rows.count) rows") }
        } fhir: { index in
            let response = try await client.execute(uri: "\(base)/\(paths[index])", method: .get)
            guard response.status == .ok else { throw BenchmarkError("read answered \(response.status)") }
        }
        figures.append(Figure(backend: backend, operation: "read", fhirPerSecond: read, rawPerSecond: rawSelect))

        // Search: a page of 10 Observations by LOINC code, with the total, vs a page of 10
        // documents of one type from the raw table by its index.
        let codes = Self.observationCodes(documents)
        guard !codes.isEmpty else { throw BenchmarkError("the documents hold no Observation codes") }
        let (search, rawSearch) = try await Self.sideBySide(count: searches, concurrency: concurrency) { index in
            _ = try await database.withConnection { executor in
                try await executor.query(
                    "SELECT body FROM bench_raw WHERE type = ? LIMIT 10 OFFSET ?",
                    [.text("Observation"), .integer(Int64(index % 50))])
            }
        } fhir: { index in
            let code = codes[index % codes.count]
            let response = try await client.execute(
                uri: "\(base)/Observation?code=http://loinc.org%7C\(code)&_count=10", method: .get)
            guard response.status == .ok else { throw BenchmarkError("search answered \(response.status)") }
        }
        figures.append(Figure(backend: backend, operation: "search", fhirPerSecond: search, rawPerSecond: rawSearch))
        return figures
    }

    static func observationCodes(_ documents: [(type: String, json: String)]) -> [String] {
        var codes: [String] = []
        for document in documents where document.type == "Observation" {
            guard let json = try? JSONParser.parse(document.json),
                let code = json["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue,
                !codes.contains(code)
            else { continue }
            codes.append(code)
        }
        return codes
    }

    /// Runs the raw and the FHIR operation over the same indices in alternating rounds (the
    /// first side alternating too), so that drifts in machine load hit both sides alike.
    /// Returns operations per second, FHIR first.
    static func sideBySide(
        count: Int, concurrency: Int, rounds: Int = 6,
        raw: @escaping @Sendable (Int) async throws -> Void, fhir: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> (fhir: Double, raw: Double) {
        var rawSeconds = 0.0
        var fhirSeconds = 0.0
        for round in 0..<rounds {
            let range = (count * round / rounds)..<(count * (round + 1) / rounds)
            if round % 2 == 0 {
                rawSeconds += try await seconds(range, concurrency: concurrency, raw)
                fhirSeconds += try await seconds(range, concurrency: concurrency, fhir)
            } else {
                fhirSeconds += try await seconds(range, concurrency: concurrency, fhir)
                rawSeconds += try await seconds(range, concurrency: concurrency, raw)
            }
        }
        return (Double(count) / fhirSeconds, Double(count) / rawSeconds)
    }

    /// Runs `operation` for every index of `range` on `concurrency` workers; the elapsed seconds.
    static func seconds(
        _ range: Range<Int>, concurrency: Int, _ operation: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> Double {
        let next = LockedCounter()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let index = range.lowerBound + next.next()
                        guard index < range.upperBound else { return }
                        try await operation(index)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
