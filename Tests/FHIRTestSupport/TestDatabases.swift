import FHIR
import FHIRStore
import Foundation

/// The databases the store and server tests run against.
public enum TestBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres

    public var description: String { rawValue }
}

/// Raised when a test needs a service this machine does not have.
public struct MissingService: Error, CustomStringConvertible {
    public var description: String
}

/// Fresh, empty stores for tests: a new SQLite file, or a new PostgreSQL database on the
/// server named by `CADUCEUS_TEST_POSTGRES_URL` (Scripts/test.sh starts one and sets it).
public enum TestDatabases {
    /// Whether PostgreSQL tests can run. Under `CI=true` a missing server is a failure, never
    /// a silent skip.
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["CADUCEUS_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The backends to run: PostgreSQL only where configured, unless CI demands it.
    public static var backends: [TestBackend] {
        postgresURL != nil || isCI ? TestBackend.allCases : [.sqlite]
    }

    public static func makeStore(_ backend: TestBackend) async throws -> SQLFHIRStore {
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "caduceus-test-\(UUID().uuidString)")
            return try await SQLFHIRStore.open(url: directory.appendingPathComponent("fhir.sqlite").path)
        case .postgres:
            guard let url = postgresURL else {
                throw MissingService(
                    description:
                        "PostgreSQL is required (CI=true) but CADUCEUS_TEST_POSTGRES_URL is not set; run Scripts/test.sh"
                )
            }
            return try await SQLFHIRStore(database: try await freshPostgresDatabase(serverURL: url))
        }
    }

    /// Runs `body` on a fresh store of `backend`, closing it whatever happens.
    public static func withStore(_ backend: TestBackend, _ body: (SQLFHIRStore) async throws -> Void) async throws {
        let store = try await makeStore(backend)
        do {
            try await body(store)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// The URL of a fresh, empty PostgreSQL database (created here), for tests that open it
    /// more than once, as two server replicas do.
    public static func freshPostgresURL() async throws -> String {
        guard let url = postgresURL else {
            throw MissingService(
                description: "PostgreSQL is required but CADUCEUS_TEST_POSTGRES_URL is not set; run Scripts/test.sh")
        }
        let database = try await freshPostgresDatabase(serverURL: url)
        let name =
            try await database.withConnection { try await $0.query("SELECT current_database()", []) }.first?.first?
            .string ?? ""
        try await database.close()
        guard let parsed = PostgresURL(url), !name.isEmpty else {
            throw MissingService(description: "Bad PostgreSQL URL \(url)")
        }
        return parsed.with(database: name).description
    }

    /// A database of its own for one test, so that tests can run in parallel.
    static func freshPostgresDatabase(serverURL: String) async throws -> PostgresDatabase {
        let name = "caduceus_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        return try await PostgresDatabase.createDatabase(named: String(name), serverURL: serverURL)
    }

    /// The shared FHIR data directory (`../shared/fhir` beside the repository).
    public static var sharedFHIRDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["CADUCEUS_SHARED_FHIR"] { return URL(fileURLWithPath: path) }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent("shared/fhir")
    }
}
