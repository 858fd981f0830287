import FHIR
import FHIRStore

/// Limits a search to what a token may search, inside the transaction that runs it.
///
/// Every type the search reaches (its own, `_type`, every chain target and `_has` source)
/// needs the search permission. Under a patient restriction the search is limited, in SQL,
/// to the ids the patient may see (``AccessGuard``), so that totals and paging stay right;
/// and so are the inner clauses of chains and `_has`: each is first answered among the ids
/// of its type the patient may see, then replaced by an `_id` clause naming the matches, so
/// that another patient's data can never decide whether something matches.
struct SearchRestriction {
    let grant: AccessGrant
    let parser: SearchQueryParser
    let transaction: any FHIRTransaction
    /// The ids the patient may see, by type; computed once, on first need.
    private var visibleIds: [String: [String]]?

    init(grant: AccessGrant, parser: SearchQueryParser, transaction: any FHIRTransaction) {
        self.grant = grant
        self.parser = parser
        self.transaction = transaction
    }

    mutating func restrict(_ query: inout SearchQuery) async throws {
        let types = query.resourceType.map { [$0] } ?? (query.types.isEmpty ? ["*"] : query.types)
        var patient: String?
        // Types a user/ or system/ scope lets the search reach whole.
        var unrestricted = Set<String>()
        for type in types {
            if type == "*" {
                // Across every type: only a wildcard scope will do; a patient/ one limits it all.
                let wildcard = grant.scopes.filter { $0.resourceType == "*" && $0.permissions.contains("s") }
                guard !wildcard.isEmpty else { throw AccessGrant.forbidden(.search, type: "all types (use _type, or a */ scope)") }
                if !wildcard.contains(where: { $0.context != .patient }) {
                    guard let id = grant.patient else { throw AccessGrant.forbidden(.search, type: "all types") }
                    patient = id
                }
            } else if case .patient(let id) = try grant.require(.search, type: type) {
                patient = id
            } else {
                unrestricted.insert(type)
            }
        }
        var clauses: [SearchClause] = []
        for clause in query.clauses { clauses.append(try await limited(clause)) }
        query.clauses = clauses
        guard patient != nil else { return }
        let ids = try await self.ids()
        if let type = query.resourceType {
            query.clauses.append(try idClause(ids[type] ?? []))
        } else {
            // Across types each type is limited to its own visible ids (an id of one type may be
            // another's), so that SQL alone decides and totals count nothing hidden.
            var keys: [(type: String, id: String?)] = []
            for type in query.types.isEmpty ? ids.keys.sorted() : query.types {
                if unrestricted.contains(type) { keys.append((type, nil)) } else { keys += (ids[type] ?? []).map { (type, $0) } }
            }
            query.clauses.append(try typedIdClause(keys))
        }
    }

    /// `clause` with the inner clauses of its chains and `_has` limited to what the token may see.
    mutating func limited(_ clause: SearchClause) async throws -> SearchClause {
        var result = clause
        switch clause.target {
        case .chain(let reference, let targets):
            var limitedTargets: [ChainTarget] = []
            for var target in targets {
                target.clause = try await limitedInner(type: target.type, clause: target.clause)
                limitedTargets.append(target)
            }
            result.target = .chain(reference: reference, targets: limitedTargets)
        case .has(let sourceType, let reference, let inner):
            result.target = .has(sourceType: sourceType, reference: reference, inner: try await limitedInner(type: sourceType, clause: inner))
        default:
            break
        }
        return result
    }

    /// The inner clause of a chain or `_has` on `type`: searchable, and under a patient
    /// restriction answered first among the visible ids.
    private mutating func limitedInner(type: String, clause: SearchClause) async throws -> SearchClause {
        let access = try grant.require(.search, type: type)
        let inner = try await limited(clause)
        guard case .patient = access else { return inner }
        let candidates = try await ids()[type] ?? []
        guard !candidates.isEmpty else { return try idClause([]) }
        var query = try parser.parse(resourceType: type, parameters: [], strict: true)
        query.clauses = [try idClause(candidates), inner]
        query.count = candidates.count
        query.omitTotal = true
        let matches = try await transaction.search(query).resources.map(\.id)
        return try idClause(matches)
    }

    /// The ids the token's patient may see, by type (``AccessGuard``'s rule, from the
    /// reference index): the resources that refer to the patient through a parameter that
    /// counts, less those that also refer to another patient.
    mutating func ids() async throws -> [String: [String]] {
        if let visibleIds { return visibleIds }
        guard let patient = grant.patient else { return [:] }
        let ids = try await Self.visibleIds(patient: patient, in: transaction)
        visibleIds = ids
        return ids
    }

    static func visibleIds(patient: String, in transaction: any FHIRTransaction) async throws -> [String: [String]] {
        var keys = Set<ResourceKey>()
        for link in try await transaction.referrers(to: "Patient", id: patient)
        where link.type != "Patient" && AccessGuard.links(type: link.type, parameter: link.parameter) {
            keys.insert(ResourceKey(type: link.type, id: link.id))
        }
        // Those that name another patient too are nobody's: found from the other side.
        let stubs = keys.map { StoredResource(type: $0.type, id: $0.id, versionId: 0, lastUpdated: 0, deleted: false, body: nil) }
        let others = Set(try await transaction.referenceTargets(of: stubs).filter { $0.type == "Patient" && $0.id != patient }.map(\.id))
        for other in others {
            for link in try await transaction.referrers(to: "Patient", id: other) { keys.remove(ResourceKey(type: link.type, id: link.id)) }
        }
        var ids: [String: [String]] = ["Patient": [patient]]
        for key in keys.sorted(by: { ($0.type, $0.id) < ($1.type, $1.id) }) { ids[key.type, default: []].append(key.id) }
        return ids
    }

    /// `_id` in `ids`; none matches nothing. The values are set after parsing one: a
    /// compartment may hold more ids than a client may OR in one parameter.
    func idClause(_ ids: [String]) throws -> SearchClause {
        guard var clause = try parser.parse(resourceType: nil, parameters: [("_id", "-")], strict: true).clauses.first else {
            throw FHIRError(status: 500, code: "exception", "The _id restriction could not be built")
        }
        // Empty: nothing matches (the placeholder value "-" is a valid id, so it may not stay).
        clause.values = ids.map { .token(system: nil, code: $0) }
        return clause
    }

    /// `_id` by type: each `(type, id)` names one resource, `(type, nil)` every resource of the
    /// type (as the SQL builder reads `reference` values of an `_id` clause); none matches nothing.
    func typedIdClause(_ keys: [(type: String, id: String?)]) throws -> SearchClause {
        var clause = try idClause([])
        clause.values = keys.map { .reference(type: $0.type, id: $0.id, url: nil) }
        return clause
    }
}
