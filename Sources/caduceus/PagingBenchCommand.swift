import ArgumentParser
import Benchmarks
import FHIRStore
import Foundation

/// `caduceus bench paging`: the time of page 1 and of a deep page of the same search, the
/// deep page reached by the `next` links' keyset cursor and by `_page=N` (an offset).
struct PagingBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paging",
        abstract: "Page 1 against a deep page of a search: by the next links' cursor and by _page.")

    @Option(help: "Observations of the one patient the searches page through.")
    var resources = 2000

    @Option(help: "The deep page (pages of 10).")
    var page = 80

    @Option(help: "Timed requests of each kind; the median is printed.")
    var repeats = 20

    @Option(
        help:
            "PostgreSQL server to measure too, postgres://user@host:port/database (a database caduceus_bench_paging is created there)."
    )
    var postgres: String?

    func run() async throws {
        let benchmark = PagingBenchmark(resources: resources, page: page, repeats: repeats)
        let figures = try await onBenchStores(postgres: postgres, databaseName: "caduceus_bench_paging") {
            backend, store in
            try await benchmark.run(backend: backend, store: store)
        }
        print("Paging \(resources) Observations of one patient, 10 a page; median of \(repeats) requests (ms)")
        print("backend   page 1   page \(page) by next link  page \(page) by _page  query")
        for figure in figures {
            print(
                figure.backend.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%-9.2f%-22.2f%-17.2f", figure.firstPage, figure.deepByCursor, figure.deepByOffset)
                    + figure.query)
        }
    }
}
