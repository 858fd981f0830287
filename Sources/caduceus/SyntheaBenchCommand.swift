import ArgumentParser
import Benchmarks
import FHIRStore
import Foundation

/// `caduceus bench synthea`: Synthea ingest beside a raw bulk insert, and clinical search
/// latency at 23 and at `scale` × 23 patients.
struct SyntheaBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthea",
        abstract: "Synthea transaction ingest vs raw bulk insert, and clinical search latency as the data grows.")

    @Option(help: "Directory of Synthea transaction bundles.")
    var synthea = "../shared/fhir/synthea"

    @Option(help: "Load the patients this many times in all for the second latency run.")
    var scale = 10

    @Option(help: "Queries of each kind per latency run.")
    var queries = 100

    @Option(help: "Alternating FHIR/raw rounds of each query kind (the ratio's spread is over them).")
    var rounds = 5

    @Option(
        help:
            "PostgreSQL server to measure, postgres://user@host:port/database (a database caduceus_bench is created there)."
    )
    var postgres: String?

    func run() async throws {
        var benchmark = try SyntheaBenchmark(
            directory: URL(fileURLWithPath: synthea), scale: scale, queriesPerKind: queries)
        benchmark.rounds = rounds
        var ingest: [SyntheaBenchmark.IngestFigure] = []
        var latency: [SyntheaBenchmark.LatencyFigure] = []

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-bench-\(UUID().uuidString)")
        let sqlite = try await SQLFHIRStore.open(url: directory.appendingPathComponent("bench.sqlite").path)
        let (sqliteIngest, sqliteLatency) = try await benchmark.run(backend: "sqlite", store: sqlite)
        ingest.append(sqliteIngest)
        latency += sqliteLatency
        try await sqlite.close()
        try? FileManager.default.removeItem(at: directory)

        if let postgres {
            let database = try await PostgresDatabase.createDatabase(
                named: "caduceus_bench", serverURL: postgres, replacing: true)
            let store = try await SQLFHIRStore(database: database)
            let (postgresIngest, postgresLatency) = try await benchmark.run(backend: "postgres", store: store)
            ingest.append(postgresIngest)
            latency += postgresLatency
            try await store.close()
        } else {
            print("(PostgreSQL skipped: pass --postgres URL)")
        }

        print("Synthea ingest: \(benchmark.bundles.count) transaction bundles, one at a time")
        print("backend   resources  FHIR/s    raw bulk/s  FHIR:raw")
        for figure in ingest {
            print(
                figure.backend.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(figure.resources).padding(toLength: 11, withPad: " ", startingAt: 0)
                    + String(
                        format: "%-10.0f%-12.0f%.2f", figure.fhirPerSecond, figure.rawPerSecond,
                        figure.fhirPerSecond / figure.rawPerSecond))
        }
        print(
            "\nClinical search latency (\(queries) queries of each kind, ms) beside a raw indexed select of the same page;"
        )
        print("FHIR:raw = raw time / FHIR time per round, min/median/max over \(rounds) alternating rounds")
        print("backend   patients  median   p99      max      raw med  FHIR:raw (min/med/max)  query")
        for figure in latency {
            let ratios = figure.ratios
            let spread =
                ratios.isEmpty
                ? "-" : String(format: "%.2f/%.2f/%.2f", ratios[0], ratios[ratios.count / 2], ratios[ratios.count - 1])
            print(
                figure.backend.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(figure.patients).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(
                        format: "%-9.2f%-9.2f%-9.2f%-9.2f", figure.medianMilliseconds, figure.p99Milliseconds,
                        figure.maxMilliseconds, figure.rawMedianMilliseconds)
                    + spread.padding(toLength: 24, withPad: " ", startingAt: 0) + figure.query)
        }
    }
}
