import FHIR

/// A version of a resource ready to write but for its time stamp: the JSON text around
/// `meta.lastUpdated` and the statements that do not carry the time. The costly part of a
/// write (stamping `id` and `meta`, the JSON text, the index rows) is done before the
/// writer's turn; ``statements(stampedAt:)`` only splices the time in.
struct PreparedWrite: Sendable {
    let type: String
    let id: String
    let version: Int
    let isNew: Bool
    /// The JSON text before and after the value of `meta.lastUpdated`.
    let bodyBefore: [UInt8]
    let bodyAfter: [UInt8]
    /// Deleting the old index rows (an update) and inserting the new ones; the inserting
    /// statements `nil` when not built ahead (see ``SQLFHIRStore/prepareWrite``).
    let indexStatements: (removing: [SQLStatement], inserting: [SQLStatement]?)
    /// The dialect the inserting statements are built for when they were not built ahead.
    let dialect: SQLDialect
    /// The index rows the inserting statements write, by kind (see ``SQLFHIRTransaction/indexRows(_:)``).
    let indexRows: [IndexTableRows]

    /// The JSON text of this version stamped `now`.
    func body(stampedAt now: Int64) -> String {
        var bytes = bodyBefore
        JSONWriter.writeString(FHIRDateRange.instantString(milliseconds: now), into: &bytes)
        bytes += bodyAfter
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The statements that write this version stamped `now`, and what they store.
    func statements(stampedAt now: Int64) -> (statements: [SQLStatement], stored: StoredResource) {
        let body = body(stampedAt: now)
        // The body is stored once, in the version's history row; `resources` points at it.
        var statements: [SQLStatement]
        if isNew {
            statements = [
                SQLStatement(
                    "INSERT INTO resources (type, id, version, last_updated, deleted) VALUES (?, ?, ?, ?, 0)",
                    [.text(type), .text(id), .integer(Int64(version)), .integer(now)])
            ]
        } else {
            statements = [
                SQLStatement(
                    "UPDATE resources SET version = ?, last_updated = ?, deleted = 0 WHERE type = ? AND id = ?",
                    [.integer(Int64(version)), .integer(now), .text(type), .text(id)])
            ]
            statements += indexStatements.removing
        }
        statements.append(
            SQLStatement(
                "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, 0, ?)",
                [.text(type), .text(id), .integer(Int64(version)), .integer(now), .text(body)]))
        statements +=
            indexStatements.inserting
            ?? SQLFHIRTransaction.insertIndex(rows: indexRows, type: type, id: id, dialect: dialect)
        return (
            statements,
            StoredResource(type: type, id: id, versionId: version, lastUpdated: now, deleted: false, body: body)
        )
    }
}

extension SQLFHIRStore {
    /// The statements that write a version of a resource stamped now: `id` and `meta`
    /// stamped, the resource and history rows, and its index rows (replacing the old ones
    /// unless `isNew`).
    func writeStatements(
        _ resource: JSONValue, type: String, id: String, version: Int, isNew: Bool
    ) throws -> (statements: [SQLStatement], stored: StoredResource) {
        try prepareWrite(resource, type: type, id: id, version: version, isNew: isNew).statements(
            stampedAt: clock.now())
    }

    /// Everything of a write but its time: see ``PreparedWrite``. `statementsAhead` false leaves
    /// the index rows' statements to ``PreparedWrite/statements(stampedAt:)``: a transaction's
    /// creates are written together from their rows (`SQLFHIRTransaction.commit(_:)` of several creates),
    /// and building them for each was wasted work.
    func prepareWrite(
        _ resource: JSONValue, type: String, id: String, version: Int, isNew: Bool, statementsAhead: Bool = true
    ) throws -> PreparedWrite {
        let object = try Self.stamped(resource, id: id, version: version, lastUpdated: .null)
        let stamped = JSONValue.object(object)
        // The index rows do not depend on the time: `_lastUpdated` is a column of `resources`,
        // not an indexed path (WritePathTests checks that no indexed path reads meta's stamp).
        let rows = SQLFHIRTransaction.indexRows(indexer.entries(for: stamped, resourceType: type))
        let inserting =
            statementsAhead
            ? SQLFHIRTransaction.insertIndex(rows: rows, type: type, id: id, dialect: database.dialect) : nil
        let (before, after) = Self.jsonAroundLastUpdated(object)
        return PreparedWrite(
            type: type, id: id, version: version, isNew: isNew, bodyBefore: before, bodyAfter: after,
            indexStatements: (isNew ? [] : SQLFHIRTransaction.removeIndex(type: type, id: id), inserting),
            dialect: database.dialect, indexRows: rows)
    }

    /// The compact JSON text of `object` (as ``JSONWriter`` writes it) before and after the
    /// value of its `meta.lastUpdated`, which must be present.
    static func jsonAroundLastUpdated(_ object: JSONObject) -> (before: [UInt8], after: [UInt8]) {
        let writer = JSONWriter()
        var output: [UInt8] = []
        output.reserveCapacity(4096)
        var split: Int?
        func writeObject(_ object: JSONObject, isMeta: Bool) {
            output.append(UInt8(ascii: "{"))
            for (index, (key, value)) in object.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                if isMeta, key == "lastUpdated", split == nil {
                    split = output.count
                } else if !isMeta, key == "meta", split == nil, case .object(let meta) = value {
                    writeObject(meta, isMeta: true)
                } else {
                    writer.write(value, into: &output)
                }
            }
            output.append(UInt8(ascii: "}"))
        }
        writeObject(object, isMeta: false)
        let at = split ?? output.count
        return (Array(output[..<at]), Array(output[at...]))
    }

    /// `resource` with `id` and `meta` stamped: versionId and lastUpdated are the server's,
    /// they replace whatever the client sent and come first, as other servers write them.
    static func stamped(_ resource: JSONValue, id: String, version: Int, lastUpdated: JSONValue) throws -> JSONObject {
        guard case .object(var object) = resource else {
            throw FHIRError.unprocessable("A resource must be a JSON object")
        }
        object.set("id", .string(id), after: ["resourceType"])
        var meta = JSONObject([("versionId", .string(String(version))), ("lastUpdated", lastUpdated)])
        for (key, value) in object["meta"]?.objectValue ?? JSONObject() where key != "versionId" && key != "lastUpdated"
        {
            meta[key] = value
        }
        object.set("meta", .object(meta), after: ["resourceType", "id"])
        // PostgreSQL text cannot hold NUL, and FHIR strings may not contain it either; refuse it
        // here too, so that a store without structure validation answers 422, not 500.
        if SQLFHIRTransaction.containsNUL(.object(object)) {
            throw FHIRError.unprocessable("The resource contains a NUL character, which FHIR strings do not allow")
        }
        return object
    }

    /// Writes the first version of a new resource on PostgreSQL with ``PostgresCreateStatement``,
    /// grouped with concurrent creates by ``postgresCreates``.
    func createOnPostgres(_ resource: JSONValue, type: String, id: String, database: PostgresDatabase) async throws
        -> StoredResource
    {
        let now = clock.now()
        let stamped = JSONValue.object(
            try Self.stamped(
                resource, id: id, version: 1, lastUpdated: .string(FHIRDateRange.instantString(milliseconds: now))))
        let body = JSONWriter().string(stamped)
        let rows = SQLFHIRTransaction.indexRows(indexer.entries(for: stamped, resourceType: type))
        try await postgresCreates.create(
            PostgresCreateStatement.Resource(
                type: type, id: id, version: 1, lastUpdated: now, body: body, indexRows: rows),
            on: database)
        return StoredResource(type: type, id: id, versionId: 1, lastUpdated: now, deleted: false, body: body)
    }
}
