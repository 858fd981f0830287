@testable import FHIR
import FHIRTestSupport
import Foundation
import Testing

/// Write validation beyond structure: the core constraints (FHIRPath invariants), Reference
/// target types, core extensions and Bundle rules (`validateWithRules`), on our own invalid
/// corpus, the 717 official examples and the Synthea data.
@Suite struct InvariantValidationTests {
    let validator = ResourceStructureValidator.r4

    static func json(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    static func isTrue(_ result: [FHIRPathItem]) -> Bool {
        guard result.count == 1, case .boolean(true)? = result[0].systemValue else { return false }
        return true
    }

    @Test func theCatalogPlacesEveryCoreConstraint() {
        let catalog = InvariantCatalog.r4
        print(
            "invariant catalog: \(catalog.constraints.count) constraints (\(catalog.constraints.filter(\.isNative).count) native), \(catalog.placedConstraintCount) placed, \(catalog.referenceTargets.count) restricted Reference elements, \(catalog.extensions.count) core extensions"
        )
        #expect(catalog.unplaced.isEmpty, "\(catalog.unplaced)")
        // 239 differential constraints of R4 core plus ele-1, every one parsed and placed on a node.
        #expect(catalog.constraints.count == 240)
        #expect(catalog.placedConstraintCount == catalog.constraints.count)
        #expect(catalog.constraints.allSatisfy { $0.isNative || $0.expression != nil })
        #expect(catalog.constraints.filter(\.isNative).map(\.key).sorted() == ["bdl-7", "dom-3", "ele-1", "ref-1"])
        #expect(catalog.referenceTargets["Observation.subject"] == ["Patient", "Group", "Device", "Location"])
        #expect(
            catalog.extensions["http://hl7.org/fhir/StructureDefinition/patient-birthTime"]?.valueNames == [
                "valueDateTime"
            ])
        #expect(catalog.extensions.count == 396)
    }

    /// Every case of our corpus is refused with its rule's key (or words) at its location,
    /// while structure alone accepts it: the rule is what refuses it.
    @Test func ourInvalidCorpusIsRefusedWithTheRightKey() throws {
        var caught: [String: Int] = [:]
        for item in InvalidResourceCorpus.cases {
            let resource = try Self.json(item.body)
            #expect(
                validator.validate(resource).isEmpty,
                "\(item.name): structure alone should accept it: \(validator.validate(resource).map(\.diagnostics))")
            let issues = validator.validateWithRules(resource, includeWarnings: false)
            let match = issues.first { issue in
                issue.severity == "error" && issue.diagnostics.contains(item.diagnostic)
                    && issue.expression.contains { $0.contains(item.location) }
            }
            #expect(
                match != nil,
                "\(item.name): expected '\(item.diagnostic)' at \(item.location), got \(issues.map { "\($0.diagnostics) @\($0.expression)" })"
            )
            if match != nil { caught[item.category, default: 0] += 1 }
        }
        print(
            "own invalid corpus: \(caught.values.reduce(0, +)) of \(InvalidResourceCorpus.cases.count) refused with the right key and location: \(caught.sorted { $0.key < $1.key })"
        )
    }

    /// The official examples valid today stay accepted: no error, only warnings (listed by key).
    @Test func theOfficialExamplesStayAccepted() async throws {
        let directory = TestDatabasesPath.examples
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
            .sorted()
        #expect(files.count == 717)
        var accepted = 0, warnings: [String: Int] = [:], refused: [String: [String]] = [:]
        for (number, file) in files.enumerated() {
            if number % 25 == 0 { await Task.yield() }
            let resource = try JSONParser.parse(Array(try Data(contentsOf: directory.appendingPathComponent(file))))
            let issues = validator.validateWithRules(resource, includeWarnings: true)
            let errors = issues.filter { $0.severity == "error" }
            if errors.isEmpty {
                accepted += 1
            } else {
                refused[file] = errors.map { "\($0.diagnostics.prefix(160)) @\($0.expression)" }
            }
            for issue in issues where issue.severity == "warning" {
                warnings[
                    String(issue.diagnostics.split(separator: ":").dropFirst().first ?? "").trimmingCharacters(
                        in: .whitespaces), default: 0] += 1
            }
        }
        print(
            "official examples with all rules: \(accepted) of \(files.count) accepted, \(refused.count) refused; warnings by key: \(warnings.sorted { $0.key < $1.key })"
        )
        for (file, errors) in refused.sorted(by: { $0.key < $1.key }) { print("  REFUSED \(file): \(errors)") }
        // Refused: the two examples that break their StructureDefinition (ValidationTests.invalidExamples),
        // and the four whose references name a resource type their element does not allow, for
        // that reason alone. Every constraint and extension rule accepts all the others.
        #expect(
            Set(refused.keys) == Set(ValidationTests.invalidExamples.keys).union(Self.examplesWithWrongTargets.keys))
        for file in Self.examplesWithWrongTargets.keys {
            #expect(
                refused[file]?.allSatisfy { $0.contains("may refer to") } == true, "\(file): \(refused[file] ?? [])")
        }
    }

    /// A reference's target type is checked as the store reads the reference (the type it
    /// indexes), beside the type a conditional reference names: `x?/Practitioner/1` and
    /// `Patient?x=/Practitioner/1` are checked as the Practitioner the index would find by them.
    @Test func aReferenceIsCheckedAsTheStoreReadsIt() throws {
        let cases: [(reference: String, refused: Bool)] = [
            ("Patient/1", false), ("Practitioner/1", true), ("Practitioner/1/_history/2", true),
            ("https://example.org/fhir/Practitioner/1", true), ("Patient?identifier=x", false),
            ("Practitioner?identifier=x", true), ("x?/Practitioner/1", true), ("Patient?x=/Practitioner/1", true),
            ("urn:uuid:0b6f5a1e-0000-4000-8000-000000000001", false),
        ]
        for (reference, refused) in cases {
            let observation = try Self.json(
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"\#(reference)"}}"#
            )
            let errors = validator.validateWithRules(observation, includeWarnings: false).filter {
                $0.severity == "error" && $0.diagnostics.contains("may refer to")
            }
            #expect(errors.isEmpty != refused, "\(reference): \(errors.map(\.diagnostics))")
            // What is refused names what the store would index: never a type the check did not see.
            if !refused, let parsed = ResourceReference(parsing: reference) {
                #expect(["Patient", "Group", "Device", "Location"].contains(parsed.type), "\(reference)")
            }
        }
    }

    /// Official examples whose literal references name a type the R4 definition does not allow.
    static let examplesWithWrongTargets: [String: String] = [
        "DeviceMetric-example.json": "DeviceMetric.parent names DeviceDefinition/dc102; R4 allows Device only",
        "DeviceUseStatement-example.json":
            "reasonReference names Procedure/example; R4 allows Condition, DiagnosticReport, DocumentReference, Media, Observation",
        "MedicationRequest-medrx0301.json":
            "dispenseRequest.performer names Practitioner/f001; R4 allows Organization only",
        "Observation-clinical-gender.json":
            "performer names Encounter/example; R4 allows CareTeam, Organization, Patient, Practitioner, PractitionerRole, RelatedPerson",
    ]

    /// ele-1, bdl-7, dom-3 and ref-1 are checked in Swift; they agree with their FHIRPath expressions.
    @Test func theNativeChecksAgreeWithTheirExpressions() throws {
        let catalog = InvariantCatalog.r4
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        let bdl7 = try FHIRPathExpression(catalog.constraints[catalog.fullUrlConstraint].expressionText)
        let bundles = [
            (
                #"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}}]}"#,
                false
            ),
            (
                #"{"resourceType":"Bundle","type":"history","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}}]}"#,
                true
            ),
            (
                #"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","meta":{"versionId":"1"}}},{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","meta":{"versionId":"2"}}}]}"#,
                true
            ),
            (
                #"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:uuid:b","resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient"}}]}"#,
                true
            ),
        ]
        for (text, valid) in bundles {
            let bundle = try Self.json(text)
            #expect(
                try bdl7.evaluateBoolean(on: bundle, environment: environment) == valid, "FHIRPath bdl-7 on \(text)")
            let native = validator.validateWithRules(bundle, includeWarnings: false).filter {
                $0.diagnostics.contains("bdl-7")
            }
            #expect(native.isEmpty == valid, "native bdl-7 on \(text)")
        }
        let dom3 = try FHIRPathExpression(catalog.constraints[catalog.containedConstraint].expressionText)
        var containing = [
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"status":"final","code":{"text":"x"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"status":"final","code":{"text":"x"},"subject":{"reference":"#p"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p","link":[{"other":{"reference":"#"},"type":"seealso"}]}],"status":"final","code":{"text":"x"}}"##,
            ##"{"resourceType":"Questionnaire","contained":[{"resourceType":"ValueSet","id":"vs","status":"active"}],"status":"active","item":[{"linkId":"1","type":"choice","answerValueSet":"#vs"}]}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"},{"resourceType":"Patient","id":"q","link":[{"other":{"reference":"#p"},"type":"seealso"}]}],"status":"final","code":{"text":"x"},"subject":{"reference":"#q"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"},{"resourceType":"Patient","id":"q"}],"status":"final","code":{"text":"x"},"subject":{"reference":"#q"}}"##,
        ]
        // And every official example with contained resources.
        for file in try FileManager.default.contentsOfDirectory(atPath: TestDatabasesPath.examples.path).sorted()
        where file.hasSuffix(".json") {
            let text = try String(contentsOf: TestDatabasesPath.examples.appendingPathComponent(file), encoding: .utf8)
            if text.contains("\"contained\"") { containing.append(text) }
        }
        var compared = 0
        for text in containing {
            let resource = try Self.json(text)
            guard resource["contained"] != nil, validator.validate(resource).isEmpty else { continue }
            let expressionValid = Self.isTrue(try dom3.evaluate(on: resource, environment: environment))
            let native = validator.validateWithRules(resource, includeWarnings: false).filter {
                $0.diagnostics.contains("dom-3")
            }
            #expect(native.isEmpty == expressionValid, "native dom-3 against FHIRPath on \(text.prefix(200))")
            compared += 1
        }
        print("dom-3: native and FHIRPath agree on \(compared) resources with contained resources")
        #expect(compared > 40)
        let ref1 = try FHIRPathExpression(catalog.constraints[catalog.localReferenceConstraint].expressionText)
        let referring = [
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"status":"final","code":{"text":"x"},"subject":{"reference":"#p"}}"##,
            ##"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"#p"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"status":"final","code":{"text":"x"},"subject":{"reference":"#q"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p","link":[{"other":{"reference":"#"},"type":"seealso"}]}],"status":"final","code":{"text":"x"},"subject":{"reference":"#p"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p","managingOrganization":{"reference":"#o"}},{"resourceType":"Organization","id":"o","name":"O"}],"status":"final","code":{"text":"x"},"subject":{"reference":"#p"}}"##,
            ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p","managingOrganization":{"reference":"#z"}}],"status":"final","code":{"text":"x"},"subject":{"reference":"#p"}}"##,
        ]
        for text in referring {
            let resource = try Self.json(text)
            // Every Reference of the resource, its own and its contained resources', against %rootResource.
            var expressionValid = true
            for path in [
                "Observation.subject", "Observation.contained.link.other", "Observation.contained.managingOrganization",
            ] {
                for item in try FHIRPathExpression(path).evaluate(on: resource, environment: environment) {
                    let result = try ref1.evaluate(on: resource, context: [item], environment: environment)
                    if result.count == 1, case .boolean(false)? = result[0].systemValue { expressionValid = false }
                }
            }
            let native = validator.validateWithRules(resource, includeWarnings: false).filter {
                $0.diagnostics.contains("ref-1")
            }
            #expect(native.isEmpty == expressionValid, "native ref-1 against FHIRPath on \(text)")
        }
        let ele1 = try FHIRPathExpression(catalog.constraints[catalog.elementConstraint].expressionText)
        let patients = [
            (#"{"resourceType":"Patient","name":[{"id":"n1"}]}"#, "name", false),
            (#"{"resourceType":"Patient","name":[{"id":"n1","text":"A"}]}"#, "name", true),
            (#"{"resourceType":"Patient","_birthDate":{"id":"b1"}}"#, "birthDate", false),
            (#"{"resourceType":"Patient","birthDate":"1990","_birthDate":{"id":"b1"}}"#, "birthDate", true),
            (
                #"{"resourceType":"Patient","_birthDate":{"id":"b1","extension":[{"url":"http://example.org/x","valueString":"a"}]}}"#,
                "birthDate", true
            ),
        ]
        for (text, element, valid) in patients {
            let patient = try Self.json(text)
            let items = try FHIRPathExpression("Patient.\(element)").evaluate(on: patient)
            let results = try items.map { try ele1.evaluate(on: patient, context: [$0], environment: environment) }
            let expressionValid = results.allSatisfy(Self.isTrue)
            #expect(expressionValid == valid, "FHIRPath ele-1 on \(text)")
            let native = validator.validateWithRules(patient, includeWarnings: false).filter {
                $0.diagnostics.contains("ele-1")
            }
            #expect(native.isEmpty == valid, "native ele-1 on \(text): \(native.map(\.diagnostics))")
        }
    }

    /// A guarded constraint is skipped where its guard element is absent: there it must never
    /// evaluate to false. Checked by evaluating it anyway on every official example and Synthea resource.
    @Test func theGuardsSkipOnlyConstraintsThatCannotFail() async throws {
        let catalog = InvariantCatalog.r4
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        var resources: [JSONValue] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: TestDatabasesPath.examples.path).sorted()
        where file.hasSuffix(".json") {
            resources.append(
                try JSONParser.parse(
                    Array(try Data(contentsOf: TestDatabasesPath.examples.appendingPathComponent(file)))))
        }
        let synthea = TestDatabases.sharedFHIRDirectory.appendingPathComponent("synthea")
        for file in try FileManager.default.contentsOfDirectory(atPath: synthea.path).sorted().prefix(4)
        where file.hasSuffix(".json") {
            let bundle = try JSONParser.parse(Array(try Data(contentsOf: synthea.appendingPathComponent(file))))
            resources += (bundle["entry"]?.arrayValue ?? []).compactMap { $0["resource"] }
        }
        var skipped = 0, falseWhereSkipped: [String] = []
        for (number, resource) in resources.enumerated() {
            if number % 50 == 0 { await Task.yield() }
            var walk = StructureWalk(schema: .r4, catalog: catalog)
            walk.validateRoot(resource)
            for visit in walk.visits {
                let visited = walk.resources[visit.resource]
                let item: FHIRPathItem =
                    visit.isResource
                    ? .element(visited.value, nil, .resource(visited.type), visited.type)
                    : .element(.object(visit.object), nil, .complex(visit.node), "")
                var sites = catalog.sitesByNode[visit.node]
                if visit.isResource {
                    sites.append(ConstraintSite(child: nil, constraints: catalog.domainResourceConstraints))
                }
                for site in sites {
                    guard case .node(let node) = item else { continue }
                    let contexts = try site.child.map { try FHIRPathNavigator.children(of: node, named: $0) } ?? [item]
                    for index in site.constraints {
                        let constraint = catalog.constraints[index]
                        guard let expression = constraint.expression, constraint.guardMember != nil else { continue }
                        for context in contexts {
                            guard case .node(let contextNode) = context, let object = contextNode.value?.objectValue,
                                !constraint.mayFail(on: object)
                            else { continue }
                            skipped += 1
                            let root = visited.container.map { walk.resources[$0].value }
                            let result = try expression.evaluate(
                                on: visited.value, context: [context], rootResource: root, environment: environment)
                            if result.count == 1, case .boolean(false)? = result[0].systemValue {
                                falseWhereSkipped.append("\(constraint.key) at \(visit.location)")
                            }
                        }
                    }
                }
            }
        }
        print(
            "guards: \(skipped) evaluations skipped on \(resources.count) resources; false among them: \(falseWhereSkipped.count)"
        )
        #expect(skipped > 1000)
        #expect(falseWhereSkipped.isEmpty, "\(falseWhereSkipped.prefix(10))")
    }

    /// The Bundle rules of a transaction's input, before its entries run.
    @Test func transactionInputBundleRules() throws {
        let duplicate = try Self.json(
            #"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#
        )
        #expect(
            validator.validateBundleRules(duplicate).contains {
                $0.diagnostics.contains("bdl-7") && $0.expression == ["Bundle.entry[1]"]
            })
        let noRequest = try Self.json(
            #"{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}}]}"#)
        #expect(validator.validateBundleRules(noRequest).contains { $0.diagnostics.contains("bdl-3") })
        let selfTwice = try Self.json(
            #"{"resourceType":"Bundle","type":"batch","link":[{"relation":"self","url":"a"},{"relation":"self","url":"b"}]}"#
        )
        #expect(validator.validateBundleRules(selfTwice).contains { $0.expression == ["Bundle.link[1]"] })
        let good = try Self.json(
            #"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#
        )
        #expect(validator.validateBundleRules(good).isEmpty)
    }

    /// 3,000 contained resources each referenced by `#id`: dom-3 and ref-1 as expressions are
    /// quadratic there; checked in Swift they take a set lookup each.
    @Test func manyContainedResourcesAreCheckedInLinearTime() throws {
        let count = 3_000
        let contained = (0..<count).map { #"{"resourceType":"Basic","id":"b\#($0)","code":{"text":"x"}}"# }.joined(
            separator: ",")
        let entries = (0..<count).map { ##"{"item":{"reference":"#b\##($0)"}}"## }.joined(separator: ",")
        let list = try Self.json(
            #"{"resourceType":"List","status":"current","mode":"working","contained":[\#(contained)],"entry":[\#(entries)]}"#
        )
        let started = Date()
        let issues = validator.validateWithRules(list, includeWarnings: false)
        let seconds = Date().timeIntervalSince(started)
        print(
            "List with \(count) contained resources, each referenced: \(issues.count) issue(s) in \(String(format: "%.2f", seconds)) s"
        )
        #expect(issues.isEmpty, "\(issues.prefix(3).map(\.diagnostics))")
        #expect(seconds < 20)
        // One reference to nothing: ref-1 names it; one contained resource nothing refers to: dom-3.
        let broken = try Self.json(
            ##"{"resourceType":"List","status":"current","mode":"working","contained":[\##(contained),{"resourceType":"Basic","id":"lonely","code":{"text":"x"}}],"entry":[\##(entries),{"item":{"reference":"#nobody"}}]}"##
        )
        let found = validator.validateWithRules(broken, includeWarnings: false)
        #expect(found.contains { $0.diagnostics.contains("ref-1") && $0.expression == ["List.entry[\(count)].item"] })
        #expect(found.contains { $0.diagnostics.contains("dom-3") && $0.diagnostics.contains("lonely") })
    }

    /// Hostile input: an ImplementationGuide with 5,000 groupings and 5,000 resources naming
    /// one makes ig-1 (`resource.groupingId.all(%context.grouping.id contains $this)`) test every
    /// pair; the shared step budget stops it and the write is refused as too costly.
    @Test func theSharedStepBudgetBoundsAHostileResource() throws {
        let groupings = (0..<5_000).map { #"{"id":"g\#($0)","name":"g"}"# }.joined(separator: ",")
        let resources = (0..<5_000).map { #"{"reference":{"reference":"Basic/b\#($0)"},"groupingId":"g\#($0)"}"# }
            .joined(separator: ",")
        let guide = try Self.json(
            #"{"resourceType":"ImplementationGuide","url":"http://x/ig","name":"X","status":"draft","packageId":"x.y","fhirVersion":["4.0.1"],"definition":{"grouping":[\#(groupings)],"resource":[\#(resources)]}}"#
        )
        let started = Date()
        let issues = validator.validateWithRules(guide, includeWarnings: false)
        let seconds = Date().timeIntervalSince(started)
        print(
            "hostile ImplementationGuide with 5,000 groupings: \(issues.count) issue(s) in \(String(format: "%.2f", seconds)) s: \(issues.first?.diagnostics.prefix(160) ?? "")"
        )
        #expect(issues.contains { $0.code == "too-costly" && $0.severity == "error" })
        #expect(seconds < 60)
    }

    /// A Questionnaire of 5,000 items: que-2 (`descendants().linkId.isDistinct()`) compared
    /// every pair and was refused as too costly; strings are now told apart with a set, so the
    /// verdict is right either way.
    @Test func distinctStringsAreFoundInLinearTime() throws {
        func questionnaire(_ linkIds: [String]) throws -> JSONValue {
            let items = linkIds.map { #"{"linkId":"\#($0)","type":"display","text":"x"}"# }.joined(separator: ",")
            return try Self.json(#"{"resourceType":"Questionnaire","status":"active","item":[\#(items)]}"#)
        }
        let linkIds = (0..<5_000).map { "q\($0)" }
        let unique = validator.validateWithRules(try questionnaire(linkIds), includeWarnings: false)
        #expect(unique.isEmpty, "\(unique.prefix(3).map(\.diagnostics))")
        let repeated = validator.validateWithRules(try questionnaire(linkIds + ["q2500"]), includeWarnings: false)
        #expect(repeated.contains { $0.diagnostics.contains("que-2") }, "\(repeated.prefix(3).map(\.diagnostics))")
        #expect(!repeated.contains { $0.code == "too-costly" })
    }

    /// A StructureDefinition whose snapshot has 10,000 elements: sdf-8 names
    /// `%resource.snapshot.element` inside `all()`, which was rebuilt for every element
    /// (quadratic, 14 s in a release build: attacker finding A1). It is now built once, so the
    /// rule is checked in linear time and a wrong path is still found. Without ids (the attack's
    /// body) and with them (sdf-16's `isDistinct()` over 10,001 ids, now told apart with a set).
    @Test func sdf8IsCheckedInLinearTimeOnAHugeSnapshot() throws {
        func definition(_ paths: [String], ids: Bool = false) throws -> JSONValue {
            let elements = paths.enumerated().map {
                #"{\#(ids ? #""id":"\#($1)","# : "")"path":"\#($1)","min":0,"max":"1","definition":"d","base":{"path":"\#($1)","min":0,"max":"1"}}"#
            }
            return try Self.json(
                #"{"resourceType":"StructureDefinition","url":"http://x/sd","name":"X","status":"draft","kind":"resource","abstract":false,"type":"Patient","baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","derivation":"constraint","snapshot":{"element":[\#(elements.joined(separator: ","))]}}"#
            )
        }
        let paths = ["Patient"] + (0..<10_000).map { "Patient.x\($0)" }
        let started = Date()
        let issues = validator.validateWithRules(try definition(paths), includeWarnings: false)
        let seconds = Date().timeIntervalSince(started)
        print(
            "StructureDefinition with 10,001 snapshot elements: \(issues.count) issue(s) in \(String(format: "%.2f", seconds)) s: \(issues.prefix(3).map(\.diagnostics))"
        )
        #expect(!issues.contains { $0.code == "too-costly" })
        #expect(issues.contains { $0.diagnostics.contains("sdf-14:") })
        #expect(!issues.contains { $0.diagnostics.contains("sdf-8:") })
        let withIds = validator.validateWithRules(try definition(paths, ids: true), includeWarnings: false)
        #expect(withIds.isEmpty, "\(withIds.prefix(3).map(\.diagnostics))")
        let wrong = validator.validateWithRules(
            try definition(paths + ["Observation.code"], ids: true), includeWarnings: false)
        #expect(wrong.contains { $0.diagnostics.contains("sdf-8:") })
        #expect(!wrong.contains { $0.code == "too-costly" })
    }

    /// The cost validation adds to a write, on the Synthea resources (µs per resource, debug build).
    @Test func validationCostOnSynthea() async throws {
        let directory = TestDatabases.sharedFHIRDirectory.appendingPathComponent("synthea")
        var resources: [JSONValue] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        where file.hasSuffix(".json") {
            let bundle = try JSONParser.parse(Array(try Data(contentsOf: directory.appendingPathComponent(file))))
            resources += (bundle["entry"]?.arrayValue ?? []).compactMap { $0["resource"] }
        }
        #expect(resources.count > 1000)
        var refused: [String] = []
        _ = validator.validateWithRules(resources[0], includeWarnings: false)  // the tables are built once, not timed
        let structureStart = Date()
        for (number, resource) in resources.enumerated() {
            if number % 500 == 0 { await Task.yield() }
            _ = validator.validate(resource)
        }
        let structureSeconds = Date().timeIntervalSince(structureStart)
        let rulesStart = Date()
        for (number, resource) in resources.enumerated() {
            if number % 500 == 0 { await Task.yield() }
            let errors = validator.validateWithRules(resource, includeWarnings: false).filter { $0.severity == "error" }
            if !errors.isEmpty {
                refused.append("\(resource["resourceType"]?.stringValue ?? "") \(errors.map(\.diagnostics))")
            }
        }
        let rulesSeconds = Date().timeIntervalSince(rulesStart)
        let perResource = { (seconds: Double) in String(format: "%.1f", seconds / Double(resources.count) * 1e6) }
        print(
            "synthea validation (this build): \(resources.count) resources; structure alone \(perResource(structureSeconds)) us/resource, with all rules \(perResource(rulesSeconds)) us/resource; \(refused.count) refused"
        )
        for line in refused.prefix(20) { print("  REFUSED \(line.prefix(300))") }
        #expect(refused.isEmpty)
    }
}
