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
        #expect(
            index.references.contains(
                .init(parameter: "organization", targetType: "Organization", targetId: "org1", url: "Organization/org1")
            ))
        #expect(
            index.references.contains {
                $0.parameter == "general-practitioner" && $0.targetType == "Practitioner" && $0.targetId == "pr1"
            })
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
        #expect(
            index.numbers.contains(
                .init(parameter: "value-quantity", value: 72, system: "http://unitsofmeasure.org", code: "/min")))
        let date = try #require(index.dates.first { $0.parameter == "date" })
        #expect(date.range.high == FHIRDateRange.maximum)  // an open Period runs on

        let group = try entries(
            #"{"resourceType":"Observation","subject":{"reference":"Group/g1"}}"#, type: "Observation")
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
        var composites = 0
        for type in FHIRResourceType.all {
            supported += registry.parameters(of: type).filter { $0.type != .special }.count
            composites += registry.parameters(of: type).filter { $0.type == .composite }.count
        }
        let unsupported = SearchParameterRegistry.unsupportedDefinitions
        print(
            "R4 search parameters: \(supported) supported per type (\(composites) composite), \(registry.common.count) common, \(unsupported.count) unsupported"
        )
        for row in unsupported { print("  unsupported: \(row.base).\(row.code) (\(row.type)): \(row.reason)") }
        #expect(supported > 1500)
        // The 46 composite definitions, 72 (base, code) pairs, all with their components.
        #expect(composites == 72)
        #expect(!unsupported.contains { $0.type == "composite" })
        for type in FHIRResourceType.all {
            for parameter in registry.parameters(of: type) where parameter.type == .composite {
                #expect(parameter.components.count >= 2 && !parameter.paths.isEmpty, "\(type).\(parameter.code)")
            }
        }
        // Only special parameters and a few definitions without a usable expression remain:
        // none of type string, token, reference or date that has one.
        #expect(
            !unsupported.contains {
                ["string", "token", "reference", "date"].contains($0.type) && $0.reason.hasPrefix("no element")
            })
    }

    @Test func compositeRowsKeepEachElementInstanceApart() throws {
        let index = try entries(
            """
            {"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
             "component":[
              {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
              {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"},{"system":"urn:local","code":"dia"}]},"valueQuantity":{"value":80}},
              {"code":{"coding":[{"system":"http://loinc.org","code":"no-value"}]}}]}
            """, type: "Observation")
        let rows = index.composites.filter { $0.parameter == "component-code-value-quantity" }
        // Two complete instances (the third has no value): 1 + 1 and 2 + 1 rows.
        #expect(Set(rows.map(\.instance)) == [0, 1])
        #expect(rows.count == 5)
        let systolic = try #require(rows.first { $0.component == 0 && $0.code == "8480-6" })
        let systolicValue = try #require(rows.first { $0.instance == systolic.instance && $0.component == 1 })
        #expect(systolicValue.value == 120 && systolicValue.valueHigh == 120 && systolicValue.code == "mm[Hg]")
        let diastolic = rows.filter { $0.instance != systolic.instance }
        #expect(Set(diastolic.compactMap(\.code)) == ["8462-4", "dia"])
        #expect(diastolic.first { $0.component == 1 }?.value == 80)
        // The Observation itself has no value, so code-value-quantity has no row.
        #expect(!index.composites.contains { $0.parameter == "code-value-quantity" })
        // combo-code-value-quantity is code-value-quantity and component-code-value-quantity
        // together: it has no rows of its own (UnionParameterTests).
        #expect(!index.composites.contains { $0.parameter == "combo-code-value-quantity" })
    }

    @Test func compositeComponentsFromTheResourceAndRanges() throws {
        let sequence = try entries(
            """
            {"resourceType":"MolecularSequence","referenceSeq":{"chromosome":{"coding":[{"code":"1"}]}},
             "variant":[{"start":10,"end":11},{"start":20,"end":21}]}
            """, type: "MolecularSequence")
        let rows = sequence.composites.filter { $0.parameter == "chromosome-variant-coordinate" }
        #expect(rows.count == 6)  // chromosome, start and end for each variant
        #expect(rows.filter { $0.component == 0 }.map(\.code) == ["1", "1"])
        let plan = try entries(
            """
            {"resourceType":"PlanDefinition","useContext":[{"code":{"code":"age"},"valueRange":{"low":{"value":18}}}]}
            """, type: "PlanDefinition")
        let age = try #require(plan.composites.first { $0.parameter == "context-type-quantity" && $0.component == 1 })
        #expect(age.value == 18 && age.valueHigh == SearchIndexer.openEnd)
    }

    @Test func tokenDisplayAndReferenceIdentifierAreIndexed() throws {
        let index = try entries(
            """
            {"resourceType":"Observation","status":"final",
             "code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart Rate"}],"text":"Pulsé"},
             "identifier":[{"system":"urn:x","value":"1","type":{"text":"Lab number"}}],
             "subject":{"type":"Patient","identifier":{"system":"urn:mrn","value":"42"}}}
            """, type: "Observation")
        #expect(
            index.tokens.contains(
                .init(parameter: "code", system: "http://loinc.org", code: "8867-4", display: "heart rate")))
        #expect(index.tokens.contains(.init(parameter: "code", system: nil, code: nil, display: "pulse")))
        #expect(
            index.tokens.contains(.init(parameter: "identifier", system: "urn:x", code: "1", display: "lab number")))
        #expect(
            index.references.contains(
                .init(
                    parameter: "subject", targetType: nil, targetId: nil, url: nil, identifierSystem: "urn:mrn",
                    identifierValue: "42")))
        // patient is subject.where(resolve() is Patient): Reference.type decides for a logical reference.
        #expect(index.references.contains { $0.parameter == "patient" && $0.identifierValue == "42" })
    }

    /// A concept's text gets a row of its own only when no coded row of the parameter has the
    /// same display: `:text` finds the resource by either.
    @Test func aConceptsTextIsIndexedOnceWithItsCodingsDisplay() throws {
        let index = try entries(
            """
            {"resourceType":"Observation","status":"final",
             "code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Heart Rate"},
             "category":[{"coding":[{"code":"vital-signs","display":"Vital Signs"}],"text":"Vitals"}]}
            """, type: "Observation")
        let code = index.tokens.filter { $0.parameter == "code" }
        #expect(code == [.init(parameter: "code", system: "http://loinc.org", code: "8867-4", display: "heart rate")])
        // combo-code reads the same concept: its text row goes too.
        #expect(!index.tokens.contains { $0.parameter == "combo-code" && $0.code == nil })
        // A text that says something else keeps its row.
        #expect(index.tokens.contains(.init(parameter: "category", system: nil, code: nil, display: "vitals")))
        #expect(index.tokens.contains { $0.parameter == "category" && $0.code == "vital-signs" })
        // A text alone keeps its row.
        let alone = try entries(
            #"{"resourceType":"Observation","status":"final","code":{"text":"Heart rate"}}"#, type: "Observation")
        #expect(alone.tokens.contains(.init(parameter: "code", system: nil, code: nil, display: "heart rate")))
    }

    @Test func elementPathFromResource() throws {
        let path = try #require(ElementPath(parsing: "%resource.referenceSeq.chromosome@CodeableConcept"))
        #expect(path.fromResource)
        #expect(path.steps.map(\.key) == ["referenceSeq", "chromosome"])
        let root = try #require(ElementPath(parsing: "@BackboneElement"))
        #expect(root.steps.isEmpty && !root.fromResource)
    }

    @Test func elementPathSyntax() throws {
        let path = try #require(ElementPath(parsing: "extension{url=http://x.org/a.b}.value[x]@*"))
        #expect(path.steps.count == 2)
        #expect(path.steps[0].filters == [.fieldEquals(field: "url", value: "http://x.org/a.b")])
        #expect(path.steps[1].isChoice)
        let value = try JSONParser.parse(
            #"{"extension":[{"url":"http://x.org/a.b","valueString":"hit"},{"url":"other","valueString":"miss"}]}"#)
        let found = path.evaluate(in: value)
        #expect(found.count == 1)
        #expect(found.first?.value == .string("hit"))
        #expect(found.first?.type == "string")
    }
}
