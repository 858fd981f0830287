import FHIR
import FHIRStore

/// The PATCH interaction with a JSON Patch document (RFC 6902).
enum PatchInteraction {
    /// Applies `patch` to the current version of `type/id` and stores the result as the next
    /// version. The patch may not change the resource's type or id, nor make it larger or
    /// deeper than `validator.patchLimits` allows (422).
    static func apply(
        _ patch: JSONValue, type: String, id: String, ifMatch: Int?, validator: ResourceValidator,
        access: AccessGrant.Access = .unrestricted, in transaction: any FHIRTransaction
    ) async throws -> StoredResource {
        let current = try await AccessGuard.hidingGone(access, type: type, id: id) {
            try await transaction.read(type: type, id: id)
        }
        try AccessGuard.check(current, access)
        if let ifMatch, ifMatch != current.versionId {
            throw FHIRError.preconditionFailed("\(type)/\(id) is at version \(current.versionId), not \(ifMatch)")
        }
        // Bounded: `copy` doubles a document per operation (a 2 KB patch made a 400 MB resource).
        let patched = try JSONPatch.apply(
            patch, to: try JSONParser.parse(current.body ?? "{}"), limits: validator.patchLimits)
        guard patched["resourceType"]?.stringValue == type, patched["id"]?.stringValue == id else {
            throw FHIRError.unprocessable("A patch may not change the resource's type or id")
        }
        try validator.validateUpdate(patched, type: type, id: id)
        try AccessGuard.checkWrite(patched, type: type, id: id, access)
        return try await transaction.update(patched, type: type, id: id, ifMatch: current.versionId).resource
    }
}
