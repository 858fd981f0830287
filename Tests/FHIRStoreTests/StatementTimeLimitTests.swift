import FHIR
import FHIRStore
import FHIRTestSupport
import Foundation
import NIOPosix
import Testing

/// Issue 13: a statement that runs past ``SQLStatementTimeLimit`` is stopped by the database
/// (SQLite interrupted, PostgreSQL's statement_timeout) and the connection serves the next one.
@Suite struct StatementTimeLimitTests {
    static let backends = TestDatabases.backends

    /// Counts to a billion: seconds of work on either database, and no data needed.
    static let endless =
        "SELECT (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT COUNT(*) FROM c)"
    /// Counts to 1,000: far under the limit even on a busy machine.
    static let short =
        "SELECT (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT COUNT(*) FROM c)"

    /// Runs `body` expecting a ``SQLStatementTimeout`` within a few seconds (not the billion steps).
    func expectStopped(_ what: String, _ body: () async throws -> Void) async {
        let started = ContinuousClock.now
        do {
            try await body()
            Issue.record("\(what): finished, but should have been stopped")
        } catch let timeout as SQLStatementTimeout {
            #expect(timeout.limit == .milliseconds(300))
            #expect(!timeout.description.contains("SELECT"))
        } catch {
            Issue.record("\(what): \(String(reflecting: error))")
        }
        // A billion steps take minutes; 15 s leaves room for a loaded machine (5.9 s once in the
        // full parallel run).
        #expect(ContinuousClock.now - started < .seconds(15), "\(what) took \(ContinuousClock.now - started)")
    }

    @Test(arguments: backends)
    func longStatementsAreStoppedAndConnectionsRecover(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let database = store.database
            try await SQLStatementTimeLimit.$current.withValue(.milliseconds(300)) {
                // Every reader connection (SQLite has two; the pool hands out several).
                for round in 0..<4 {
                    await expectStopped("read \(round)") {
                        _ = try await database.withConnection { try await $0.query(Self.endless, []) }
                    }
                }
                await expectStopped("in a transaction") {
                    _ = try await database.withTransaction { try await $0.query(Self.endless, []) }
                }
                // The same connections answer the next statement, and writes still commit.
                for _ in 0..<4 {
                    let rows = try await database.withConnection { try await $0.query(Self.short, []) }
                    #expect(rows.first?.first?.int == 1000)
                }
                let created = try await store.create(
                    try JSONParser.parse(#"{"resourceType":"Patient"}"#), type: "Patient")
                #expect(try await store.read(type: "Patient", id: created.id).versionId == 1)
            }
            // A generous limit and no limit let the same short statement finish.
            for limit in [Duration.seconds(10), nil] {
                try await SQLStatementTimeLimit.$current.withValue(limit) {
                    let rows = try await database.withConnection { try await $0.query(Self.short, []) }
                    #expect(rows.first?.first?.int == 1000)
                }
            }
        }
    }

    /// Under load a statement can wait for one of sqlite-nio's threads (as many as cores,
    /// shared by every connection) past its limit. SQLite forgets an interrupt that comes
    /// before a statement starts, so the watchdog must interrupt it again once it runs.
    @Test func aStatementThatWaitedForAThreadPastItsLimitIsStillStopped() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let pool = NIOThreadPool.singleton
            let held = (0..<pool.numberOfThreads).map { _ in
                pool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.next()) {
                    Thread.sleep(forTimeInterval: 1)
                }
            }
            try await SQLStatementTimeLimit.$current.withValue(.milliseconds(300)) {
                await expectStopped("after waiting 1 s for a thread") {
                    _ = try await store.database.withConnection { try await $0.query(Self.endless, []) }
                }
            }
            for hold in held { try await hold.get() }
        }
    }
}
