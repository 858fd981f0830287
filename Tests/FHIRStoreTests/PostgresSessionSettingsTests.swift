@testable import FHIRStore
import FHIRTestSupport
import Testing

/// The settings Caduceus's PostgreSQL sessions start with: `random_page_cost` 1.1 unless the
/// URL gives another, so that the planner probes a patient's index rows instead of scanning
/// every resource of the type (BENCHMARKS.md, "Clinical searches").
@Suite struct PostgresSessionSettingsTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }

    @Test func theURLsValueOrTheStandardOne() throws {
        let plain = try #require(PostgresURL("postgres://u@h/db"))
        #expect(try plain.sessionSettings().map(\.value) == ["1.1"])
        let given = try #require(PostgresURL("postgres://u@h/db?application_name=x&random_page_cost=4"))
        #expect(try given.sessionSettings().map(\.name) == ["random_page_cost"])
        #expect(try given.sessionSettings().map(\.value) == ["4.0"])
        let encoded = try #require(PostgresURL("postgres://u@h/db?random_page_cost=%32.5"))
        #expect(try encoded.sessionSettings().map(\.value) == ["2.5"])
    }

    /// `server` leaves the server's own value: nothing is set.
    @Test func serverLeavesTheServersValue() throws {
        let url = try #require(PostgresURL("postgres://u@h/db?random_page_cost=server"))
        #expect(try url.sessionSettings().isEmpty)
    }

    /// Refused before any session starts: what PostgreSQL would refuse (a negative, not a number,
    /// a subnormal such as 1e-310, which its parser reports as out of range), and what
    /// Caduceus takes no more of (past 1,000,000, or longer than 32 bytes).
    @Test(arguments: [
        "random_page_cost", "random_page_cost=", "random_page_cost=-1", "random_page_cost=abc",
        "random_page_cost=1e400", "random_page_cost=nan", "random_page_cost=inf", "random_page_cost=1000001",
        "random_page_cost=1e-310", "random_page_cost=5e-324", "random_page_cost=Server",
        "random_page_cost=1;DROP", "random_page_cost=%ZZ", "random_page_cost=" + String(repeating: "1", count: 40),
    ])
    func aValueOutsideWhatIsTakenIsRefused(query: String) throws {
        let url = try #require(PostgresURL("postgres://u@h/db?" + query))
        #expect(throws: StoreError.self) { try url.sessionSettings() }
    }

    /// What the session shows, through the store's own pool.
    static func shown(_ url: String) async throws -> String? {
        let database = try await PostgresDatabase.connect(url: url)
        let rows = try await database.withConnection { try await $0.query("SHOW random_page_cost", []) }
        try await database.close()
        return rows.first?.first?.string
    }

    @Test(arguments: Self.postgres)
    func sessionsStartWithTheSetting(backend: TestBackend) async throws {
        let url = try await TestDatabases.freshPostgresURL()
        #expect(try await Self.shown(url) == "1.1")
        let separator = url.contains("?") ? "&" : "?"
        #expect(try await Self.shown(url + separator + "random_page_cost=3") == "3")
        // The server's own: PostgreSQL's default on the test server.
        #expect(try await Self.shown(url + separator + "random_page_cost=server") == "4")
        await #expect(throws: StoreError.self) {
            _ = try await PostgresDatabase.connect(url: url + separator + "random_page_cost=-2")
        }
    }
}
