@testable import FHIR
import Foundation
import Testing

/// The core resource profiles: the official examples that claim them pass, broken copies of
/// them fail with the profile, the element and the rule named.
@Suite struct ProfileValidatorTests {
    let validator = ProfileValidator.r4
    static let base = "http://hl7.org/fhir/StructureDefinition/"

    /// The vital-signs examples and the specific profile each was written for (they claim only vitalsigns).
    static let vitalSignExamples: [String: String] = [
        "Observation-blood-pressure.json": "bp", "Observation-blood-pressure-dar.json": "bp",
        "Observation-blood-pressure-cancel.json": "bp", "Observation-bmi.json": "bmi",
        "Observation-body-height.json": "bodyheight", "Observation-body-length.json": "vitalsigns",
        "Observation-body-temperature.json": "bodytemp", "Observation-head-circumference.json": "headcircum",
        "Observation-heart-rate.json": "heartrate", "Observation-respiratory-rate.json": "resprate",
        "Observation-satO2.json": "oxygensat", "Observation-vitals-panel.json": "vitalspanel",
    ]

    func example(_ name: String) throws -> JSONValue {
        try JSONParser.parse(Array(try Data(contentsOf: TestDatabasesPath.examples.appendingPathComponent(name))))
    }

    /// The example with `meta.profile` set to the given core profiles (none: no meta at all).
    func claiming(_ profiles: [String], _ resource: JSONValue) -> JSONValue {
        guard case .object(var object) = resource else { return resource }
        object["meta"] =
            profiles.isEmpty
            ? nil : .object(JSONObject([("profile", .array(profiles.map { .string(Self.base + $0) }))]))
        return .object(object)
    }

    /// Edits a copy: `edit` gets the object to change.
    func edited(_ resource: JSONValue, _ edit: (inout JSONObject) -> Void) -> JSONValue {
        guard case .object(var object) = resource else { return resource }
        edit(&object)
        return .object(object)
    }

    /// The error issues as `code@location`, and their diagnostics, for pinning.
    func errors(_ resource: JSONValue, requested: [String] = []) -> [FHIRError.Issue] {
        validator.validate(resource, requested: requested.map { Self.base + $0 }).filter { $0.severity == "error" }
    }

    func describe(_ issues: [FHIRError.Issue]) -> String {
        issues.map { "\($0.severity) \($0.code)@\($0.expression.joined(separator: ",")): \($0.diagnostics)" }.joined(
            separator: "\n")
    }

    @Test func everyCoreResourceProfileLoads() {
        let profiles = CoreProfiles.r4
        let invariants = profiles.byURL.values.reduce(0) { $0 + count(\.invariants.count, in: $1.root) }
        let elements = profiles.byURL.values.reduce(0) { $0 + count({ _ in 1 }, in: $1.root) }
        print(
            "Core resource profiles: \(profiles.byURL.count) loaded, \(elements) elements with rules or below them, \(invariants) constraints; unparsed: \(profiles.unparsedInvariants)"
        )
        #expect(profiles.byURL.count == 43)
        #expect(profiles.unparsedInvariants.isEmpty)
        #expect(profiles.unresolvedBindings.isEmpty, "\(profiles.unresolvedBindings)")
        #expect(validator.isKnown(Self.base + "vitalsigns") && validator.isKnown(Self.base + "bp|4.0.1"))
        #expect(!validator.isKnown(Self.base + "bp|3.0.2") && !validator.isKnown(Self.base + "Observation"))
    }

    private func count(_ measure: (ProfileElement) -> Int, in element: ProfileElement) -> Int {
        measure(element) + element.children.reduce(0) { $0 + count(measure, in: $1) }
            + (element.slicing?.slices ?? []).reduce(0) { $0 + count(measure, in: $1) }
    }

    @Test func officialExamplesConformToTheProfilesTheyClaimAndTheirSpecificOnes() throws {
        var checked = 0
        for (file, specific) in Self.vitalSignExamples.sorted(by: { $0.key < $1.key }) {
            let resource = try example(file)
            #expect(resource["meta"]?["profile"] == [.string(Self.base + "vitalsigns")], "\(file)")
            let claimed = validator.validate(resource, reportsUnknown: true)
            #expect(claimed.isEmpty, "\(file) against vitalsigns:\n\(describe(claimed))")
            let issues = validator.validate(resource, requested: [Self.base + specific])
            #expect(issues.isEmpty, "\(file) against \(specific):\n\(describe(issues))")
            checked += 2
        }
        let questionnaire = try example("Questionnaire-phq-9-questionnaire.json")
        #expect(describe(validator.validate(questionnaire)) == "")
        print("Vital-signs examples: \(Self.vitalSignExamples.count) examples, \(checked) checks without an issue")
    }

    /// Every example checked against every profile of its type: not an assertion of conformance
    /// (most examples are not written for those profiles), but nothing may crash and the
    /// counts show how much the profiles add.
    @Test func everyExampleAgainstEveryProfileOfItsType() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: TestDatabasesPath.examples.path).filter {
            $0.hasSuffix(".json")
        }.sorted()
        var checks = 0
        var conforming = 0
        var issueCount = 0
        for file in files {
            let resource = try example(file)
            guard let type = resource["resourceType"]?.stringValue else { continue }
            for profile in CoreProfiles.r4.byURL.values where profile.type == type {
                let issues = validator.validate(resource, requested: [profile.url]).filter { $0.severity == "error" }
                checks += 1
                issueCount += issues.count
                if issues.isEmpty { conforming += 1 }
            }
        }
        print(
            "Examples against the profiles of their type: \(checks) checks, \(conforming) without an error, \(issueCount) errors in all"
        )
        #expect(checks > 300)
    }

    // MARK: Broken copies

    @Test func missingRequiredSliceOfTheLOINCCode() throws {
        let heartRate = claiming(["heartrate"], try example("Observation-heart-rate.json"))
        let broken = edited(heartRate) { object in
            object["code"] = [
                "coding": [["system": "http://snomed.info/sct", "code": "364075005"]], "text": "Heart rate",
            ]
        }
        let issues = errors(broken)
        #expect(issues.count == 1, "\(describe(issues))")
        let issue = try #require(issues.first)
        #expect(issue.code == "structure" && issue.expression == ["Observation.code.coding"])
        #expect(issue.diagnostics.contains(Self.base + "heartrate"))
        #expect(
            issue.diagnostics.contains(
                "slice 'HeartRateCode' of Observation.code.coding:HeartRateCode requires at least 1"))
        // vitalsigns binds the code extensibly: a SNOMED-only code is a warning there, not an error.
        let warnings = validator.validate(broken).filter { $0.severity == "warning" }
        #expect(
            warnings.count == 1 && warnings[0].code == "code-invalid" && warnings[0].diagnostics.contains("extensible"),
            "\(describe(warnings))")
        #expect(validator.errors(in: claiming(["vitalsigns"], broken)).isEmpty)
    }

    @Test func wrongFixedUnitCode() throws {
        let heartRate = claiming(["heartrate"], try example("Observation-heart-rate.json"))
        let broken = edited(heartRate) { object in
            object["valueQuantity"] = [
                "value": 44, "unit": "beats/second", "system": "http://unitsofmeasure.org", "code": "/s",
            ]
        }
        let issues = errors(broken)
        #expect(issues.count == 1, "\(describe(issues))")
        #expect(issues.first?.code == "value" && issues.first?.expression == ["Observation.valueQuantity.code"])
        #expect(
            issues.first?.diagnostics.contains(
                "Observation.value[x]:valueQuantity.code must be exactly \"/min\", not '/s'") == true)
    }

    @Test func wrongCategoryMissesTheVitalSignsSlice() throws {
        let broken = edited(try example("Observation-heart-rate.json")) { object in
            object["category"] = [
                [
                    "coding": [
                        ["system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"]
                    ]
                ]
            ]
        }
        let issues = errors(broken)
        #expect(issues.count == 1 && issues[0].diagnostics.contains("slice 'VSCat'"), "\(describe(issues))")
    }

    @Test func unitOutsideTheRequiredBinding() throws {
        let bloodPressure = claiming(["vitalsigns"], try example("Observation-blood-pressure.json"))
        let broken = edited(bloodPressure) { object in
            guard case .array(var components)? = object["component"], case .object(var first) = components[0] else {
                return
            }
            first["valueQuantity"] = [
                "value": .number("14.3"), "unit": "kPa", "system": "http://unitsofmeasure.org", "code": "kPa",
            ]
            components[0] = .object(first)
            object["component"] = .array(components)
        }
        let issues = errors(broken)
        #expect(issues.count == 1, "\(describe(issues))")
        #expect(
            issues.first?.code == "code-invalid"
                && issues.first?.expression == ["Observation.component[0].valueQuantity"])
        #expect(issues.first?.diagnostics.contains("http://hl7.org/fhir/ValueSet/ucum-vitals-common") == true)
        // bp also fixes the unit: the same copy breaks two rules there.
        let asBP = errors(claiming([], broken), requested: ["bp"])
        #expect(
            asBP.count == 2 && asBP.contains { $0.code == "value" && $0.diagnostics.contains("mm[Hg]") },
            "\(describe(asBP))")
    }

    @Test func brokenCardinalities() throws {
        let bloodPressure = claiming(["bp"], try example("Observation-blood-pressure.json"))
        let oneComponent = edited(bloodPressure) { object in
            object["component"] = .array(Array(object["component"]!.arrayValue!.prefix(1)))
        }
        let issues = errors(oneComponent)
        #expect(Set(issues.map(\.code)) == ["structure"] && issues.count == 2, "\(describe(issues))")
        #expect(issues.contains { $0.diagnostics.contains("Observation.component requires at least 2 items, found 1") })
        #expect(issues.contains { $0.diagnostics.contains("slice 'DiastolicBP'") })

        let noEffective = edited(claiming(["heartrate"], try example("Observation-heart-rate.json"))) {
            $0["effectiveDateTime"] = nil
        }
        let missing = errors(noEffective)
        #expect(
            missing.count == 1 && missing[0].diagnostics.contains("Observation.effective[x] requires at least 1"),
            "\(describe(missing))")
    }

    @Test func typeNarrowedAndReferenceTargets() throws {
        let heartRate = claiming(["heartrate"], try example("Observation-heart-rate.json"))
        let stringValue = edited(heartRate) { object in
            object["valueQuantity"] = nil
            object["valueString"] = "44 per minute"
        }
        let issues = errors(stringValue)
        #expect(
            issues.count == 1 && issues[0].expression == ["Observation.valueString"]
                && issues[0].diagnostics.contains("allows only Quantity"),
            "\(describe(issues))")
        let groupSubject = edited(heartRate) { $0["subject"] = ["reference": "Group/101"] }
        let targets = errors(groupSubject)
        #expect(
            targets.count == 1 && targets[0].diagnostics.contains("may refer to Patient, not Group"),
            "\(describe(targets))")
    }

    @Test func profileConstraints() throws {
        let heartRate = claiming(["heartrate"], try example("Observation-heart-rate.json"))
        let yearOnly = edited(heartRate) { $0["effectiveDateTime"] = "1999" }
        let issues = errors(yearOnly)
        #expect(
            issues.count == 1 && issues[0].code == "invariant" && issues[0].diagnostics.contains("Constraint vs-1"),
            "\(describe(issues))")
        #expect(issues.first?.expression == ["Observation.effectiveDateTime"])

        let vitals = claiming(["vitalsigns"], try example("Observation-heart-rate.json"))
        let noValue = edited(vitals) { $0["valueQuantity"] = nil }
        let vs2 = errors(noValue)
        #expect(
            vs2.count == 1 && vs2[0].diagnostics.contains("Constraint vs-2") && vs2[0].expression == ["Observation"],
            "\(describe(vs2))")
    }

    @Test func patternFixedBooleanAndClosedTypeSlicing() throws {
        let provenance: JSONValue = [
            "resourceType": "Provenance", "target": [["reference": "Patient/1"]], "occurredDateTime": "2020-01-01",
            "recorded": "2020-01-01T00:00:00Z",
            "activity": [
                "coding": [["system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"]]
            ],
            "agent": [
                [
                    "type": [
                        "coding": [
                            [
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "AUT",
                                "display": "author",
                            ]
                        ]
                    ],
                    "who": ["reference": "Practitioner/1"],
                ]
            ],
        ]
        #expect(describe(validator.validate(provenance, requested: [Self.base + "provenance-relevant-history"])) == "")
        let twoAuthors = edited(provenance) {
            $0["agent"] = .array($0["agent"]!.arrayValue! + $0["agent"]!.arrayValue!)
        }
        let authors = errors(twoAuthors, requested: ["provenance-relevant-history"])
        #expect(
            authors.count == 1
                && authors[0].diagnostics.contains("slice 'Author' of Provenance.agent:Author allows at most 1"),
            "\(describe(authors))")

        let group: JSONValue = ["resourceType": "Group", "type": "person", "actual": true]
        let fixedFalse = errors(group, requested: ["groupdefinition"])
        #expect(
            fixedFalse.count == 1 && fixedFalse[0].diagnostics.contains("Group.actual must be exactly false, not true"),
            "\(describe(fixedFalse))")

        let device: JSONValue = [
            "resourceType": "Observation", "status": "final", "code": ["text": "x"],
            "subject": ["reference": "Device/1"],
            "device": ["reference": "DeviceMetric/1"], "effectivePeriod": ["start": "2020-01-01"],
        ]
        let period = errors(device, requested: ["devicemetricobservation"])
        #expect(
            period.contains { $0.diagnostics.contains("Observation.effective[x] allows only dateTime, not Period") },
            "\(describe(period))")
        #expect(period.contains { $0.diagnostics.contains("slice 'effectiveDateTime'") }, "\(describe(period))")
    }

    @Test func unknownAndMismatchedProfiles() throws {
        let heartRate = try example("Observation-heart-rate.json")
        let unknown = edited(heartRate) {
            $0["meta"] = [
                "profile": ["http://example.org/StructureDefinition/my-vitals", .string(Self.base + "bp|3.0.2")]
            ]
        }
        let warnings = validator.validate(unknown, reportsUnknown: true)
        #expect(
            warnings.count == 2 && warnings.allSatisfy { $0.severity == "warning" && $0.code == "not-supported" },
            "\(describe(warnings))")
        #expect(validator.errors(in: unknown).isEmpty)
        #expect(validator.validate(unknown).isEmpty)

        let patient: JSONValue = ["resourceType": "Patient", "meta": ["profile": [.string(Self.base + "vitalsigns")]]]
        let mismatch = validator.errors(in: patient)
        #expect(
            mismatch.count == 1 && mismatch[0].diagnostics.contains("constrains Observation, not Patient"),
            "\(describe(mismatch))")
    }

    // MARK: Hostile input and cost

    @Test func issuesAreBoundedAndUnknownProfilesDoNotMultiply() throws {
        let component: JSONValue = [
            "code": ["text": "x"],
            "valueQuantity": ["value": 1, "system": "http://unitsofmeasure.org", "code": "furlong"],
        ]
        let many = edited(claiming(["bp"], try example("Observation-blood-pressure.json"))) { object in
            object["component"] = .array(Array(repeating: component, count: 5_000))
        }
        let issues = validator.validate(many)
        #expect(issues.count == validator.maximumIssues + 1 && issues.last?.code == "too-costly")
        let urls = (0..<10_000).map { JSONValue.string("http://example.org/p\($0)") }
        let noisy = edited(try example("Observation-heart-rate.json")) { $0["meta"] = ["profile": .array(urls)] }
        #expect(validator.validate(noisy, reportsUnknown: true).count == 10)
    }

    /// What a check costs: printed for the notes, not asserted (the box is shared).
    @Test func costPerResource() throws {
        let claimed = try example("Observation-blood-pressure.json")
        let bp = claiming(["bp"], claimed)
        let plain = claiming([], claimed)
        _ = validator.validate(bp)
        let rounds = 2_000
        let clock = ContinuousClock()
        var start = clock.now
        var total = 0
        for _ in 0..<rounds { total += validator.errors(in: bp).count }
        let withProfile = (clock.now - start) / rounds
        start = clock.now
        for _ in 0..<rounds { total += validator.errors(in: plain).count }
        let without = (clock.now - start) / rounds
        start = clock.now
        for _ in 0..<rounds { total += ResourceStructureValidator.r4.validate(bp).count }
        let structure = (clock.now - start) / rounds
        start = clock.now
        let vs2 = try FHIRPathExpression(
            "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())")
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        for _ in 0..<rounds { total += try vs2.evaluate(on: bp, environment: environment).count - 1 }
        print("vs-2 alone: \((clock.now - start) / rounds)")
        print(
            "Profile check of Observation-blood-pressure against bp: \(withProfile) a resource; without meta.profile: \(without); the structure check of the same resource: \(structure) (debug build)"
        )
        #expect(total == 0)
    }
}
