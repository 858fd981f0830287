import FHIR
import FHIRStore
import Foundation
import Logging

/// A coded value of an AuditEvent (`type`, `subtype`, `entity.role`, ...).
public struct AuditCoding: Sendable, Hashable {
    public var system: String
    public var code: String
    public var display: String?

    public init(system: String, code: String, display: String? = nil) {
        self.system = system
        self.code = code
        self.display = display
    }

    /// `rest`: a RESTful operation (the AuditEvent type of every FHIR interaction).
    public static let rest = AuditCoding(
        system: "http://terminology.hl7.org/CodeSystem/audit-event-type", code: "rest", display: "RESTful Operation")
    /// DICOM `110113` Security Alert: what a detection engine's alerts are recorded as.
    public static let securityAlert = AuditCoding(
        system: "http://dicom.nema.org/resources/ontology/DCM", code: "110113", display: "Security Alert")

    /// A FHIR interaction (`read`, `search-type`, ...) as a `subtype`.
    public static func interaction(_ code: String) -> AuditCoding {
        AuditCoding(system: "http://hl7.org/fhir/restful-interaction", code: code)
    }

    var json: JSONValue {
        var object = JSONObject([("system", .string(system)), ("code", .string(code))])
        if let display { object["display"] = .string(display) }
        return .object(object)
    }
}

/// One audited event, IHE BALP style: what happened (`type`, `subtype`, `action`), when, how
/// it ended, who did it (`agent`), and to what (`entity`).
public struct AuditRecord: Sendable {
    public var type: AuditCoding
    public var subtypes: [AuditCoding]
    /// `C`, `R`, `U`, `D` or `E`.
    public var action: String
    public var recorded: Date
    /// `0` success, `4` minor failure, `8` serious failure, `12` major failure.
    public var outcome: String
    public var outcomeDescription: String?
    /// Who: the token's `sub` (or client id), `nil` for an anonymous request.
    public var agentName: String?
    public var agentClientId: String?
    /// The agent as a FHIR reference (`Practitioner/123`, the token's `fhirUser`).
    public var agentReference: String?
    public var agentAddress: String?
    /// What: a resource reference such as `Observation/1/_history/2`.
    public var entityReference: String?
    /// What: a query string, for searches and history.
    public var query: String?
    /// Free text about the entity (an operation's name, an alert's rule).
    public var entityDescription: String?
    /// Patients the event concerns (ids), recorded as `entity` with role Patient.
    public var patients: [String]
    /// The tenant whose store the AuditEvent is written to; `nil` is the default one.
    public var tenant: String?
    /// Patients whose data the response returned (ids), for ``ExfiltrationDetector``; not
    /// written to the AuditEvent, which a search of thousands would swell.
    public var patientsReturned: Set<String>

    public init(
        type: AuditCoding = .rest, subtypes: [AuditCoding], action: String, recorded: Date = Date(), outcome: String,
        outcomeDescription: String? = nil, agentName: String? = nil, agentClientId: String? = nil,
        agentReference: String? = nil,
        agentAddress: String? = nil, entityReference: String? = nil, query: String? = nil,
        entityDescription: String? = nil,
        patients: [String] = [], tenant: String? = nil, patientsReturned: Set<String> = []
    ) {
        self.type = type
        self.subtypes = subtypes
        self.action = action
        self.recorded = recorded
        self.outcome = outcome
        self.outcomeDescription = outcomeDescription
        self.agentName = agentName
        self.agentClientId = agentClientId
        self.agentReference = agentReference
        self.agentAddress = agentAddress
        self.entityReference = entityReference
        self.query = query
        self.entityDescription = entityDescription
        self.patients = patients
        self.tenant = tenant
        self.patientsReturned = patientsReturned
    }

    /// The patients a search's `patient` and `subject` parameters name, at most `limit`:
    /// `Patient/<id>` references, and bare ids for `patient`; only valid ids (the values are
    /// the client's).
    public static func patients(searchedIn parameters: [(name: String, value: String)], limit: Int = .max) -> [String] {
        var patients: [String] = []
        for (name, value) in parameters where name == "patient" || name == "subject" {
            for item in value.split(separator: ",") {
                guard patients.count < limit else { return patients }
                let id =
                    item.hasPrefix("Patient/")
                    ? item.dropFirst(8) : (name == "patient" && !item.contains("/") ? item : nil)
                if let id, FHIRResourceType.isValidId(id) { patients.append(String(id)) }
            }
        }
        return patients
    }

    /// The outcome code of an HTTP status: `0` below 400, `4` for 4xx, `8` for 5xx.
    public static func outcome(httpStatus: Int) -> String {
        httpStatus < 400 ? "0" : httpStatus < 500 ? "4" : "8"
    }

    /// The system the token subject is recorded under in `agent.who.identifier`.
    public static let subjectSystem = "urn:caduceus:token-sub"

    /// The AuditEvent resource; `observer` names the server in `source.observer`.
    public func resource(observer: String) -> JSONValue {
        var agent = JSONObject()
        agent["type"] = .object(
            JSONObject([
                (
                    "coding",
                    .array([
                        AuditCoding(
                            system: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", code: "IRCP",
                            display: "information recipient"
                        ).json
                    ])
                )
            ]))
        var who = JSONObject()
        if let agentReference { who["reference"] = .string(agentReference) }
        if let agentName {
            who["identifier"] = .object(
                JSONObject([("system", .string(Self.subjectSystem)), ("value", .string(agentName))]))
        }
        who["display"] = .string(agentName ?? "anonymous")
        agent["who"] = .object(who)
        if let agentClientId { agent["altId"] = .string(agentClientId) }
        agent["name"] = .string(agentName ?? "anonymous")
        agent["requestor"] = true
        if let agentAddress {
            agent["network"] = .object(JSONObject([("address", .string(agentAddress)), ("type", "2")]))
        }
        var entities: [JSONValue] = []
        if entityReference != nil || query != nil || entityDescription != nil {
            var entity = JSONObject()
            if let entityReference { entity["what"] = .object(JSONObject([("reference", .string(entityReference))])) }
            entity["type"] =
                AuditCoding(
                    system: "http://terminology.hl7.org/CodeSystem/audit-entity-type", code: "2",
                    display: "System Object"
                ).json
            if let query {
                entity["role"] =
                    AuditCoding(
                        system: "http://terminology.hl7.org/CodeSystem/object-role", code: "24", display: "Query"
                    ).json
                entity["query"] = .string(Data(query.utf8).base64EncodedString())
            }
            if let entityDescription { entity["description"] = .string(entityDescription) }
            entities.append(.object(entity))
        }
        for patient in patients where entityReference != "Patient/\(patient)" {
            entities.append(
                .object(
                    JSONObject([
                        ("what", .object(JSONObject([("reference", .string("Patient/\(patient)"))]))),
                        (
                            "type",
                            AuditCoding(
                                system: "http://terminology.hl7.org/CodeSystem/audit-entity-type", code: "1",
                                display: "Person"
                            ).json
                        ),
                        (
                            "role",
                            AuditCoding(
                                system: "http://terminology.hl7.org/CodeSystem/object-role", code: "1",
                                display: "Patient"
                            ).json
                        ),
                    ])))
        }
        var event = JSONObject([("resourceType", "AuditEvent")])
        event["type"] = type.json
        if !subtypes.isEmpty { event["subtype"] = .array(subtypes.map(\.json)) }
        event["action"] = .string(action)
        event["recorded"] = .string(
            FHIRDateRange.instantString(milliseconds: Int64(recorded.timeIntervalSince1970 * 1000)))
        event["outcome"] = .string(outcome)
        if let outcomeDescription { event["outcomeDesc"] = .string(outcomeDescription) }
        event["agent"] = .array([.object(agent)])
        var source = JSONObject([
            ("observer", .object(JSONObject([("display", .string(observer))]))),
            (
                "type",
                .array([
                    AuditCoding(
                        system: "http://terminology.hl7.org/CodeSystem/security-source-type", code: "4",
                        display: "Application Server"
                    ).json
                ])
            ),
        ])
        // The tenant as the client named it (an undeclared one's event is kept in the default store).
        if let tenant { source["site"] = .string(String(tenant.prefix(64))) }
        event["source"] = .object(source)
        if !entities.isEmpty { event["entity"] = .array(entities) }
        // Every value here comes from the request: control characters (a `%00` in a query) are
        // kept, escaped, rather than refused by the store with the whole batch.
        return Self.escapingControlCharacters(.object(event))
    }

    /// `value` with every control character in its strings written as `\u` and four hex digits.
    static func escapingControlCharacters(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text):
            guard text.unicodeScalars.contains(where: isControl) else { return value }
            var escaped = ""
            for scalar in text.unicodeScalars {
                if isControl(scalar) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    escaped += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
            return .string(escaped)
        case .array(let items): return .array(items.map(escapingControlCharacters))
        case .object(let object):
            return .object(JSONObject(object.members.map { ($0.key, escapingControlCharacters($0.value)) }))
        default: return value
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}

/// When a request's AuditEvent is written, against when its response goes out.
public enum AuditCommit: String, Sendable, CaseIterable {
    /// The response waits until its AuditEvent is committed (batched with the others under way:
    /// group commit), so that a server that stops loses no AuditEvent of an answered request.
    case beforeResponse = "before-response"
    /// The response goes at once and the AuditEvent is written a few milliseconds later: a
    /// crash loses the events of the last few milliseconds.
    case writeBehind = "write-behind"
}

/// Writes AuditEvents through the normal store, so that `GET AuditEvent?...` finds them.
///
/// ``record(_:)`` queues the event; a background task writes what is queued in one database
/// transaction per tenant, so a burst of requests costs one commit. With
/// ``AuditCommit/beforeResponse`` (the default) ``record(_:)`` returns when its event is
/// committed, or after ``maximumWait`` (then `false`) while the event stays queued. An event
/// the database could not take because it was unavailable (a failover) is kept and written
/// again, never dropped; only an event the store refuses is (logged, counted in ``failures``).
/// ``close()`` is called on shutdown. Writing an AuditEvent goes straight to the store, never
/// through the router, so it is never audited itself.
public actor AuditTrail {
    let stores: any FHIRStoreProvider
    /// Who records: `source.observer`.
    public nonisolated let observer: String
    let logger: Logger
    /// An event waiting to be written, and the request waiting for it (``AuditCommit/beforeResponse``).
    struct Entry {
        var record: AuditRecord
        /// The key of the request waiting for it in ``waiters``.
        var waiter: Int?
        var deadline: ContinuousClock.Instant
        /// Whether the shared exfiltration windows have counted it (they must not twice).
        var observed = false
        /// The AuditEvent's id, chosen once: a batch written again after a lost connection
        /// (whose commit may have landed) finds the events that did as already stored.
        var id = ResourceIds.make()
        /// Whether a write of it was tried and its outcome is unknown.
        var retried = false
    }
    var pending: [Entry] = []
    /// Events of the batch being written: with ``pending``, what the queue holds.
    var inFlight = 0
    /// The most events one commit carries; with ``AuditCommit/writeBehind`` a smaller batch
    /// waits `gatherDelay` for more.
    static let batchSize = 32
    static let gatherDelay = Duration.milliseconds(10)
    /// How long a batch the database could not take waits before it is written again.
    static let retryDelay = Duration.milliseconds(250)
    var writer: Task<Void, Never>?
    public nonisolated let commit: AuditCommit
    /// The longest ``record(_:)`` waits for its event to be committed (``AuditCommit/beforeResponse``).
    public nonisolated let maximumWait: Duration
    /// The most events queued before ``record(_:)`` waits for the writer: under a flood the
    /// server slows down, rather than holding an ever longer queue in memory (or dropping events).
    public nonisolated let maximumPending: Int
    /// Requests waiting for the queue to shrink to half of ``maximumPending``, until a deadline.
    var waiting: [(deadline: ContinuousClock.Instant, waiter: CheckedContinuation<Bool, Never>)] = []
    /// Requests waiting for their event's commit, answered `false` by ``ticker`` at their
    /// deadline even while the writer is stuck in a store call.
    var waiters: [Int: (deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Bool, Never>)] = [:]
    var nextWaiter = 0
    /// Expires the waits ten times a second while there are any.
    var ticker: Task<Void, Never>?
    /// When the writer's store call under way began, and when the ticker last said it was slow.
    var writingSince: ContinuousClock.Instant?
    var slowWriteLogged: ContinuousClock.Instant?
    /// Set by ``close()``: events the database cannot take are given up after ``maximumWait``.
    var closing = false
    /// The longest the queue has been, for tests and status.
    public private(set) var peakPending = 0
    /// Events that could not be written (logged), for tests and status.
    public private(set) var failures = 0
    /// Events written.
    public private(set) var written = 0
    /// Batches written again because the database was unavailable.
    public private(set) var retries = 0
    /// Watches what is recorded for bulk reads of patients (``watch(_:)``); `nil`: not watched.
    public private(set) var exfiltration: ExfiltrationDetector?
    /// The detector's windows in the PostgreSQL database every replica shares, fed by the
    /// writer a batch at a time; `nil`: ``exfiltration`` counts in memory, request by request.
    var sharedWindows: SharedExfiltrationWindows?

    public init(
        stores: any FHIRStoreProvider, observer: String = "Caduceus FHIR server",
        logger: Logger = Logger(label: "caduceus.audit"),
        maximumPending: Int = 10_000, commit: AuditCommit = .beforeResponse, maximumWait: Duration = .seconds(10)
    ) {
        self.stores = stores
        self.observer = observer
        self.logger = logger
        self.maximumPending = max(1, maximumPending)
        self.commit = commit
        self.maximumWait = maximumWait
    }

    public init(
        store: any FHIRStore, observer: String = "Caduceus FHIR server",
        logger: Logger = Logger(label: "caduceus.audit"),
        maximumPending: Int = 10_000, commit: AuditCommit = .beforeResponse, maximumWait: Duration = .seconds(10)
    ) {
        self.init(
            stores: TenantStores(defaultStore: store), observer: observer, logger: logger,
            maximumPending: maximumPending, commit: commit, maximumWait: maximumWait)
    }

    /// Queues `record` to be written. With ``AuditCommit/beforeResponse`` and `waitingForCommit`,
    /// returns `true` once it is committed, `false` when the store refused it or ``maximumWait``
    /// passed first (it stays queued then). Otherwise returns `true` at once. A queue holding
    /// ``maximumPending`` events is waited on until it is down to half, for at most
    /// ``maximumWait``; then the event is not queued (`false`, counted in ``failures``). With an
    /// exfiltration detector, a security alert it raises on `record` is queued right after it.
    @discardableResult
    public func record(_ record: AuditRecord, waitingForCommit: Bool = true) async -> Bool {
        let deadline = ContinuousClock.now + maximumWait
        var alert: AuditRecord?
        if sharedWindows == nil, let raised = exfiltration?.observe(record) {
            alert = raised
            logger.warning(
                "\(raised.outcomeDescription ?? ExfiltrationDetector.ruleName) [\(ExfiltrationDetector.ruleId)]")
        }
        // A full queue (the database unavailable for long, or a flood) is waited on until the
        // deadline; then the event is not taken: counted in `failures` and logged, so that the
        // queue stays bounded.
        if queued >= maximumPending, await !room(before: deadline) {
            failures += alert == nil ? 1 : 2
            logger.error("An AuditEvent was not queued: \(queued) wait to be written")
            return false
        }
        guard commit == .beforeResponse && waitingForCommit else {
            enqueue(Entry(record: record, deadline: deadline), alert: alert)
            return true
        }
        return await withCheckedContinuation { continuation in
            nextWaiter += 1
            waiters[nextWaiter] = (deadline, continuation)
            enqueue(Entry(record: record, waiter: nextWaiter, deadline: deadline), alert: alert)
            if ticker == nil { startTicker() }
        }
    }

    /// Appends `entry` (and the alert it raised) and starts the writer if none runs; in one
    /// step on the actor, so that no writer ends between the check and the append.
    private func enqueue(_ entry: Entry, alert: AuditRecord?) {
        pending.append(entry)
        if let alert { pending.append(Entry(record: alert, deadline: entry.deadline)) }
        peakPending = max(peakPending, queued)
        if writer == nil { startWriter() }
    }

    private func startTicker() {
        ticker = Task {
            while await self.expireWaits() {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// What the queue holds: the events waiting and the batch being written.
    var queued: Int { pending.count + inFlight }

    /// Waits until the queue is down to half of ``maximumPending`` (`true`) or `deadline` passed.
    private func room(before deadline: ContinuousClock.Instant) async -> Bool {
        await withCheckedContinuation { continuation in
            waiting.append((deadline, continuation))
            if ticker == nil { startTicker() }
        }
    }

    /// Lets the requests waiting for room go once the queue is down to half of ``maximumPending``.
    private func releaseWaiting() {
        guard !waiting.isEmpty, queued <= maximumPending / 2 else { return }
        for request in waiting { request.waiter.resume(returning: true) }
        waiting = []
    }

    /// Answers `false` to the requests whose wait has run out (their events stay queued);
    /// says whether any wait is left, and forgets the ticker when none is.
    @discardableResult
    private func expireWaits() -> Bool {
        let now = ContinuousClock.now
        for (key, waiter) in waiters where waiter.deadline <= now {
            waiter.continuation.resume(returning: false)
            waiters[key] = nil
        }
        while let first = waiting.first, first.deadline <= now {
            first.waiter.resume(returning: false)
            waiting.removeFirst()
        }
        if let writingSince, now - writingSince >= .seconds(5),
            slowWriteLogged.map({ now - $0 >= .seconds(5) }) ?? true
        {
            slowWriteLogged = now
            logger.warning(
                "The audit writer has waited \(now - writingSince) for the database; \(queued) AuditEvents queued")
        }
        if waiters.isEmpty && waiting.isEmpty { ticker = nil }
        return ticker != nil
    }

    /// Feeds every record from now on to `detector` (`caduceus serve --exfiltration-patients`).
    /// On PostgreSQL its windows are kept in the default store's database, shared by every
    /// server on it (``SharedExfiltrationWindows``); on SQLite in this server's memory.
    public func watch(_ detector: ExfiltrationDetector) async {
        exfiltration = detector
        if let store = try? await stores.store(tenant: nil), let database = SharedExportJobs.database(of: store) {
            sharedWindows = SharedExfiltrationWindows(detector: detector, database: database, logger: logger)
        } else {
            sharedWindows = nil
        }
    }

    /// Waits until every event queued so far is stored (or, after ``close()``, given up).
    public func flush() async {
        while let writer {
            await writer.value
        }
    }

    /// Writes what is queued; call on shutdown. Events the database cannot take within
    /// ``maximumWait`` from now are given up (logged).
    public func close() async {
        closing = true
        for index in pending.indices { pending[index].deadline = min(pending[index].deadline, .now + maximumWait) }
        await flush()
    }

    private func startWriter() {
        writer = Task { await self.drain() }
    }

    private func drain() async {
        while !pending.isEmpty {
            // Write-behind lets a burst gather, so that one commit (one fsync) carries many
            // events; before-response commits at once, and the next batch gathers meanwhile.
            if commit == .writeBehind && pending.count < Self.batchSize {
                try? await Task.sleep(for: Self.gatherDelay)
            }
            // At most `batchSize` per commit: the write lock is held briefly, so that the
            // requests' own writes do not wait behind a long audit transaction.
            var batch = Array(pending.prefix(Self.batchSize))
            pending.removeFirst(batch.count)
            inFlight = batch.count
            if let sharedWindows, batch.contains(where: { !$0.observed }) {
                writingSince = .now
                // Marked only when the database took the count, else counted with the batch's next
                // attempt, after an outage.
                let counted = await sharedWindows.observe(batch.filter { !$0.observed }.map(\.record))
                writingSince = nil
                // Counting again is harmless: a client's read of a patient is one row, upserted.
                if counted != nil {
                    for index in batch.indices { batch[index].observed = true }
                }
                let alerts = counted ?? []
                for alert in alerts {
                    logger.warning(
                        "\(alert.outcomeDescription ?? ExfiltrationDetector.ruleName) [\(ExfiltrationDetector.ruleId)]")
                }
                batch += alerts.map { Entry(record: $0, deadline: batch.last!.deadline, observed: true) }
            }
            var byTenant: [String: [Entry]] = [:]
            var order: [String] = []
            for entry in batch {
                let key = entry.record.tenant ?? ""
                if byTenant[key] == nil { order.append(key) }
                byTenant[key, default: []].append(entry)
            }
            var unwritten: [Entry] = []
            for key in order {
                let entries = byTenant[key]!
                guard let store = await store(tenant: key.isEmpty ? nil : key) else {
                    finish(entries, stored: false)
                    continue
                }
                writingSince = .now
                unwritten += await write(entries, to: store)
                writingSince = nil
            }
            inFlight = 0
            guard !unwritten.isEmpty else {
                releaseWaiting()
                continue
            }
            // The database could not take them (it is unavailable: a failover): written again,
            // first, after a pause; the requests waiting for them are answered at their deadline.
            if closing, let last = unwritten.map(\.deadline).max(), last <= .now {
                logger.error("\(unwritten.count) AuditEvents not stored: the database was unavailable at shutdown")
                finish(unwritten, stored: false)
                continue
            }
            retries += 1
            for index in unwritten.indices { unwritten[index].retried = true }
            pending.insert(contentsOf: unwritten, at: 0)
            try? await Task.sleep(for: Self.retryDelay)
        }
        writer = nil
        releaseWaiting()
    }

    /// Answers the requests waiting for `entries`, and counts them.
    private func finish(_ entries: [Entry], stored: Bool) {
        if stored { written += entries.count } else { failures += entries.count }
        for key in entries.compactMap(\.waiter) {
            waiters.removeValue(forKey: key)?.continuation.resume(returning: stored)
        }
    }

    /// The store of `tenant`; an event naming a tenant the server does not have (a refused
    /// request's `X-FHIR-TENANT-ID`) goes to the default store, so that the refusal is on record.
    private func store(tenant: String?) async -> (any FHIRStore)? {
        do {
            return try await stores.store(tenant: tenant)
        } catch {
            guard tenant != nil else {
                logger.error("Could not open the audit store: \(error)")
                return nil
            }
            return await store(tenant: nil)
        }
    }

    /// Writes `entries` in one transaction; when that fails, each on its own, so that one event
    /// the store refuses never takes the others of its batch with it. Returns the entries the
    /// database was unavailable for, to be written again.
    private func write(_ entries: [Entry], to store: any FHIRStore) async -> [Entry] {
        let resources = entries.map { ($0.id, $0.record.resource(observer: observer)) }
        do {
            try await store.transaction { transaction in
                for (id, resource) in resources {
                    _ = try await transaction.create(resource, type: "AuditEvent", id: id)
                }
            }
            finish(entries, stored: true)
            return []
        } catch let error as SQLDatabaseUnavailable {
            logger.warning("\(entries.count) AuditEvents wait for the database: \(error)")
            return entries
        } catch  where entries.count > 1 {
            logger.warning("A batch of \(entries.count) AuditEvents failed (\(error)); writing them one by one")
        } catch is SQLUniqueViolation where entries.first?.retried == true {
            // Its earlier write was committed after all (the connection was lost after the commit).
            finish(entries, stored: true)
            return []
        } catch {
            finish(entries, stored: false)
            logger.error("Could not write an AuditEvent: \(error)")
            return []
        }
        var unwritten: [Entry] = []
        for entry in entries { unwritten += await write([entry], to: store) }
        return unwritten
    }
}
