import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// `ValueSet/$expand`, `ValueSet/$validate-code`, `CodeSystem/$lookup`, `CodeSystem/$subsumes`
/// (issue 17) on R4's terminology, and the token modifiers `:below` and `:above` on both stores.
@Suite struct TerminologyOperationTests {
    static let gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    static let genderSystem = "http://hl7.org/fhir/administrative-gender"
    static let actCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

    static func codes(_ response: FHIRTestResponse) -> [String] {
        response.json?["expansion"]?["contains"]?.arrayValue?.compactMap { $0["code"]?.stringValue } ?? []
    }

    /// The value of the output parameter `name` of a Parameters answer.
    static func output(_ response: FHIRTestResponse, _ name: String) -> JSONValue? {
        guard let parameter = response.json?["parameter"]?.arrayValue?.first(where: { $0["name"]?.stringValue == name })
        else { return nil }
        return parameter.objectValue?.first { $0.key.hasPrefix("value") }?.value
    }

    static func isOutcome(
        _ response: FHIRTestResponse, status: Int, code: String? = nil, mentioning text: String? = nil
    ) -> Bool {
        guard Int(response.status.code) == status, response.json?["resourceType"] == "OperationOutcome" else {
            return false
        }
        let issue = response.json?["issue"]?.arrayValue?.first
        if let code, issue?["code"]?.stringValue != code { return false }
        if let text, issue?["diagnostics"]?.stringValue?.contains(text) != true { return false }
        return true
    }

    @Test func expandByURLByInstanceAndByPost() async throws {
        try await withFHIRApp(.sqlite) { client in
            let byURL = try await client.fhir(.get, "ValueSet/$expand?url=\(encodeQuery(Self.gender))")
            #expect(byURL.status == .ok, "\(byURL.text)")
            #expect(byURL.json?["resourceType"] == "ValueSet" && byURL.json?["url"]?.stringValue == Self.gender)
            #expect(Self.codes(byURL) == ["male", "female", "other", "unknown"])
            #expect(byURL.json?["expansion"]?["total"] == 4 && byURL.json?["expansion"]?["offset"] == 0)
            let first = try #require(byURL.json?["expansion"]?["contains"]?.arrayValue?.first)
            #expect(first["system"]?.stringValue == Self.genderSystem && first["display"] == "Male")
            let byInstance = try await client.fhir(.get, "ValueSet/administrative-gender/$expand")
            #expect(Self.codes(byInstance) == ["male", "female", "other", "unknown"])
            let versioned = try await client.fhir(
                .get, "ValueSet/$expand?url=\(encodeQuery(Self.gender))&valueSetVersion=4.0.1&filter=FEM")
            #expect(Self.codes(versioned) == ["female"])
            let body =
                #"{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"\#(Self.gender)"},{"name":"count","valueInteger":2},{"name":"offset","valueInteger":1}]}"#
            let posted = try await client.fhir(.post, "ValueSet/$expand", body: body)
            #expect(posted.status == .ok, "\(posted.text)")
            #expect(Self.codes(posted) == ["female", "other"] && posted.json?["expansion"]?["total"] == 4)
            // A client's own ValueSet, composed from R4's code systems.
            let own =
                #"{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","url":"http://example.org/vs","status":"active","compose":{"include":[{"system":"\#(Self.actCode)","filter":[{"property":"concept","op":"descendent-of","value":"IMP"}]}]}}}]}"#
            let composed = try await client.fhir(.post, "ValueSet/$expand", body: own)
            #expect(composed.status == .ok, "\(composed.text)")
            #expect(Set(Self.codes(composed)) == ["ACUTE", "NONAC"])
        }
    }

    /// A value set R4 does not have is read from the store, by id or url, and evaluated alike.
    @Test(arguments: TestDatabases.backends)
    func storedValueSetsExpandAndValidate(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { (client: any TestClientProtocol) async throws in
            let own =
                #"{"resourceType":"ValueSet","id":"inpatient","url":"http://example.org/fhir/ValueSet/inpatient","version":"2","status":"active","compose":{"include":[{"system":"\#(Self.actCode)","filter":[{"property":"concept","op":"is-a","value":"IMP"}]}],"exclude":[{"system":"\#(Self.actCode)","concept":[{"code":"NONAC"}]}]}}"#
            #expect(try await client.fhir(.put, "ValueSet/inpatient", body: own).status == .created)
            #expect(try await Self.codes(client.fhir(.get, "ValueSet/inpatient/$expand")) == ["IMP", "ACUTE"])
            let url = encodeQuery("http://example.org/fhir/ValueSet/inpatient")
            #expect(
                try await Self.codes(client.fhir(.get, "ValueSet/$expand?url=\(url)&valueSetVersion=2")) == [
                    "IMP", "ACUTE",
                ])
            #expect(try await client.fhir(.get, "ValueSet/$expand?url=\(url)&valueSetVersion=3").status == .notFound)
            let check = "ValueSet/$validate-code?url=\(url)&system=\(encodeQuery(Self.actCode))&code="
            #expect(try await Self.output(client.fhir(.get, check + "ACUTE"), "result") == true)
            #expect(try await Self.output(client.fhir(.get, check + "NONAC"), "result") == false)
        }
    }

    /// Compose filters are capped at 16 per rule and 64 per ValueSet (attacker finding A2:
    /// 20,000 `is-not-a` filters in 1.2 MB cost 7 s, and a stored one cost 5.4 s on every
    /// `$expand`). A stored ValueSet is still accepted (it is a conformant resource), but its
    /// expansion is refused at parse, before any filter runs. At the limits the filters narrow
    /// one list and the expansion is right.
    @Test(arguments: TestDatabases.backends)
    func composeFiltersAreCapped(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { (client: any TestClientProtocol) async throws in
            func rule(_ filters: Int, value: String = "IMP") -> String {
                let one = #"{"property":"concept","op":"is-not-a","value":"\#(value)"}"#
                return
                    #"{"system":"\#(Self.actCode)","filter":[\#(Array(repeating: one, count: filters).joined(separator: ","))]}"#
            }
            func valueSet(_ rules: [String], id: String = "many-filters") -> String {
                #"{"resourceType":"ValueSet","id":"\#(id)","url":"http://example.org/vs/\#(id)","status":"active","compose":{"include":[\#(rules.joined(separator: ","))]}}"#
            }
            func posted(_ rules: [String]) -> String {
                #"{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":\#(valueSet(rules))}]}"#
            }
            let perRule = try await client.fhir(.post, "ValueSet/$expand", body: posted([rule(17)]))
            #expect(
                Self.isOutcome(perRule, status: 400, code: "too-costly", mentioning: "16 filters"), "\(perRule.text)")
            let inAll = try await client.fhir(
                .post, "ValueSet/$expand", body: posted(Array(repeating: rule(13), count: 5)))
            #expect(Self.isOutcome(inAll, status: 400, code: "too-costly", mentioning: "64 filters"), "\(inAll.text)")
            // 4 rules of 16 filters (64): the same codes as one filter.
            let single = try await client.fhir(.post, "ValueSet/$expand?count=1000", body: posted([rule(1)]))
            #expect(single.status == .ok, "\(single.text)")
            let atLimit = try await client.fhir(
                .post, "ValueSet/$expand?count=1000", body: posted(Array(repeating: rule(16), count: 4)))
            #expect(atLimit.status == .ok, "\(atLimit.text)")
            #expect(
                !Self.codes(single).isEmpty && Set(Self.codes(atLimit)) == Set(Self.codes(single))
                    && !Self.codes(single).contains("ACUTE"))
            // Stored with 20,000 filters: the write succeeds, each $expand is refused at once.
            #expect(
                try await client.fhir(.put, "ValueSet/many-filters", body: valueSet([rule(20_000)])).status.code < 300)
            let started = Date()
            let stored = try await client.fhir(.get, "ValueSet/many-filters/$expand?count=1")
            #expect(
                Self.isOutcome(stored, status: 400, code: "too-costly", mentioning: "16 filters"),
                "\(stored.text.prefix(300))")
            #expect(Date().timeIntervalSince(started) < 10)
        }
    }

    @Test func expandPagesFiltersAndRefusesWhatItCannotList() async throws {
        try await withFHIRApp(.sqlite) { client in
            let status = encodeQuery("http://hl7.org/fhir/ValueSet/observation-status")
            let page = try await client.fhir(.get, "ValueSet/$expand?url=\(status)&count=3&offset=3")
            #expect(Self.codes(page) == ["amended", "corrected", "cancelled"])
            #expect(page.json?["expansion"]?["total"] == 8 && page.json?["expansion"]?["offset"] == 3)
            let past = try await client.fhir(.get, "ValueSet/$expand?url=\(status)&offset=100")
            #expect(past.status == .ok && Self.codes(past).isEmpty && past.json?["expansion"]?["total"] == 8)
            // activeOnly leaves out retired concepts (v3-AcknowledgementCondition's SU), marked inactive otherwise.
            let conditions = try await client.fhir(.get, "ValueSet/v3-AcknowledgementCondition/$expand")
            let retired = conditions.json?["expansion"]?["contains"]?.arrayValue?.first { $0["code"] == "SU" }
            #expect(retired?["inactive"] == true && Self.codes(conditions).count == 4, "\(conditions.text)")
            let active = try await client.fhir(.get, "ValueSet/v3-AcknowledgementCondition/$expand?activeOnly=true")
            #expect(Self.codes(active).count == 3 && !Self.codes(active).contains("SU"))
            // is-a over the v3 ActCode hierarchy, the abstract root excluded.
            let encounter = try await client.fhir(.get, "ValueSet/v3-ActEncounterCode/$expand")
            #expect(Self.codes(encounter).contains("ACUTE") && !Self.codes(encounter).contains("_ActEncounterCode"))
            // All of LOINC: not enumerated by r4-core, so not listed.
            let loinc = try await client.fhir(.get, "ValueSet/observation-codes/$expand")
            #expect(
                Self.isOutcome(loinc, status: 422, code: "not-supported", mentioning: "http://loinc.org"),
                "\(loinc.text)")
        }
    }

    @Test func validateCodeAnswersTrueFalseOrCannotValidate() async throws {
        try await withFHIRApp(.sqlite) { client in
            let url = encodeQuery(Self.gender)
            let system = encodeQuery(Self.genderSystem)
            let yes = try await client.fhir(.get, "ValueSet/$validate-code?url=\(url)&system=\(system)&code=female")
            #expect(Self.output(yes, "result") == true && Self.output(yes, "display") == "Female", "\(yes.text)")
            let no = try await client.fhir(.get, "ValueSet/$validate-code?url=\(url)&system=\(system)&code=woman")
            #expect(
                Self.output(no, "result") == false
                    && Self.output(no, "message")?.stringValue?.contains("Unknown code") == true, "\(no.text)")
            let wrongDisplay = try await client.fhir(
                .get, "ValueSet/administrative-gender/$validate-code?system=\(system)&code=male&display=Man")
            #expect(Self.output(wrongDisplay, "result") == true && Self.output(wrongDisplay, "message") != nil)
            let coding =
                #"{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"\#(Self.gender)"},{"name":"coding","valueCoding":{"system":"\#(Self.genderSystem)","code":"other"}}]}"#
            #expect(
                try await Self.output(client.fhir(.post, "ValueSet/$validate-code", body: coding), "result") == true)
            let concept =
                #"{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"\#(Self.gender)"},{"name":"codeableConcept","valueCodeableConcept":{"coding":[{"system":"http://example.org","code":"f"},{"system":"\#(Self.genderSystem)","code":"female"}]}}]}"#
            #expect(
                try await Self.output(client.fhir(.post, "ValueSet/$validate-code", body: concept), "result") == true)
            // UCUM units listed by the value set: decidable although UCUM itself is not held.
            let vitals = encodeQuery("http://hl7.org/fhir/ValueSet/ucum-vitals-common")
            let ucum = encodeQuery("http://unitsofmeasure.org")
            #expect(
                try await Self.output(
                    client.fhir(.get, "ValueSet/$validate-code?url=\(vitals)&system=\(ucum)&code=kg"), "result") == true
            )
            #expect(
                try await Self.output(
                    client.fhir(.get, "ValueSet/$validate-code?url=\(vitals)&system=\(ucum)&code=%5Bfurlong%5D"),
                    "result") == false)
            let loinc = try await client.fhir(
                .get, "ValueSet/observation-codes/$validate-code?system=\(encodeQuery("http://loinc.org"))&code=8867-4")
            #expect(
                Self.isOutcome(loinc, status: 422, code: "not-supported", mentioning: "Cannot validate"),
                "\(loinc.text)")
        }
    }

    @Test func lookupGivesNameDisplayAndHierarchy() async throws {
        try await withFHIRApp(.sqlite) { client in
            let gender = try await client.fhir(
                .get, "CodeSystem/$lookup?system=\(encodeQuery(Self.genderSystem))&code=male")
            #expect(gender.status == .ok, "\(gender.text)")
            #expect(Self.output(gender, "name") == "AdministrativeGender" && Self.output(gender, "display") == "Male")
            #expect(Self.output(gender, "version") == "4.0.1")
            let imp = try await client.fhir(.get, "CodeSystem/$lookup?system=\(encodeQuery(Self.actCode))&code=IMP")
            let properties = imp.json?["parameter"]?.arrayValue?.filter { $0["name"] == "property" } ?? []
            let pairs = properties.compactMap { property -> String? in
                let parts = property["part"]?.arrayValue ?? []
                guard let code = parts.first?["valueCode"]?.stringValue,
                    let value = parts.last?["valueCode"]?.stringValue
                else { return nil }
                return "\(code)=\(value)"
            }
            #expect(
                Set(pairs).isSuperset(of: ["parent=_ActEncounterCode", "child=ACUTE", "child=NONAC"]), "\(imp.text)")
            #expect(Self.output(imp, "display") == "inpatient encounter")
            let coding =
                #"{"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"\#(Self.actCode)","code":"AMB"}}]}"#
            #expect(
                try await Self.output(client.fhir(.post, "CodeSystem/$lookup", body: coding), "display") == "ambulatory"
            )
            let unknown = try await client.fhir(
                .get, "CodeSystem/$lookup?system=\(encodeQuery(Self.genderSystem))&code=nope")
            #expect(Self.isOutcome(unknown, status: 404, code: "not-found"))
            let snomed = try await client.fhir(
                .get, "CodeSystem/$lookup?system=\(encodeQuery("http://snomed.info/sct"))&code=22298006")
            #expect(Self.isOutcome(snomed, status: 422, code: "not-supported"), "\(snomed.text)")
        }
    }

    @Test func subsumesFollowsTheActCodeHierarchy() async throws {
        try await withFHIRApp(.sqlite) { client in
            let system = encodeQuery(Self.actCode)
            for (a, b, outcome) in [
                ("_ActEncounterCode", "ACUTE", "subsumes"), ("ACUTE", "IMP", "subsumed-by"),
                ("IMP", "IMP", "equivalent"),
                ("IMP", "AMB", "not-subsumed"), ("FFSS", "TFS", "subsumes"),
            ] {
                let response = try await client.fhir(
                    .get, "CodeSystem/$subsumes?system=\(system)&codeA=\(a)&codeB=\(b)")
                #expect(Self.output(response, "outcome")?.stringValue == outcome, "\(a) \(b): \(response.text)")
            }
            let instance = try await client.fhir(.get, "CodeSystem/v3-ActCode/$subsumes?codeA=IMP&codeB=ACUTE")
            #expect(Self.output(instance, "outcome") == "subsumes")
            let codings =
                #"{"resourceType":"Parameters","parameter":[{"name":"codingA","valueCoding":{"system":"\#(Self.actCode)","code":"AMB"}},{"name":"codingB","valueCoding":{"system":"\#(Self.actCode)","code":"_ActEncounterCode"}}]}"#
            #expect(
                try await Self.output(client.fhir(.post, "CodeSystem/$subsumes", body: codings), "outcome")
                    == "subsumed-by")
            let unknown = try await client.fhir(.get, "CodeSystem/$subsumes?system=\(system)&codeA=IMP&codeB=NOPE")
            #expect(Self.isOutcome(unknown, status: 404))
        }
    }

    /// Hostile and incomplete requests get a 4xx OperationOutcome naming the problem.
    @Test func badRequestsGetClearOutcomes() async throws {
        try await withFHIRApp(.sqlite) { client in
            let url = encodeQuery(Self.gender)
            let cases: [(String, Int, String)] = [
                ("ValueSet/$expand", 400, "needs a url"),
                ("ValueSet/$expand?url=http%3A%2F%2Fexample.org%2Fnone", 404, "neither one of R4's nor stored here"),
                ("ValueSet/no-such-set/$expand", 404, "neither one of R4's value sets nor stored here"),
                ("ValueSet/$expand?url=\(url)&filter=\(String(repeating: "a", count: 10_000))", 400, "longer than 256"),
                ("ValueSet/$expand?url=\(url)&count=-1", 400, "whole number"),
                ("ValueSet/$expand?url=\(url)&offset=-5", 400, "whole number"),
                ("ValueSet/$expand?url=\(url)&count=99999999999999999999999999", 400, "whole number"),
                ("ValueSet/$expand?url=\(url)&url=\(url)", 400, "once"),
                ("ValueSet/$expand?url=\(url)&colour=blue", 400, "does not take the parameter 'colour'"),
                ("ValueSet/$expand?url=\(url)&valueSetVersion=9.9", 404, "version 9.9 is neither"),
                ("ValueSet/$validate-code?url=\(url)", 400, "needs a code"),
                ("ValueSet/$validate-code?url=\(url)&code=male", 400, "needs the system"),
                ("CodeSystem/$lookup?code=male", 400, "needs a system"),
                ("CodeSystem/$lookup?system=http%3A%2F%2Fexample.org&code=x", 404, "not one this server holds"),
                ("CodeSystem/$subsumes?system=\(encodeQuery(Self.actCode))&codeA=IMP", 400, "needs codeB"),
                ("Patient/$expand?url=\(url)", 400, "operation on ValueSet"),
                ("ValueSet/$lookup?code=x", 400, "operation on CodeSystem"),
                ("NotAType/$expand", 404, "Unknown resource type"),
            ]
            for (path, status, text) in cases {
                let response = try await client.fhir(.get, path)
                #expect(
                    Self.isOutcome(response, status: status, mentioning: text),
                    "\(path.prefix(120)): \(response.status) \(response.text.prefix(300))")
            }
            // An enormous count is held to the page size, with the total to page by.
            let clamped = try await client.fhir(.get, "ValueSet/$expand?url=\(url)&count=1000000")
            #expect(clamped.status == .ok && Self.codes(clamped).count == 4)
            let notParameters = try await client.fhir(.post, "ValueSet/$expand", body: #"{"resourceType":"Patient"}"#)
            #expect(Self.isOutcome(notParameters, status: 400, mentioning: "Parameters"))
            let many = (0..<100).map { _ in #"{"name":"filter","valueString":"a"}"# }.joined(separator: ",")
            let flood = try await client.fhir(
                .post, "ValueSet/$expand", body: #"{"resourceType":"Parameters","parameter":[\#(many)]}"#)
            #expect(Self.isOutcome(flood, status: 400, code: "too-costly"))
            let rules = (0..<100).map { _ in #"{"system":"\#(Self.actCode)"}"# }.joined(separator: ",")
            let bigSet =
                #"{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","compose":{"include":[\#(rules)]}}}]}"#
            #expect(
                try await Self.isOutcome(
                    client.fhir(.post, "ValueSet/$expand", body: bigSet), status: 400, code: "too-costly"))
            // 6,401 LOINC codes + 3,156 DICOM + 1,116 ActCode: past the 10,000 an expansion may reach.
            let huge =
                #"{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","compose":{"include":[{"valueSet":["http://hl7.org/fhir/ValueSet/c80-doc-typecodes"]},{"system":"http://dicom.nema.org/resources/ontology/DCM"},{"system":"\#(Self.actCode)"}]}}}]}"#
            #expect(
                Self.isOutcome(
                    try await client.fhir(.post, "ValueSet/$expand", body: huge), status: 422, code: "too-costly",
                    mentioning: "10000"))
            let listed = (0...100_000).map { #"{"code":"c\#($0)"}"# }.joined(separator: ",")
            let longList =
                #"{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","compose":{"include":[{"system":"http://example.org","concept":[\#(listed)]}]}}}]}"#
            #expect(
                Self.isOutcome(
                    try await client.fhir(.post, "ValueSet/$expand", body: longList), status: 400, code: "too-costly",
                    mentioning: "100000"))
            // Each import is expanded in full: 17 of them (one rule's list) are refused before any is.
            let imports = Array(repeating: #""http://hl7.org/fhir/ValueSet/administrative-gender""#, count: 17).joined(
                separator: ",")
            let imported =
                #"{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","compose":{"include":[{"valueSet":[\#(imports)]}]}}}]}"#
            #expect(
                Self.isOutcome(
                    try await client.fhir(.post, "ValueSet/$expand", body: imported), status: 400, code: "too-costly",
                    mentioning: "16"))
            // Imports resolve among R4's value sets only, and the refusal says so (an attacker read
            // it as "not held" for a ValueSet that was stored); a self-import cannot loop.
            let imported2 =
                #"{"resourceType":"ValueSet","id":"imp-b","url":"http://example.org/vs/b","status":"active","compose":{"include":[{"system":"http://example.org/cs","concept":[{"code":"a"}]}]}}"#
            #expect(try await client.fhir(.put, "ValueSet/imp-b", body: imported2).status.code < 300)
            for (id, target) in [("imp-a", "http://example.org/vs/b"), ("imp-self", "http://example.org/vs/self")] {
                let importing =
                    #"{"resourceType":"ValueSet","id":"\#(id)","url":"http://example.org/vs/\#(id == "imp-a" ? "a" : "self")","status":"active","compose":{"include":[{"valueSet":["\#(target)"]}]}}"#
                #expect(try await client.fhir(.put, "ValueSet/\(id)", body: importing).status.code < 300)
                #expect(
                    Self.isOutcome(
                        try await client.fhir(.get, "ValueSet/\(id)/$expand"), status: 422, code: "not-supported",
                        mentioning: "not stored ones"))
            }
            let form = try await client.fhir(
                .post, "ValueSet/$expand", body: "url=x", contentType: "application/x-www-form-urlencoded")
            #expect(Self.isOutcome(form, status: 415))
        }
    }

    @Test func capabilityStatementListsTheOperations() async throws {
        try await withFHIRApp(.sqlite) { client in
            let resources = try #require(
                try await client.fhir(.get, "metadata").json?["rest"]?.arrayValue?.first?["resource"]?.arrayValue)
            func operations(_ type: String) -> [String] {
                resources.first { $0["type"]?.stringValue == type }?["operation"]?.arrayValue?.compactMap {
                    $0["name"]?.stringValue
                } ?? []
            }
            #expect(Set(operations("ValueSet")).isSuperset(of: ["expand", "validate-code"]))
            #expect(Set(operations("CodeSystem")).isSuperset(of: ["lookup", "subsumes"]))
        }
    }

    /// A token needs read or search on ValueSet (or CodeSystem) for their operations.
    @Test func operationsFollowTheScopes() async throws {
        try await AccessControlTests.withSecureApp(.sqlite) { harness in
            let path = "ValueSet/administrative-gender/$expand"
            #expect(try await harness.call(.get, path, token: nil).status == .unauthorized)
            #expect(
                try await harness.call(.get, path, token: try await harness.token("user/Patient.rs")).status
                    == .forbidden)
            #expect(
                try await harness.call(.get, path, token: try await harness.token("user/ValueSet.rs")).status == .ok)
            #expect(try await harness.call(.get, path, token: try await harness.token("system/*.read")).status == .ok)
            let lookup = "CodeSystem/$lookup?system=\(encodeQuery(Self.genderSystem))&code=male"
            #expect(
                try await harness.call(.get, lookup, token: try await harness.token("user/ValueSet.rs")).status
                    == .forbidden)
            let patientToken = try await harness.token("patient/CodeSystem.r", patient: "p1")
            #expect(try await harness.call(.get, lookup, token: patientToken).status == .ok)
        }
    }

    /// `:below` and `:above` reach through the v3 `child` property (TFS sits under FFSS and TF
    /// besides its nesting parent), on both stores.
    @Test(arguments: TestDatabases.backends)
    func belowAndAboveFollowExtraParents(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { (client: any TestClientProtocol) async throws in
            for (id, code) in [("tfs", "TFS"), ("ffss", "FFSS"), ("amb", "AMB")] {
                let body =
                    #"{"resourceType":"Encounter","id":"\#(id)","status":"finished","class":{"system":"\#(Self.actCode)","code":"\#(code)"}}"#
                #expect(try await client.fhir(.put, "Encounter/\(id)", body: body).status == .created)
            }
            func ids(_ query: String) async throws -> [String] {
                let response = try await client.fhir(
                    .get, query.replacingOccurrences(of: "|", with: "%7C"), headers: ["Prefer": "handling=strict"])
                #expect(response.status == .ok, "\(query): \(response.text)")
                return response.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue }.sorted()
                    ?? []
            }
            #expect(try await ids("Encounter?class:below=\(Self.actCode)|FFSS") == ["ffss", "tfs"])
            #expect(try await ids("Encounter?class:below=\(Self.actCode)|TF") == ["tfs"])
            #expect(try await ids("Encounter?class:above=\(Self.actCode)|TFS") == ["ffss", "tfs"])
            #expect(try await ids("Encounter?class:below=\(Self.actCode)|_ActEncounterCode") == ["amb"])
            // Each code a :below widens to is a bound value: v3-Race 1002-5 stands for 828, two
            // of them pass the 1,000 values a search may have (82,800 values took 2.5 s before).
            let race = "http://terminology.hl7.org/CodeSystem/v3-Race%7C1002-5"
            #expect(try await client.fhir(.get, "Encounter?class:below=\(race)").status == .ok)
            let twice = try await client.fhir(.get, "Encounter?class:below=\(race),\(race)")
            #expect(twice.status == .badRequest && twice.text.contains("total-values"), "\(twice.text.prefix(300))")
        }
    }
}
