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
        guard
            grant.scopes.contains(where: {
                $0.context != .patient && $0.resourceType == "*" && $0.permissions.contains(permission.rawValue)
            })
        else {
            let letter = permission.rawValue
            throw FHIRError(
                status: 403, code: "forbidden",
                "The access token's scopes do not allow \(what) (it needs a scope such as user/*.\(letter) or system/*.\(letter))"
            )
        }
    }
}

/// What one patient's `patient/` scopes reach.
///
/// The rule (stricter than the bare R4 CompartmentDefinition, as SMART's guidance lets a
/// server be): under a `patient/` scope for patient P, a resource is visible when
/// - it is Patient/P itself; or
/// - its type is in the Patient compartment and one of that type's compartment parameters
///   refers to Patient/P; or
/// - its type is outside the compartment (Task, Device, Bundle, Binary, ...) and any of its
///   reference search parameters refers to Patient/P;
/// and, in the last two cases, no `reference` anywhere in it (contained resources and
/// elements outside search parameters included) names another Patient (a Group, an
/// AuditEvent or an Observation naming two patients is shown to neither). Writes under a `patient/` scope must make a resource visible by this rule and
/// may not name another Patient anywhere in a `reference`.
///
/// A resource outside the rule is answered exactly as a missing one (404), so that a
/// patient-scoped token cannot learn whether another patient's resources exist.
enum AccessGuard {
    static let indexer = SearchIndexer()

    /// Whether `resource` (of `type`, id `id`) is visible under a restriction to `patient`.
    static func isMember(_ resource: JSONValue, type: String, id: String?, patient: String) -> Bool {
        if type == "Patient" { return id == patient }
        // The body, not only the index: the index skips contained resources and references
        // outside search parameters, which may carry another patient's data (attacker A7).
        return namesNoOtherPatient(resource, than: patient) && belongsByIndex(resource, type: type, patient: patient)
    }

    /// Whether no `reference` anywhere in `resource` names a Patient but `patient`.
    static func namesNoOtherPatient(_ resource: JSONValue, than patient: String) -> Bool {
        referencedPatients(in: resource).isSubset(of: [patient])
    }

    /// The index half of the rule for a resource other than a Patient: its reference search
    /// parameters name `patient` (through a compartment parameter when its type has them)
    /// and no other Patient.
    private static func belongsByIndex(_ resource: JSONValue, type: String, patient: String) -> Bool {
        let references = indexer.entries(for: resource, resourceType: type).references.filter {
            $0.targetType == "Patient"
        }
        guard references.allSatisfy({ $0.targetId == patient }) else { return false }
        if let parameters = Compartment.patient.members[type] {
            return references.contains { parameters.contains($0.parameter) }
        }
        return !references.isEmpty
    }

    static func isMember(_ stored: StoredResource, patient: String) -> Bool {
        if stored.type == "Patient" { return stored.id == patient }
        guard let body = stored.body, let resource = try? JSONParser.parse(body) else { return false }
        return isMember(resource, type: stored.type, id: stored.id, patient: patient)
    }

    /// Whether `stored` names a Patient other than `patient` in any reference (contained
    /// resources included); an unreadable body counts as naming one.
    static func refersToAnotherPatient(_ stored: StoredResource, than patient: String) -> Bool {
        guard let body = stored.body, let resource = try? JSONParser.parse(body) else { return true }
        return !namesNoOtherPatient(resource, than: patient)
    }

    /// Whether a resource of `type` refers to `patient` through `parameter` in a way that may
    /// make it visible (before the check that it names no other patient).
    static func links(type: String, parameter: String) -> Bool {
        guard let parameters = Compartment.patient.members[type] else { return true }
        return parameters.contains(parameter)
    }

    /// The 404 given for a resource outside the compartment, worded as for a missing one.
    static func notFound(_ type: String, _ id: String) -> FHIRError {
        .notFound("\(type)/\(id) is not known")
    }

    /// Refuses (404) a stored resource the access does not reach.
    static func check(_ stored: StoredResource, _ access: AccessGrant.Access) throws {
        if case .patient(let patient) = access, !isMember(stored, patient: patient) {
            throw notFound(stored.type, stored.id)
        }
    }

    /// The answer to a REST write of an AuditEvent while the server keeps the audit trail:
    /// to every update and delete, and to a create by anyone but an audit source (``AuditFeedToken``).
    static let auditEventsAreReadOnly = FHIRError(
        status: 405, code: "not-supported",
        "AuditEvents are recorded by the server and cannot be changed or deleted through the API; only an audit source "
            + "(a token with system/AuditEvent.c, or the server's audit feed token) may create them, and only security alerts"
    )

    /// Runs a read; under a patient restriction a deleted resource (410) is answered as a
    /// missing one (404), since its compartment can no longer be told.
    static func hidingGone<T>(_ access: AccessGrant.Access, type: String, id: String, _ body: () async throws -> T)
        async throws -> T
    {
        do {
            return try await body()
        } catch let error as FHIRError where error.status == 410 || error.status == 404 {
            if case .patient = access { throw notFound(type, id) }
            throw error
        }
    }

    /// Refuses (403) a resource about to be written outside the patient's reach, or naming
    /// another patient in any reference.
    static func checkWrite(_ resource: JSONValue, type: String, id: String?, _ access: AccessGrant.Access) throws {
        guard case .patient(let patient) = access else { return }
        // A Patient of its own may not name another one either (the read rule shows Patient/P whole).
        let belongs = type == "Patient" ? id == patient : belongsByIndex(resource, type: type, patient: patient)
        if !namesNoOtherPatient(resource, than: patient) || !belongs {
            throw FHIRError(
                status: 403, code: "forbidden",
                "A patient/ scope may only write \(type) resources that belong to Patient/\(patient) and refer to no other patient"
            )
        }
    }

    /// The ids of every `Patient` named by a `reference` anywhere in `value` (absolute,
    /// versioned and contained resources included).
    static func referencedPatients(in value: JSONValue) -> Set<String> {
        var found = Set<String>()
        value.forEachReference { text in
            if let reference = ResourceReference(parsing: text), reference.type == "Patient" {
                found.insert(reference.id)
            }
        }
        return found
    }

    /// Refuses (403) conditional interactions under a patient restriction: their criteria
    /// would search outside the compartment and reveal what exists there.
    static func refuseConditional(_ type: String, _ access: AccessGrant.Access) throws {
        if case .patient = access {
            throw FHIRError(
                status: 403, code: "forbidden", "Conditional interactions on \(type) need a user/ or system/ scope")
        }
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
