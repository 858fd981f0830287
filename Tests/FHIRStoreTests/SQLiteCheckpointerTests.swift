import Foundation
import Logging
@testable import FHIRStore
import Testing

/// The WAL is checkpointed off the writer's commit path, and stays bounded when background
/// checkpoints cannot finish.
@Suite struct SQLiteCheckpointerTests {
    func withDatabase(frames: Int32, _ body: (SQLiteDatabase, String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/test.sqlite"
        let database = try await SQLiteDatabase.open(
            path: path, readers: 2, checkpointFrames: frames, logger: Logger(label: "test"))
        do {
            try await database.withTransaction {
                try await $0.query("CREATE TABLE rows (n INTEGER PRIMARY KEY, body TEXT NOT NULL)", [])
            }
            try await body(database, path)
        } catch {
            try? await database.close()
            throw error
        }
        try await database.close()
    }

    /// `count` commits of one 3 KB row each (a frame or more each).
    func write(_ database: SQLiteDatabase, _ range: Range<Int>) async throws {
        let body = String(repeating: "x", count: 3000)
        for n in range {
            try await database.withTransaction {
                try await $0.query("INSERT INTO rows (n, body) VALUES (?, ?)", [.integer(Int64(n)), .text(body)])
            }
        }
    }

    func walFrames(_ path: String) throws -> Int {
        let size = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        return max(0, size - 32) / (4096 + 24)
    }

    @Test func theWALIsCheckpointedInTheBackground() async throws {
        try await withDatabase(frames: 32) { database, path in
            let checkpointer = try #require(database.checkpointer)
            try await write(database, 0..<400)
            let deadline = ContinuousClock.now + .seconds(10)
            while checkpointer.runs.background == 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(checkpointer.runs.background >= 1)
            // The WAL restarts from its start once everything in it is in the database: a writer
            // that outpaces the background checkpoints catches up itself at four times the
            // threshold, so the file never holds much more than that.
            #expect(try walFrames(path) < Int(checkpointer.inlineFrames) + 8)
            let rows = try await database.withConnection { try await $0.query("SELECT count(*) FROM rows", []) }
            #expect(rows.first?.first == .integer(400))
        }
    }

    @Test func theWriterCheckpointsItselfWhenTheBackgroundFallsBehind() async throws {
        try await withDatabase(frames: 32) { database, _ in
            let checkpointer = try #require(database.checkpointer)
            try await write(database, 0..<10)
            // A reader holding its snapshot keeps every checkpoint from reaching the WAL's end,
            // so the WAL grows past four times the threshold and the writer checkpoints inline.
            let (held, signal) = AsyncStream<Void>.makeStream()
            let (release, releaseSignal) = AsyncStream<Void>.makeStream()
            let reader = Task {
                try await database.withConnection { connection in
                    _ = try await connection.query("BEGIN", [])
                    _ = try await connection.query("SELECT count(*) FROM rows", [])
                    signal.yield()
                    for await _ in release { break }
                    _ = try await connection.query("COMMIT", [])
                }
            }
            for await _ in held { break }
            try await write(database, 10..<200)
            releaseSignal.yield()
            try await reader.value
            #expect(checkpointer.runs.inline >= 1)
            let rows = try await database.withConnection { try await $0.query("SELECT count(*) FROM rows", []) }
            #expect(rows.first?.first == .integer(200))
        }
    }
}
