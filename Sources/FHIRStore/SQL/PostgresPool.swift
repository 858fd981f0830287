import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

extension PostgresDatabase {
    /// The connections to one host (a postgres-nio pool), what the store remembers of each
    /// connection, and how many leases wait and run, so that a pool that can reach no database
    /// is told from one that is busy.
    final class Pool: Sendable {
        let endpoint: PostgresURL.Endpoint
        let client: PostgresClient
        let runTask: Task<Void, Never>
        /// The `statement_timeout` (ms, 0 for none) each pooled connection was last given; a
        /// connection without an entry has not had its session settings yet.
        let appliedTimeLimits = NIOLockedValueBox<[PostgresConnection.ID: Int64]>([:])
        /// The prepared statements that have run on each pooled connection.
        let preparedOn = NIOLockedValueBox<[PreparedKey: PreparationState]>([:])
        private let load = NIOLockedValueBox(Load())

        struct Load {
            var waiting = 0
            /// The leases under way: when each was granted, and its connection.
            var leases: [Int: Lease] = [:]
            var nextLease = 0
            /// The last grant or return of a lease, or the start of a wait on an idle pool.
            var since = ContinuousClock.now
            /// The last time a probe of this pool's host did not find it gone.
            var probedAt = ContinuousClock.now
            /// Set by ``closeLeases()``: a lease granted after it is abandoned at once.
            var closed = false
        }

        struct Lease {
            var granted: ContinuousClock.Instant
            var connection: PostgresConnection
            /// Answers the lease's caller with ``Abandoned`` at once, whatever its statement does.
            var abandon: @Sendable () -> Void
        }

        /// Thrown by ``withLease(_:)`` when the pool was shut down under the lease and its
        /// connection closed (``closeLeases()``): the body's statements may or may not have run.
        struct Abandoned: Error {}

        /// Thrown by ``withLease(_:)`` when the pool gave no connection: nothing of the body ran.
        struct NotGranted: Error {
            var underlying: any Error
        }

        init(endpoint: PostgresURL.Endpoint, url: PostgresURL, logger: Logger) {
            self.endpoint = endpoint
            var configuration = PostgresClient.Configuration(
                host: endpoint.host, port: endpoint.port, username: url.user ?? "postgres",
                password: url.password, database: url.database, tls: .disable)
            configuration.options.maximumConnections = 8
            configuration.options.connectTimeout = .seconds(2)
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            self.client = client
            runTask = Task { await client.run() }
        }

        /// Runs `body` on a leased connection; a lease that fails throws ``NotGranted``, one the
        /// pool abandons ``Abandoned``.
        func withLease<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws
            -> T
        {
            load.withLockedValue { load in
                if load.waiting == 0 && load.leases.isEmpty { load.since = .now }
                load.waiting += 1
            }
            var granted = false
            do {
                return try await client.withConnection { connection in
                    granted = true
                    return try await abandonable(on: connection, body)
                }
            } catch {
                guard !granted else { throw error }
                load.withLockedValue { $0.waiting -= 1 }
                throw NotGranted(underlying: error)
            }
        }

        /// Runs `body` in a task of its own, so that ``closeLeases()`` can answer the caller
        /// even when a statement on a connection to a host that is gone neither fails nor returns
        /// (postgres-nio waited on such a statement for ever after `docker stop` of the primary,
        /// its connection closed). The caller's cancellation is passed on.
        private func abandonable<T: Sendable>(
            on connection: PostgresConnection, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
        ) async throws -> T {
            let runner = NIOLockedValueBox<Task<Void, Never>?>(nil)
            var lease = 0
            defer {
                load.withLockedValue { load in
                    load.leases[lease] = nil
                    load.since = .now
                }
            }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                    let answer = OneAnswer(continuation)
                    let abandon: @Sendable () -> Void = { answer.resume(with: .failure(Abandoned())) }
                    let closed = load.withLockedValue { load in
                        load.waiting -= 1
                        load.since = .now
                        load.nextLease += 1
                        lease = load.nextLease
                        load.leases[lease] = Lease(granted: load.since, connection: connection, abandon: abandon)
                        return load.closed
                    }
                    // Granted as the pool was being shut down, after its leases were abandoned.
                    if closed { abandon() }
                    let task = Task {
                        do {
                            answer.resume(with: .success(try await body(connection)))
                        } catch {
                            answer.resume(with: .failure(error))
                        }
                    }
                    runner.withLockedValue { $0 = task }
                    if Task.isCancelled { task.cancel() }
                }
            } onCancel: {
                runner.withLockedValue { $0 }?.cancel()
            }
        }

        /// Whether leases have waited for `duration` with none granted or returned meanwhile, and
        /// how many connections are leased (none: the pool cannot reach its database; some: it
        /// is busy, or they hang on a database that is gone, which only a probe can tell).
        func waitedWithoutProgress(for duration: Duration) -> (waited: Bool, leased: Int) {
            load.withLockedValue { ($0.waiting > 0 && $0.since + duration <= .now, $0.leases.count) }
        }

        /// How long the oldest lease under way has been held, and how long ago a probe last did
        /// not find the host gone; `nil` with no lease.
        func oldestLease() -> (held: Duration, sinceProbed: Duration)? {
            load.withLockedValue { load in
                guard let oldest = load.leases.values.map(\.granted).min() else { return nil }
                let now = ContinuousClock.now
                return (now - oldest, now - load.probedAt)
            }
        }

        /// Counts the wait again from now: a probe found the database answering.
        func restartWait() {
            load.withLockedValue { load in
                load.since = .now
                load.probedAt = .now
            }
        }

        /// Notes a probe that found the host slow but not gone: the leases are checked again
        /// later, while waiting requests are still counted from when they began.
        func probed() { load.withLockedValue { $0.probedAt = .now } }

        /// Closes the connections of the leases under way, and says how long each was held:
        /// their statements fail as a lost connection. Only for a pool already shut down
        /// (``PostgresDatabase/replace(_:with:)``).
        func closeLeases() -> [Duration] {
            let now = ContinuousClock.now
            let leases = load.withLockedValue { load in
                load.closed = true
                return load.leases.values
            }
            for lease in leases {
                lease.abandon()
                Task { try? await lease.connection.close() }
            }
            return leases.map { now - $0.granted }
        }
    }

    /// A continuation resumed by whichever comes first: the lease's body or its abandonment.
    final class OneAnswer<T: Sendable>: Sendable {
        private let continuation: NIOLockedValueBox<CheckedContinuation<T, any Error>?>

        init(_ continuation: CheckedContinuation<T, any Error>) {
            self.continuation = NIOLockedValueBox(continuation)
        }

        func resume(with result: Result<T, any Error>) {
            let waiting = continuation.withLockedValue { continuation in
                defer { continuation = nil }
                return continuation
            }
            waiting?.resume(with: result)
        }
    }
}
