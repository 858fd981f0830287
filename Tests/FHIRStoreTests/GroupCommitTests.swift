import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// SQLite's group commit without savepoints for creates (`withReplayableTransaction`), and
/// the create prepared before the writer's turn: a job that fails still fails alone, and
/// what is stored is what the old, all-in-the-turn path stored.
@Suite struct GroupCommitTests {
    /// Holds the writer until `count` transactions wait behind it (so that they form one
    /// group); returns when it holds it.
    func holdTheWriter(_ database: SQLiteDatabase, until count: Int) async -> Task<Void, any Error> {
        let (held, signal) = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await database.withTransaction { _ in
                signal.yield()
                signal.finish()
                while database.commitQueue.waiting < count { try await Task.sleep(for: .milliseconds(2)) }
            }
        }
        var iterator = held.makeAsyncIterator()
        _ = await iterator.next()
        return holder
    }

    @Test func aReplayedGroupCommitsTheOthersAndFailsTheOneAlone() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let database = try #require(store.database as? SQLiteDatabase)
            try await database.withTransaction { try await $0.query("CREATE TABLE raw_rows (id TEXT PRIMARY KEY)", []) }
            try await database.withTransaction { try await $0.query("INSERT INTO raw_rows (id) VALUES ('taken')", []) }
            let runs = Locked([String: Int]())
            let outcomes = Locked([String: Bool]())
            let jobs = ["a", "b", "bad", "c", "swift-error", "d"]
            try await withThrowingTaskGroup(of: Void.self) { group in
                let holder = await holdTheWriter(database, until: jobs.count)
                for name in jobs {
                    group.addTask {
                        do {
                            try await database.withReplayableTransaction { executor in
                                runs.with { $0[name, default: 0] += 1 }
                                if name == "swift-error" { throw FHIRError.unprocessable("before any statement") }
                                try await executor.query("INSERT INTO raw_rows (id) VALUES (?)", [.text(name)])
                                // Written half, then refused: the first row must not stay.
                                if name == "bad" {
                                    try await executor.query("INSERT INTO raw_rows (id) VALUES ('taken')", [])
                                }
                            }
                            outcomes.with { $0[name] = true }
                        } catch {
                            outcomes.with { $0[name] = false }
                        }
                    }
                }
                try await holder.value
                try await group.waitForAll()
            }
            let ids = try await database.withConnection {
                try await $0.query("SELECT id FROM raw_rows ORDER BY id", [])
            }
            #expect(ids.compactMap { $0.first?.string } == ["a", "b", "c", "d", "taken"])
            #expect(
                outcomes.with { $0 } == [
                    "a": true, "b": true, "c": true, "d": true, "bad": false, "swift-error": false,
                ])
            // The group ran once without savepoints, was rolled back at "bad", and ran again.
            let counts = runs.with { $0 }
            // (Those queued before "bad" ran twice, those after once.)
            #expect(counts["bad"] == 2)
            #expect(counts.count == jobs.count && counts.values.allSatisfy { $0 == 1 || $0 == 2 })
        }
    }

    @Test func aGroupWhoseOnlyFailureWroteNothingIsNotReplayed() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let database = try #require(store.database as? SQLiteDatabase)
            try await database.withTransaction { try await $0.query("CREATE TABLE raw_rows (id TEXT PRIMARY KEY)", []) }
            let runs = Locked(0)
            let jobs = (0..<5).map { "job\($0)" }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                let holder = await holdTheWriter(database, until: jobs.count)
                for name in jobs {
                    group.addTask {
                        do {
                            try await database.withReplayableTransaction { executor in
                                runs.with { $0 += 1 }
                                if name == "job2" { throw FHIRError.unprocessable("refused before writing") }
                                try await executor.query("INSERT INTO raw_rows (id) VALUES (?)", [.text(name)])
                            }
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                try await holder.value
                #expect(try await group.reduce(0) { $0 + ($1 ? 1 : 0) } == 4)
            }
            #expect(runs.with { $0 } == 5)
            let ids = try await database.withConnection {
                try await $0.query("SELECT id FROM raw_rows ORDER BY id", [])
            }
            #expect(ids.compactMap { $0.first?.string } == ["job0", "job1", "job3", "job4"])
        }
    }

    /// BEGIN IMMEDIATE is tried without waiting; when another process holds the write lock,
    /// a create waits for it (on the thread pool) instead of failing.
    @Test func aCreateWaitsForAWriteLockHeldElsewhere() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-test-\(UUID().uuidString)/fhir.sqlite"
        ).path
        let store = try await SQLFHIRStore.open(url: path)
        // A second database on the same file stands for another process: its own writer connection.
        let other = try await SQLiteDatabase.open(path: path)
        let (held, signal) = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await other.withTransaction { executor in
                try await executor.query("INSERT INTO caduceus_schema (version) VALUES (0)", [])
                signal.yield()
                signal.finish()
                try await Task.sleep(for: .milliseconds(300))
                try await executor.query("DELETE FROM caduceus_schema WHERE version = 0", [])
            }
        }
        var iterator = held.makeAsyncIterator()
        _ = await iterator.next()
        let started = ContinuousClock.now
        let created = try await store.create(
            try JSONParser.parse(#"{"resourceType":"Patient","active":true}"#), type: "Patient")
        #expect(ContinuousClock.now - started >= .milliseconds(100), "the create did not wait for the lock")
        try await holder.value
        #expect(try await store.read(type: "Patient", id: created.id).body == created.body)
        try await other.close()
        try await store.close()
    }

    /// The body spliced around the time is the text the stamped resource writes to.
    @Test func thePreparedBodyIsTheStampedResourcesText() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let resources = [
                #"{"resourceType":"Patient","name":[{"family":"Grüße \"quoted\" 患者 🩺\n"}]}"#,
                #"{"active":true,"resourceType":"Patient","meta":{"tag":[{"code":"x"}],"lastUpdated":"2001-01-01T00:00:00Z","versionId":"9"},"id":"old"}"#,
                #"{"resourceType":"Observation","status":"final","code":{"text":"meta lastUpdated"},"meta":{"source":"s"},"valueQuantity":{"value":1.50}}"#,
                #"{"resourceType":"Basic","meta":{}}"#,
            ]
            for (index, text) in resources.enumerated() {
                let resource = try JSONParser.parse(text)
                let now: Int64 = 1_765_000_000_123 + Int64(index)
                let prepared = try store.prepareWrite(
                    resource, type: resource["resourceType"]!.stringValue!, id: "id-\(index)", version: 3,
                    isNew: index % 2 == 0)
                let body = try #require(prepared.statements(stampedAt: now).stored.body)
                // The old path: stamp the object, then write it whole.
                guard case .object(var object) = resource else { Issue.record("not an object"); continue }
                object.set("id", .string("id-\(index)"), after: ["resourceType"])
                var meta = JSONObject([
                    ("versionId", .string("3")),
                    ("lastUpdated", .string(FHIRDateRange.instantString(milliseconds: now))),
                ])
                for (key, value) in object["meta"]?.objectValue ?? JSONObject()
                where key != "versionId" && key != "lastUpdated" { meta[key] = value }
                object.set("meta", .object(meta), after: ["resourceType", "id"])
                #expect(body == JSONWriter().string(.object(object)))
            }
        }
    }

    /// SQLite's index INSERTs run OR FAIL (no statement journal), so a multi-row one that is
    /// refused halfway keeps the rows before the refused one: nothing may commit them. Alone,
    /// in a group with savepoints and in a replayed group, none of the failing job's rows stay
    /// and the other jobs' rows do.
    @Test func anIndexInsertRefusedHalfwayLeavesNoneOfItsRows() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let database = try #require(store.database as? SQLiteDatabase)
            /// Eight string-index rows for `id`, the sixth without its (NOT NULL) param when `refused`.
            func rows(refused: Bool) -> [IndexTableRows] {
                [
                    IndexTableRows(
                        kind: StringIndex(),
                        rows: (0..<8).map {
                            [refused && $0 == 5 ? .null : .text("name"), .text("n\($0)"), .text("N\($0)")]
                        })
                ]
            }
            func insert(_ id: String, refused: Bool) -> [SQLStatement] {
                SQLFHIRTransaction.insertIndex(rows: rows(refused: refused), type: "Patient", id: id, dialect: .sqlite)
            }
            #expect(insert("x", refused: false).allSatisfy { $0.sql.hasPrefix("INSERT OR FAIL INTO idx_string") })
            // Alone.
            await #expect(throws: (any Error).self) {
                try await database.writeAtomically(insert("alone", refused: true))
            }
            // Grouped, with savepoints (plain transactions) and without (replayable ones).
            for replayable in [false, true] {
                let names = ["ok1", "bad", "ok2"].map { "\($0)-\(replayable)" }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let holder = await holdTheWriter(database, until: names.count)
                    for name in names {
                        group.addTask {
                            let statements = insert(name, refused: name.hasPrefix("bad"))
                            let body: @Sendable (any SQLExecutor) async throws -> Void = {
                                try await $0.execute(statements)
                            }
                            _ =
                                try? await replayable
                                ? database.withReplayableTransaction(body) : database.withTransaction(body)
                        }
                    }
                    try await holder.value
                    try await group.waitForAll()
                }
            }
            let counts = try await database.withConnection {
                try await $0.query(
                    "SELECT id, count(*) FROM idx_string WHERE type = 'Patient' GROUP BY id ORDER BY id", [])
            }
            let found = Dictionary(
                uniqueKeysWithValues: counts.compactMap { row in row.first?.string.map { ($0, row[1].int ?? -1) } })
            #expect(found == ["ok1-false": 8, "ok2-false": 8, "ok1-true": 8, "ok2-true": 8])
        }
    }

    /// Index rows are worked out before the time is known: no indexed path may read it.
    @Test func noIndexedPathReadsTheServersStamp() {
        let registry = SearchParameterRegistry.r4
        for type in fhirResourceTypeNames {
            for parameter in registry.indexedParameters(of: type) {
                for path in parameter.paths {
                    let keys = path.steps.map(\.key)
                    #expect(
                        keys.first != "id"
                            && !(keys.first == "meta"
                                && ["lastUpdated", "versionId"].contains(keys.dropFirst().first)),
                        "\(type).\(parameter.code) reads \(keys)")
                }
            }
        }
    }
}

/// A value shared by the tasks of a test.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func with<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
