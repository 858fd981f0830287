@testable import FHIR
import Foundation
import Testing

@Suite struct ValidationTests {
    let validator = ResourceStructureValidator.r4

    /// Official R4 examples that break the R4 definitions themselves, with the reason.
    static let invalidExamples: [String: String] = [
        "Questionnaire-qs1.json": "its nested items have no linkId, which Questionnaire.item.linkId requires (1..1)",
        "ig-r4.json": "an ImplementationGuide without name and status, both 1..1",
    ]

    func example(_ name: String) throws -> JSONValue {
        try JSONParser.parse(Array(try Data(contentsOf: TestDatabasesPath.examples.appendingPathComponent(name))))
    }

    /// A copy of the value with the member at `path` (keys and array positions separated by
    /// dots: `name.0.given.1`) replaced, or removed when `newValue` is nil.
    func replacing(_ path: String, in value: JSONValue, with newValue: JSONValue?) -> JSONValue {
        let steps = path.split(separator: ".", maxSplits: 1).map(String.init)
        let rest = steps.count > 1 ? steps[1] : nil
        switch value {
        case .object(var object):
            object[steps[0]] = rest.map { replacing($0, in: object[steps[0]] ?? [:], with: newValue) } ?? newValue
            return .object(object)
        case .array(var items):
            let position = Int(steps[0])!
            if let rest {
                items[position] = replacing(rest, in: items[position], with: newValue)
            } else if let newValue {
                items[position] = newValue
            } else {
                items.remove(at: position)
            }
            return .array(items)
        default:
            preconditionFailure("\(path) does not lead into an object or array")
        }
    }

    /// The issues as `code@expression` strings, which is what the broken copies pin.
    func problems(_ resource: JSONValue) -> [String] {
        validator.validate(resource).map { "\($0.code)@\($0.expression.joined(separator: ","))" }
    }

    @Test func tableSizes() {
        let schema = StructureSchema.r4
        let elements = schema.nodes.reduce(0) { $0 + $1.elements.count }
        let enforced = schema.valueSets.filter { $0.codesBySystem != nil }.count
        print(
            """
            Structure table: \(schema.resourceNodes.count) resource types, \(schema.dataTypeNodes.count) data types, \
            \(schema.elementLineCount) element lines, \(schema.nodes.count) nodes with \(elements) elements in all; \
            \(schema.valueSets.count) required value sets, \(enforced) enforced
            """)
        for valueSet in schema.valueSets where valueSet.codesBySystem == nil {
            print("  not enforced: \(valueSet.url)")
        }
        #expect(schema.resourceNodes.count == 146)
        #expect(Set(schema.resourceNodes.keys) == FHIRResourceType.all)
        #expect(schema.valueSets.count > 200 && enforced > 200)
    }

    @Test func everyOfficialExampleIsValid() throws {
        let directory = TestDatabasesPath.examples
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
            .sorted()
        #expect(files.count == 717)
        let resources = try files.map { (file: $0, resource: try example($0)) }
        var failing: [String] = []
        let clock = ContinuousClock()
        let start = clock.now
        for (file, resource) in resources {
            let issues = validator.validate(resource)
            if issues.isEmpty == (Self.invalidExamples[file] == nil) { continue }
            failing.append(file)
            for issue in issues.prefix(10) {
                print("\(file): \(issue.code) at \(issue.expression.joined(separator: ", ")): \(issue.diagnostics)")
            }
        }
        print(
            "\(files.count) examples validated in \(clock.now - start), \(Self.invalidExamples.count) known invalid, \(failing.count) unexpected"
        )
        #expect(failing.isEmpty)
    }

    // MARK: Broken copies of official examples

    @Test func unknownElementsAreReportedWhereTheyAre() throws {
        let patient = try example("Patient-example.json")
        #expect(problems(replacing("nickname", in: patient, with: "Jim")) == ["structure@Patient.nickname"])
        #expect(
            problems(replacing("name.0.nickname", in: patient, with: "Jim")) == ["structure@Patient.name[0].nickname"])
        // A choice name with a type the choice does not have.
        let observation = try example("Observation-example.json")
        #expect(
            problems(replacing("valueHumanName", in: observation, with: ["text": "x"])) == [
                "structure@Observation.valueHumanName"
            ])
        // resourceType belongs to resources only.
        #expect(
            problems(replacing("name.0.resourceType", in: patient, with: "HumanName")) == [
                "structure@Patient.name[0].resourceType"
            ])
    }

    @Test func wrongJSONKindsAreReported() throws {
        let observation = try example("Observation-example.json")
        #expect(
            problems(replacing("valueQuantity.value", in: observation, with: "185")) == [
                "structure@Observation.valueQuantity.value"
            ])
        #expect(
            problems(replacing("subject", in: observation, with: "Patient/example")) == [
                "structure@Observation.subject"
            ])
        let patient = try example("Patient-example.json")
        #expect(problems(replacing("active", in: patient, with: "true")) == ["structure@Patient.active"])
        #expect(problems(replacing("birthDate", in: patient, with: 1974)) == ["structure@Patient.birthDate"])
    }

    @Test func cardinalityIsChecked() throws {
        let observation = try example("Observation-example.json")
        #expect(problems(replacing("status", in: observation, with: nil)) == ["required@Observation.status"])
        #expect(problems(replacing("code", in: observation, with: nil)) == ["required@Observation.code"])
        #expect(
            problems(replacing("code.coding.0.system", in: observation, with: ["http://loinc.org"])) == [
                "structure@Observation.code.coding[0].system"
            ])
        let patient = try example("Patient-example.json")
        #expect(problems(replacing("gender", in: patient, with: ["male"])) == ["structure@Patient.gender"])
        #expect(problems(replacing("name", in: patient, with: ["family": "Chalmers"])) == ["structure@Patient.name"])
        #expect(problems(replacing("name", in: patient, with: [])) == ["structure@Patient.name"])
        #expect(problems(replacing("contact", in: patient, with: [[:]])) == ["structure@Patient.contact[0]"])
        // A primitive with only extensions satisfies its element's minimum.
        let extensionOnly = replacing(
            "_status", in: replacing("status", in: observation, with: nil),
            with: ["extension": [["url": "http://example.org/reason", "valueString": "unknown"]]])
        #expect(problems(extensionOnly).isEmpty)
        #expect(
            problems(replacing("valueString", in: observation, with: "heavy")) == ["structure@Observation.valueString"])
    }

    @Test func requiredBindingsAreEnforced() throws {
        let patient = try example("Patient-example.json")
        #expect(problems(replacing("gender", in: patient, with: "xx")) == ["code-invalid@Patient.gender"])
        #expect(
            problems(replacing("telecom.1.system", in: patient, with: "pager2")) == [
                "code-invalid@Patient.telecom[1].system"
            ])
        let allergy = try example("AllergyIntolerance-example.json")
        #expect(
            problems(replacing("clinicalStatus.coding.0.code", in: allergy, with: "gone")) == [
                "code-invalid@AllergyIntolerance.clinicalStatus"
            ])
        // A code from another system does not count; text alone is not checked.
        #expect(
            problems(replacing("clinicalStatus.coding.0.system", in: allergy, with: "urn:other")) == [
                "code-invalid@AllergyIntolerance.clinicalStatus"
            ])
        #expect(problems(replacing("clinicalStatus", in: allergy, with: ["text": "active"])).isEmpty)
        // Value sets the core package cannot expand (MIME types) are not enforced.
        #expect(
            problems(
                replacing(
                    "presentedForm", in: try example("DiagnosticReport-example-pgx.json"),
                    with: [["contentType": "application/x-made-up"]])
            ).isEmpty)
    }

    @Test func primitiveFormatsAreChecked() throws {
        let patient = try example("Patient-example.json")
        #expect(problems(replacing("birthDate", in: patient, with: "1974-13-25")) == ["value@Patient.birthDate"])
        #expect(problems(replacing("birthDate", in: patient, with: "25/12/1974")) == ["value@Patient.birthDate"])
        #expect(problems(replacing("name.0.given.1", in: patient, with: "")) == ["value@Patient.name[0].given[1]"])
        #expect(problems(replacing("name.0.given.1", in: patient, with: 42)) == ["structure@Patient.name[0].given[1]"])
        #expect(problems(replacing("telecom.2.rank", in: patient, with: 0)) == ["value@Patient.telecom[2].rank"])
        #expect(
            problems(replacing("telecom.2.rank", in: patient, with: .number("1.5"))) == [
                "value@Patient.telecom[2].rank"
            ])
        #expect(problems(replacing("id", in: patient, with: "not an id")) == ["value@Patient.id"])
        #expect(
            problems(replacing("name.0.period", in: patient, with: ["start": "2020-01-01T10:00"])) == [
                "value@Patient.name[0].period.start"
            ])
        #expect(
            problems(replacing("_birthDate.extension.0.valueDateTime", in: patient, with: "yesterday"))
                == ["value@Patient._birthDate.extension[0].valueDateTime"])
    }

    @Test func nestedResourcesAreValidatedByTheirOwnType() throws {
        let bundle = try example("Bundle-bundle-example.json")
        #expect(
            problems(replacing("entry.0.resource.status", in: bundle, with: "sideways")) == [
                "code-invalid@Bundle.entry[0].resource.status"
            ])
        #expect(
            problems(replacing("entry.1.resource.resourceType", in: bundle, with: "Potion")) == [
                "structure@Bundle.entry[1].resource"
            ])
        let patient = try example("Patient-example.json")
        let contained = replacing(
            "contained", in: patient, with: [["resourceType": "Organization", "id": "o1", "name": 7]])
        #expect(problems(contained) == ["structure@Patient.contained[0].name"])
        let parameters = try JSONParser.parse(
            #"{"resourceType":"Parameters","parameter":[{"name":"p","part":[{"name":"q","resource":{"resourceType":"Patient","gender":"xx"}}]}]}"#
        )
        #expect(problems(parameters) == ["code-invalid@Parameters.parameter[0].part[0].resource.gender"])
    }

    @Test func rootProblems() throws {
        #expect(problems(["id": "x"]) == ["structure@resourceType"])
        #expect(problems(["resourceType": "Potion"]) == ["structure@resourceType"])
        #expect(problems("Patient") == ["structure@"])
        #expect(problems(["resourceType": "Patient"]).isEmpty)
    }

    @Test(arguments: [
        (PrimitiveType.date, "2024", true), (.date, "2024-02", true), (.date, "2024-02-29", true),
        (.date, "0000", false),
        (.date, "2024-2-1", false), (.date, "2024-02-29T10:00:00Z", false),
        (.dateTime, "2024-02-29T10:00:00Z", true), (.dateTime, "2024-02-29T10:00:00.123+14:00", true),
        (.dateTime, "2024-02-29T10:00:00+14:30", false), (.dateTime, "2024-02-29T10:00:00", false),
        (.dateTime, "2024-02T10:00:00Z", false), (.dateTime, "2024-02-29T24:00:00Z", false),
        (.instant, "2024-02-29T10:00:00Z", true), (.instant, "2024-02-29", false),
        (.time, "23:59:60", true), (.time, "23:59", false), (.time, "12:00:00.5", true),
        (.id, "a-B.9", true), (.id, "a_b", false), (.id, String(repeating: "a", count: 65), false),
        (.code, "a b", true), (.code, "a  b", false), (.code, " a", false), (.code, "a ", false),
        (.uri, "http://x", true), (.uri, "http://x y", false),
        (.oid, "urn:oid:1.2.3", true), (.oid, "urn:oid:1.02", false), (.oid, "urn:oid:3.1", false),
        (.uuid, "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", true),
        (.uuid, "urn:uuid:C757873D-ec9a-4326-a141-556f43239520", false),
        (.base64Binary, "aGVs bG8=", true), (.base64Binary, "héllo", false),
        (.xhtml, "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>", true), (.xhtml, "plain", false),
    ])
    func stringFormats(type: PrimitiveType, text: String, valid: Bool) {
        #expect(type.accepts(string: text) == valid)
    }

    @Test(arguments: [
        (PrimitiveType.integer, "-2147483648", true), (.integer, "2147483648", false), (.integer, "1.0", false),
        (.integer, "1e3", false), (.positiveInt, "0", false), (.positiveInt, "1", true), (.unsignedInt, "0", true),
        (.unsignedInt, "-1", false), (.decimal, "1.50e-3", true), (.integer, "99999999999999999999", false),
    ])
    func numberFormats(type: PrimitiveType, text: String, valid: Bool) {
        #expect(type.accepts(number: text) == valid)
    }

    @Test func diagnosticsSayWhatIsWrong() throws {
        let patient = try example("Patient-example.json")
        let issue = try #require(validator.validate(replacing("gender", in: patient, with: "xx")).first)
        #expect(issue.severity == "error")
        #expect(
            issue.diagnostics.contains("'xx'")
                && issue.diagnostics.contains("http://hl7.org/fhir/ValueSet/administrative-gender"))
        let missing = try #require(
            validator.validate(replacing("status", in: try example("Observation-example.json"), with: nil)).first)
        #expect(missing.diagnostics.contains("Observation.status"))
    }
}
