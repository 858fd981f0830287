import FHIR
import FHIRStore
import Foundation

/// The clinical searches side by side with a raw indexed select of the same rows.
///
/// The raw side is the cheapest honest equivalent: a table `bench_search (patient, type,
/// code, date, id, body)` holding the same resources (one row each, the bundle's JSON) with
/// an index on `(patient, type, code, date)` and one on `(type, code, patient)`, queried
/// through the same connection layer for the same page:
///
/// - Observation by patient, code, date: `WHERE patient = ? AND type = 'Observation' AND
///   code = ? AND date >= ? LIMIT 10`;
/// - Encounter by patient with `_include` of the Patient: the page of 10 Encounters, then the
///   patient's row;
/// - Patient `_has` Condition code: 10 patients' rows among those with such a Condition
///   (a semi-join on the code index);
/// - Condition by patient: `WHERE patient = ? AND type = 'Condition' LIMIT 10`;
/// - `$everything`: every row of the patient (without the practitioners and organizations
///   the FHIR answer adds, which the raw table cannot name).
///
/// The raw side returns bodies only: no total, no Bundle, no JSON handling. Rounds alternate
/// the sides; each round's ratio is the raw time over the FHIR time for the same queries.
extension SyntheaBenchmark {
    static let rawQueries: [@Sendable (RawPatient) -> (String, [SQLValue])] = [
        {
            (
                "SELECT body FROM bench_search WHERE patient = ? AND type = 'Observation' AND code = ? AND date >= ? LIMIT 10",
                [.text($0.key), .text($0.loinc), .text($0.from)]
            )
        },
        { ("SELECT body FROM bench_search WHERE patient = ? AND type = 'Encounter' LIMIT 10", [.text($0.key)]) },
        {
            (
                "SELECT p.body FROM bench_search p WHERE p.type = 'Patient' AND p.patient IN"
                    + " (SELECT c.patient FROM bench_search c WHERE c.type = 'Condition' AND c.code = ?) LIMIT 10",
                [.text($0.condition)]
            )
        },
        { ("SELECT body FROM bench_search WHERE patient = ? AND type = 'Condition' LIMIT 10", [.text($0.key)]) },
        { ("SELECT body FROM bench_search WHERE patient = ?", [.text($0.key)]) },
    ]

    /// A sample patient as the raw table names it.
    struct RawPatient: Sendable {
        var key: String
        var loinc: String
        var from: String
        var condition: String
    }

    static func createRawSearchTable(_ database: any SQLDatabase) async throws {
        try await database.withTransaction { executor in
            try await executor.query("DROP TABLE IF EXISTS bench_search", [])
            try await executor.query(
                "CREATE TABLE bench_search (patient TEXT NOT NULL, type TEXT NOT NULL, code TEXT, date TEXT, id TEXT PRIMARY KEY, body TEXT NOT NULL)",
                [])
            try await executor.query(
                "CREATE INDEX bench_search_patient ON bench_search (patient, type, code, date)", [])
            try await executor.query("CREATE INDEX bench_search_code ON bench_search (type, code, patient)", [])
        }
    }

    /// Copy `copy` of the bundles into the raw table: patient `copy-bundle`.
    static func fillRawSearchTable(_ database: any SQLDatabase, bundles: [JSONValue], copy: Int) async throws {
        for (index, bundle) in bundles.enumerated() {
            let rows = (bundle["entry"]?.arrayValue ?? []).enumerated().map { offset, entry -> [SQLValue] in
                let resource = entry["resource"] ?? [:]
                let code = resource["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue
                let date = (resource["effectiveDateTime"] ?? resource["onsetDateTime"] ?? resource["period"]?["start"])?
                    .stringValue
                return [
                    .text("\(copy)-\(index)"), .text(resource["resourceType"]?.stringValue ?? ""),
                    code.map(SQLValue.text) ?? .null,
                    date.map { .text(String($0.prefix(10))) } ?? .null, .text("\(copy)-\(index)-\(offset)"),
                    .text(JSONWriter().string(resource)),
                ]
            }
            for chunk in stride(from: 0, to: rows.count, by: 100) {
                let slice = rows[chunk..<min(chunk + 100, rows.count)]
                _ = try await database.withTransaction { executor in
                    try await executor.query(
                        "INSERT INTO bench_search (patient, type, code, date, id, body) VALUES "
                            + Array(repeating: "(?, ?, ?, ?, ?, ?)", count: slice.count).joined(separator: ", "),
                        slice.flatMap { $0 })
                }
            }
        }
    }

    /// Each kind's FHIR latencies and the raw select's, in `rounds` alternating rounds.
    static func sideBySideLatencies(
        client: InProcessFHIRClient, base: String, database: any SQLDatabase, samples: [PatientSample], patients: Int,
        backend: String, perKind: Int, rounds: Int
    ) async throws -> [LatencyFigure] {
        var figures: [LatencyFigure] = []
        let perRound = max(1, perKind / rounds)
        for (kindIndex, kind) in queryKinds.enumerated() {
            var fhirTimes: [Double] = []
            var rawTimes: [Double] = []
            var ratios: [Double] = []
            for round in 0..<rounds {
                var fhirRound = 0.0
                var rawRound = 0.0
                let fhirSide = {
                    for step in 0..<perRound {
                        let sample = samples[(round * perRound + step) % samples.count]
                        let path = "\(base)/\(kind.path(sample))"
                        let took =
                            try await time {
                                let response = try await client.execute(uri: path, method: .get)
                                guard response.status == .ok else {
                                    throw BenchmarkError("\(path) answered \(response.status)")
                                }
                            } * 1000
                        fhirTimes.append(took)
                        fhirRound += took
                    }
                }
                let rawSide = {
                    for step in 0..<perRound {
                        let index = (round * perRound + step) % samples.count
                        let sample = samples[index]
                        let raw = RawPatient(
                            key: "0-\(index)", loinc: sample.loinc, from: sample.from, condition: sample.condition)
                        let (sql, binds) = rawQueries[kindIndex](raw)
                        let took =
                            try await time {
                                let rows = try await database.withConnection { try await $0.query(sql, binds) }
                                if kindIndex != 2 && rows.isEmpty {
                                    throw BenchmarkError("the raw select of \(kind.name) found nothing")
                                }
                            } * 1000
                        rawTimes.append(took)
                        rawRound += took
                    }
                }
                if round % 2 == 0 {
                    try await fhirSide()
                    try await rawSide()
                } else {
                    try await rawSide()
                    try await fhirSide()
                }
                ratios.append(rawRound / fhirRound)
            }
            fhirTimes.sort()
            rawTimes.sort()
            ratios.sort()
            figures.append(
                LatencyFigure(
                    backend: backend, patients: patients, query: kind.name,
                    medianMilliseconds: Percentile.median(fhirTimes),
                    p99Milliseconds: Percentile.nearestRank(fhirTimes, 0.99), maxMilliseconds: fhirTimes.last ?? 0,
                    rawMedianMilliseconds: Percentile.median(rawTimes), ratios: ratios))
        }
        return figures
    }
}
