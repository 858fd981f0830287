@testable import FHIR
import Foundation
import Testing

@Suite struct SearchIndexerTests {
    let indexer = SearchIndexer()

    func entries(_ json: String, type: String) throws -> SearchIndexEntries {
        indexer.entries(for: try JSONParser.parse(json), resourceType: type)
    }

    @Test func indexesPatientNamesTokensDatesAndReferences() throws {
        let index = try entries(
            """
            {"resourceType":"Patient","id":"p1","active":true,"gender":"female",
             "name":[{"family":"Chalmérs","given":["Peter","James"]}],
             "telecom":[{"system":"email","value":"p@example.org"},{"system":"phone","value":"555"}],
             "birthDate":"1974-12-25","identifier":[{"system":"urn:mrn","value":"12345"}],
             "managingOrganization":{"reference":"Organization/org1"},
             "generalPractitioner":[{"reference":"http://other.org/fhir/Practitioner/pr1/_history/2"}],
             "deceasedDateTime":"2015-02-14T13:42:00+10:00","meta":{"tag":[{"system":"urn:t","code":"x"}]}}
            """, type: "Patient")
        #expect(index.strings.contains(.init(parameter: "family", normalized: "chalmers", exact: "Chalmérs")))
        #expect(index.strings.contains { $0.parameter == "name" && $0.normalized == "james" })
        #expect(index.tokens.contains(.init(parameter: "gender", system: nil, code: "female")))
        #expect(index.tokens.contains(.init(parameter: "active", system: nil, code: "true")))
        #expect(index.tokens.contains(.init(parameter: "identifier", system: "urn:mrn", code: "12345")))
        #expect(index.tokens.contains(.init(parameter: "email", system: nil, code: "p@example.org")))
        #expect(!index.tokens.contains(.init(parameter: "email", system: nil, code: "555")))
        #expect(index.tokens.contains(.init(parameter: "deceased", system: nil, code: "true")))
        #expect(index.tokens.contains(.init(parameter: "_tag", system: "urn:t", code: "x")))
        #expect(index.references.contains(.init(parameter: "organization", targetType: "Organization", targetId: "org1", url: "Organization/org1")))
        #expect(index.references.contains { $0.parameter == "general-practitioner" && $0.targetType == "Practitioner" && $0.targetId == "pr1" })
        let birth = try #require(index.dates.first { $0.parameter == "birthdate" })
        #expect(FHIRDateRange.instantString(milliseconds: birth.range.low) == "1974-12-25T00:00:00.000Z")
    }

    @Test func choiceTypesAndResolveFiltersPickTheRightValues() throws {
        let index = try entries(
            """
            {"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}],"text":"Heart rate"},
             "subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2020-01-01T10:00:00Z"},
             "valueQuantity":{"value":72,"unit":"beats/min","system":"http://unitsofmeasure.org","code":"/min"}}
            """, type: "Observation")
        #expect(index.tokens.contains(.init(parameter: "code", system: "http://loinc.org", code: "8867-4")))
        #expect(index.references.contains { $0.parameter == "patient" && $0.targetId == "p1" })
        #expect(index.references.contains { $0.parameter == "subject" && $0.targetId == "p1" })
        #expect(index.numbers.contains(.init(parameter: "value-quantity", value: 72, system: "http://unitsofmeasure.org", code: "/min")))
        let date = try #require(index.dates.first { $0.parameter == "date" })
        #expect(date.range.high == FHIRDateRange.maximum)  // an open Period runs on

        let group = try entries(#"{"resourceType":"Observation","subject":{"reference":"Group/g1"}}"#, type: "Observation")
        #expect(!group.references.contains { $0.parameter == "patient" })  // resolve() is Patient
        #expect(group.references.contains { $0.parameter == "subject" && $0.targetType == "Group" })
    }

    @Test func everyResourceTypeHasSearchParameters() {
        #expect(FHIRResourceType.all.count == 146)
        for type in FHIRResourceType.all.sorted() where type != "Parameters" {
            #expect(!SearchParameterRegistry.r4.indexedParameters(of: type).isEmpty, "\(type)")
        }
    }

    /// Reports, and pins, how many of the R4 definitions the generated table covers.
    @Test func searchParameterCoverage() {
        let registry = SearchParameterRegistry.r4
        var supported = 0
        for type in FHIRResourceType.all {
            supported += registry.parameters(of: type).filter { $0.type != .composite && $0.type != .special }.count
        }
        let unsupported = SearchParameterRegistry.unsupportedDefinitions
        print("R4 search parameters: \(supported) supported per type, \(registry.common.count) common, \(unsupported.count) unsupported")
        for row in unsupported { print("  unsupported: \(row.base).\(row.code) (\(row.type)): \(row.reason)") }
        #expect(supported > 1500)
        // Only composite and special parameters and a few definitions without a usable
        // expression remain: none of type string, token, reference or date that has one.
        #expect(!unsupported.contains { ["string", "token", "reference", "date"].contains($0.type) && $0.reason.hasPrefix("no element") })
    }

    @Test func elementPathSyntax() throws {
        let path = try #require(ElementPath(parsing: "extension{url=http://x.org/a.b}.value[x]@*"))
        #expect(path.steps.count == 2)
        #expect(path.steps[0].filters == [.fieldEquals(field: "url", value: "http://x.org/a.b")])
        #expect(path.steps[1].isChoice)
        let value = try JSONParser.parse(#"{"extension":[{"url":"http://x.org/a.b","valueString":"hit"},{"url":"other","valueString":"miss"}]}"#)
        let found = path.evaluate(in: value)
        #expect(found.count == 1)
        #expect(found.first?.value == .string("hit"))
        #expect(found.first?.type == "string")
    }
}
