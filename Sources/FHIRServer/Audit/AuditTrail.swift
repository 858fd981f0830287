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

/// Writes AuditEvents through the normal store, so that `GET AuditEvent?...` finds them.
///
/// ``record(_:)`` only queues the event; a background task writes what is queued in one
/// database transaction per tenant, so a request never waits for its own audit write and a
/// burst of requests costs one commit. ``flush()`` waits until everything queued is stored;
/// ``close()`` is called on shutdown so that no event is lost on a clean stop (a crash can
/// lose the events of the last few milliseconds). Writing an AuditEvent goes straight to the
/// store, never through the router, so it is never audited itself.
public actor AuditTrail {
    let stores: any FHIRStoreProvider
    /// Who records: `source.observer`.
    public nonisolated let observer: String
    let logger: Logger
    var pending: [AuditRecord] = []
    /// The most events one commit carries; a smaller batch waits `gatherDelay` for more.
    static let batchSize = 32
    static let gatherDelay = Duration.milliseconds(10)
    var writer: Task<Void, Never>?
    /// The most events queued before ``record(_:)`` waits for the writer: under a flood the
    /// server slows down, rather than holding an ever longer queue in memory (or dropping events).
    public nonisolated let maximumPending: Int
    /// Requests waiting for the queue to shrink to half of ``maximumPending``.
    var waiting: [CheckedContinuation<Void, Never>] = []
    /// The longest the queue has been, for tests and status.
    public private(set) var peakPending = 0
    /// Events that could not be written (logged), for tests and status.
    public private(set) var failures = 0
    /// Events written.
    public private(set) var written = 0
    /// Watches what is recorded for bulk reads of patients (``watch(_:)``); `nil`: not watched.
    public private(set) var exfiltration: ExfiltrationDetector?
    /// The detector's windows in the PostgreSQL database every replica shares, fed by the
    /// writer a batch at a time; `nil`: ``exfiltration`` counts in memory, request by request.
    var sharedWindows: SharedExfiltrationWindows?

    public init(
        stores: any FHIRStoreProvider, observer: String = "Caduceus FHIR server",
        logger: Logger = Logger(label: "caduceus.audit"),
        maximumPending: Int = 10_000
    ) {
        self.stores = stores
        self.observer = observer
        self.logger = logger
        self.maximumPending = max(1, maximumPending)
    }

    public init(
        store: any FHIRStore, observer: String = "Caduceus FHIR server",
        logger: Logger = Logger(label: "caduceus.audit"),
        maximumPending: Int = 10_000
    ) {
        self.init(
            stores: TenantStores(defaultStore: store), observer: observer, logger: logger,
            maximumPending: maximumPending)
    }

    /// Queues `record` to be written; returns at once unless the queue is past
    /// ``maximumPending``, then when the writer has caught up. With an exfiltration detector, a
    /// security alert it raises on `record` is queued right after it.
    public func record(_ record: AuditRecord) async {
        pending.append(record)
        if sharedWindows == nil, let alert = exfiltration?.observe(record) {
            pending.append(alert)
            logger.warning(
                "\(alert.outcomeDescription ?? ExfiltrationDetector.ruleName) [\(ExfiltrationDetector.ruleId)]")
        }
        peakPending = max(peakPending, pending.count)
        if writer == nil { startWriter() }
        if pending.count > maximumPending {
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    /// Lets the waiting requests go once the queue is down to half of ``maximumPending``.
    private func releaseWaiting() {
        guard !waiting.isEmpty, pending.count <= maximumPending / 2 else { return }
        for request in waiting { request.resume() }
        waiting = []
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

    /// Waits until every event queued so far is stored.
    public func flush() async {
        while let writer {
            await writer.value
        }
    }

    /// Writes what is queued; call on shutdown.
    public func close() async {
        await flush()
    }

    private func startWriter() {
        writer = Task { await self.drain() }
    }

    private func drain() async {
        while !pending.isEmpty {
            // Let a burst gather, so that one commit (one fsync) carries many events.
            if pending.count < Self.batchSize { try? await Task.sleep(for: Self.gatherDelay) }
            // At most `batchSize` per commit: the write lock is held briefly, so that the
            // requests' own writes do not wait behind a long audit transaction.
            var batch = Array(pending.prefix(Self.batchSize))
            pending.removeFirst(batch.count)
            releaseWaiting()
            if let sharedWindows {
                let alerts = await sharedWindows.observe(batch)
                for alert in alerts {
                    logger.warning(
                        "\(alert.outcomeDescription ?? ExfiltrationDetector.ruleName) [\(ExfiltrationDetector.ruleId)]")
                }
                batch += alerts
            }
            var byTenant: [String: [JSONValue]] = [:]
            var order: [String] = []
            for record in batch {
                let key = record.tenant ?? ""
                if byTenant[key] == nil { order.append(key) }
                byTenant[key, default: []].append(record.resource(observer: observer))
            }
            for key in order {
                guard let store = await store(tenant: key.isEmpty ? nil : key) else {
                    failures += byTenant[key]!.count
                    continue
                }
                await write(byTenant[key]!, to: store)
            }
        }
        writer = nil
        releaseWaiting()
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

    /// Writes `resources` in one transaction; when that fails, each on its own, so that one
    /// event the store refuses never takes the others of its batch with it.
    private func write(_ resources: [JSONValue], to store: any FHIRStore) async {
        do {
            try await store.transaction { transaction in
                for resource in resources { _ = try await transaction.create(resource, type: "AuditEvent", id: nil) }
            }
            written += resources.count
            return
        } catch  where resources.count > 1 {
            logger.warning("A batch of \(resources.count) AuditEvents failed (\(error)); writing them one by one")
        } catch {
            failures += 1
            logger.error("Could not write an AuditEvent: \(error)")
            return
        }
        for resource in resources { await write([resource], to: store) }
    }
}
