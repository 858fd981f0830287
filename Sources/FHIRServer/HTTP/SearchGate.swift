import FHIR

/// Bounds how many searches run at once, server-wide. The database has few reader connections
/// (SQLite 2, PostgreSQL a pool of 8); without a bound, every costly search a client sends
/// queues on them, and reads of everyone else wait behind the queue. Past the limit a search
/// waits its turn (first come, first served) for at most ``maximumWait``, then answers 503
/// `throttled`.
public final class SearchGate: Sendable {
    /// The most searches running at once.
    public let limit: Int
    /// How long a search waits for its turn before it is refused.
    public let maximumWait: Duration
    private let permits = Permits()

    /// Twice SQLite's reader connections: a search can run while the next waits for a connection.
    public static let defaultLimit = 4

    public init(limit: Int = SearchGate.defaultLimit, maximumWait: Duration = .seconds(10)) {
        self.limit = max(1, limit)
        self.maximumWait = maximumWait
    }

    /// Runs `body` once fewer than ``limit`` searches run; throws 503 `throttled` after
    /// waiting ``maximumWait`` for that.
    public func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard await permits.acquire(limit: limit, wait: maximumWait) else {
            throw FHIRError(
                status: 503, code: "throttled",
                "The server is running its limit of \(limit) searches at once and this one waited \(maximumWait) for its turn;"
                    + " retry later (caduceus serve --max-concurrent-searches)")
        }
        do {
            let result = try await body()
            await permits.release()
            return result
        } catch {
            await permits.release()
            throw error
        }
    }

    /// How many searches wait for their turn now.
    public var waiting: Int {
        get async { await permits.waiting }
    }
}

/// The running count and the queue of waiters; a released permit passes to the oldest waiter.
private actor Permits {
    private var running = 0
    private var waiters: [(id: UInt64, turn: CheckedContinuation<Bool, Never>)] = []
    private var nextID: UInt64 = 0

    var waiting: Int { waiters.count }

    func acquire(limit: Int, wait: Duration) async -> Bool {
        if running < limit, waiters.isEmpty {
            running += 1
            return true
        }
        let id = nextID
        nextID += 1
        let timer = Task {
            try? await Task.sleep(for: wait)
            self.expire(id)
        }
        let admitted = await withCheckedContinuation { waiters.append((id, $0)) }
        timer.cancel()
        return admitted
    }

    func release() {
        if waiters.isEmpty {
            running -= 1
        } else {
            waiters.removeFirst().turn.resume(returning: true)  // the permit passes on
        }
    }

    private func expire(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).turn.resume(returning: false)
    }
}
