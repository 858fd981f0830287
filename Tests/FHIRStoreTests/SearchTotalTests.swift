import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Testing

/// `_total=none|estimate|accurate`, and the page of a search on SQLite read in the order of
/// its driving clause's index rows (no sort of every match, pages without gaps or repeats).
@Suite struct SearchTotalTests {
    /// A patient and `count` heart rates of theirs, written in order; the Observations' ids.
    func seed(_ store: SQLFHIRStore, count: Int) async throws -> (patient: String, observations: [String]) {
        let patient = try await store.create(
            try JSONParser.parse(#"{"resourceType":"Patient","name":[{"family":"Total"}]}"#), type: "Patient")
        var ids: [String] = []
        for value in 0..<count {
            // Every third one carries the code twice (two codings): one match, two index rows.
            let second = value % 3 == 0 ? #",{"system":"http://example.org","code":"8867-4"}"# : ""
            let body =
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}\#(second)]},"subject":{"reference":"Patient/\#(patient.id)"},"valueQuantity":{"value":\#(value)}}"#
            ids.append(try await store.create(try JSONParser.parse(body), type: "Observation").id)
        }
        return (patient.id, ids)
    }

    func query(_ parameters: [(String, String)], bound: Int? = nil) throws -> SearchQuery {
        var query = try SearchQueryParser().parse(resourceType: "Observation", parameters: parameters, strict: true)
        if let bound { query.estimateBound = bound }
        return query
    }

    @Test(arguments: TestDatabases.backends)
    func totalModes(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let (patient, _) = try await seed(store, count: 25)
            let base = [("subject", "Patient/\(patient)"), ("code", "8867-4"), ("_count", "10")]

            let accurate = try await store.search(try query(base + [("_total", "accurate")]))
            #expect(accurate.total == 25 && accurate.totalIsExact && accurate.resources.count == 10)
            let none = try await store.search(try query(base + [("_total", "none")]))
            #expect(none.total == nil && none.resources.count == 10)
            // The default is estimate: counted, since 25 is under the bound.
            let byDefault = try await store.search(try query(base))
            #expect(byDefault.total == 25 && byDefault.totalIsExact)
            // On the last page the total is known without counting, whatever the bound.
            let last = try await store.search(try query(base + [("_page", "3")], bound: 5))
            #expect(last.total == 25 && last.totalIsExact && last.resources.count == 5)
            // Past the bound: PostgreSQL's planner estimate (marked inexact), SQLite none.
            let past = try await store.search(try query(base + [("_total", "estimate")], bound: 5))
            #expect(past.resources.count == 10)
            switch backend {
            case .sqlite: #expect(past.total == nil)
            case .postgres:
                let estimate = try #require(past.total)
                #expect(estimate >= 6 && !past.totalIsExact)
            }
            // _summary=count and _count=0 ask for the total alone: counted past the bound.
            let counted = try await store.search(try query(base + [("_summary", "count")], bound: 5))
            #expect(counted.total == 25 && counted.totalIsExact)
            let zero = try await store.search(
                try query([("subject", "Patient/\(patient)"), ("_count", "0")], bound: 5))
            #expect(zero.total == 25 && zero.totalIsExact && zero.resources.isEmpty)
        }
    }

    @Test func totalParsing() throws {
        #expect(try query([]).total == .estimate)
        #expect(try query([("_total", "none")]).total == TotalMode.none)
        #expect(try query([("_total", "accurate")]).total == .accurate)
        #expect(throws: FHIRError.self) { try query([("_total", "all")]) }
    }

    /// Paging through the walk: every match once, in the order written.
    @Test(arguments: TestDatabases.backends)
    func pagesCoverEveryMatchOnce(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let (patient, ids) = try await seed(store, count: 23)
            var seen: [String] = []
            for page in 1...4 {
                let result = try await store.search(
                    try query([
                        ("subject", "Patient/\(patient)"), ("code", "http://loinc.org|8867-4"), ("_count", "7"),
                        ("_page", String(page)),
                    ]))
                #expect(result.total == 23)
                seen += result.resources.map(\.id)
            }
            #expect(seen.count == ids.count && Set(seen) == Set(ids))
            // Two values of the driving clause matching one resource: still once.
            let both = try await store.search(
                try query([
                    ("code", "http://loinc.org|8867-4,http://example.org|8867-4"), ("_count", "100"),
                    ("_total", "accurate"),
                ]))
            #expect(both.resources.count == ids.count && Set(both.resources.map(\.id)) == Set(ids) && both.total == 23)
            guard backend == .sqlite else { return }
            // On SQLite the order is that of the writes (PostgreSQL's, by last_updated, breaks
            // ties within a millisecond by id), and an update moves a resource to the end.
            #expect(seen == ids)
            #expect(both.resources.map(\.id) == ids)
            let first = try await store.read(type: "Observation", id: ids[0])
            _ = try await store.update(
                try JSONParser.parse(try #require(first.body)), type: "Observation", id: ids[0], ifMatch: nil)
            let after = try await store.search(try query([("subject", "Patient/\(patient)"), ("_count", "100")]))
            #expect(after.resources.map(\.id) == Array(ids.dropFirst()) + [ids[0]])
        }
    }

    /// The soak's search, a patient's Observations by code: its page comes from the reference
    /// index walked in order, with no sort of the matches (the plan, not a timing, is the proof).
    @Test func patientSearchPageNeedsNoSortOfTheMatches() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let sql = SearchSQLBuilder(dialect: .sqlite).build(
                try query([("subject", "Patient/p1"), ("code", "8867-4"), ("_count", "10")]))
            let steps = try await store.database.withConnection {
                try await $0.query("EXPLAIN QUERY PLAN " + sql.select, sql.selectBinds)
            }.map { ($0[1].int ?? -1, $0.last?.string ?? "") }
            // The page subquery's steps (the outer query only orders the page's 10 rows).
            guard
                let materialize = steps.first(where: { $0.1.hasPrefix("MATERIALIZE") || $0.1.hasPrefix("CO-ROUTINE") })
            else {
                Issue.record("no page subquery in \(steps)")
                return
            }
            let pageSteps = steps.filter { $0.0 != 0 }.map(\.1)
            #expect(!pageSteps.contains { $0.contains("TEMP B-TREE") }, "the page sorts its matches: \(steps)")
            #expect(
                pageSteps.contains {
                    $0.contains(
                        "SEARCH d USING INDEX idx_reference_value (type=? AND param=? AND target_id=? AND target_type=?)"
                    )
                }, "\(steps)")
            #expect(!pageSteps.contains { $0.hasPrefix("SCAN") }, "\(materialize): \(steps)")
            // The estimate's bounded count walks the same rows and stops at the bound: no
            // list of every match built first (`IN (subquery)` builds one, whatever the LIMIT).
            let (counting, binds) = SearchSQLBuilder.boundedCount(sql, bound: 101)
            let countSteps = try await store.database.withConnection {
                try await $0.query("EXPLAIN QUERY PLAN " + counting, binds)
            }.compactMap { $0.last?.string }
            #expect(
                countSteps.contains {
                    $0.contains(
                        "SEARCH d USING INDEX idx_reference_value (type=? AND param=? AND target_id=? AND target_type=?)"
                    )
                }, "\(countSteps)")
            #expect(
                !countSteps.contains { $0.contains("LIST SUBQUERY") || $0.contains("TEMP B-TREE") }, "\(countSteps)")
        }
    }

    /// `_total=estimate`'s count runs after a full page, as a statement of its own: writes in
    /// between can leave it below what the pages already hold. Such a count is not given as an
    /// exact total (which would end the paging with a `last` link before the page shown).
    @Test(arguments: TestDatabases.backends)
    func aCountBelowThePagesIsNotExact(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let (patient, _) = try await seed(store, count: 25)
            let second = try query([("subject", "Patient/\(patient)"), ("_count", "10"), ("_page", "2")])
            let sql = SearchSQLBuilder(dialect: store.database.dialect).build(second)
            try await store.database.withConnection { executor in
                let transaction = SQLFHIRTransaction(store: store, executor: executor)
                // Pages 1 and 2 full (20 shown), a count of 15 after deletes.
                let (total, exact) = try await transaction.total(of: second, sql: sql, pageSize: 10, counted: 15)
                #expect(
                    !(exact && total != nil), "a count below the pages was taken as exact: \(String(describing: total))"
                )
                if backend == .postgres { #expect(total == 20) }
                // A count that covers the pages is still exact.
                let (fair, fairExact) = try await transaction.total(of: second, sql: sql, pageSize: 10, counted: 25)
                #expect(fair == 25 && fairExact)
            }
        }
    }
}
