import ArgumentParser
import Benchmarks
import FHIRStore
import Foundation

/// `caduceus bench fhir`: FHIR create/read/search rates beside the raw database's.
struct FHIRBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fhir",
        abstract:
            "FHIR create, read and search rates on SQLite and PostgreSQL, each beside the raw rate of the same database."
    )

    @Option(help: "How many Synthea resources to create and read.")
    var resources = 2000

    @Option(help: "How many searches to run.")
    var searches = 500

    @Option(help: "Concurrent clients.")
    var concurrency = 4

    @Option(help: "Directory of Synthea transaction bundles.")
    var synthea = "../shared/fhir/synthea"

    @Option(
        help:
            "PostgreSQL server to measure, postgres://user@host:port/database (a database caduceus_bench is created there)."
    )
    var postgres: String?

    func run() async throws {
        let documents = try FHIRStoreBenchmark.loadSynthea(directory: URL(fileURLWithPath: synthea), limit: resources)
        let benchmark = FHIRStoreBenchmark(documents: documents, concurrency: concurrency, searches: searches)
        let figures = try await onBenchStores(postgres: postgres, databaseName: "caduceus_bench") { backend, store in
            try await benchmark.run(backend: backend, store: store)
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
