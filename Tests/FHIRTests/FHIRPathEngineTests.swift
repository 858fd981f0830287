@testable import FHIR
import Foundation
import JSON
import Testing

/// The FHIRPath engine beyond the official suite: the parser's errors, FHIR navigation and
/// resolution, and the bounds that keep hostile expressions and resources from crashing,
/// hanging or exhausting memory.
@Suite struct FHIRPathEngineTests {
    static let patient: JSONValue = try! JSONParser.parse(
        #"""
        {"resourceType":"Patient","id":"p1","active":true,
         "contained":[{"resourceType":"Organization","id":"org","name":"Acme"}],
         "managingOrganization":{"reference":"#org"},
         "name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]}],
         "birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://example.org/time","valueDateTime":"1974-12-25T14:35:45-05:00"}]},
         "deceasedBoolean":false}
        """#)

    static func evaluate(
        _ expression: String, on resource: JSONValue = patient, environment: FHIRPathEnvironment = FHIRPathEnvironment()
    ) throws -> [FHIRPathItem] {
        try FHIRPathExpression(expression).evaluate(on: resource, environment: environment)
    }

    static func strings(_ expression: String, on resource: JSONValue = patient) throws -> [String] {
        try evaluate(expression, on: resource).map { $0.stringForm ?? "(complex)" }
    }

    @Test(arguments: [
        ("2 + 2 /", 7), ("2 + 2 /* not finished", 6), ("'unterminated", 0), ("name.", 5), ("(1 + 2", 6),
        ("1 +* 2", 3), ("$foo", 0), ("%", 0), ("name[1", 6), ("`abc", 0), ("1 2", 2), ("name.where(", 11),
        ("'\\q'", 1), ("@2014-13-01", 0), ("@T25:00", 0), ("#", 0), ("1 is", 4), ("2147483648", 0),
    ])
    func refusesSyntaxErrorsWithTheirPosition(expression: String, position: Int) {
        #expect {
            _ = try FHIRPathExpression(expression)
        } throws: { error in
            guard let error = error as? FHIRPathError else { return false }
            return error.kind == .syntax && error.position == position
        }
    }

    @Test(arguments: ["name.nosuch()", "name.where()", "name.substring()", "iif(true)", "today(1)", "1.unaryPlus()"])
    func refusesUnknownFunctionsAndWrongArityWhenParsing(expression: String) {
        #expect(throws: FHIRPathError.self) { _ = try FHIRPathExpression(expression) }
        do { _ = try FHIRPathExpression(expression) } catch let error as FHIRPathError {
            #expect(error.kind == .semantic)
        } catch {}
    }

    @Test func refusesElementsTheTypeDoesNotHaveInStrictMode() throws {
        var strict = FHIRPathEnvironment()
        strict.strict = true
        #expect(throws: FHIRPathError.self) { try Self.evaluate("name.given1", environment: strict) }
        #expect(throws: FHIRPathError.self) { try Self.evaluate("Observation.value", environment: strict) }
        // Checked on the declared types, before evaluation: the data has no Period here.
        let observation: JSONValue = [
            "resourceType": "Observation", "status": "final", "code": ["text": "x"], "valueString": "s",
        ]
        #expect(throws: FHIRPathError.self) {
            try Self.evaluate("(Observation.value as Period).unit", on: observation, environment: strict)
        }
        #expect(try Self.evaluate("(Observation.value as Period).end", on: observation, environment: strict).isEmpty)
        var ordered = strict
        ordered.checksOrderedFunctions = true
        #expect(throws: FHIRPathError.self) { try Self.evaluate("Patient.children().skip(1)", environment: ordered) }
        #expect(throws: FHIRPathError.self) { try Self.evaluate("descendants().given[0]", environment: ordered) }
        #expect(try Self.evaluate("Patient.name.given.first()", environment: ordered).count == 1)
        #expect(try Self.evaluate("Patient.children().skip(1)", environment: strict).count > 0)
        // In a mixed collection, an element some item's type has is not an error.
        #expect(try Self.evaluate("descendants().given", environment: strict).count == 3)
        // Not strict: empty, as invariants on mixed collections need.
        #expect(try Self.evaluate("name.given1").isEmpty)
        #expect(try Self.evaluate("Observation.value").isEmpty)
        #expect(throws: FHIRPathError.self) { try Self.evaluate("name.as(HumanName)") }
        var lenientAs = FHIRPathEnvironment()
        lenientAs.allowsAsOnCollections = true
        #expect(try Self.evaluate("name.as(HumanName)", environment: lenientAs).count == 2)
    }

    @Test func navigatesChoicesPrimitiveExtensionsAndTypes() throws {
        #expect(try Self.strings("name.where(use = 'official').given.first()") == ["Peter"])
        #expect(try Self.strings("deceased") == ["false"])
        #expect(try Self.strings("deceased is boolean") == ["true"])
        #expect(
            try Self.strings("birthDate.extension('http://example.org/time').value") == ["1974-12-25T14:35:45-05:00"])
        #expect(try Self.strings("birthDate.hasValue() and birthDate < @1975") == ["true"])
        #expect(try Self.strings("birthDate.type().name") == ["date"])
        #expect(try Self.strings("Patient.name.given.count()") == ["3"])
    }

    @Test func resolvesContainedBundleAndStoreReferences() throws {
        #expect(try Self.strings("managingOrganization.resolve().name") == ["Acme"])
        let bundle = try JSONParser.parse(
            #"""
            {"resourceType":"Bundle","type":"collection","entry":[
             {"fullUrl":"http://x/Patient/1","resource":{"resourceType":"Patient","id":"1","link":[{"other":{"reference":"Patient/2"},"type":"seealso"}]}},
             {"fullUrl":"http://x/Patient/2","resource":{"resourceType":"Patient","id":"2","gender":"female"}}]}
            """#)
        #expect(try Self.strings("entry[0].resource.link.other.resolve().gender", on: bundle) == ["female"])
        // Evaluated on the entry's resource, with the Bundle as %rootResource.
        let first = try #require(bundle["entry"]?.arrayValue?.first?["resource"])
        let linked = try FHIRPathExpression("link.other.resolve().gender | %rootResource.type").evaluate(
            on: first, rootResource: bundle)
        #expect(linked.map(\.stringForm) == ["female", "collection"])
        var environment = FHIRPathEnvironment()
        let stored: JSONValue = ["resourceType": "Organization", "id": "9", "name": "Stored"]
        environment.resolver = { reference in reference == "Organization/9" ? stored : nil }
        let observation: JSONValue = [
            "resourceType": "Observation", "status": "final", "code": ["text": "x"],
            "performer": [["reference": "Organization/9"]],
        ]
        let names = try Self.evaluate("performer.resolve().name", on: observation, environment: environment)
        #expect(names.map(\.stringForm) == ["Stored"])
    }

    @Test func logicDatesAndQuantitiesFollowTheSpecification() throws {
        #expect(try Self.evaluate("{} and false").map(\.stringForm) == ["false"])
        #expect(try Self.evaluate("{} and true").isEmpty)
        #expect(try Self.evaluate("@2012 = @2012-01").isEmpty)
        #expect(try Self.strings("@2012-01-01T10:00:00+02:00 = @2012-01-01T08:00:00Z") == ["true"])
        #expect(try Self.strings("1 'kg' = 1000 'g'") == ["true"])
        #expect(try Self.strings("1 'g/L' = 100 'mg/dL'") == ["true"])
        #expect(try Self.strings("2.0 'cm' * 2.0 'm' = 0.040 'm2'") == ["true"])
        #expect(throws: FHIRPathError.self) { try Self.evaluate("1 'kg' < 1 'm'") }
        #expect(try Self.strings("1.50 + 1.25") == ["2.75"])
        #expect(try Self.evaluate("2147483647 + 1").isEmpty)
        #expect(try Self.strings("%resource.id & '/' & %context.id") == ["p1/p1"])
        let narrative: JSONValue = [
            "resourceType": "Basic", "code": ["text": "x"],
            "text": ["status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>ok</p></div>"],
        ]
        let scripted: JSONValue = [
            "resourceType": "Basic", "code": ["text": "x"],
            "text": [
                "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x()</script></div>",
            ],
        ]
        #expect(try FHIRPathExpression("text.div.htmlChecks()").evaluateBoolean(on: narrative) == true)
        #expect(try FHIRPathExpression("text.div.htmlChecks()").evaluateBoolean(on: scripted) == false)
    }
}

/// The invariants the issue found unchecked, as the engine evaluates them (R4 core's own
/// expressions): each holds on a good resource and fails on the bad one.
@Suite struct FHIRPathIssueInvariantTests {
    static func holds(_ expression: String, on resource: JSONValue, at path: String) throws -> [Bool?] {
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        let constraint = try FHIRPathExpression(expression)
        return try FHIRPathExpression(path).evaluate(on: resource, environment: environment).map { context in
            let result = try constraint.evaluate(on: resource, context: [context], environment: environment)
            guard let first = result.first else { return nil }
            guard case .boolean(let value)? = first.systemValue else { return true }
            return value
        }
    }

    @Test func probabilityOverOneHundredFailsRas2() throws {
        let ras2 = "probability is decimal implies (probability as decimal) <= 100"
        func assessment(_ probability: String) throws -> JSONValue {
            try JSONParser.parse(
                #"{"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/1"},"prediction":[{"probabilityDecimal":\#(probability)}]}"#
            )
        }
        #expect(try Self.holds(ras2, on: try assessment("100"), at: "RiskAssessment.prediction") == [true])
        #expect(try Self.holds(ras2, on: try assessment("101"), at: "RiskAssessment.prediction") == [false])
    }

    @Test func valueWithDataAbsentReasonFailsObs6() throws {
        let obs6 = "dataAbsentReason.empty() or value.empty()"
        let both = try JSONParser.parse(
            #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1},"dataAbsentReason":{"text":"lost"}}"#
        )
        let one = try JSONParser.parse(
            #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1}}"#)
        #expect(try Self.holds(obs6, on: both, at: "Observation") == [false])
        #expect(try Self.holds(obs6, on: one, at: "Observation") == [true])
    }

    @Test func referenceToAMissingContainedResourceFailsRef1() throws {
        let ref1 =
            "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))"
        let patient = try JSONParser.parse(
            ##"{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","name":"A"}],"managingOrganization":{"reference":"#o1"},"generalPractitioner":[{"reference":"#nope"}]}"##
        )
        #expect(try Self.holds(ref1, on: patient, at: "Patient.managingOrganization") == [true])
        #expect(try Self.holds(ref1, on: patient, at: "Patient.generalPractitioner") == [false])
    }
}
