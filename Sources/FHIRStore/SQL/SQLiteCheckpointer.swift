import Dispatch
import NIOConcurrencyHelpers
import SQLiteNIO
import VaporCSQLite

/// Checkpoints the writer's WAL on a thread of its own. SQLite's auto-checkpoint runs inside
/// the COMMIT that takes the WAL past its threshold, on the single writer, so every write
/// queued behind that commit waited for it: 5% of a Synthea ingest's CPU, all of it in the
/// writer's turn (`perf`, BENCHMARKS.md "Synthea ingest"). Here the writer's WAL hook only
/// notes the size and wakes this checkpointer, which copies the frames on a connection of its
/// own while the writer goes on (a PASSIVE checkpoint takes no lock a writer needs).
///
/// The WAL stays bounded: should the background checkpoints fall behind (a reader holding an
/// old snapshot, a slow disk), the writer checkpoints inline again once the WAL reaches
/// ``inlineFrames``, as SQLite would have.
final class SQLiteCheckpointer: @unchecked Sendable {
    /// WAL frames (pages) at which a background checkpoint starts: SQLite's wal_autocheckpoint
    /// as the writer had it (32 MB of 4 KiB pages).
    let thresholdFrames: Int32
    /// WAL frames at which the writer checkpoints itself.
    var inlineFrames: Int32 { thresholdFrames * 4 }

    private let connection: SQLiteConnection
    private let handle: OpaquePointer
    private let queue = DispatchQueue(label: "caduceus.sqlite.checkpoint")
    private let lock = NIOLock()
    private var pending = false
    private var installedOn: OpaquePointer?
    private var backgroundRuns = 0
    private var inlineRuns = 0

    /// Checkpoints run so far, in the background and by the writer itself.
    var runs: (background: Int, inline: Int) { lock.withLock { (backgroundRuns, inlineRuns) } }

    init(connection: SQLiteConnection, thresholdFrames: Int32 = 8192) throws {
        self.connection = connection
        handle = try StatementWatchdog(connection).handle
        self.thresholdFrames = thresholdFrames
    }

    /// Takes over `writer`'s WAL hook (and with it SQLite's auto-checkpoint, which is that
    /// hook). Nothing may set `PRAGMA wal_autocheckpoint` on the writer afterwards.
    func install(on writer: OpaquePointer) {
        installedOn = writer
        _ = sqlite_nio_sqlite3_wal_hook(
            writer,
            { context, database, _, frames in
                guard let context else { return SQLITE_OK }
                Unmanaged<SQLiteCheckpointer>.fromOpaque(context).takeUnretainedValue().walGrew(
                    to: frames, writer: database)
                return SQLITE_OK
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Called by SQLite on the writer's thread after each commit, with the WAL's size.
    private func walGrew(to frames: Int32, writer: OpaquePointer?) {
        if frames >= inlineFrames {
            _ = sqlite_nio_sqlite3_wal_checkpoint_v2(writer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            lock.withLock { inlineRuns += 1 }
            return
        }
        guard frames >= thresholdFrames else { return }
        let start = lock.withLock {
            if pending { return false }
            pending = true
            return true
        }
        guard start else { return }
        queue.async { [self] in
            _ = sqlite_nio_sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            lock.withLock {
                backgroundRuns += 1
                pending = false
            }
        }
    }

    /// Before the writer closes: gives the hook back and waits for a checkpoint under way.
    func close() async throws {
        if let installedOn { _ = sqlite_nio_sqlite3_wal_hook(installedOn, nil, nil) }
        queue.sync {}
        try await connection.close()
    }
}
