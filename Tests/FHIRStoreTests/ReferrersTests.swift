import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Testing

/// Who refers to a resource, leaving types out (`$everything` leaves out the audit trail,
/// which grows with every read of the patient): the excluded rows are not read at all.
@Suite struct ReferrersTests {
    static func auditEvent(patient: String) -> String {
        #"{"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}},"entity":[{"what":{"reference":"Patient/\#(patient)"}}]}"#
    }

    @Test(arguments: TestDatabases.backends)
    func excludedTypesAreLeftOut(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let patient = try await store.create(try JSONParser.parse(#"{"resourceType":"Patient"}"#), type: "Patient")
            var observations: Set<String> = []
            for _ in 0..<2 {
                let body =
                    #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/\#(patient.id)"}}"#
                observations.insert(try await store.create(try JSONParser.parse(body), type: "Observation").id)
            }
            let encounter = try await store.create(
                try JSONParser.parse(#"{"resourceType":"Encounter","subject":{"reference":"Patient/\#(patient.id)"}}"#),
                type: "Encounter")
            for _ in 0..<30 {
                _ = try await store.create(
                    try JSONParser.parse(Self.auditEvent(patient: patient.id)), type: "AuditEvent")
            }
            func types(_ excluding: Set<String>) async throws -> [String: Int] {
                let links = try await store.reading {
                    try await $0.referrers(to: "Patient", id: patient.id, excludingTypes: excluding)
                }
                return Dictionary(grouping: links, by: \.type).mapValues { Set($0.map(\.id)).count }
            }
            #expect(try await types([]) == ["AuditEvent": 30, "Encounter": 1, "Observation": 2])
            #expect(try await types(["AuditEvent"]) == ["Encounter": 1, "Observation": 2])
            #expect(try await types(["AuditEvent", "Observation"]) == ["Encounter": 1])
            // Types before, between and after the stored ones, and one with no rows.
            #expect(
                try await types(["Account", "Condition", "Zzz"]) == [
                    "AuditEvent": 30, "Encounter": 1, "Observation": 2,
                ])
            #expect(try await types(["AuditEvent", "Encounter", "Observation"]) == [:])
            let observationIds = try await store.reading {
                try await $0.referrers(to: "Patient", id: patient.id, excludingTypes: ["AuditEvent", "Encounter"])
            }.map(\.id)
            #expect(Set(observationIds) == observations && !observationIds.contains(encounter.id))
        }
    }

    /// The plan, not a timing, is the proof: each part of the statement is a range of the
    /// index bounded by the excluded type, so its rows are never visited.
    @Test func theExcludedRangeIsNotScanned() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let (sql, binds) = SQLFHIRTransaction.referrersQuery(
                to: "Patient", id: "p1", excludingTypes: ["AuditEvent"])
            let steps = try await store.database.withConnection {
                try await $0.query("EXPLAIN QUERY PLAN " + sql, binds)
            }.compactMap { $0.last?.string }
            let searches = steps.filter { $0.hasPrefix("SEARCH") }
            #expect(
                searches == [
                    "SEARCH idx_reference USING INDEX idx_reference_target_type (target_id=? AND target_type=? AND type<?)",
                    "SEARCH idx_reference USING INDEX idx_reference_target_type (target_id=? AND target_type=? AND type>?)",
                ], "\(steps)")
            #expect(!steps.contains { $0.hasPrefix("SCAN") }, "\(steps)")
        }
    }

    /// A database made by an earlier version has the index without the type: opening it adds
    /// the new one and leaves the old (dropping it would lock the table at every replica's start).
    @Test(arguments: TestDatabases.backends)
    func anEarlierDatabaseGetsTheNewIndex(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            try await store.database.withTransaction { executor in
                try await executor.query("DROP INDEX idx_reference_target_type", [])
                try await executor.query(
                    "CREATE INDEX idx_reference_target ON idx_reference (target_id, target_type)", [])
            }
            _ = try await SQLFHIRStore(database: store.database)
            let catalog =
                store.database.dialect == .sqlite
                ? "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'idx_reference'"
                : "SELECT indexname FROM pg_indexes WHERE tablename = 'idx_reference' AND schemaname = current_schema()"
            let names = Set(
                try await store.database.withConnection { try await $0.query(catalog, []) }.compactMap { $0[0].string })
            #expect(names.isSuperset(of: ["idx_reference_target_type", "idx_reference_target"]), "\(names)")
            let (sql, binds) = SQLFHIRTransaction.referrersQuery(
                to: "Patient", id: "p1", excludingTypes: ["AuditEvent"])
            #expect(try await store.database.withConnection { try await $0.query(sql, binds) }.isEmpty)
        }
    }
}
