import FHIR
import FHIRStore

/// The searches of create, update and delete addressed by criteria instead of an id, shared
/// by the REST routes and Bundles through ``AuthorizedTransaction``, which checks the scopes
/// first. Each runs inside the caller's transaction, so the search and the write see the
/// same data.
struct ConditionalInteractions {
    let parser: SearchQueryParser

    /// What a conditional create did.
    enum CreateOutcome {
        case created(StoredResource)
        /// Exactly one resource matched: nothing was created.
        case existing(StoredResource)
    }

    /// The resources of `type` matching `criteria` (a query string), at most two (enough to
    /// tell none, one and many apart).
    func matches(type: String, criteria: String, in transaction: any FHIRTransaction) async throws -> [StoredResource] {
        let parameters = FHIRQueryString.parse(Substring(criteria))
        guard !parameters.isEmpty else {
            throw FHIRError.badRequest("A conditional interaction needs search criteria")
        }
        var query = try parser.parse(resourceType: type, parameters: parameters, strict: true)
        query.count = 2
        query.page = 1
        query.total = .none  // two matches tell all it needs; a count would be wasted work
        return try await transaction.search(query).resources
    }

    /// The lock a conditional create or update of `type` with `criteria` holds from its search
    /// to its commit: two servers on one PostgreSQL database (or two connections of one) would
    /// otherwise both find nothing and both create. Criteria as sent: the same criteria
    /// written differently are not serialized.
    static func lockName(type: String, criteria: String) -> String { "caduceus-conditional:\(type)?\(criteria)" }

    /// The one resource `criteria` (an `If-None-Exist`) names, `nil` when none matches, 412
    /// when several do. Holds the criteria's lock (``lockName(type:criteria:)``) until the
    /// transaction ends.
    func existing(type: String, criteria: String, in transaction: any FHIRTransaction) async throws -> StoredResource? {
        try await transaction.lock(names: [Self.lockName(type: type, criteria: criteria)])
        let found = try await matches(type: type, criteria: criteria, in: transaction)
        guard found.count <= 1 else {
            throw FHIRError.preconditionFailed(
                "The conditional create criteria '\(criteria)' match more than one \(type)")
        }
        return found.first
    }

    /// The id a conditional update (`PUT Type?criteria`) writes to: the one match, else the
    /// body's id, else `nil` for a new resource; 412 when several match, 400 when the body
    /// names another id than the match.
    func updateTarget(_ resource: JSONValue, type: String, criteria: String, in transaction: any FHIRTransaction)
        async throws -> String?
    {
        try await transaction.lock(names: [Self.lockName(type: type, criteria: criteria)])
        let found = try await matches(type: type, criteria: criteria, in: transaction)
        guard found.count <= 1 else {
            throw FHIRError.preconditionFailed(
                "The conditional update criteria '\(criteria)' match more than one \(type)")
        }
        let bodyId = resource["id"]?.stringValue
        if let match = found.first {
            if let bodyId, bodyId != match.id {
                throw FHIRError.badRequest("The body's id '\(bodyId)' is not the id '\(match.id)' the criteria found")
            }
            return match.id
        }
        return bodyId
    }

    /// `DELETE Type?criteria`: deletes the one match; none is not an error.
    func delete(type: String, criteria: String, in transaction: any FHIRTransaction) async throws -> StoredResource? {
        let found = try await matches(type: type, criteria: criteria, in: transaction)
        guard found.count <= 1 else {
            throw FHIRError.preconditionFailed(
                "The conditional delete criteria '\(criteria)' match more than one \(type)")
        }
        guard let match = found.first else { return nil }
        return try await transaction.delete(type: type, id: match.id, ifMatch: nil)
    }
}
