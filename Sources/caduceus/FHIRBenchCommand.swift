import ArgumentParser
import FHIRStore
import Foundation
import Lab

/// `caduceus bench fhir`: FHIR create/read/search rates beside the raw database's.
struct FHIRBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fhir",
        abstract: "FHIR create, read and search rates on SQLite and PostgreSQL, each beside the raw rate of the same database.")

    @Option(help: "How many Synthea resources to create and read.")
    var resources = 2000

    @Option(help: "How many searches to run.")
    var searches = 500

    @Option(help: "Concurrent clients.")
    var concurrency = 4

    @Option(help: "Directory of Synthea transaction bundles.")
    var synthea = "../shared/fhir/synthea"

    @Option(help: "PostgreSQL server to measure, postgres://user@host:port/database (a database caduceus_bench is created there).")
    var postgres: String?

    func run() async throws {
        let documents = try FHIRStoreBenchmark.loadSynthea(directory: URL(fileURLWithPath: synthea), limit: resources)
        let benchmark = FHIRStoreBenchmark(documents: documents, concurrency: concurrency, searches: searches)
        var figures: [FHIRStoreBenchmark.Figure] = []

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-bench-\(UUID().uuidString)")
        let sqlite = try await SQLFHIRStore.open(url: directory.appendingPathComponent("bench.sqlite").path)
        figures += try await benchmark.run(backend: "sqlite", store: sqlite)
        try await sqlite.close()
        try? FileManager.default.removeItem(at: directory)

        if let postgres {
            let database = try await PostgresDatabase.createDatabase(named: "caduceus_bench", serverURL: postgres, replacing: true)
            let store = try await SQLFHIRStore(database: database)
            figures += try await benchmark.run(backend: "postgres", store: store)
            try await store.close()
        } else {
            print("(PostgreSQL skipped: pass --postgres URL)")
        }

        print("\(documents.count) Synthea resources, \(searches) searches, \(concurrency) concurrent clients")
        print("backend   operation   FHIR/s      raw/s       FHIR:raw")
        for figure in figures {
            print(
                figure.backend.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + figure.operation.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(format: "%-12.0f%-12.0f%.2f", figure.fhirPerSecond, figure.rawPerSecond, figure.ratio))
        }
    }
}
