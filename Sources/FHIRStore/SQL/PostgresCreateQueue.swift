import NIOConcurrencyHelpers
import PostgresNIO

/// Groups the creates of concurrent requests on PostgreSQL into one ``PostgresCreateStatement``.
///
/// Why: with the index rows bound as arrays, a create is one round trip, and what is left of
/// its cost is per statement, not per row: the protocol's messages, PostgreSQL's transaction
/// and executor start, the commit, and the server's hops between its task, the connection's
/// event loop and back. At most ``maximumRunning`` statements run at once; a create that
/// arrives while they do waits and goes with the next one, with every create that waited
/// beside it (up to ``maximumBatch``). A create that finds a statement free runs at once, alone:
/// a lone client waits for no one.
///
/// Who runs a statement: the request that found one free runs it with whatever waited; when it
/// is done it hands the turn to the oldest waiting request, which runs the next statement. No
/// task of its own, so nothing outlives the requests.
///
/// What a request gets: its resources committed together with the others of its statement, or
/// an error. When PostgreSQL refuses a grouped statement (a constraint, a value), each create
/// of it runs again alone, so that a request gets its own answer and not another's; an error of
/// the connection or the time limit goes to every request of the statement, since PostgreSQL
/// may or may not have committed it.
final class PostgresCreateQueue: Sendable {
    /// How many grouped statements run at once: two keep PostgreSQL busy while the server
    /// prepares the next on the other core.
    let maximumRunning: Int
    /// How many creates one statement takes at most.
    let maximumBatch: Int
    /// How many bytes of bodies one statement takes at most, past the first: large resources go
    /// on their own rather than make one message of many megabytes.
    let maximumBytes: Int

    private struct Waiting {
        var resource: PostgresCreateStatement.Resource
        var continuation: CheckedContinuation<Turn, any Error>
    }

    /// What a waiting request is woken with.
    private enum Turn {
        /// Its create was committed with another request's statement.
        case written
        /// It runs the next statement itself, with the creates that wait then.
        case run
    }

    private struct State {
        var running = 0
        var waiting: [Waiting] = []
        var largestStatement = 0
    }

    private let state = NIOLockedValueBox(State())

    /// The most creates one statement has taken so far.
    var largestStatement: Int { state.withLockedValue { $0.largestStatement } }

    init(maximumRunning: Int = 2, maximumBatch: Int = 32, maximumBytes: Int = 4 << 20) {
        self.maximumRunning = max(1, maximumRunning)
        self.maximumBatch = max(1, maximumBatch)
        self.maximumBytes = maximumBytes
    }

    /// Writes `resource` on `database`, alone or with the creates of other requests.
    func create(_ resource: PostgresCreateStatement.Resource, on database: PostgresDatabase) async throws {
        let runsNow = state.withLockedValue { state -> Bool in
            guard state.running < maximumRunning else { return false }
            state.running += 1
            return true
        }
        if !runsNow {
            let turn = try await withCheckedThrowingContinuation { continuation in
                // A statement may have ended between the check and here: then run at once.
                let runsNow = state.withLockedValue { state -> Bool in
                    if state.running < maximumRunning {
                        state.running += 1
                        return true
                    }
                    state.waiting.append(Waiting(resource: resource, continuation: continuation))
                    return false
                }
                if runsNow { continuation.resume(returning: .run) }
            }
            guard case .run = turn else { return }
        }
        // This request's turn: its own create and whatever waits, in one statement.
        let others = state.withLockedValue { state -> [Waiting] in
            var bytes = resource.body.utf8.count
            var count = 0
            for other in state.waiting.prefix(maximumBatch - 1) {
                bytes += other.resource.body.utf8.count
                guard bytes <= maximumBytes else { break }
                count += 1
            }
            let taken = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            state.largestStatement = max(state.largestStatement, taken.count + 1)
            return taken
        }
        var ownError: (any Error)?
        do {
            let resources = [resource] + others.map(\.resource)
            if others.isEmpty {
                try await run(resources, on: database, others: others)
            } else {
                // Not cancelled with this request (a client that hung up): the others' creates
                // ride on it. An unstructured task keeps the task locals (the time limit).
                try await Task { try await self.run(resources, on: database, others: others) }.value
            }
        } catch {
            ownError = error
        }
        handOver()
        if let ownError { throw ownError }
    }

    /// Runs the statement of `resources` (this request's first, then `others`') and answers
    /// `others`.
    private func run(
        _ resources: [PostgresCreateStatement.Resource], on database: PostgresDatabase, others: [Waiting]
    ) async throws {
        func write(_ resources: [PostgresCreateStatement.Resource]) async throws {
            try await database.execute(prepared: PostgresCreateStatement(resources: resources))
        }
        do {
            try await write(resources)
        } catch  where !others.isEmpty && Self.refusedByPostgres(error) {
            // Rolled back as a whole: each create again alone, each request with its own answer.
            // An error that is not a refusal (the database gone, the time limit) ends the
            // retries: the creates not yet tried get it without waiting for it again each.
            var stopped: (any Error)?
            for other in others {
                do {
                    if let stopped { throw stopped }
                    try await write([other.resource])
                    other.continuation.resume(returning: .written)
                } catch {
                    if !Self.refusedByPostgres(error) { stopped = error }
                    other.continuation.resume(throwing: error)
                }
            }
            if let stopped { throw stopped }
            try await write([resources[0]])
            return
        } catch {
            for other in others { other.continuation.resume(throwing: error) }
            throw error
        }
        for other in others { other.continuation.resume(returning: .written) }
    }

    /// Gives the turn to the oldest waiting request, or frees the place.
    private func handOver() {
        let next = state.withLockedValue { state -> Waiting? in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: .run)
    }

    /// Whether PostgreSQL refused the statement itself (a constraint or a value), so that it
    /// committed nothing and each create may run again alone. Not a time limit: each alone
    /// could take as long again.
    static func refusedByPostgres(_ error: any Error) -> Bool {
        if error is SQLUniqueViolation { return true }
        guard let state = PostgresDatabase.sqlState(of: error) else { return false }
        return state != "57014"
    }
}
