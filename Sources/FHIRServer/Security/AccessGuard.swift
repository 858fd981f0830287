import FHIR
import FHIRStore

extension Optional where Wrapped == AccessGrant {
    /// How the token grants `permission` on `type`: unrestricted when access control is off
    /// (`nil`); a 403 OperationOutcome when no scope covers it.
    func require(_ permission: SMARTPermission, _ type: String) throws -> AccessGrant.Access {
        guard let grant = self else { return .unrestricted }
        return try grant.require(permission, type: type)
    }

    /// Whether the token may see a resource of `type` returned alongside others (includes,
    /// `$everything`): read or search granted.
    func visibility(_ type: String) -> AccessGrant.Access? {
        guard let grant = self else { return .unrestricted }
        return grant.access(.read, type: type) ?? grant.access(.search, type: type)
    }

    /// Requires `permission` on every type without a patient restriction (system history,
    /// Bulk Data export): a `user/*` or `system/*` scope.
    func requireAllTypes(_ permission: SMARTPermission, _ what: String) throws {
        guard let grant = self else { return }
        guard grant.scopes.contains(where: { $0.context != .patient && $0.resourceType == "*" && $0.permissions.contains(permission.rawValue) })
        else { throw AccessGrant.forbidden(permission, type: "\(what) (needs user/*.\(permission.rawValue) or system/*.\(permission.rawValue))") }
    }
}

/// Enforcement of `patient/` scopes: what lies in one patient's compartment.
///
/// A resource outside the patient's compartment is answered exactly as a missing one (404),
/// so that a patient-scoped token cannot learn whether another patient's resources exist.
enum AccessGuard {
    static let indexer = SearchIndexer()

    /// Whether `resource` (of `type`, id `id`) is the patient or in its compartment: one of the
    /// R4 Patient CompartmentDefinition's parameters of its type refers to `Patient/patient`.
    static func isMember(_ resource: JSONValue, type: String, id: String?, patient: String) -> Bool {
        if type == "Patient" { return id == patient }
        guard let parameters = Compartment.patient.members[type] else { return true }
        return indexer.entries(for: resource, resourceType: type).references.contains { reference in
            reference.targetType == "Patient" && reference.targetId == patient && parameters.contains(reference.parameter)
        }
    }

    static func isMember(_ stored: StoredResource, patient: String) -> Bool {
        if stored.type == "Patient" { return stored.id == patient }
        guard Compartment.patient.members[stored.type] != nil else { return true }
        guard let body = stored.body, let resource = try? JSONParser.parse(body) else { return false }
        return isMember(resource, type: stored.type, id: stored.id, patient: patient)
    }

    /// The 404 given for a resource outside the compartment, worded as for a missing one.
    static func notFound(_ type: String, _ id: String) -> FHIRError {
        .notFound("\(type)/\(id) is not known")
    }

    /// Refuses (404) a stored resource the access does not reach.
    static func check(_ stored: StoredResource, _ access: AccessGrant.Access) throws {
        if case .patient(let patient) = access, !isMember(stored, patient: patient) { throw notFound(stored.type, stored.id) }
    }

    /// The answer to a REST write of an AuditEvent while the server keeps the audit trail:
    /// to every update and delete, and to a create by anyone but an audit source (``AuditFeedToken``).
    static let auditEventsAreReadOnly = FHIRError(
        status: 405, code: "not-supported",
        "AuditEvents are recorded by the server and cannot be changed or deleted through the API; only an audit source "
            + "(a token with system/AuditEvent.c, or the server's audit feed token) may create them, and only security alerts")

    /// Runs a read; under a patient restriction a deleted resource (410) is answered as a
    /// missing one (404), since its compartment can no longer be told.
    static func hidingGone<T>(_ access: AccessGrant.Access, type: String, id: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as FHIRError where error.status == 410 {
            if case .patient = access { throw notFound(type, id) }
            throw error
        }
    }

    /// Refuses (404) an instance interaction on an existing resource outside the compartment;
    /// a resource that does not exist passes unless `required` (an update creates it).
    static func checkExisting(type: String, id: String, _ access: AccessGrant.Access, in store: any FHIRStore, required: Bool = false) async throws {
        guard case .patient = access else { return }
        let stored: StoredResource
        do {
            stored = try await store.read(type: type, id: id)
        } catch let error as FHIRError where error.status == 404 || error.status == 410 {
            if required { throw notFound(type, id) }
            return
        }
        try check(stored, access)
    }

    /// The same inside a transaction.
    static func checkExisting(type: String, id: String, _ access: AccessGrant.Access, in transaction: any FHIRTransaction) async throws {
        guard case .patient = access else { return }
        let stored: StoredResource
        do {
            stored = try await transaction.read(type: type, id: id)
        } catch let error as FHIRError where error.status == 404 || error.status == 410 {
            return
        }
        try check(stored, access)
    }

    /// Refuses (403) a resource about to be written outside the patient's compartment.
    static func checkWrite(_ resource: JSONValue, type: String, id: String?, _ access: AccessGrant.Access) throws {
        if case .patient(let patient) = access, !isMember(resource, type: type, id: id, patient: patient) {
            throw FHIRError(status: 403, code: "forbidden", "A patient/ scope may only write \(type) resources in the compartment of Patient/\(patient)")
        }
    }

    /// Refuses (403) conditional interactions under a patient restriction: their criteria
    /// would search outside the compartment and reveal what exists there.
    static func refuseConditional(_ type: String, _ access: AccessGrant.Access) throws {
        if case .patient = access {
            throw FHIRError(status: 403, code: "forbidden", "Conditional interactions on \(type) need a user/ or system/ scope")
        }
    }

    /// The ids of the patient's compartment members, by type (the Patient itself included).
    static func compartmentIds(patient: String, in transaction: any FHIRTransaction) async throws -> [String: [String]] {
        var ids: [String: [String]] = ["Patient": [patient]]
        var seen = Set<ResourceKey>()
        for link in try await transaction.referrers(to: "Patient", id: patient)
        where Compartment.patient.contains(type: link.type, linkedBy: link.parameter) {
            if seen.insert(ResourceKey(type: link.type, id: link.id)).inserted { ids[link.type, default: []].append(link.id) }
        }
        return ids
    }

    /// Limits a search to what the token may search: every type (`_type`, or all types at
    /// system level) must be granted; patient-restricted types are limited, in SQL, to the
    /// ids of the patient's compartment, so that totals and paging stay right. Chained and
    /// `_has` parameters need search on the types they reach.
    static func restrict(
        _ query: inout SearchQuery, access: AccessGrant?, parser: SearchQueryParser, in transaction: any FHIRTransaction
    ) async throws {
        guard access != nil else { return }
        let types = query.resourceType.map { [$0] } ?? (query.types.isEmpty ? ["*"] : query.types)
        var patient: String?
        for type in types {
            if type == "*" {
                // Across every type: only a wildcard scope will do; a patient/ one limits it all.
                let wildcard = access!.scopes.filter { $0.resourceType == "*" && $0.permissions.contains("s") }
                guard !wildcard.isEmpty else { throw AccessGrant.forbidden(.search, type: "all types (use _type, or a */ scope)") }
                if !wildcard.contains(where: { $0.context != .patient }) {
                    guard let id = access!.patient else { throw AccessGrant.forbidden(.search, type: "all types") }
                    patient = id
                }
            } else if case .patient(let id) = try access.require(.search, type) {
                patient = id
            }
        }
        for clause in query.clauses { try checkReach(clause, access: access) }
        if let patient {
            let ids = try await compartmentIds(patient: patient, in: transaction)
            var allowed: [String]
            if let type = query.resourceType {
                allowed = ids[type] ?? []
            } else {
                // Across types the limit is the whole compartment: types outside it are not
                // answered to a patient-restricted token in such a search.
                allowed = ids.values.flatMap { $0 }
            }
            if allowed.isEmpty { allowed = ["-"] }  // no valid id: matches nothing
            let restriction = try parser.parse(resourceType: query.resourceType, parameters: [("_id", allowed.joined(separator: ","))], strict: true)
            query.clauses.append(contentsOf: restriction.clauses)
        }
    }

    /// Chains and `_has` reach other types: each must be searchable.
    static func checkReach(_ clause: SearchClause, access: AccessGrant?) throws {
        switch clause.target {
        case .chain(_, let targets):
            for target in targets {
                _ = try access.require(.search, target.type)
                try checkReach(target.clause, access: access)
            }
        case .has(let sourceType, _, let inner):
            _ = try access.require(.search, sourceType)
            try checkReach(inner, access: access)
        default:
            break
        }
    }

    /// Drops included resources the token may not see.
    static func filterIncluded(_ page: inout SearchPage, access: AccessGrant?) {
        guard access != nil else { return }
        page.included = page.included.filter { visible($0, access: access) }
    }

    /// Whether a resource returned alongside others may be shown.
    static func visible(_ stored: StoredResource, access: AccessGrant?) -> Bool {
        switch access.visibility(stored.type) {
        case nil: return false
        case .unrestricted: return true
        case .patient(let patient): return isMember(stored, patient: patient)
        }
    }
}
