import FHIR
import FHIRTestSupport
import Foundation
import Testing

/// The compiled terminology (Scripts/generators/generate-terminology.py) against its source, the
/// CodeSystems and ValueSets of ../shared/fhir/r4-core.
@Suite struct TerminologyTableTests {
    static let core = TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-core")

    static func resource(_ name: String) throws -> JSONValue {
        try JSONParser.parse(String(contentsOf: core.appendingPathComponent(name), encoding: .utf8))
    }

    /// Every concept of every CodeSystem file, with its nesting parent, is in the table.
    @Test func everyCodeSystemConceptAndNestingIsCompiled() async throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.core.path).filter {
            $0.hasPrefix("CodeSystem-")
        }
        #expect(files.count > 1000)
        var concepts = 0
        for (number, file) in files.enumerated() {
            if number % 100 == 0 { await Task.yield() }
            let source = try Self.resource(file)
            guard let url = source["url"]?.stringValue else { continue }
            let compiled = try #require(Terminology.r4.codeSystem(url: url), "\(url)")
            #expect(compiled.name == source["name"]?.stringValue ?? "")
            func walk(_ list: [JSONValue], parent: String?) {
                for concept in list {
                    guard let code = concept["code"]?.stringValue else { continue }
                    concepts += 1
                    let held = compiled.concept(code)
                    #expect(held != nil, "\(url)#\(code)")
                    if let parent {
                        #expect(compiled.parents(of: code).contains(parent), "\(url)#\(code) under \(parent)")
                    }
                    walk(concept["concept"]?.arrayValue ?? [], parent: code)
                }
            }
            walk(source["concept"]?.arrayValue ?? [], parent: nil)
        }
        #expect(concepts > 20_000)
    }

    @Test func v3ChildPropertiesAddParents() throws {
        let actCode = try #require(Terminology.r4.codeSystem(url: "http://terminology.hl7.org/CodeSystem/v3-ActCode"))
        // TFS nests under one parent and is declared a child of FFSS and TF as well.
        #expect(Set(actCode.parents(of: "TFS")).isSuperset(of: ["FFSS", "TF"]))
        #expect(actCode.subsumes("_ActPharmacySupplyType", "TFS"))
        #expect(CodeHierarchy.r4.descendants(of: "FFSS", in: actCode.url).contains("TFS"))
        #expect(CodeHierarchy.r4.ancestors(of: "TFS", in: actCode.url).contains("FFSS"))
        #expect(CodeHierarchy.r4.descendants(of: "12345", in: "http://loinc.org") == ["12345"])
    }

    /// Value sets answer membership three ways: listed external codes are decidable, a whole
    /// external code system is not.
    @Test func membershipIsTrueFalseOrUnknown() throws {
        let gender = try #require(Terminology.r4.valueSet(url: "http://hl7.org/fhir/ValueSet/administrative-gender"))
        #expect(gender.contains(system: "http://hl7.org/fhir/administrative-gender", code: "female") == true)
        #expect(gender.contains(system: "http://hl7.org/fhir/administrative-gender", code: "woman") == false)
        #expect(gender.contains(system: "http://example.org", code: "female") == false)
        #expect(Terminology.r4.valueSet(url: "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1") != nil)
        #expect(Terminology.r4.valueSet(url: "http://hl7.org/fhir/ValueSet/administrative-gender|3.0.2") == nil)
        let units = try #require(Terminology.r4.valueSet(url: "http://hl7.org/fhir/ValueSet/ucum-vitals-common"))
        #expect(units.contains(system: "http://unitsofmeasure.org", code: "kg") == true)
        #expect(units.contains(system: "http://unitsofmeasure.org", code: "[furlong]") == false)
        let loinc = try #require(Terminology.r4.valueSet(url: "http://hl7.org/fhir/ValueSet/observation-codes"))
        #expect(loinc.contains(system: "http://loinc.org", code: "8867-4") == nil)
        #expect(loinc.contains(system: "http://snomed.info/sct", code: "8867-4") == false)
        // is-a filter minus an exclude: the abstract root is out, its descendants in.
        let encounter = try #require(
            Terminology.r4.valueSet(url: "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"))
        let actCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
        #expect(encounter.contains(system: actCode, code: "IMP") == true)
        #expect(encounter.contains(system: actCode, code: "_ActEncounterCode") == false)
        #expect(encounter.contains(system: actCode, code: "CASH") == false)
    }

    @Test func expansionsFollowTheSource() throws {
        let source = try Self.resource("CodeSystem-v3-ActCode.json")
        var below: [String] = []
        func collect(_ list: [JSONValue], inside: Bool) {
            for concept in list {
                let code = concept["code"]?.stringValue ?? ""
                if inside { below.append(code) }
                collect(concept["concept"]?.arrayValue ?? [], inside: inside || code == "_ActEncounterCode")
            }
        }
        collect(source["concept"]?.arrayValue ?? [], inside: false)
        #expect(below.count > 5)
        let encounter = try #require(
            Terminology.r4.valueSet(url: "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"))
        #expect(try encounter.expand(limit: 10_000).map(\.code) == below)
        #expect(throws: FHIRError.self) { try encounter.expand(limit: 3) }
        let loinc = try #require(Terminology.r4.valueSet(url: "http://hl7.org/fhir/ValueSet/observation-codes"))
        do {
            _ = try loinc.expand(limit: 10_000)
            Issue.record("all of LOINC expanded")
        } catch let error as FHIRError {
            #expect(
                error.status == 422 && error.issues[0].code == "not-supported"
                    && error.issues[0].diagnostics.contains("http://loinc.org"))
        }
    }

    /// FHIRPath's memberOf() answers from the same tables: true, false, or empty when unknown.
    @Test func fhirPathMemberOf() throws {
        let patient = try JSONParser.parse(
            #"{"resourceType":"Patient","gender":"female","maritalStatus":{"coding":[{"system":"http://example.org","code":"x"},{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"M"}]}}"#
        )
        func evaluate(_ text: String) throws -> [Bool] {
            try FHIRPathExpression(text).evaluate(on: patient).compactMap {
                if case .boolean(let flag) = $0 { return flag } else { return nil }
            }
        }
        #expect(try evaluate("gender.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')") == [true])
        #expect(try evaluate("'woman'.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')") == [false])
        #expect(try evaluate("maritalStatus.memberOf('http://hl7.org/fhir/ValueSet/marital-status')") == [true])
        #expect(try evaluate("'8867-4'.memberOf('http://hl7.org/fhir/ValueSet/observation-codes')").isEmpty)
        #expect(try evaluate("gender.memberOf('http://example.org/unknown')").isEmpty)
    }

    @Test func everyValueSetExpandsOrSaysWhyNot() async throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.core.path).filter {
            $0.hasPrefix("ValueSet-")
        }
        var expanded = 0
        var refused = 0
        for (number, file) in files.enumerated() {
            if number % 50 == 0 { await Task.yield() }
            let url = try #require(try Self.resource(file)["url"]?.stringValue)
            let valueSet = try #require(Terminology.r4.valueSet(url: url), "\(url)")
            do {
                _ = try valueSet.expand(limit: 10_000)
                expanded += 1
            } catch let error as FHIRError {
                #expect(error.status == 422, "\(url): \(error)")
                refused += 1
            }
        }
        print("r4-core value sets: \(expanded) expand, \(refused) refused with a reason")
        #expect(expanded > 1000 && expanded + refused == files.count)
    }
}
