import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Raised when the database cannot be reached: no connection within the wait (nothing of
/// the request ran), or the connection was lost while the request ran (a write in it may or
/// may not have been committed). The HTTP layer answers 503 `transient`.
public struct SQLDatabaseUnavailable: Error, CustomStringConvertible {
    /// Whether some of the request's statements may have run (and a write committed).
    public var outcomeUnknown: Bool
    /// What a client is told: no host, no port.
    public var detail: String
    /// The database server, for the log.
    public var server: String

    public init(outcomeUnknown: Bool, detail: String, server: String) {
        self.outcomeUnknown = outcomeUnknown
        self.detail = detail
        self.server = server
    }

    public var description: String { "\(detail) (\(server))" }
}

/// Where the search for the primary stands.
struct FailoverState {
    var closed = false
    var search: Task<Void, Never>?
    /// The newest timeline a primary of this store has been seen on: a host on an older one (an
    /// old primary started again after a promotion) is never written to.
    var newestTimeline = 0
}

/// Leases that fail instead of waiting for a database that is gone, and finding the primary
/// among a URL's hosts.
extension PostgresDatabase {
    /// Runs `body` on a connection of the current primary's pool, under the task's time limit.
    /// A lease the pool does not grant (its waiting leases failed by ``failStalledLeases()``, or
    /// the pool replaced) and a connection lost under `body` fail with
    /// ``SQLDatabaseUnavailable``, and start a search for the primary.
    func leased<T: Sendable>(_ body: @escaping @Sendable (Connection) async throws -> T) async throws -> T {
        var retried = false
        while true {
            let pool = active.withLockedValue { $0 }
            do {
                return try await pool.withLease { [self] connection in
                    let executor = Connection(connection: connection, logger: logger, preparedOn: pool.preparedOn)
                    try await applySessionSettings(executor, pool: pool)
                    return try await body(executor)
                }
            } catch let error as Pool.NotGranted {
                if Task.isCancelled { throw CancellationError() }
                // The store moved to a new primary under this lease: once more there.
                if !retried && active.withLockedValue({ $0.endpoint != pool.endpoint }) {
                    retried = true
                    continue
                }
                logger.debug("No PostgreSQL connection: \(String(reflecting: error.underlying))")
                searchForPrimary()
                throw SQLDatabaseUnavailable(
                    outcomeUnknown: false,
                    detail:
                        "The database gave this server no connection for \(connectionWait);"
                        + " nothing of the request was carried out; retry later",
                    server: pool.endpoint.description)
            } catch is Pool.Abandoned {
                // The pool was replaced under this lease, its connection closed (a host gone).
                searchForPrimary()
                throw Self.lost(at: pool.endpoint)
            } catch {
                if Task.isCancelled { throw error }
                guard let lost = Self.connectionLost(error, endpoint: pool.endpoint) else { throw error }
                searchForPrimary()
                throw lost
            }
        }
    }

    /// A connection to `endpoint` lost under a request.
    static func lost(at endpoint: PostgresURL.Endpoint) -> SQLDatabaseUnavailable {
        SQLDatabaseUnavailable(
            outcomeUnknown: true,
            detail:
                "The connection to the database was lost while this request ran; a write in it may or may not"
                + " have been committed: read it back before retrying",
            server: endpoint.description)
    }

    /// `error` as ``SQLDatabaseUnavailable`` when it says the server is gone, shutting down, or
    /// a standby (a write refused as read-only) while the request ran; `nil` for any other.
    static func connectionLost(_ error: any Error, endpoint: PostgresURL.Endpoint) -> SQLDatabaseUnavailable? {
        let lost = lost(at: endpoint)
        guard let error = error as? PSQLError else { return nil }
        switch error.code {
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown:
            return lost
        default: break
        }
        guard let state = error.serverInfo?[.sqlState] else { return nil }
        // 08: connection exceptions; 57P01-57P03: the server is shutting down or starting up;
        // 25006: a write on a standby (the primary changed under this connection).
        if state.hasPrefix("08") || ["57P01", "57P02", "57P03", "25006"].contains(state) { return lost }
        return nil
    }

    /// Called four times a second. The active pool is replaced by a fresh one to the same host
    /// when leases have waited ``connectionWait`` with none granted or returned, or a lease has
    /// been held for ``leaseCheck`` with no probe finding the host answering since, unless a
    /// probe now finds the host answering as a primary (a busy pool: waited for). Replacing fails
    /// the waiting leases (postgres-nio waits for ever while it cannot connect, and a lease held
    /// across a nested one would never return), closes the leased connections, and starts the
    /// search for the primary.
    func failStalledLeases() async {
        let pool = active.withLockedValue { $0 }
        let (waited, leased) = pool.waitedWithoutProgress(for: connectionWait)
        // A statement on a connection to a primary that stopped can neither fail nor return
        // (test_cluster.py: a lease held 5 s after `docker stop`, no other request waiting): its
        // lease is the only sign.
        let oldest = pool.oldestLease()
        let hung = !waited && oldest.map { $0.held >= leaseCheck && $0.sinceProbed >= leaseCheck } == true
        guard waited || hung else { return }
        var found = ""
        if leased > 0 {
            let probe = await Self.probe(pool.endpoint, url: url)
            switch probe {
            case .primary, .full:
                // Answering as a primary, or refusing a connection only because every one of its
                // connections is taken: a busy server.
                pool.restartWait()
                return
            case .silent where hung:
                // Slow to answer a probe while a long statement runs: perhaps a loaded server. Not
                // taken as gone here, but waiting requests keep their count, so that a host that
                // went silent is given up by the wait (below) once requests have waited for it.
                pool.probed()
                return
            case .standby, .unreachable, .silent:
                // Silent for 2 s while requests wait counts as gone: treated as busy, a replica whose
                // leased connection never came back after the primary stopped kept its requests
                // waiting 20 s (test_cluster.py, 2 runs of 6).
                found = "; a probe found it \(probe)"
            }
        }
        let what =
            hung
            ? "PostgreSQL at \(pool.endpoint) has had a lease for \(oldest?.held ?? .zero)\(found)"
            : "PostgreSQL at \(pool.endpoint) gave no connection for \(connectionWait)\(found)"
        logger.warning("\(what): replacing its pool, failing the requests on it")
        replace(pool, with: pool.endpoint)
        searchForPrimary()
    }

    /// How long a lease is held before the watchdog asks whether its host is still there.
    var leaseCheck: Duration { min(connectionWait, .seconds(2)) }

    /// Makes a pool to `endpoint` the active one if `old` still is, and shuts `old` down: its
    /// waiting leases fail, and its leased connections are closed, so that statements under
    /// way on them fail as a lost connection (503) instead of waiting on a host that is gone
    /// or no longer the primary for as long as TCP takes to notice.
    private func replace(_ old: Pool, with endpoint: PostgresURL.Endpoint) {
        let replaced = failover.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            return active.withLockedValue { active in
                guard active === old else { return false }
                active = Pool(endpoint: endpoint, url: url, logger: logger)
                return true
            }
        }
        guard replaced else { return }
        old.runTask.cancel()
        // Closed only once the pool is shut down: closing a leased connection of a running pool
        // left its other leases waiting for ever.
        let held = old.closeLeases()
        if let longest = held.max() {
            logger.warning(
                "Closed \(held.count) connections leased to \(old.endpoint) (the longest held \(longest))")
        }
    }

    /// Starts looking for the primary among the URL's hosts, unless one host is all there is, a
    /// search is under way or the store is closed. It probes every host once a second for up to
    /// five minutes and moves the store to the primary it finds if that is another host.
    func searchForPrimary() {
        guard url.endpoints.count > 1 else { return }
        failover.withLockedValue { state in
            guard !state.closed, state.search == nil else { return }
            state.search = Task { [self] in
                defer { failover.withLockedValue { $0.search = nil } }
                let search = await Self.findPrimary(url: url, every: .seconds(1), for: .seconds(300)) { probes in
                    let current = active.withLockedValue { $0.endpoint }
                    let newest = failover.withLockedValue { $0.newestTimeline }
                    return Self.choosePrimary(probes, current: current, newestSeen: newest)
                }
                guard let (primary, timeline) = search.primary else {
                    guard !Task.isCancelled else { return }
                    logger.error(
                        "No PostgreSQL primary for five minutes: \(Self.describe(search.probes)); searching again on the next failure"
                    )
                    return
                }
                failover.withLockedValue { $0.newestTimeline = max($0.newestTimeline, timeline) }
                let pool = active.withLockedValue { $0 }
                if primary != pool.endpoint {
                    logger.warning("PostgreSQL primary is now \(primary), timeline \(timeline) (was \(pool.endpoint))")
                    replace(pool, with: primary)
                }
            }
        }
    }

    /// Probes every host of `url` each `interval` until `choose` picks a primary among what they
    /// answered, or `duration` has passed (or the task is cancelled): the primary and its
    /// timeline, or none and the last probes, which say why. At start (``connect(url:connectionWait:)``)
    /// and when the primary is lost (``searchForPrimary()``).
    static func findPrimary(
        url: PostgresURL, every interval: Duration, for duration: Duration,
        choose: ([(PostgresURL.Endpoint, Probe)]) -> (PostgresURL.Endpoint, Int)?
    ) async -> (primary: (PostgresURL.Endpoint, Int)?, probes: [(PostgresURL.Endpoint, Probe)]) {
        let giveUp = ContinuousClock.now + duration
        while true {
            let probes = await probe(url.endpoints, url: url)
            if let primary = choose(probes) { return (primary, probes) }
            guard ContinuousClock.now < giveUp, !Task.isCancelled else { return (nil, probes) }
            try? await Task.sleep(for: interval)
        }
    }

    /// What each host answered, in a line.
    static func describe(_ probes: [(PostgresURL.Endpoint, Probe)]) -> String {
        probes.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
    }

    /// What a probe of one host found.
    enum Probe: CustomStringConvertible {
        case primary(timeline: Int)
        case standby
        /// It refused the connection or failed it (the reason in a line).
        case unreachable(String)
        /// No answer within two seconds.
        case silent
        /// It refused the connection because it has as many as it takes (SQLSTATE 53300).
        case full

        var description: String {
            switch self {
            case .primary(let timeline): return "primary on timeline \(timeline)"
            case .standby: return "standby (in recovery)"
            case .unreachable(let reason): return reason
            case .silent: return "no answer within 2 s"
            case .full: return "too many connections"
            }
        }
    }

    /// The host to write to: among the primaries, the one on the newest timeline (a promoted
    /// standby is on a newer one than the primary it replaced, should that come back), `current`
    /// on a tie, else the first listed; none on a timeline older than `newestSeen`.
    static func choosePrimary(
        _ probes: [(PostgresURL.Endpoint, Probe)], current: PostgresURL.Endpoint?, newestSeen: Int
    )
        -> (PostgresURL.Endpoint, Int)?
    {
        var best: (PostgresURL.Endpoint, Int)?
        for (endpoint, probe) in probes {
            guard case .primary(let timeline) = probe, timeline >= newestSeen else { continue }
            if best == nil || timeline > best!.1 || (timeline == best!.1 && endpoint == current) {
                best = (endpoint, timeline)
            }
        }
        return best
    }

    /// Every host probed at once, each for at most two seconds.
    static func probe(_ endpoints: [PostgresURL.Endpoint], url: PostgresURL) async -> [(PostgresURL.Endpoint, Probe)] {
        await withTaskGroup(of: (Int, Probe).self) { group in
            for (index, endpoint) in endpoints.enumerated() {
                group.addTask { (index, await probe(endpoint, url: url)) }
            }
            var probes = endpoints.map { ($0, Probe.unreachable("not probed")) }
            for await (index, probe) in group { probes[index].1 = probe }
            return probes
        }
    }

    /// Whether `endpoint` is a primary, and on which timeline (from its current WAL file's
    /// name), a standby, or does not answer within two seconds.
    static func probe(_ endpoint: PostgresURL.Endpoint, url: PostgresURL) async -> Probe {
        var configuration = PostgresConnection.Configuration(
            host: endpoint.host, port: endpoint.port, username: url.user ?? "postgres", password: url.password,
            database: url.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(2)
        let settings = configuration
        let quiet = Logger(label: "caduceus.postgres.probe", factory: { _ in SwiftLogNoOpLogHandler() })
        // Raced against a timer that closes the connection: a host that accepts it and then says
        // nothing must neither hold the search up nor keep a socket.
        return await withCheckedContinuation { continuation in
            let state = NIOLockedValueBox<(answered: Bool, connection: PostgresConnection?)>((false, nil))
            let answer: @Sendable (Probe) -> Void = { probe in
                let connection = state.withLockedValue { state -> PostgresConnection?? in
                    guard !state.answered else { return nil }
                    state.answered = true
                    return .some(state.connection)
                }
                guard let connection else { return }
                if let connection { Task { try? await connection.close() } }
                continuation.resume(returning: probe)
            }
            let timer = Task {
                try? await Task.sleep(for: .seconds(2))
                answer(.silent)
            }
            Task {
                let connection: PostgresConnection
                do {
                    connection = try await PostgresConnection.connect(configuration: settings, id: 0, logger: quiet)
                } catch {
                    timer.cancel()
                    let full = (error as? PSQLError)?.serverInfo?[.sqlState] == "53300"
                    return answer(full ? .full : .unreachable(Self.reason(error)))
                }
                let late = state.withLockedValue { state in
                    state.connection = connection
                    return state.answered
                }
                if late {
                    try? await connection.close()
                    return
                }
                let query: PostgresQuery = """
                    SELECT CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END
                    """
                let probe: Probe
                do {
                    let rows = try await connection.query(query, logger: quiet).collect()
                    let name = try rows.first?.decode(String?.self) ?? nil
                    if let name {
                        probe =
                            Int(name, radix: 16).map { .primary(timeline: $0) } ?? .unreachable("timeline '\(name)'")
                    } else {
                        probe = .standby
                    }
                } catch {
                    probe = .unreachable(Self.reason(error))
                }
                timer.cancel()
                answer(probe)
            }
        }
    }

    /// A connection error in a line: PostgreSQL's message when it sent one (a wrong password, a
    /// missing database), else the error's type.
    static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            return error.serverInfo?[.message] ?? "\(error.code)"
        }
        return "\(type(of: error))"
    }
}
