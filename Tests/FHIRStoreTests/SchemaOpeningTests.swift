import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Testing

/// Opening a PostgreSQL database whose schema is complete takes no lock on its tables: a
/// replica opening a tenant another replica was writing to deadlocked with that write (40P01,
/// a 500 in `ReplicaTests.aTenantFirstUsedOnBothReplicasAtOnceIsOneTenant` under a full run).
@Suite struct SchemaOpeningTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }

    @Test(arguments: postgres)
    func reopeningDoesNotWaitForAWriteInProgress(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let (held, holding) = AsyncStream.makeStream(of: Void.self)
            let (release, releasing) = AsyncStream.makeStream(of: Void.self)
            // A write under way: its transaction holds ROW EXCLUSIVE on a table until released.
            let writer = Task {
                try await store.database.withTransaction { executor in
                    try await executor.query("LOCK TABLE idx_reference IN ROW EXCLUSIVE MODE", [])
                    holding.yield()
                    var wait = release.makeAsyncIterator()
                    _ = await wait.next()
                }
            }
            var started = held.makeAsyncIterator()
            _ = await started.next()
            // The schema's statements would wait for SHARE on idx_reference: give up after 5 s.
            let reopened = try await store.database.withTransaction { executor in
                try await executor.query("SET LOCAL lock_timeout = '5s'", [])
                return try await SQLFHIRStore.postgresSchemaIsComplete(
                    Schema.statements(for: .postgres), executor)
            }
            #expect(reopened, "the schema is complete, so opening runs none of its statements")
            // Opening the store itself, bounded: before, it waited for the write to end (and
            // the write for this test: the wait is polled, never awaited while the write holds).
            let opened = Opened()
            let opening = Task {
                _ = try await SQLFHIRStore(database: store.database)
                await opened.set()
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while !(await opened.value), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            let openedInTime = await opened.value
            releasing.yield()
            try await writer.value
            try await opening.value
            #expect(openedInTime, "opening waited for a write in progress")
            // One piece missing: the statements run again and put it back.
            try await store.database.withTransaction { try await $0.query("DROP INDEX idx_reference_target_type", []) }
            _ = try await SQLFHIRStore(database: store.database)
            #expect(
                try await store.database.withConnection {
                    try await SQLFHIRStore.postgresSchemaIsComplete(Schema.statements(for: .postgres), $0)
                })
        }
    }
}

/// Whether the store finished opening.
actor Opened {
    var value = false
    func set() { value = true }
}
