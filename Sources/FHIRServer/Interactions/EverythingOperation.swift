import FHIR
import FHIRStore

/// `Patient/[id]/$everything`: the patient, every resource in its compartment (by the R4
/// Patient CompartmentDefinition), and the resources those refer to (practitioners,
/// organizations, medications, locations, ...), as a paged searchset Bundle. A referenced
/// resource that belongs to another patient (another Patient, or one that refers to another
/// Patient) is left out, whoever asks: it is that patient's data, not this one's.
///
/// AuditEvents are left out unless `_type` names them: the server's audit trail puts one in
/// the patient's compartment for every access to the patient's record, `$everything`
/// included, so each answer would carry the previous ones' records and grow with every read
/// (its median went from 39 to 300 ms over three minutes of the replica benchmark). They are
/// a record of access, not of care; `AuditEvent?patient=` and `_type=AuditEvent` give them.
///
/// The answer is listed as keys first (the patient, then the compartment by type and id,
/// then what it refers to by type and id), filtered (`_type`, `_since`, `start`/`end`, what
/// the token may see), and only the requested page's bodies are read.
enum EverythingOperation {
    /// What a `$everything` asks for, besides the page.
    struct Filters: Sendable {
        /// `_since`: last updated at or after (milliseconds).
        var since: Int64?
        /// `_type`: only these types.
        var types: Set<String>?
        /// `start` and `end`: care dates, as written (`2020`, `2020-03-01`, ...). A compartment
        /// resource is kept when its clinical date (``careDateParameter(of:)``) overlaps the
        /// range, or when its type has no clinical date or it has none (it cannot be placed);
        /// the patient and the resources the kept ones refer to are always kept.
        var start: String?
        var end: String?

        /// The types left out unless `_type` names them.
        static let omittedUnlessNamed: Set<String> = ["AuditEvent"]

        /// The compartment's types this answer leaves out.
        var omittedTypes: Set<String> { Self.omittedUnlessNamed.subtracting(types ?? []) }
    }

    /// One entry before its body is read.
    struct Entry: Sendable {
        var key: ResourceKey
        /// Read only for `_since`, the one filter that needs it (nil otherwise).
        var lastUpdated: Int64?
        /// Read already (the referenced resources, checked for other patients).
        var resource: StoredResource?
    }

    /// Every entry of the patient's `$everything` that `filters` and `visible` let through,
    /// in answer order; 404/410 when the patient is unknown or deleted.
    static func entries(
        patientId: String, filters: Filters, parser: SearchQueryParser, visible: @Sendable (ResourceKey) -> Bool,
        in transaction: any FHIRTransaction
    ) async throws -> [Entry] {
        let patient = try await transaction.read(type: "Patient", id: patientId)
        let patientKey = ResourceKey(type: "Patient", id: patientId)
        var members = try await Self.members(ofPatient: patientId, excluding: filters.omittedTypes, in: transaction)
        var seen = Set(members).union([patientKey])
        if filters.start != nil || filters.end != nil {
            members = try await inCareRange(members, filters: filters, parser: parser, in: transaction)
        }
        members.sort { ($0.type, $0.id) < ($1.type, $1.id) }
        // What the patient and the kept members the token may see refer to, read to leave out
        // other patients' data: a hidden member's targets would tell what it says (attacker A6).
        let stubs = ([patientKey] + members).filter(visible).map {
            StoredResource(type: $0.type, id: $0.id, versionId: 0, lastUpdated: 0, deleted: false, body: nil)
        }
        let targets = try await transaction.referenceTargets(of: stubs).filter {
            $0.type != "Patient" && seen.insert($0).inserted
        }
        let referenced = try await transaction.resources(targets)
            .filter { !AccessGuard.refersToAnotherPatient($0, than: patientId) }
            .sorted { ($0.type, $0.id) < ($1.type, $1.id) }
        var entries = [Entry(key: patientKey, lastUpdated: patient.lastUpdated, resource: patient)]
        if filters.since != nil {
            let stamps = try await transaction.lastUpdated(of: members)
            entries += members.compactMap { key in stamps[key].map { Entry(key: key, lastUpdated: $0, resource: nil) } }
        } else {
            // No statement for stamps nothing reads (2 ms of a 20 ms answer of 323 entries on
            // PostgreSQL). A member deleted after it was listed is left out when the page's
            // bodies are read (``resources(of:in:)``).
            entries += members.map { Entry(key: $0, lastUpdated: nil, resource: nil) }
        }
        entries += referenced.map {
            Entry(key: ResourceKey(type: $0.type, id: $0.id), lastUpdated: $0.lastUpdated, resource: $0)
        }
        let omitted = filters.omittedTypes
        return entries.filter { entry in
            if let since = filters.since, (entry.lastUpdated ?? .min) < since { return false }
            if let types = filters.types, !types.contains(entry.key.type) { return false }
            // One a member refers to (a List's entry, a Provenance's target) is left out too.
            if omitted.contains(entry.key.type) { return false }
            return visible(entry.key)
        }
    }

    /// The resources of `entries`, in their order, reading the bodies not read yet (one that
    /// was deleted since it was listed is left out).
    static func resources(of entries: ArraySlice<Entry>, in transaction: any FHIRTransaction) async throws
        -> [StoredResource]
    {
        let unread = entries.filter { $0.resource == nil }.map(\.key)
        var read: [ResourceKey: StoredResource] = [:]
        for resource in try await transaction.resources(unread) {
            read[ResourceKey(type: resource.type, id: resource.id)] = resource
        }
        return entries.compactMap { $0.resource ?? read[$0.key] }
    }

    /// The patient and every resource in its compartment (R4 Patient CompartmentDefinition),
    /// each once; 404/410 when the patient is unknown or deleted. (Bulk Data's Patient export.)
    static func compartment(ofPatient patientId: String, in transaction: any FHIRTransaction) async throws
        -> [StoredResource]
    {
        let patient = try await transaction.read(type: "Patient", id: patientId)
        return [patient]
            + (try await transaction.resources(try await Self.members(ofPatient: patientId, in: transaction)))
    }

    /// The resources in the patient's compartment but the patient, each once, from the reference
    /// index; none of the `excluding` types.
    static func members(
        ofPatient patientId: String, excluding: Set<String> = [], in transaction: any FHIRTransaction
    ) async throws -> [ResourceKey] {
        var seen: Set<ResourceKey> = [ResourceKey(type: "Patient", id: patientId)]
        return try await transaction.referrers(to: "Patient", id: patientId, excludingTypes: excluding)
            .filter { Compartment.patient.contains(type: $0.type, linkedBy: $0.parameter) }
            .map { ResourceKey(type: $0.type, id: $0.id) }
            .filter { seen.insert($0).inserted }
    }

    /// The clinical date search parameter of a type, when it has one: `date` for most types,
    /// the one R4 gives the same meaning for the rest.
    static func careDateParameter(of type: String, registry: SearchParameterRegistry) -> String? {
        let named: [String: String] = [
            "Condition": "onset-date", "MedicationRequest": "authoredon", "MedicationAdministration": "effective-time",
            "MedicationDispense": "whenhandedover", "MedicationStatement": "effective", "ImagingStudy": "started",
            "Claim": "created", "ClaimResponse": "created", "ExplanationOfBenefit": "created",
            "ServiceRequest": "authored",
            "DeviceRequest": "event-date", "Specimen": "collected", "Goal": "start-date", "Coverage": "period",
        ]
        for code in [named[type], "date"].compactMap({ $0 }) {
            if let definition = registry.parameter(code, of: type), definition.type == .date { return code }
        }
        return nil
    }

    /// The members whose care date overlaps `start`...`end`, or that have none; answered by
    /// the search index, 500 ids a query.
    static func inCareRange(
        _ members: [ResourceKey], filters: Filters, parser: SearchQueryParser, in transaction: any FHIRTransaction
    ) async throws -> [ResourceKey] {
        var kept: [ResourceKey] = []
        for (type, group) in Dictionary(grouping: members, by: \.type) {
            guard let code = careDateParameter(of: type, registry: parser.registry) else {
                kept += group
                continue
            }
            var range: [(name: String, value: String)] = []
            if let start = filters.start { range.append((code, "ge" + start)) }
            if let end = filters.end { range.append((code, "le" + end)) }
            for start in stride(from: 0, to: group.count, by: 500) {
                let ids = group[start..<min(start + 500, group.count)].map(\.id)
                for criteria in [range, [(name: code + ":missing", value: "true")]] {
                    var query = try parser.parse(resourceType: type, parameters: criteria, strict: true)
                    query.clauses.append(.id(in: ids))
                    query.count = ids.count
                    query.total = .none
                    kept += try await transaction.search(query).resources.map { ResourceKey(type: $0.type, id: $0.id) }
                }
            }
        }
        return kept
    }
}
