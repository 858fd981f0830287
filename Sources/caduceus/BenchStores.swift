import FHIRStore
import Foundation

/// Runs `body` on a fresh SQLite store in a temporary directory, then, when `postgres` names
/// a server, on a fresh database `databaseName` there; the figures of both, SQLite's first.
func onBenchStores<Figure>(
    postgres: String?, databaseName: String, _ body: (_ backend: String, _ store: SQLFHIRStore) async throws -> [Figure]
) async throws -> [Figure] {
    var figures: [Figure] = []
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-bench-\(UUID().uuidString)")
    let sqlite = try await SQLFHIRStore.open(url: directory.appendingPathComponent("bench.sqlite").path)
    figures += try await body("sqlite", sqlite)
    try await sqlite.close()
    try? FileManager.default.removeItem(at: directory)
    if let postgres {
        let database = try await PostgresDatabase.createDatabase(
            named: databaseName, serverURL: postgres, replacing: true)
        let store = try await SQLFHIRStore(database: database)
        figures += try await body("postgres", store)
        try await store.close()
    } else {
        print("(PostgreSQL skipped: pass --postgres URL)")
    }
    return figures
}
