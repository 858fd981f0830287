@testable import FHIR
import Testing

@Suite struct SearchQueryParserTests {
    let parser = SearchQueryParser()

    func parse(_ pairs: [(String, String)], type: String? = "Patient", strict: Bool = false) throws -> SearchQuery {
        try parser.parse(resourceType: type, parameters: pairs.map { (name: $0.0, value: $0.1) }, strict: strict)
    }

    @Test func parsesValuesByParameterType() throws {
        let query = try parse([
            ("family", "smith,jones"), ("identifier", "urn:x|1"), ("gender", "|male"),
            ("organization", "Organization/o1"),
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

    @Test func compositeValuesSplitAtDollars() throws {
        let query = try parse(
            [
                ("code-value-quantity", "http://loinc.org|8480-6$lt60|http://unitsofmeasure.org|mm[Hg],8462-4$ge5.5"),
                ("code-value-string", #"a\$b$c\$d\,e"#),
            ], type: "Observation", strict: true)
        #expect(query.clauses.count == 2)
        guard case .composite(let first) = query.clauses[0].values[0],
            case .composite(let second) = query.clauses[0].values[1]
        else {
            Issue.record("not composite values")
            return
        }
        #expect(first[0] == .token(system: "http://loinc.org", code: "8480-6"))
        #expect(
            first[1]
                == .number(.lt, value: 60, low: 59.5, high: 60.5, system: "http://unitsofmeasure.org", code: "mm[Hg]"))
        #expect(second[0] == .token(system: nil, code: "8462-4"))
        guard case .number(.ge, 5.5, _, _, nil, nil) = second[1] else { Issue.record("not ge5.5"); return }
        // \$ and \, stay literal inside a part.
        #expect(query.clauses[1].values == [.composite([.token(system: nil, code: "a$b"), .string("c$d,e")])])
        // context-type-value of a conformance resource.
        let valueSet = try parse(
            [("context-type-value", "focus$http://snomed.info/sct|44054006")], type: "ValueSet", strict: true)
        #expect(
            valueSet.clauses[0].values == [
                .composite([
                    .token(system: nil, code: "focus"), .token(system: "http://snomed.info/sct", code: "44054006"),
                ])
            ])
    }

    @Test(arguments: [
        ("code-value-quantity", "8480-6"), ("code-value-quantity", "8480-6$lt60$3"), ("code-value-quantity", "8480-6$"),
        ("code-value-quantity", "8480-6$abc"), ("code-value-date", "x$not-a-date"),
        ("code-value-quantity:exact", "a$1"),
    ])
    func badCompositeValuesAreClientErrors(name: String, value: String) {
        #expect {
            try parse([(name, value)], type: "Observation", strict: true)
        } throws: { error in
            (error as? FHIRError)?.status == 400
        }
    }

    @Test func textAndIdentifierModifiers() throws {
        let query = try parse(
            [("code:text", "Heart rate"), ("subject:identifier", "urn:mrn|12345"), ("patient:identifier", "67890")],
            type: "Observation", strict: true)
        #expect(query.clauses[0].modifier == "text" && query.clauses[0].values == [.string("Heart rate")])
        #expect(
            query.clauses[1].modifier == "identifier"
                && query.clauses[1].values == [.token(system: "urn:mrn", code: "12345")])
        #expect(query.clauses[2].values == [.token(system: nil, code: "67890")])
        #expect(throws: FHIRError.self) { try parse([("family:text", "x")], strict: true) }
        #expect(throws: FHIRError.self) { try parse([("gender:identifier", "x")], strict: true) }
    }

    @Test func escapedPipesStayInTokens() throws {
        let query = try parse([("identifier", #"urn:x|a\|b"#)])
        #expect(query.clauses[0].values == [.token(system: "urn:x", code: "a|b")])
    }

    @Test func unknownParametersFollowHandling() throws {
        let lenient = try parse([("nonsense", "1")])
        #expect(lenient.clauses.isEmpty)
        #expect(lenient.ignored.count == 1)
        #expect(throws: FHIRError.self) { try parse([("nonsense", "1")], strict: true) }
    }

    @Test(arguments: [
        ("birthdate", "not-a-date"), ("_count", "-1"), ("_page", "0"), ("_page", "9223372036854775807"),
        ("family:below", "x"), ("organization", "a b"),
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

    @Test func ignoredSortKeysStayOutOfTheSelfLink() throws {
        let query = try parse([("_sort", "nonsense,-birthdate")])
        #expect(query.sort.count == 1)
        #expect(query.appliedParameters.map(\.value) == ["-birthdate"])
        #expect(query.ignored.count == 1)
        #expect(try parse([("_sort", "nonsense")]).appliedParameters.isEmpty)
    }
}
