import FHIR
import FHIRStore

/// Create, update and delete addressed by search criteria instead of an id, shared by the
/// REST routes and transaction Bundles. Each runs inside the caller's transaction, so the
/// search and the write see the same data.
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
        return try await transaction.search(query).resources
    }

    /// The one resource `criteria` (an `If-None-Exist`) names, `nil` when none matches, 412
    /// when several do.
    func existing(type: String, criteria: String, in transaction: any FHIRTransaction) async throws -> StoredResource? {
        let found = try await matches(type: type, criteria: criteria, in: transaction)
        guard found.count <= 1 else {
            throw FHIRError.preconditionFailed("The conditional create criteria '\(criteria)' match more than one \(type)")
        }
        return found.first
    }

    func create(
        _ resource: JSONValue, type: String, id: String? = nil, ifNoneExist criteria: String?, in transaction: any FHIRTransaction
    ) async throws -> CreateOutcome {
        if let criteria, let found = try await existing(type: type, criteria: criteria, in: transaction) {
            return .existing(found)
        }
        return .created(try await transaction.create(resource, type: type, id: id))
    }

    /// The id a conditional update (`PUT Type?criteria`) writes to: the one match, else the
    /// body's id, else `nil` for a new resource; 412 when several match, 400 when the body
    /// names another id than the match.
    func updateTarget(_ resource: JSONValue, type: String, criteria: String, in transaction: any FHIRTransaction) async throws -> String? {
        let found = try await matches(type: type, criteria: criteria, in: transaction)
        guard found.count <= 1 else {
            throw FHIRError.preconditionFailed("The conditional update criteria '\(criteria)' match more than one \(type)")
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

    /// `PUT Type?criteria`: updates the one match, or creates when there is none.
    func update(
        _ resource: JSONValue, type: String, criteria: String, ifMatch: Int?, in transaction: any FHIRTransaction
    ) async throws -> UpdateOutcome {
        guard let id = try await updateTarget(resource, type: type, criteria: criteria, in: transaction) else {
            return UpdateOutcome(resource: try await transaction.create(resource, type: type, id: nil), created: true)
        }
        return try await transaction.update(resource, type: type, id: id, ifMatch: ifMatch)
    }

    /// `DELETE Type?criteria`: deletes the one match; none is not an error.
    func delete(type: String, criteria: String, in transaction: any FHIRTransaction) async throws -> StoredResource? {
        let found = try await matches(type: type, criteria: criteria, in: transaction)
        guard found.count <= 1 else {
            throw FHIRError.preconditionFailed("The conditional delete criteria '\(criteria)' match more than one \(type)")
        }
        guard let match = found.first else { return nil }
        return try await transaction.delete(type: type, id: match.id, ifMatch: nil)
    }
}
