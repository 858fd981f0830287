import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// Concurrent creates on PostgreSQL share one statement (`PostgresCreateQueue`): every one must
/// land whole with its index rows, and a statement PostgreSQL refuses must give each request
/// its own answer, not its neighbour's.
@Suite struct PostgresCreateQueueTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }

    /// Holds PostgreSQL's lock on `resources` for `duration`, so that creates started meanwhile
    /// wait in the queue and go together when it is released.
    static func holdingResources(
        _ store: SQLFHIRStore, for duration: Duration, while body: () async throws -> Void
    ) async throws {
        let locked = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await store.database.withTransaction { executor in
                try await executor.query("LOCK TABLE resources IN EXCLUSIVE MODE", [])
                locked.continuation.yield()
                try await Task.sleep(for: duration)
            }
        }
        for await _ in locked.stream { break }
        try await body()
        try await holder.value
    }

    @Test(arguments: postgres)
    func concurrentCreatesGoTogetherAndEachLandsWhole(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let count = 40
            var created: [StoredResource] = []
            try await Self.holdingResources(store, for: .seconds(1)) {
                created = try await withThrowingTaskGroup(of: StoredResource.self) { group in
                    for number in 0..<count {
                        let resource = try JSONParser.parse(
                            #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/queue-\#(number)"}}"#
                        )
                        group.addTask { try await store.create(resource, type: "Observation") }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            #expect(store.postgresCreates.largestStatement > 1, "the creates waited and went together")
            #expect(Set(created.map(\.id)).count == count)
            for resource in created {
                let read = try await store.read(type: "Observation", id: resource.id)
                #expect(read.body == resource.body)
                // Its own index rows, not a neighbour's: the subject of its body.
                let subject = try #require(try JSONParser.parse(read.body ?? "")["subject"]?["reference"]?.stringValue)
                let rows = try await store.database.withConnection {
                    try await $0.query(
                        "SELECT target_id FROM idx_reference WHERE type = 'Observation' AND id = ? AND param = 'subject'",
                        [.text(resource.id)])
                }
                #expect(rows.map { $0.first?.string } == [String(subject.dropFirst("Patient/".count))])
            }
        }
    }

    @Test(arguments: postgres)
    func aRefusedStatementAnswersEachCreateAlone(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let database = try #require(store.database as? PostgresDatabase)
            let queue = PostgresCreateQueue(maximumRunning: 1)
            let body = #"{"resourceType":"Basic","code":{"text":"queued"}}"#
            func resource(_ id: String) -> PostgresCreateStatement.Resource {
                PostgresCreateStatement.Resource(
                    type: "Basic", id: id, version: 1, lastUpdated: 1, body: body, indexRows: [])
            }
            // "taken" exists: a statement holding its create fails on the unique key as a whole.
            try await queue.create(resource("taken"), on: database)
            var outcomes: [String: Bool] = [:]
            try await Self.holdingResources(store, for: .seconds(1)) {
                outcomes = await withTaskGroup(of: (String, Bool).self) { group in
                    // The first runs alone and waits on the lock; the rest queue behind it.
                    group.addTask { ("first", (try? await queue.create(resource("first"), on: database)) != nil) }
                    try? await Task.sleep(for: .milliseconds(200))
                    for id in ["q-1", "q-2", "taken", "q-3", "q-4"] {
                        group.addTask { (id, (try? await queue.create(resource(id), on: database)) != nil) }
                    }
                    return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
            }
            #expect(queue.largestStatement == 5, "the five queued creates went as one statement")
            #expect(outcomes == ["first": true, "q-1": true, "q-2": true, "taken": false, "q-3": true, "q-4": true])
            for id in ["first", "q-1", "q-2", "q-3", "q-4", "taken"] {
                #expect(try await store.read(type: "Basic", id: id).versionId == 1)
            }
        }
    }
}
