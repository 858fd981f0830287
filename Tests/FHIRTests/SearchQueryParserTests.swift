@testable import FHIR
import Testing

@Suite struct SearchQueryParserTests {
    let parser = SearchQueryParser()

    func parse(_ pairs: [(String, String)], type: String? = "Patient", strict: Bool = false) throws -> SearchQuery {
        try parser.parse(resourceType: type, parameters: pairs.map { (name: $0.0, value: $0.1) }, strict: strict)
    }

    @Test func parsesValuesByParameterType() throws {
        let query = try parse([
            ("family", "smith,jones"), ("identifier", "urn:x|1"), ("gender", "|male"), ("organization", "Organization/o1"),
            ("birthdate", "ge1970-01-01"), ("general-practitioner:Practitioner", "p1"), ("_count", "5"), ("_page", "3"),
        ])
        #expect(query.clauses.count == 6)
        #expect(query.clauses[0].values == [.string("smith"), .string("jones")])
        #expect(query.clauses[1].values == [.token(system: "urn:x", code: "1")])
        #expect(query.clauses[2].values == [.token(system: "", code: "male")])
        #expect(query.clauses[3].values == [.reference(type: "Organization", id: "o1", url: nil)])
        guard case .date(.ge, let range) = query.clauses[4].values[0] else { Issue.record("not a ge date"); return }
        #expect(range == FHIRDateRange(parsing: "1970-01-01"))
        #expect(query.clauses[5].values == [.reference(type: "Practitioner", id: "p1", url: nil)])
        #expect(query.count == 5 && query.page == 3 && query.offset == 10)
    }

    @Test func escapedCommasAreNotSeparators() throws {
        let query = try parse([("family", #"a\,b,c"#)])
        #expect(query.clauses[0].values == [.string("a,b"), .string("c")])
    }

    @Test func unknownParametersFollowHandling() throws {
        let lenient = try parse([("nonsense", "1")])
        #expect(lenient.clauses.isEmpty)
        #expect(lenient.ignored.count == 1)
        #expect(throws: FHIRError.self) { try parse([("nonsense", "1")], strict: true) }
    }

    @Test(arguments: [
        ("birthdate", "not-a-date"), ("_count", "-1"), ("_page", "0"), ("family:below", "x"), ("organization", "a b"),
        ("gender:missing", "maybe"), ("_total", "all"),
    ])
    func badValuesAreClientErrors(name: String, value: String) {
        #expect {
            try parse([(name, value)])
        } throws: { error in
            (error as? FHIRError)?.status == 400
        }
    }

    @Test func countIsCapped() throws {
        #expect(try parse([("_count", "100000")]).count == 1000)
    }

    @Test func systemSearchTakesTypesAndCommonParameters() throws {
        let query = try parse([("_type", "Patient,Observation"), ("_tag", "urn:t|x")], type: nil)
        #expect(query.types == ["Patient", "Observation"])
        #expect(query.clauses.count == 1)
    }
}
