import FHIR
import FHIRStore

/// A transaction's creates on every core: each entry's pure work (reference rewriting,
/// validation, access checks, JSON text, index rows) is done in chunks on other
/// tasks, ahead of the single writer, which writes the entries one by one in processing order.
/// What the client sees is what entries run one at a time give: the first failure in that
/// order is what is thrown (and the whole transaction rolls back); the response budget is
/// checked between entries, the time budget before each entry is prepared or written and by a
/// timer that stops the writer's wait (a chunk of costly entries ran 48 s past a 5 s limit);
/// each entry is stamped in its turn, on the writer.
extension TransactionProcessor {
    /// Entries a chunk holds: a few milliseconds of work, small beside a Bundle.
    static let createChunkSize = 8
    /// Chunks prepared ahead of the writer: enough to keep the other cores busy, few enough to
    /// bound the memory the prepared statements hold.
    static let createChunksAhead = 4

    /// One entry made ready ahead of its turn.
    enum PreparedEntry: Sendable {
        case ready(PreparedCreate)
        /// It failed; thrown when its turn comes, as it would have been then.
        case failed(any Error)
        /// It has a conditional reference: resolved in its turn, so that the search sees the
        /// entries written before it.
        case needsDatabase
    }

    /// Creates the POST entries of `run` (in processing order, each with a planned id, none
    /// matched by its If-None-Exist), filling `results` at each entry's index. Entries are
    /// prepared while `rules` are checked; the first is written once they passed.
    func runCreates(
        _ run: ArraySlice<BundleRequest>, plannedIds: [Int: String], identities: [String: String],
        in transaction: AuthorizedTransaction, rules: BundleRulesCheck, budget: inout BundleBudget,
        results: inout [EntryResult?]
    ) async throws {
        let entries = Array(run)
        let chunkSize = Self.createChunkSize
        let chunkCount = (entries.count + chunkSize - 1) / chunkSize
        let clock = budget  // a copy: its start and limit, for the children's time checks
        try await withThrowingTaskGroup(of: (Int, [PreparedEntry]).self) { group in
            // Throws the 503 when the time is up, so that the writer stops waiting for a chunk
            // whose validation runs past it, and leaving the group cancels the preparing
            // children (validation looks at cancellation as it goes).
            if chunkCount > 0 {
                group.addTask {
                    while !clock.isOverTime { try await Task.sleep(for: min(clock.remaining, .seconds(60))) }
                    try clock.requireTime()
                    return (-1, [])
                }
            }
            var spawned = 0
            func spawnNext() {
                guard spawned < chunkCount else { return }
                let chunk = spawned
                spawned += 1
                group.addTask {
                    // Validation stops inside an entry at the time limit too (see WorkDeadline):
                    // the timer above may wait for a thread while every core prepares entries.
                    try WorkDeadline.$instant.withValue(clock.deadline) {
                        var prepared: [PreparedEntry] = []
                        for position in chunk * chunkSize..<min((chunk + 1) * chunkSize, entries.count) {
                            // An earlier entry failed, the request was cancelled or is out of time: the
                            // group's `next()` throws, and the whole transaction rolls back. (Stopping
                            // quietly would hand the writer a short chunk.)
                            try Task.checkCancellation()
                            try clock.requireTime()
                            let request = entries[position]
                            prepared.append(
                                self.prepareAhead(
                                    request, id: plannedIds[request.index]!, identities: identities, in: transaction))
                        }
                        return (chunk, prepared)
                    }
                }
            }
            for _ in 0..<Self.createChunksAhead { spawnNext() }
            var ready: [Int: [PreparedEntry]] = [:]
            for chunk in 0..<chunkCount {
                while ready[chunk] == nil, let (done, prepared) = try await group.next() {
                    ready[done] = prepared
                }
                spawnNext()
                if chunk == 0 { try await rules.passed() }
                // A child returns its whole chunk or throws; an entry left without a result would
                // still roll the transaction back (``runTransaction`` refuses a missing result).
                // The chunk's entries made ready are written together, in order (one statement
                // per table on SQLite, one on PostgreSQL); one that failed or waits for the
                // database is reached after those before it are written, as one by one.
                let chunkEntries = ready.removeValue(forKey: chunk) ?? []
                var waiting: [(request: BundleRequest, create: PreparedCreate)] = []
                func writeWaiting() async throws {
                    guard let first = waiting.first else { return }
                    try budget.requireTime()
                    let stored = try await located(first.request) {
                        try await transaction.commit(waiting.map(\.create))
                    }
                    guard stored.count == waiting.count else {
                        throw StoreError.configuration("\(waiting.count) creates written, \(stored.count) answered")
                    }
                    for (entry, written) in zip(waiting, stored) {
                        let result = EntryResult(status: "201 Created", stored: written, echoesRequest: true)
                        try budget.charge(result)
                        results[entry.request.index] = result
                    }
                    waiting = []
                }
                for (offset, prepared) in chunkEntries.enumerated() {
                    let request = entries[chunk * chunkSize + offset]
                    if case .ready(let create) = prepared, create.isMadeReady {
                        waiting.append((request, create))
                        continue
                    }
                    try await writeWaiting()
                    try budget.requireTime()
                    let stored = try await located(request) {
                        try await transaction.commit(
                            try await self.inTurn(
                                prepared, request, id: plannedIds[request.index]!, identities: identities,
                                in: transaction))
                    }
                    let result = EntryResult(status: "201 Created", stored: stored, echoesRequest: true)
                    try budget.charge(result)
                    results[request.index] = result
                }
                try await writeWaiting()
            }
            group.cancelAll()  // the time keeper
        }
    }

    /// An entry's work done ahead; its failure kept for its turn.
    func prepareAhead(
        _ request: BundleRequest, id: String, identities: [String: String], in transaction: AuthorizedTransaction
    ) -> PreparedEntry {
        guard let resource = Self.rewritten(request.resource!, identities: identities) else { return .needsDatabase }
        do {
            return .ready(try prepareCreate(request, resource: resource, id: id, in: transaction))
        } catch {
            return .failed(error)
        }
    }

    /// The prepared create of an entry in its turn: what was made ahead, or, for an entry with
    /// a conditional reference, made now.
    func inTurn(
        _ prepared: PreparedEntry, _ request: BundleRequest, id: String, identities: [String: String],
        in transaction: AuthorizedTransaction
    ) async throws -> PreparedCreate {
        switch prepared {
        case .ready(let create): return create
        case .failed(let error): throw error
        case .needsDatabase:
            let resource = try await rewriteReferences(
                in: request.resource!, identities: identities, transaction: transaction)
            return try prepareCreate(request, resource: resource, id: id, in: transaction)
        }
    }

    /// A POST entry's checks, in the order ``run(_:id:in:)`` makes them, and its preparation
    /// (access checks, JSON text, index rows): no database.
    func prepareCreate(_ request: BundleRequest, resource: JSONValue, id: String, in transaction: AuthorizedTransaction)
        throws -> PreparedCreate
    {
        let type = request.type!
        try configuration.validator.validateCreate(resource, type: type)
        if type == "AuditEvent", protectsAuditEvents { try AuditFeed.requireSecurityAlert(resource) }
        return try transaction.prepareCreate(resource, type: type, id: id)
    }
}
