import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Testing

/// `_sort` reads each resource's key through the per-resource (type, id) index. Planned on the
/// value index (type, param) instead, one sort key scanned every resource of the type for each
/// resource (5 s for `Patient?_sort=family` on 3,000 Patients, attacker finding F3). The plan is
/// asserted, not a duration: timings are no proof here.
@Suite struct SortPlanTests {
    /// The SQLite plan of `parameters` on `type`, one line per step.
    func plan(_ store: SQLFHIRStore, type: String?, _ parameters: [(String, String)]) async throws -> [String] {
        let query = try SearchQueryParser().parse(resourceType: type, parameters: parameters, strict: true)
        let statements = SearchSQLBuilder(dialect: .sqlite).build(query)
        let rows = try await store.database.withConnection {
            try await $0.query("EXPLAIN QUERY PLAN " + statements.select, statements.selectBinds)
        }
        return rows.compactMap { $0.last?.string }
    }

    @Test(arguments: [
        ("Patient", "family", "idx_string"), ("Patient", "-family", "idx_string"), ("Patient", "gender", "idx_token"),
        ("Patient", "general-practitioner", "idx_reference"), ("Patient", "birthdate", "idx_date"),
        ("Patient", "-birthdate", "idx_date"), ("ValueSet", "url", "idx_uri"),
        ("Observation", "value-quantity", "idx_number"),
    ])
    func everySortKindUsesThePerResourceIndex(type: String, sort: String, table: String) async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            // Alone, behind a clause (the match-driven form), and as a second key.
            let forms: [[(String, String)]] = [
                [("_sort", sort)],
                [("_lastUpdated", "ge2000-01-01"), ("_sort", sort)],
                [("_sort", "-_lastUpdated," + sort)],
            ]
            for parameters in forms {
                let steps = try await plan(store, type: type, parameters)
                let sortSteps = steps.filter { $0.contains(" x ") || $0.hasSuffix(" x") }
                #expect(!sortSteps.isEmpty, "no step reads the sort key: \(steps)")
                for step in sortSteps {
                    #expect(step.contains("USING INDEX \(table)_resource (type=? AND id=?)"), "\(parameters): \(steps)")
                }
            }
        }
    }

    @Test func systemLevelSortUsesThePerResourceIndex() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            for parameters in [[("_sort", "_tag")], [("_type", "Patient,Practitioner"), ("_sort", "-_source")]] {
                let steps = try await plan(store, type: nil, parameters)
                let sortSteps = steps.filter { $0.contains(" x ") || $0.hasSuffix(" x") }
                #expect(!sortSteps.isEmpty, "no step reads the sort key: \(steps)")
                for step in sortSteps {
                    #expect(step.contains("_resource (type=? AND id=?)"), "\(parameters): \(steps)")
                }
            }
        }
    }

    /// The order over a few thousand resources: the smallest of several names ascending,
    /// resources without the key last in the order they were written.
    @Test(arguments: TestDatabases.backends)
    func sortOverThousandsIsRight(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let count = 2500
            var expected: [(key: String?, id: String)] = []
            for batch in stride(from: 0, to: count, by: 500) {
                let made = try await store.transaction { transaction in
                    var made: [(String?, String)] = []
                    for index in batch..<(batch + 500) {
                        // Scrambled, unique keys; every 10th Patient has no name, every 7th a second,
                        // later-sorting name that MIN must not pick.
                        let key = index % 10 == 3 ? nil : "fam" + String(100_000 + (index * 7919) % count)
                        var names = key.map { [#"{"family":"\#($0)"}"#] } ?? []
                        if index % 7 == 0, key != nil { names.append(#"{"family":"zz\#(index)"}"#) }
                        let body = #"{"resourceType":"Patient","name":[\#(names.joined(separator: ","))]}"#
                        let stored = try await transaction.create(try JSONParser.parse(body), type: "Patient", id: nil)
                        made.append((key?.lowercased(), stored.id))
                    }
                    return made
                }
                expected += made.map { (key: $0.0, id: $0.1) }
            }
            let named = expected.filter { $0.key != nil }.sorted { $0.key! < $1.key! }
            let order = (named + expected.filter { $0.key == nil }).map(\.id)
            var seen: [String] = []
            for page in 1...5 {
                let query = try SearchQueryParser().parse(
                    resourceType: "Patient",
                    parameters: [
                        ("_sort", "family"), ("_count", "500"), ("_page", String(page)), ("_total", "accurate"),
                    ],
                    strict: true)
                let result = try await store.search(query)
                #expect(result.total == count)
                seen += result.resources.map(\.id)
            }
            #expect(seen.count == count)
            #expect(seen == order)
            if backend == .postgres {
                // PostgreSQL plans by statistics; with them, on the (type, id) index as well.
                let query = try SearchQueryParser().parse(
                    resourceType: "Patient", parameters: [("_sort", "family")], strict: true)
                let statements = SearchSQLBuilder(dialect: .postgres).build(query)
                let plan = try await store.database.withConnection { executor in
                    try await executor.query("ANALYZE", [])
                    return try await executor.query("EXPLAIN " + statements.select, statements.selectBinds)
                }.compactMap { $0.first?.string }
                #expect(plan.contains { $0.contains("using idx_string_resource on idx_string x") }, "\(plan)")
                #expect(!plan.contains { $0.contains("idx_string_value") }, "\(plan)")
            }
        }
    }
}
