import FHIR
import FHIRStore
import FHIRTestSupport
import Testing

/// Composite parameters (`a$b`, all parts matching within one element), token `:text` and
/// reference `:identifier`, against a real SQLite file and a real PostgreSQL database.
@Suite struct CompositeSearchTests {
    static let backends = TestDatabases.backends

    func withStore(_ backend: TestBackend, _ body: (SQLFHIRStore) async throws -> Void) async throws {
        try await TestDatabases.withStore(backend, body)
    }

    func create(_ store: SQLFHIRStore, _ json: String) async throws -> String {
        let resource = try JSONParser.parse(json)
        return try await store.create(resource, type: resource["resourceType"]?.stringValue ?? "").id
    }

    func ids(_ store: SQLFHIRStore, _ type: String, _ parameters: [(String, String)]) async throws -> Set<String> {
        let query = try SearchQueryParser().parse(
            resourceType: type, parameters: parameters.map { (name: $0.0, value: $0.1) }, strict: true)
        let page = try await store.search(query)
        #expect(page.total == page.resources.count)
        return Set(page.resources.map(\.id))
    }

    /// A blood pressure panel: systolic 120 and diastolic 80 as two components.
    static let bloodPressure = #"""
        {"resourceType":"Observation","status":"final",
         "code":{"coding":[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel"}],"text":"Blóod préssure"},
         "component":[
          {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}]},
           "valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
          {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4","display":"Diastolic blood pressure"}]},
           "valueQuantity":{"value":80,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}
        """#

    @Test(arguments: backends)
    func codeValueQuantityHonoursPrefixes(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let heart = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":72,"system":"http://unitsofmeasure.org","code":"/min"}}"#
            )
            let fast = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":130,"system":"http://unitsofmeasure.org","code":"/min"}}"#
            )
            // Another code with a low value: matches the value part but not the code part.
            _ = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"9279-1"}]},"valueQuantity":{"value":16,"system":"http://unitsofmeasure.org","code":"/min"}}"#
            )
            func search(_ value: String) async throws -> Set<String> {
                try await ids(store, "Observation", [("code-value-quantity", value)])
            }
            #expect(try await search("http://loinc.org|8867-4$lt100") == [heart])
            #expect(try await search("http://loinc.org|8867-4$gt100") == [fast])
            #expect(try await search("8867-4$ge72") == [heart, fast])
            #expect(try await search("8867-4$72") == [heart])
            #expect(try await search("8867-4$ne72") == [fast])
            #expect(try await search("8867-4$lt100|http://unitsofmeasure.org|/min") == [heart])
            #expect(try await search("8867-4$lt100|http://unitsofmeasure.org|mg") == [])
            #expect(try await search("8867-4$lt10") == [])
            #expect(try await search("9279-1$gt100") == [])
            // Values are ORed, clauses ANDed.
            #expect(try await search("8867-4$lt10,8867-4$gt100") == [fast])
            #expect(
                try await ids(
                    store, "Observation",
                    [("code-value-quantity", "8867-4$gt10"), ("code-value-quantity", "8867-4$lt100")]) == [heart])
            #expect(try await ids(store, "Observation", [("code-value-quantity:missing", "false")]).count == 3)
        }
    }

    @Test(arguments: backends)
    func componentsDoNotMatchAcrossTwoComponents(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let panel = try await create(store, Self.bloodPressure)
            func search(_ name: String, _ value: String) async throws -> Set<String> {
                try await ids(store, "Observation", [(name, value)])
            }
            // Systolic is 120 and diastolic 80: "systolic below 100" must not be answered by
            // the diastolic component's value.
            #expect(try await search("component-code-value-quantity", "http://loinc.org|8480-6$lt100") == [])
            #expect(try await search("component-code-value-quantity", "http://loinc.org|8480-6$gt100") == [panel])
            #expect(try await search("component-code-value-quantity", "http://loinc.org|8462-4$lt100") == [panel])
            #expect(try await search("component-code-value-quantity", "http://loinc.org|8462-4$gt100") == [])
            #expect(
                try await search("component-code-value-quantity", "8480-6$120|http://unitsofmeasure.org|mm[Hg]") == [
                    panel
                ])
            // The plain parameters, each on its own, do match across components.
            #expect(
                try await ids(
                    store, "Observation", [("component-code", "8480-6"), ("component-value-quantity", "lt100")]) == [
                        panel
                    ])
            // combo- looks at the Observation itself and at each component.
            #expect(try await search("combo-code-value-quantity", "8480-6$lt100") == [])
            #expect(try await search("combo-code-value-quantity", "8462-4$le80") == [panel])
            // The panel's own code has no value.
            #expect(try await search("code-value-quantity", "85354-9$gt0") == [])
            // An update re-indexes: after it the systolic is 90.
            let body = try JSONParser.parse(
                Self.bloodPressure.replacingOccurrences(of: #""value":120"#, with: #""value":90"#))
            _ = try await store.update(body, type: "Observation", id: panel, ifMatch: nil)
            #expect(try await search("component-code-value-quantity", "8480-6$lt100") == [panel])
            #expect(try await search("component-code-value-quantity", "8480-6$gt100") == [])
            _ = try await store.delete(type: "Observation", id: panel, ifMatch: nil)
            #expect(try await search("component-code-value-quantity", "8480-6$lt100") == [])
        }
    }

    @Test(arguments: backends)
    func otherObservationComposites(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let smoker = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"449868002"}]}}"#
            )
            let onset = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"urn:c","code":"onset"}]},"valueDateTime":"2020-05-17T10:00:00Z"}"#
            )
            let period = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"urn:c","code":"stay"}]},"valuePeriod":{"start":"2021-01-01","end":"2021-01-31"}}"#
            )
            let note = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"urn:c","code":"note"}]},"valueString":"Price $5, Größe"}"#
            )
            func search(_ name: String, _ value: String) async throws -> Set<String> {
                try await ids(store, "Observation", [(name, value)])
            }
            #expect(
                try await search("code-value-concept", "http://loinc.org|72166-2$http://snomed.info/sct|449868002") == [
                    smoker
                ])
            #expect(try await search("code-value-concept", "72166-2$449868002") == [smoker])
            #expect(try await search("code-value-concept", "72166-2$8517006") == [])
            #expect(try await search("combo-code-value-concept", "72166-2$449868002") == [smoker])
            #expect(try await search("code-value-date", "onset$2020-05") == [onset])
            #expect(try await search("code-value-date", "onset$gt2020-06") == [])
            #expect(try await search("code-value-date", "onset$lt2020-06") == [onset])
            #expect(try await search("code-value-date", "stay$2021-01") == [period])
            #expect(try await search("code-value-date", "stay$ge2021-01-15") == [period])
            #expect(try await search("code-value-date", "stay$2021-01-15") == [])
            #expect(try await search("code-value-date", "onset$2021-01") == [])
            // A string component: a prefix, case and accents folded; \$ and \, are literal.
            #expect(try await search("code-value-string", #"note$price \$5\, gro"#) == [note])
            #expect(try await search("code-value-string", "note$price") == [note])
            #expect(try await search("code-value-string", "onset$price") == [])
        }
    }

    @Test(arguments: backends)
    func contextTypeValueOnDefinitionalResources(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            // focus = diabetes in one useContext, a gender of female in another: focus$female must not match.
            let valueSet = try await create(
                store,
                #"""
                {"resourceType":"ValueSet","status":"active","url":"http://example.org/vs",
                 "useContext":[
                  {"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"focus"},
                   "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]}},
                  {"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"gender"},
                   "valueCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/administrative-gender","code":"female"}]}},
                  {"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"age"},
                   "valueRange":{"low":{"value":18,"unit":"a"},"high":{"value":65,"unit":"a"}}}]}
                """#)
            let plan = try await create(
                store,
                #"""
                {"resourceType":"PlanDefinition","status":"active",
                 "useContext":[{"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"focus"},
                   "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]}},
                  {"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"program"},
                   "valueQuantity":{"value":3,"system":"http://unitsofmeasure.org","code":"a"}}]}
                """#)
            func search(_ type: String, _ name: String, _ value: String) async throws -> Set<String> {
                try await ids(store, type, [(name, value)])
            }
            #expect(
                try await search("ValueSet", "context-type-value", "focus$http://snomed.info/sct|44054006") == [
                    valueSet
                ])
            #expect(
                try await search(
                    "ValueSet", "context-type-value",
                    "http://terminology.hl7.org/CodeSystem/usage-context-type|gender$female") == [valueSet])
            #expect(try await search("ValueSet", "context-type-value", "focus$female") == [])
            #expect(try await search("ValueSet", "context-type-value", "gender$44054006") == [])
            #expect(try await search("PlanDefinition", "context-type-value", "focus$44054006") == [plan])
            // A Range: 18..65 years.
            // 30 does not contain 18..65
            #expect(try await search("ValueSet", "context-type-quantity", "age$30") == [])
            #expect(try await search("ValueSet", "context-type-quantity", "age$gt30") == [valueSet])
            #expect(try await search("ValueSet", "context-type-quantity", "age$lt30") == [valueSet])
            #expect(try await search("ValueSet", "context-type-quantity", "age$gt70") == [])
            #expect(try await search("ValueSet", "context-type-quantity", "age$sa10") == [valueSet])
            #expect(try await search("ValueSet", "context-type-quantity", "age$sa20") == [])
            #expect(try await search("ValueSet", "context-type-quantity", "age$eb70") == [valueSet])
            #expect(try await search("PlanDefinition", "context-type-quantity", "program$3") == [plan])
            #expect(try await search("PlanDefinition", "context-type-quantity", "focus$3") == [])
        }
    }

    @Test(arguments: backends)
    func compositesOfOtherResources(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let original = try await create(
                store,
                #"{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"url":"http://x"}}]}"#
            )
            let replacement = try await create(
                store,
                #"{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"url":"http://y"}}],"relatesTo":[{"code":"appends","target":{"reference":"DocumentReference/other"}},{"code":"replaces","target":{"reference":"DocumentReference/\#(original)"}}]}"#
            )
            #expect(
                try await ids(store, "DocumentReference", [("relationship", "replaces$DocumentReference/\(original)")])
                    == [replacement])
            #expect(
                try await ids(store, "DocumentReference", [("relationship", "replaces$\(original)")]) == [replacement])
            #expect(
                try await ids(store, "DocumentReference", [("relationship", "appends$DocumentReference/\(original)")])
                    == [])

            let group = try await create(
                store,
                #"{"resourceType":"Group","type":"person","actual":true,"characteristic":[{"code":{"text":"smoker","coding":[{"system":"urn:g","code":"smoker"}]},"valueBoolean":true,"exclude":false},{"code":{"coding":[{"system":"urn:g","code":"diabetic"}]},"valueBoolean":false,"exclude":false}]}"#
            )
            #expect(try await ids(store, "Group", [("characteristic-value", "smoker$true")]) == [group])
            #expect(try await ids(store, "Group", [("characteristic-value", "urn:g|diabetic$false")]) == [group])
            #expect(try await ids(store, "Group", [("characteristic-value", "smoker$false")]) == [])

            let sequence = try await create(
                store,
                #"{"resourceType":"MolecularSequence","coordinateSystem":0,"referenceSeq":{"chromosome":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/chromosome-human","code":"1"}]},"referenceSeqId":{"coding":[{"system":"http://www.ncbi.nlm.nih.gov/nuccore","code":"NC_000001.11"}]},"windowStart":22125500,"windowEnd":22125510},"variant":[{"start":22125503,"end":22125504},{"start":22125507,"end":22125508}]}"#
            )
            func sequences(_ name: String, _ value: String) async throws -> Set<String> {
                try await ids(store, "MolecularSequence", [(name, value)])
            }
            #expect(try await sequences("chromosome-window-coordinate", "1$ge22125500$le22125510") == [sequence])
            #expect(try await sequences("chromosome-window-coordinate", "2$ge22125500$le22125510") == [])
            #expect(
                try await sequences("referenceseqid-window-coordinate", "NC_000001.11$lt22125501$gt22125509") == [
                    sequence
                ])
            // The chromosome comes from the resource, start and end from one variant.
            #expect(try await sequences("chromosome-variant-coordinate", "1$22125503$22125504") == [sequence])
            #expect(try await sequences("chromosome-variant-coordinate", "1$22125503$22125508") == [])
            #expect(
                try await sequences("referenceseqid-variant-coordinate", "NC_000001.11$gt22125505$lt22125509") == [
                    sequence
                ])
        }
    }

    @Test(arguments: backends)
    func compositesWorkInsideHasAndChains(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let patient = try await create(store, #"{"resourceType":"Patient","name":[{"family":"Pressure"}]}"#)
            _ = try await create(store, #"{"resourceType":"Patient","name":[{"family":"Other"}]}"#)
            let body = Self.bloodPressure.replacingOccurrences(
                of: #""status":"final","#, with: #""status":"final","subject":{"reference":"Patient/\#(patient)"},"#)
            _ = try await create(store, body)
            #expect(
                try await ids(
                    store, "Patient", [("_has:Observation:subject:component-code-value-quantity", "8480-6$gt110")]) == [
                        patient
                    ])
            #expect(
                try await ids(
                    store, "Patient", [("_has:Observation:subject:component-code-value-quantity", "8480-6$lt110")])
                    == [])
        }
    }

    @Test(arguments: backends)
    func tokenTextMatchesDisplayAndConceptText(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let panel = try await create(store, Self.bloodPressure)
            let heart = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]}}"#
            )
            let textOnly = try await create(
                store, #"{"resourceType":"Observation","status":"final","code":{"text":"Heart murmur"}}"#)
            func search(_ value: String) async throws -> Set<String> {
                try await ids(store, "Observation", [("code:text", value)])
            }
            #expect(try await search("blood pressure") == [panel])  // Coding.display, case folded
            #expect(try await search("blood pres") == [panel])  // CodeableConcept.text, accents folded
            #expect(try await search("HEART") == [heart, textOnly])
            #expect(try await search("heart r") == [heart])
            #expect(try await search("murmur") == [])  // a prefix, not a word inside
            #expect(try await search("systolic") == [])  // component codes are not code
            #expect(try await ids(store, "Observation", [("combo-code:text", "systolic")]) == [panel])
            #expect(try await search("heart,blood") == [heart, textOnly, panel])
            // A text equal to its coding's display has no row of its own: the coding's row finds it.
            let weight = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}],"text":"Body Weight"}}"#
            )
            #expect(try await search("body w") == [weight])
            // `|` is a code without a system, never a concept's text, whatever the text says.
            let local = try await create(
                store, #"{"resourceType":"Observation","status":"final","code":{"coding":[{"code":"local-1"}]}}"#)
            #expect(try await ids(store, "Observation", [("code", "|")]) == [local])
            #expect(try await ids(store, "Observation", [("code", "|local-1")]) == [local])
            #expect(try await ids(store, "Observation", [("code:missing", "false"), ("code", "29463-7")]) == [weight])
            // The token itself still matches by code only.
            #expect(try await ids(store, "Observation", [("code", "Heart rate")]) == [])
            #expect(try await ids(store, "Observation", [("code", "8867-4")]) == [heart])
        }
    }

    @Test(arguments: backends)
    func referenceIdentifierMatchesTheLogicalReference(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let byIdentifier = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"type":"Patient","identifier":{"system":"urn:mrn","value":"12345"}}}"#
            )
            let both = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1","identifier":{"system":"urn:mrn","value":"67890"}}}"#
            )
            let literal = try await create(
                store,
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"}}"#
            )
            func search(_ name: String, _ value: String) async throws -> Set<String> {
                try await ids(store, "Observation", [(name, value)])
            }
            #expect(try await search("subject:identifier", "urn:mrn|12345") == [byIdentifier])
            #expect(try await search("subject:identifier", "12345") == [byIdentifier])
            #expect(try await search("subject:identifier", "urn:other|12345") == [])
            #expect(try await search("subject:identifier", "urn:mrn|") == [byIdentifier, both])
            #expect(try await search("patient:identifier", "urn:mrn|12345,urn:mrn|67890") == [byIdentifier, both])
            #expect(try await search("subject", "Patient/p1") == [both])
            #expect(try await search("subject:missing", "false") == [byIdentifier, both, literal])
            // _include follows only literal references.
            let query = try SearchQueryParser().parse(
                resourceType: "Observation", parameters: [("_id", byIdentifier), ("_include", "Observation:subject")],
                strict: true)
            #expect(try await store.search(query).included.isEmpty)
        }
    }
}
