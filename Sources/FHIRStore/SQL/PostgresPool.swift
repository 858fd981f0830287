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
        /// The `statement_timeout` (ms, 0 for none) each pooled connection was last given.
        let appliedTimeLimits = NIOLockedValueBox<[PostgresConnection.ID: Int64]>([:])
        /// The prepared statements that have run on each pooled connection.
        let preparedOn = NIOLockedValueBox<[PreparedKey: PreparationState]>([:])
        private let load = NIOLockedValueBox(Load())

        struct Load {
            var waiting = 0
            var leased = 0
            /// The last grant or return of a lease, or the start of a wait on an idle pool.
            var since = ContinuousClock.now
        }

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

        /// Runs `body` on a leased connection; a lease that fails throws ``NotGranted``.
        func withLease<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
            load.withLockedValue { load in
                if load.waiting == 0 && load.leased == 0 { load.since = .now }
                load.waiting += 1
            }
            var granted = false
            do {
                return try await client.withConnection { connection in
                    granted = true
                    load.withLockedValue { load in
                        load.waiting -= 1
                        load.leased += 1
                        load.since = .now
                    }
                    defer {
                        load.withLockedValue { load in
                            load.leased -= 1
                            load.since = .now
                        }
                    }
                    return try await body(connection)
                }
            } catch {
                guard !granted else { throw error }
                load.withLockedValue { $0.waiting -= 1 }
                throw NotGranted(underlying: error)
            }
        }

        /// Whether leases have waited for `duration` with none granted or returned meanwhile, and
        /// how many connections are leased (none: the pool cannot reach its database; some: it
        /// is busy, or they hang on a database that is gone, which only a probe can tell).
        func waitedWithoutProgress(for duration: Duration) -> (waited: Bool, leased: Int) {
            load.withLockedValue { ($0.waiting > 0 && $0.since + duration <= .now, $0.leased) }
        }

        /// Counts the wait again from now: a probe found the database answering.
        func restartWait() { load.withLockedValue { $0.since = .now } }
    }
}
