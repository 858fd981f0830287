import FHIR
import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// Issue 16's faster write path: statements kept prepared and run in-process on SQLite, a
/// create as one statement on PostgreSQL. Whatever the path, a write is whole or absent,
/// and what is read back is exactly what was written.
@Suite struct WritePathTests {
    static let backends = TestDatabases.backends

    func rawTable(_ database: any SQLDatabase) async throws {
        try await database.withTransaction { executor in
            try await executor.query("CREATE TABLE raw_rows (id TEXT PRIMARY KEY, body TEXT NOT NULL)", [])
        }
    }

    func ids(_ database: any SQLDatabase) async throws -> [String] {
        try await database.withConnection { try await $0.query("SELECT id FROM raw_rows ORDER BY id", []) }.compactMap {
            $0.first?.string
        }
    }

    @Test(arguments: backends)
    func anAtomicWriteWithAFailingStatementWritesNothing(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let database = store.database
            try await rawTable(database)
            try await database.writeAtomically([
                SQLStatement("INSERT INTO raw_rows (id, body) VALUES (?, ?)", [.text("a"), .text("1")])
            ])
            // The third statement repeats a key: the first two must not stay.
            await #expect(throws: SQLUniqueViolation.self) {
                try await database.writeAtomically([
                    SQLStatement("INSERT INTO raw_rows (id, body) VALUES (?, ?)", [.text("b"), .text("2")]),
                    SQLStatement(
                        "INSERT INTO raw_rows (id, body) VALUES (?, ?), (?, ?)",
                        [.text("c"), .text("3"), .text("d"), .text("4")]),
                    SQLStatement("INSERT INTO raw_rows (id, body) VALUES (?, ?)", [.text("a"), .text("5")]),
                ])
            }
            #expect(try await ids(database) == ["a"])
            // More values than PostgreSQL binds in one statement: still all or nothing.
            let many = (0..<300).map { statement in
                SQLStatement(
                    "INSERT INTO raw_rows (id, body) VALUES "
                        + Array(repeating: "(?, ?)", count: 110).joined(separator: ", "),
                    (0..<110).flatMap { row -> [SQLValue] in [.text("m\(statement)-\(row)"), .text("x")] })
            }
            await #expect(throws: SQLUniqueViolation.self) {
                try await database.writeAtomically(
                    many + [SQLStatement("INSERT INTO raw_rows (id, body) VALUES (?, ?)", [.text("a"), .text("y")])])
            }
            #expect(try await ids(database) == ["a"])
            try await database.writeAtomically(many)
            #expect(try await ids(database).count == 33_001)
        }
    }

    @Test(arguments: backends)
    func valuesComeBackExactly(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let database = store.database
            try await rawTable(database)
            let texts = [
                "", "ascii", "Grüße, 患者, 🩺", String(repeating: "long text ", count: 200_000), "quote ' and \" and \\",
            ]
            for (index, text) in texts.enumerated() {
                try await database.writeAtomically([
                    SQLStatement("INSERT INTO raw_rows (id, body) VALUES (?, ?)", [.text("t\(index)"), .text(text)])
                ])
            }
            let rows = try await database.withConnection {
                try await $0.query("SELECT body FROM raw_rows ORDER BY id", [])
            }
            #expect(rows.map { $0.first?.string } == texts.map { $0 })
            let numbers = try await database.withConnection {
                try await $0.query(
                    "SELECT CAST(? AS BIGINT), CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT)",
                    [.integer(Int64.min), .double(-0.125), .null])
            }
            #expect(numbers.first?[0] == .integer(Int64.min))
            #expect(numbers.first?[1] == .double(-0.125))
            #expect(numbers.first?[2] == .null)
        }
    }

    /// SQLite keeps statements prepared per connection: more distinct statements than it
    /// keeps must still each run as written, and text that is not one statement is refused.
    @Test func theSQLiteStatementCacheEvictsAndStaysCorrect() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let database = store.database
            try await rawTable(database)
            for round in 0..<2 {
                for number in 0..<600 {
                    let rows = try await database.withConnection {
                        try await $0.query("SELECT \(number) + ?", [.integer(Int64(round))])
                    }
                    #expect(rows.first?.first == .integer(Int64(number + round)))
                }
            }
            await #expect(throws: (any Error).self) {
                try await database.writeAtomically([
                    SQLStatement("INSERT INTO raw_rows (id, body) VALUES ('x', 'y'); DROP TABLE raw_rows", [])
                ])
            }
            await #expect(throws: (any Error).self) {
                _ = try await database.withConnection { try await $0.query("SELECT ?", [.integer(1), .integer(2)]) }
            }
            #expect(try await ids(database).isEmpty)
        }
    }

    /// Many creates at once share SQLite's group commit; every one is stored, indexed and
    /// searchable, and no writer waits forever.
    @Test(arguments: backends)
    func concurrentCreatesAreAllStoredAndIndexed(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let created = try await withThrowingTaskGroup(of: String.self) { group in
                for number in 0..<200 {
                    group.addTask {
                        let resource = try JSONParser.parse(
                            #"{"resourceType":"Patient","name":[{"family":"Crowd\#(number % 10)"}]}"#)
                        return try await store.create(resource, type: "Patient").id
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(created.count == 200)
            let parser = SearchQueryParser()
            for family in ["Crowd0", "Crowd7"] {
                let query = try parser.parse(
                    resourceType: "Patient",
                    parameters: [(name: "family", value: family), (name: "_count", value: "100")], strict: true)
                let page = try await store.search(query)
                #expect(page.total == 20)
                #expect(Set(page.resources.map(\.id)).isSubset(of: created))
            }
        }
    }
}

extension WritePathTests {
    /// On SQLite a create is stamped in the writer's turn: one that waited behind a long
    /// transaction is stamped after everything that transaction wrote, so `meta.lastUpdated`
    /// follows the order of commits (a client polling `_lastUpdated` or `_since` misses nothing).
    @Test func aCreateThatWaitedForTheWriterIsStampedAfterWhatCommittedFirst() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let (started, signal) = AsyncStream<Void>.makeStream()
            let basic = JSONValue.object(JSONObject([("resourceType", .string("Basic"))]))
            async let lastOfTransaction: Int64 = store.transaction { transaction in
                var last: Int64 = 0
                for index in 0..<400 {
                    last = try await transaction.create(basic, type: "Basic", id: nil).lastUpdated
                    if index == 0 { signal.yield(); signal.finish() }
                }
                return last
            }
            var waiting = started.makeAsyncIterator()
            _ = await waiting.next()
            let patient = try await store.create(
                .object(JSONObject([("resourceType", .string("Patient"))])), type: "Patient")
            let last = try await lastOfTransaction
            #expect(
                patient.lastUpdated >= last,
                "stamped \(patient.lastUpdated), committed after a transaction stamped up to \(last)")
        }
    }
}
