import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs the server until SIGTERM or SIGINT, then stops it within a bound. Hummingbird's own
/// stop waits for every request under way without limit: one slow upload or one request
/// that computes for minutes held a stopped server for as long (attacker finding A4), past
/// any orchestrator's grace period. Here the requests get ``grace`` to finish, are then
/// cancelled (their connections' input is closed, so an upload ends), and
/// ``cancellationGrace`` after that the process exits, once the audit events already queued
/// are written. A write is acknowledged only after its commit, so exiting loses none: an
/// unfinished transaction is rolled back, as after a crash.
struct ServerShutdown {
    /// How long requests may run on after the signal.
    let grace: Duration
    let logger: Logger
    /// Between cancelling the requests and exiting whatever still runs.
    static let cancellationGrace: Duration = .seconds(5)
    /// At most this long for the queued audit events before a forced exit.
    static let auditFlushLimit: Duration = .seconds(5)

    /// Runs `app`; `flushAudit` writes the audit events queued, before a forced exit.
    func run(_ app: some Service, flushAudit: @escaping @Sendable () async -> Void) async throws {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = grace
        let group = ServiceGroup(configuration: configuration)
        let (grace, logger) = (grace, logger)
        let deadline = Task {
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                logger.info("Received \(signal): stopping; requests under way have \(grace) to finish")
                try? await Task.sleep(for: grace + Self.cancellationGrace)
                guard !Task.isCancelled else { return }
                logger.error(
                    "Requests still running \(grace + Self.cancellationGrace) after \(signal): exiting without them")
                await withTaskGroup(of: Void.self) { flush in
                    flush.addTask { await flushAudit() }
                    flush.addTask { try? await Task.sleep(for: Self.auditFlushLimit) }
                    await flush.next()
                    flush.cancelAll()
                }
                exit(1)
            }
        }
        defer { deadline.cancel() }
        try await group.run()
    }
}
