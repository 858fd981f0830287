import FHIR
import FHIRStore

/// How much one transaction or batch may ask for and answer with. Without it, a 62 KB batch of
/// 1,000 `GET Patient?_count=1000` entries answered 323 MB and took 2.4 GB of memory (the body
/// limit admits some 270,000 such entries).
///
/// Past the response budget a transaction is rolled back (413: its answer must hold every
/// entry); a batch stops: the entry that does not fit, if it only read, and every later entry
/// are answered 413 `too-costly` without running (the client resends them in a smaller
/// batch); a write that does not fit has happened, so it keeps its status, location and ETag
/// and only its resource is left out.
///
/// Each statement has its time limit, but a Bundle of thousands of slow searches would hold a
/// connection (in a transaction, the single writer) for thousands of limits: past
/// ``FHIRServerConfiguration/maximumBundleDuration`` a transaction is rolled back and a batch
/// answers its remaining entries 503 `too-costly` without running them.
struct BundleBudget {
    /// ``FHIRServerConfiguration/maximumResponseSize``.
    let limit: Int
    /// What written entries answer with: their resources count when returned.
    let returnPreference: ReturnPreference
    /// ``FHIRServerConfiguration/maximumBundleDuration``.
    let duration: Duration
    private let start = ContinuousClock.now
    private(set) var used = 0
    /// Set once an entry did not fit: every later batch entry is refused without running.
    private(set) var isSpent = false

    init(_ configuration: FHIRServerConfiguration, returnPreference: ReturnPreference) {
        limit = configuration.maximumResponseSize
        duration = configuration.maximumBundleDuration
        self.returnPreference = returnPreference
    }

    var isOverTime: Bool { ContinuousClock.now - start >= duration }

    /// The time left before ``duration`` is reached (zero or less once it is).
    var remaining: Duration { duration - (ContinuousClock.now - start) }

    /// The instant ``duration`` is reached.
    var deadline: ContinuousClock.Instant { start + duration }

    /// Fails a transaction (rolled back) that has run past ``duration``; checked between entries
    /// and before each create is prepared.
    func requireTime() throws {
        guard isOverTime else { return }
        throw FHIRError(
            status: 503, code: "too-costly",
            "The transaction ran longer than this server's limit of \(duration) (caduceus serve --max-bundle-time); nothing was written."
                + " Split it or narrow its searches")
    }

    /// The answer of a batch entry that is not run because the response is full or the batch
    /// is out of time; `nil` when it may run.
    func refusal(_ index: Int) -> TransactionProcessor.EntryResult? {
        if isSpent { return notRun(index) }
        guard isOverTime else { return nil }
        let refusal = FHIRError(
            status: 503, code: "too-costly",
            "Bundle.entry[\(index)]: not run: the batch ran longer than this server's limit of \(duration)"
                + " (caduceus serve --max-bundle-time); send it again in a smaller batch")
        return TransactionProcessor.EntryResult(
            status: TransactionProcessor.statusLine(503), outcome: refusal.operationOutcome)
    }

    /// Refuses (413) a Bundle of more than `limit` entries before any entry is read.
    static func requireEntries(_ count: Int, limit: Int) throws {
        guard count > limit else { return }
        throw FHIRError(
            status: 413, code: "too-costly",
            "The Bundle has \(count) entries, more than this server's limit of \(limit) (caduceus serve --max-bundle-entries); split it"
        )
    }

    /// The bytes `result` adds to the response Bundle: its resource text, its outcome, and
    /// room for the status, URLs and ETag.
    func bytes(of result: TransactionProcessor.EntryResult) -> Int {
        var bytes = 256 + (result.resource?.utf8.count ?? 0)
        if returnPreference == .representation, result.resource == nil, let body = result.stored?.body {
            bytes += body.utf8.count
        }
        if let outcome = result.outcome ?? writtenOutcome(result) { bytes += JSONWriter().string(outcome).utf8.count }
        return bytes
    }

    /// With `Prefer: return=OperationOutcome`, what a written (or matched, or deleted) entry
    /// says in `response.outcome`; `nil` for other preferences and entries that carry an
    /// outcome or a resource of their own (errors, reads).
    func writtenOutcome(_ result: TransactionProcessor.EntryResult) -> JSONValue? {
        guard returnPreference == .operationOutcome, result.outcome == nil, result.resource == nil,
            let stored = result.stored
        else { return nil }
        let version = stored.deleted ? "" : " version \(stored.versionId)"
        return OperationOutcome.information("\(result.status): \(stored.type)/\(stored.id)\(version)")
    }

    /// Counts a transaction entry's answer; past the limit the transaction fails (and rolls back).
    mutating func charge(_ result: TransactionProcessor.EntryResult) throws {
        used += bytes(of: result)
        guard used > limit else { return }
        throw FHIRError(
            status: 413, code: "too-costly",
            "The transaction's response would exceed this server's limit of \(limit) bytes (caduceus serve --max-response-size);"
                + " nothing was written. Split it, or ask Prefer: return=minimal")
    }

    /// A batch entry's answer as it is sent: `result` when it fits, else the answer of an
    /// entry past the budget (see the type's documentation). `wrote` tells whether the entry
    /// changed anything.
    mutating func admit(_ result: TransactionProcessor.EntryResult, index: Int, wrote: Bool)
        -> TransactionProcessor.EntryResult
    {
        let size = bytes(of: result)
        if !isSpent, used + size <= limit {
            used += size
            return result
        }
        isSpent = true
        guard wrote, result.stored != nil else { return notRun(index) }
        var minimal = result
        minimal.stored?.body = nil
        minimal.resource = nil
        minimal.outcome = OperationOutcome.make([
            FHIRError.Issue(
                severity: "warning", code: "too-costly",
                diagnostics:
                    "Bundle.entry[\(index)]: done, but its resource is left out: the response reached this server's limit of"
                    + " \(limit) bytes (caduceus serve --max-response-size); the entries after it were not run")
        ])
        return minimal
    }

    /// The answer of a batch entry that is not run because the response is full.
    func notRun(_ index: Int) -> TransactionProcessor.EntryResult {
        let refusal = FHIRError(
            status: 413, code: "too-costly",
            "Bundle.entry[\(index)]: not run: the response reached this server's limit of \(limit) bytes"
                + " (caduceus serve --max-response-size); send it again in a smaller batch")
        return TransactionProcessor.EntryResult(
            status: TransactionProcessor.statusLine(413), outcome: refusal.operationOutcome)
    }
}
