import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// The store on a URL of several hosts, and what a request meets when the database is gone:
/// an error saying so within the wait, never a wait for ever. (Promoting a real standby is
/// tested on the compose cluster: Tests/deployment/test_cluster.py.)
@Suite(.timeLimit(.minutes(2))) struct PostgresPrimaryTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }
    /// A loopback port nobody listens on: connecting is refused at once.
    static let deadPort = 1

    static func url(_ text: String, prependingDeadHost: Bool) throws -> PostgresURL {
        var url = try #require(PostgresURL(text))
        if prependingDeadHost { url.endpoints.insert(.init(host: "127.0.0.1", port: deadPort), at: 0) }
        return url
    }

    @Test(arguments: Self.postgres)
    func aHostThatDoesNotAnswerIsPassedOverForThePrimary(backend: TestBackend) async throws {
        let url = try Self.url(try await TestDatabases.freshPostgresURL(), prependingDeadHost: true)
        #expect(url.endpoints.count == 2)
        let store = try await SQLFHIRStore.open(url: url.description)
        let patient = try JSONParser.parse(#"{"resourceType":"Patient","id":"p1","active":true}"#)
        _ = try await store.update(patient, type: "Patient", id: "p1", ifMatch: nil)
        let read = try await store.read(type: "Patient", id: "p1")
        #expect(read.versionId == 1)
        let database = try #require(store.database as? PostgresDatabase)
        #expect(database.active.withLockedValue { $0.endpoint } == url.endpoints[1])
        try await store.close()
    }

    @Test(arguments: Self.postgres)
    func noPrimaryAmongTheHostsIsSaidWithWhatEachAnswered(backend: TestBackend) async throws {
        let started = ContinuousClock.now
        do {
            _ = try await PostgresDatabase.connect(url: "postgres://u:p@127.0.0.1:1,127.0.0.1:2/db")
            Issue.record("connected to hosts that do not listen")
        } catch let error as StoreError {
            #expect("\(error)".contains("127.0.0.1:1: ") && "\(error)".contains("within 30 s"), "\(error)")
            #expect(!"\(error)".contains("u:p"))
        }
        // It keeps probing for 30 s (PostgreSQL may be starting), then says so.
        let waited = ContinuousClock.now - started
        #expect(waited >= .seconds(30) && waited < .seconds(40), "\(waited)")
    }

    @Test(arguments: Self.postgres)
    func aRequestToADatabaseThatIsGoneFailsWithinTheWait(backend: TestBackend) async throws {
        let database = try await PostgresDatabase.connect(
            url: "postgres://u:p@127.0.0.1:\(Self.deadPort)/db", connectionWait: .milliseconds(500))
        let started = ContinuousClock.now
        do {
            _ = try await database.withConnection { try await $0.query("SELECT 1", []) }
            Issue.record("a query reached a database that is not there")
        } catch let error as SQLDatabaseUnavailable {
            #expect(!error.outcomeUnknown)
            #expect(error.detail.contains("nothing of the request was carried out"))
        }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(500) && waited < .seconds(3), "\(waited)")
        try await database.close()
    }

    @Test(arguments: Self.postgres)
    func aWriteRefusedAsReadOnlyIsUnavailableWithItsOutcomeUnknown(backend: TestBackend) async throws {
        let text = try await TestDatabases.freshPostgresURL()
        let name = try #require(PostgresURL(text)?.database)
        let admin = try await PostgresDatabase.connect(url: text)
        // What a server meets when its host was demoted to a standby under it.
        _ = try await admin.withConnection {
            try await $0.query("ALTER DATABASE \(name) SET default_transaction_read_only = on", [])
        }
        try await admin.close()
        let database = try await PostgresDatabase.connect(url: text)
        do {
            _ = try await database.withConnection { try await $0.query("CREATE TABLE t (x int)", []) }
            Issue.record("a write on a read-only database succeeded")
        } catch let error as SQLDatabaseUnavailable {
            #expect(error.outcomeUnknown)
        }
        try await database.close()
    }

    @Test(arguments: Self.postgres)
    func aBusyPoolIsWaitedForPastTheWait(backend: TestBackend) async throws {
        let database = try await PostgresDatabase.connect(
            url: try await TestDatabases.freshPostgresURL(), connectionWait: .seconds(1))
        // 32 statements of 0.5 s on 8 connections: the last leases wait about 1.5 s, longer than
        // the wait, while the pool takes leases back every 0.5 s (and when a loaded machine
        // delays that past the wait, a probe finds the host answering).
        let answered = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    try await database.withConnection { try await $0.query("SELECT pg_sleep(0.5)", []) }.count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(answered == 32)
        try await database.close()
    }

    /// A statement under way when its host vanished without closing the connection (power or
    /// network lost: the statement neither fails nor returns) fails as a lost connection soon
    /// after the lease check finds the host refusing connections, instead of waiting for ever.
    @Test(arguments: Self.postgres)
    func aStatementOnAHostThatVanishedFailsInsteadOfWaiting(backend: TestBackend) async throws {
        var url = try #require(PostgresURL(try await TestDatabases.freshPostgresURL()))
        let target = try #require(url.endpoints.first)
        let proxy = try VanishingProxy(to: target.host, port: target.port)
        defer { proxy.stop() }
        url.endpoints = [.init(host: "127.0.0.1", port: proxy.port)]
        let database = try await PostgresDatabase.connect(url: url.description, connectionWait: .seconds(1))
        _ = try await database.withConnection { try await $0.query("SELECT 1", []) }
        let statement = Task {
            try await database.withConnection { try await $0.query("SELECT pg_sleep(60)", []) }
        }
        try await Task.sleep(for: .milliseconds(300))
        proxy.vanish()
        let vanished = ContinuousClock.now
        do {
            _ = try await statement.value
            Issue.record("a statement on a host that vanished returned")
        } catch let error as SQLDatabaseUnavailable {
            #expect(error.outcomeUnknown)
        }
        // The lease check after 1 s (the wait), a refused probe, the watchdog's quarter second.
        let waited = ContinuousClock.now - vanished
        #expect(waited < .seconds(5), "\(waited)")
        try await database.close()
    }
}
