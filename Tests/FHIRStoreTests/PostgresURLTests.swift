@testable import FHIRStore
import Testing

/// The URLs `--database` takes for PostgreSQL, with one host or a primary and its standbys.
@Suite struct PostgresURLTests {
    @Test func oneHostWithEverything() throws {
        let url = try #require(PostgresURL("postgres://caduceus:s%40cret@127.0.0.1:5439/fhir"))
        #expect(url.user == "caduceus")
        #expect(url.password == "s@cret")
        #expect(url.endpoints == [.init(host: "127.0.0.1", port: 5439)])
        #expect(url.database == "fhir")
        #expect(url.description == "postgres://caduceus:s%40cret@127.0.0.1:5439/fhir")
        #expect(url.redacted == "postgres://caduceus:***@127.0.0.1:5439/fhir")
    }

    @Test func severalHostsKeepTheirOrderAndDefaultPorts() throws {
        let url = try #require(PostgresURL("postgresql://u@db-a,db-b:6000,[::1]:7000/x?application_name=c"))
        #expect(
            url.endpoints == [
                .init(host: "db-a", port: 5432), .init(host: "db-b", port: 6000), .init(host: "::1", port: 7000),
            ])
        #expect(url.password == nil)
        #expect(url.query == "application_name=c")
        #expect(
            url.with(database: "x_tenant_a").description
                == "postgresql://u@db-a:5432,db-b:6000,[::1]:7000/x_tenant_a?application_name=c")
    }

    @Test func aURLWithoutDatabaseOrUser() throws {
        let url = try #require(PostgresURL("postgres://localhost"))
        #expect(url.database == nil && url.user == nil)
        #expect(url.endpoints == [.init(host: "localhost", port: 5432)])
    }

    @Test(arguments: [
        "", "sqlite:/tmp/x", "http://h/db", "postgres://", "postgres:///db", "postgres://h:0/db",
        "postgres://h:65536/db",
        "postgres://h:5x/db", "postgres://h:-1/db", "postgres://a,,b/db", "postgres://h:5432,/db", "postgres://[::1/db",
        "postgres://[::1]x/db", "postgres://h/a/b", "postgres://h:١٢٣/db", "postgres://::1/db", "postgres://h:+5432/db",
        "postgres://h%2Cx/db", "postgres://[fe80::1%25eth0]:5432/db", "postgres://h%40x/db", "postgres://hé/db",
        "postgres://" + Array(repeating: "h", count: 17).joined(separator: ",") + "/db",
    ])
    func notAPostgresURL(text: String) {
        #expect(PostgresURL(text) == nil, "\(text)")
    }
}
