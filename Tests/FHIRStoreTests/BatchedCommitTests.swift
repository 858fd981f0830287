import FHIR
import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// Prepared creates committed together (one statement per table on SQLite, one on
/// PostgreSQL) write exactly what they write committed one by one: the same resource and
/// history rows, bodies and index rows, each stamped in its turn.
@Suite struct BatchedCommitTests {
    /// The first 45 resources of a Synthea patient (Patient, Encounters, Conditions,
    /// Observations with components, Claims) and a ValueSet (a `uri` row, which Synthea has
    /// none of): every index kind, 46 being 32 + 8 + 4 + 2 rows.
    static func syntheaResources() throws -> [(type: String, resource: JSONValue)] {
        let directory = TestDatabases.sharedFHIRDirectory.appendingPathComponent("synthea")
        let file = try #require(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
                .sorted()
                .first)
        let bundle = try JSONParser.parse(Array(try Data(contentsOf: directory.appendingPathComponent(file))))
        let synthea = (bundle["entry"]?.arrayValue ?? []).prefix(45).compactMap {
            entry -> (type: String, resource: JSONValue)? in
            guard let resource = entry["resource"], let type = resource["resourceType"]?.stringValue else { return nil }
            return (type, resource)
        }
        let valueSet = try JSONParser.parse(
            #"{"resourceType":"ValueSet","url":"http://example.org/fhir/ValueSet/batched","status":"active"}"#)
        return synthea + [("ValueSet", valueSet)]
    }

    /// Every row of the store's tables, as text, sorted; a body and its stamp left out (they
    /// differ by the time of the commit), the body compared without `meta.lastUpdated`.
    static func contents(_ store: SQLFHIRStore) async throws -> [String: [String]] {
        var tables: [String: [String]] = [:]
        for table in ["idx_token", "idx_reference", "idx_date", "idx_string", "idx_number", "idx_uri", "idx_composite"]
        {
            let rows = try await store.database.withConnection { try await $0.query("SELECT * FROM \(table)", []) }
            tables[table] = rows.map { "\($0)" }.sorted()
        }
        let resources = try await store.database.withConnection {
            try await $0.query("SELECT type, id, version, deleted FROM resources", [])
        }
        tables["resources"] = resources.map { "\($0)" }.sorted()
        let history = try await store.database.withConnection {
            try await $0.query("SELECT type, id, version, deleted, body FROM resource_history", [])
        }
        tables["resource_history"] = try history.map { row -> String in
            guard case .text(let text) = row[4] else { return "\(row)" }
            var body = try JSONParser.parse(text).objectValue ?? JSONObject()
            var meta = body["meta"]?.objectValue ?? JSONObject()
            meta["lastUpdated"] = nil
            body["meta"] = .object(meta)
            return "\(row[0...3]) \(JSONWriter().string(.object(body)))"
        }.sorted()
        return tables
    }

    @Test(arguments: TestDatabases.backends)
    func togetherTheyWriteWhatTheyWriteOneByOne(backend: TestBackend) async throws {
        let resources = try Self.syntheaResources()
        #expect(resources.count == 46)
        var written: [[String: [String]]] = []
        for together in [true, false] {
            try await TestDatabases.withStore(backend) { store in
                let stored = try await store.transaction { transaction in
                    let prepared = try resources.enumerated().map { offset, item in
                        try transaction.prepareCreate(item.resource, type: item.type, id: "r\(offset)")
                    }
                    if together { return try await transaction.commit(prepared) }
                    var stored: [StoredResource] = []
                    for item in prepared { stored.append(try await transaction.commit(item)) }
                    return stored
                }
                #expect(stored.map(\.id) == resources.indices.map { "r\($0)" })
                // Stamped in order, and what a read gives.
                #expect(zip(stored, stored.dropFirst()).allSatisfy { $0.lastUpdated <= $1.lastUpdated })
                let read = try await store.read(type: "ValueSet", id: "r45")
                #expect(read.body == stored[45].body)
                #expect(read.lastUpdated == stored[45].lastUpdated)
                written.append(try await Self.contents(store))
            }
        }
        #expect(written.count == 2)
        for table in written[0].keys.sorted() {
            #expect(written[0][table] == written[1][table], "\(backend) \(table)")
        }
        // Not a comparison of nothing: every index kind has rows.
        #expect(written[0].values.allSatisfy { !$0.isEmpty }, "\(written[0].mapValues(\.count))")
    }
}
