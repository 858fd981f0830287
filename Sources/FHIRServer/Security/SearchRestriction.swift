import FHIR
import FHIRStore

/// Limits a search to what a token may search.
///
/// Every type the search reaches (its own, `_type`, every chain target and `_has` source)
/// needs the search permission. Under a patient restriction the search is limited, in SQL,
/// to what the patient may see (``AccessGuard``'s rule, as a semi-join on the reference
/// index: ``SearchClause/patientVisible(_:links:)``), so that totals and paging stay right
/// and the binds stay a fixed few however much the patient has; and so are the inner clauses
/// of chains and `_has` (and of the chains inside a `_filter`): each is ANDed with the same
/// restriction on its own type, so that another patient's data can never decide whether
/// something matches.
struct SearchRestriction {
    let grant: AccessGrant

    func restrict(_ query: inout SearchQuery) throws {
        let types = query.resourceType.map { [$0] } ?? (query.types.isEmpty ? ["*"] : query.types)
        var patient: String?
        // Types a user/ or system/ scope lets the search reach whole.
        var unrestricted: [String] = []
        for type in types {
            if type == "*" {
                // Across every type: only a wildcard scope will do; a patient/ one limits it all.
                let wildcard = grant.scopes.filter { $0.resourceType == "*" && $0.permissions.contains("s") }
                guard !wildcard.isEmpty else {
                    throw AccessGrant.forbidden(.search, type: "all types (use _type, or a */ scope)")
                }
                if !wildcard.contains(where: { $0.context != .patient }) {
                    guard let id = grant.patient else { throw AccessGrant.forbidden(.search, type: "all types") }
                    patient = id
                }
            } else if case .patient(let id) = try grant.require(.search, type: type) {
                patient = id
            } else {
                unrestricted.append(type)
            }
        }
        query.clauses = try query.clauses.map(limited)
        guard let patient else { return }
        let visible = Self.visible(to: patient)
        if query.resourceType != nil || unrestricted.isEmpty {
            query.clauses.append(visible)
        } else {
            // `_type` mixing both: the types a user/ or system/ scope reaches whole, or visible.
            // (`reference` values of `_id` without an id: every resource of the type, as the SQL builder reads them.)
            var whole = SearchClause.id(in: [])
            whole.values = unrestricted.map { .reference(type: $0, id: nil, url: nil) }
            query.clauses.append(SearchClause.filter(.or([.clause(whole), .clause(visible)])))
        }
    }

    /// What a `patient/` token of `patient` may see (``AccessGuard``).
    static func visible(to patient: String) -> SearchClause {
        .patientVisible(patient, links: Compartment.patient.members)
    }

    /// `clause` with the inner clauses of its chains and `_has` limited to what the token may see.
    func limited(_ clause: SearchClause) throws -> SearchClause {
        var result = clause
        switch clause.target {
        case .chain(let reference, let targets):
            var limitedTargets: [ChainTarget] = []
            for var target in targets {
                target.clause = try limitedInner(type: target.type, clause: target.clause)
                limitedTargets.append(target)
            }
            result.target = .chain(reference: reference, targets: limitedTargets)
        case .has(let sourceType, let reference, let inner):
            result.target = .has(
                sourceType: sourceType, reference: reference, inner: try limitedInner(type: sourceType, clause: inner))
        case .filter(let filter):
            result.target = .filter(try limited(filter))
        default:
            break
        }
        return result
    }

    /// The inner clause of a chain or `_has` on `type`: searchable, and under a patient
    /// restriction ANDed, in SQL, with what the patient may see of `type`.
    func limitedInner(type: String, clause: SearchClause) throws -> SearchClause {
        let access = try grant.require(.search, type: type)
        let inner = try limited(clause)
        guard case .patient(let patient) = access else { return inner }
        return SearchClause.filter(.and([.clause(Self.visible(to: patient)), .clause(inner)]))
    }

    /// The ids the token's patient may see, by type (``AccessGuard``'s rule, from the
    /// reference index): the resources that refer to the patient through a parameter that
    /// counts, less those that also refer to another patient. For `$everything`, which lists
    /// every key of the patient's record anyway: held in memory, never bound as one list (the
    /// store reads the other side in statements of at most 500 keys).
    /// None of the `excluding` types is listed (what `$everything` leaves out).
    static func visibleIds(patient: String, excluding: Set<String>, in transaction: any FHIRTransaction)
        async throws -> [String: [String]]
    {
        var keys = Set<ResourceKey>()
        for link in try await transaction.referrers(to: "Patient", id: patient, excludingTypes: excluding)
        where link.type != "Patient" && AccessGuard.links(type: link.type, parameter: link.parameter) {
            keys.insert(ResourceKey(type: link.type, id: link.id))
        }
        // Those that name another patient too are nobody's: found from the other side.
        let stubs = keys.map {
            StoredResource(type: $0.type, id: $0.id, versionId: 0, lastUpdated: 0, deleted: false, body: nil)
        }
        let others = Set(
            try await transaction.referenceTargets(of: stubs).filter { $0.type == "Patient" && $0.id != patient }.map(
                \.id))
        for other in others {
            for link in try await transaction.referrers(to: "Patient", id: other, excludingTypes: excluding) {
                keys.remove(ResourceKey(type: link.type, id: link.id))
            }
        }
        var ids: [String: [String]] = ["Patient": [patient]]
        for key in keys.sorted(by: { ($0.type, $0.id) < ($1.type, $1.id) }) {
            ids[key.type, default: []].append(key.id)
        }
        return ids
    }
}
