import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Testing

/// A reference's text is kept in the index (`idx_reference.url`) only when a search can ask for
/// it, an absolute URL: a relative reference is found by its target's type and id. Searches by
/// absolute URL, by `Type/id` and by canonical still find what they found.
@Suite struct ReferenceURLTests {
    @Test(arguments: TestDatabases.backends)
    func onlyAbsoluteURLsAreKeptAndEveryFormIsStillFound(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            func create(_ text: String, _ type: String) async throws -> String {
                try await store.create(try JSONParser.parse(text), type: type).id
            }
            func observation(subject: String) -> String {
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"\#(subject)"}}"#
            }
            let relative = try await create(observation(subject: "Patient/p1"), "Observation")
            let absolute = try await create(observation(subject: "http://other.example/fhir/Patient/p2"), "Observation")
            let answer = try await create(
                #"{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://example.org/forms/intake"}"#,
                "QuestionnaireResponse")

            func found(_ type: String, _ name: String, _ value: String) async throws -> Set<String> {
                let query = try SearchQueryParser().parse(resourceType: type, parameters: [(name, value)], strict: true)
                return Set(try await store.search(query).resources.map(\.id))
            }
            #expect(try await found("Observation", "subject", "Patient/p1") == [relative])
            #expect(try await found("Observation", "subject", "http://other.example/fhir/Patient/p2") == [absolute])
            // By type and id, an absolute reference is found too: its target's type and id are indexed.
            #expect(try await found("Observation", "subject", "Patient/p2") == [absolute])
            #expect(try await found("Observation", "subject", "http://elsewhere.example/fhir/Patient/p9") == [])
            #expect(
                try await found("QuestionnaireResponse", "questionnaire", "http://example.org/forms/intake") == [answer]
            )
            #expect(try await found("QuestionnaireResponse", "questionnaire", "http://example.org/forms/other") == [])

            let urls = try await store.database.withConnection {
                try await $0.query(
                    "SELECT id, url FROM idx_reference WHERE param IN ('subject', 'questionnaire')", [])
            }
            let byId = Dictionary(urls.map { ($0[0].string ?? "", $0[1].string) }, uniquingKeysWith: { $1 })
            #expect(byId[relative] == .some(nil))
            #expect(byId[absolute] == "http://other.example/fhir/Patient/p2")
            #expect(byId[answer] == "http://example.org/forms/intake")
        }
    }

    /// The partial index answers a search by URL: `url = ?` implies `url IS NOT NULL`, which both
    /// databases' planners prove.
    @Test(arguments: TestDatabases.backends)
    func aSearchByURLReadsThePartialIndex(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let sql = "SELECT id FROM idx_reference WHERE type = ? AND param = ? AND url = ?"
            let binds: [SQLValue] = [.text("Observation"), .text("subject"), .text("http://x.example/Patient/1")]
            let plan = try await store.database.withConnection { executor -> [String] in
                if backend == .sqlite {
                    return try await executor.query("EXPLAIN QUERY PLAN " + sql, binds).compactMap { $0.last?.string }
                }
                // An empty table is read whole at any cost: forbid that, so the plan shows the index.
                _ = try await executor.query("SELECT set_config('enable_seqscan', 'off', false)", [])
                let plan = try await executor.query("EXPLAIN " + sql, binds).compactMap { $0.first?.string }
                _ = try await executor.query("SELECT set_config('enable_seqscan', 'on', false)", [])
                return plan
            }
            #expect(plan.contains { $0.contains("idx_reference_absolute_url") }, "\(plan)")
        }
    }
}
