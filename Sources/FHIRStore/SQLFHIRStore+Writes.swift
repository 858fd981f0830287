import FHIR

extension SQLFHIRStore {
    /// The statements that write a version of a resource: `id` and `meta` stamped, the
    /// resource and history rows, and its index rows (replacing the old ones unless `isNew`).
    /// Stamped `lastUpdated` when given (a stamp taken earlier, in order), else now.
    func writeStatements(
        _ resource: JSONValue, type: String, id: String, version: Int, isNew: Bool, lastUpdated: Int64? = nil
    ) throws -> (statements: [SQLStatement], stored: StoredResource) {
        guard case .object(var object) = resource else { throw FHIRError.unprocessable("A resource must be a JSON object") }
        let now = lastUpdated ?? clock.now()
        object.set("id", .string(id), after: ["resourceType"])
        // versionId and lastUpdated are the server's: they replace whatever the client sent
        // and come first, as other servers write them.
        var meta = JSONObject([
            ("versionId", .string(String(version))),
            ("lastUpdated", .string(FHIRDateRange.instantString(milliseconds: now))),
        ])
        for (key, value) in object["meta"]?.objectValue ?? JSONObject() where key != "versionId" && key != "lastUpdated" {
            meta[key] = value
        }
        object.set("meta", .object(meta), after: ["resourceType", "id"])
        let stamped = JSONValue.object(object)
        let body = JSONWriter().string(stamped)
        // PostgreSQL text cannot hold NUL, and FHIR strings may not contain it either; refuse it
        // here too, so that a store without structure validation answers 422, not 500.
        if SQLFHIRTransaction.containsNUL(stamped) {
            throw FHIRError.unprocessable("The resource contains a NUL character, which FHIR strings do not allow")
        }
        // The body is stored once, in the version's history row; `resources` points at it.
        var statements: [SQLStatement]
        if isNew {
            statements = [SQLStatement(
                "INSERT INTO resources (type, id, version, last_updated, deleted) VALUES (?, ?, ?, ?, 0)",
                [.text(type), .text(id), .integer(Int64(version)), .integer(now)])]
        } else {
            statements = [SQLStatement(
                "UPDATE resources SET version = ?, last_updated = ?, deleted = 0 WHERE type = ? AND id = ?",
                [.integer(Int64(version)), .integer(now), .text(type), .text(id)])]
            statements += SQLFHIRTransaction.removeIndex(type: type, id: id)
        }
        statements.append(SQLStatement(
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, 0, ?)",
            [.text(type), .text(id), .integer(Int64(version)), .integer(now), .text(body)]))
        statements += SQLFHIRTransaction.insertIndex(
            indexer.entries(for: stamped, resourceType: type), type: type, id: id, dialect: database.dialect)
        return (statements, StoredResource(type: type, id: id, versionId: version, lastUpdated: now, deleted: false, body: body))
    }
}
