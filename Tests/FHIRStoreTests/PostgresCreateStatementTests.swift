import FHIR
import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// A create on PostgreSQL, alone or in a transaction, is one prepared statement with the index
/// rows bound as arrays (`PostgresCreateStatement`); an update still writes statement by
/// statement. Both must leave the same rows, and a connection whose preparation failed must
/// not keep failing.
@Suite struct PostgresCreateStatementTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }

    /// Every index table's columns but the resource id, in a fixed order.
    static let indexColumns: [(table: String, columns: String)] = [
        ("idx_string", "type, param, normalized, exact"),
        ("idx_token", "type, param, system, code, display"),
        ("idx_reference", "type, param, target_type, target_id, url, identifier_system, identifier_value"),
        ("idx_date", "type, param, low, high"),
        ("idx_uri", "type, param, value"),
        ("idx_number", "type, param, value, system, code"),
        (
            "idx_composite",
            "type, param, inst, comp, system, code, value, value_high, low, high, target_type, target_id, url, normalized"
        ),
    ]

    /// Resources whose index rows fill every table, with NULLs (codings without display,
    /// quantities without system), Unicode, quotes and numbers of every kind.
    static let resources = [
        #"""
        {"resourceType":"Observation","status":"final",
         "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
         "code":{"coding":[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel"}],"text":"BP"},
         "subject":{"reference":"Patient/p-1"},"effectiveDateTime":"2024-02-29T13:45:00+01:00",
         "valueQuantity":{"value":-0.125,"unit":"mmHg","code":"mm[Hg]"},
         "component":[
          {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
          {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":1e300,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}
        """#,
        #"""
        {"resourceType":"Patient","name":[{"family":"O'Brien \"Ünïcode\" 患者","given":["Zoë","A"]}],"birthDate":"1970",
         "gender":"female","identifier":[{"system":"urn:oid:1.2.3","value":"MRN-1"},{"value":"no-system"}],
         "telecom":[{"system":"phone","value":"+1 555"}],"generalPractitioner":[{"identifier":{"system":"urn:npi","value":"42"}}]}
        """#,
        #"{"resourceType":"ValueSet","status":"active","url":"http://example.org/vs|1","name":"VS","date":"2021-01-01"}"#,
        #"{"resourceType":"Basic","code":{"text":"perhaps no index rows at all"}}"#,
    ]

    func indexRows(_ store: SQLFHIRStore, id: String) async throws -> [String: [SQLRow]] {
        var rows: [String: [SQLRow]] = [:]
        for (table, columns) in Self.indexColumns {
            rows[table] = try await store.database.withConnection {
                try await $0.query("SELECT \(columns) FROM \(table) WHERE id = ? ORDER BY \(columns)", [.text(id)])
            }
        }
        return rows
    }

    @Test(arguments: postgres)
    func aCreateWritesTheSameRowsAsTheStatementByStatementPath(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            var tablesFilled = Set<String>()
            for text in Self.resources {
                let resource = try JSONParser.parse(text)
                let type = try #require(resource["resourceType"]?.stringValue)
                let alone = try await store.create(resource, type: type)
                let inTransaction = try await store.transaction { try await $0.create(resource, type: type, id: nil) }
                let aloneRows = try await indexRows(store, id: alone.id)
                let transactionRows = try await indexRows(store, id: inTransaction.id)
                #expect(aloneRows == transactionRows, "\(type)")
                // An update of the same content replaces the rows statement by statement.
                _ = try await store.update(resource, type: type, id: alone.id, ifMatch: 1)
                #expect(try await indexRows(store, id: alone.id) == aloneRows, "\(type) updated")
                tablesFilled.formUnion(aloneRows.filter { !$0.value.isEmpty }.keys)
                let read = try await store.vread(type: type, id: alone.id, version: 1)
                #expect(read.body == alone.body)
                #expect(try await store.read(type: type, id: inTransaction.id).body == inTransaction.body)
            }
            #expect(tablesFilled == Set(Self.indexColumns.map(\.table)))
            // What the rows are for: the created resources are found.
            let query = try SearchQueryParser().parse(
                resourceType: "Observation",
                parameters: [(name: "component-code-value-quantity", value: "http://loinc.org|8480-6$120")],
                strict: true)
            #expect(try await store.search(query).total == 2)
        }
    }

    /// The statement is prepared on a connection the first time it runs there. A preparation
    /// stopped by the time limit (here: waiting for a table another transaction locked) is
    /// remembered by postgres-nio for the connection's life; the store closes that connection,
    /// so the creates after it succeed.
    @Test(arguments: postgres)
    func aConnectionWhosePreparationFailedDoesNotKeepFailing(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let patient = try JSONParser.parse(#"{"resourceType":"Patient","name":[{"family":"Locked"}]}"#)
            let (locked, lockTaken) = AsyncStream<Void>.makeStream()
            let (unlock, createFailed) = AsyncStream<Void>.makeStream()
            // Holds the lock until the create has failed, however slowly the machine runs.
            async let holder: Void = store.database.withTransaction { executor in
                try await executor.query("LOCK TABLE idx_token IN ACCESS EXCLUSIVE MODE", [])
                lockTaken.yield()
                lockTaken.finish()
                var waiting = unlock.makeAsyncIterator()
                _ = await waiting.next()
            }
            var waiting = locked.makeAsyncIterator()
            _ = await waiting.next()
            await #expect(throws: SQLStatementTimeout.self) {
                try await SQLStatementTimeLimit.$current.withValue(.milliseconds(300)) {
                    _ = try await store.create(patient, type: "Patient")
                }
            }
            createFailed.yield()
            createFailed.finish()
            try await holder
            // More creates at once than the pool has connections (8), so that every connection
            // serves some, the one whose preparation failed included.
            for _ in 0..<3 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<12 {
                        group.addTask { _ = try await store.create(patient, type: "Patient") }
                    }
                    try await group.waitForAll()
                }
            }
            let query = try SearchQueryParser().parse(
                resourceType: "Patient", parameters: [(name: "family", value: "Locked")], strict: true)
            #expect(try await store.search(query).total == 36)
        }
    }
}
