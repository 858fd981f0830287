/// Our own invalid resources, one per rule write validation enforces beyond structure: core
/// constraints (FHIRPath invariants), Reference target types, core extensions and Bundle
/// rules. Each is otherwise valid, so the rule named is what refuses it. Written for this
/// project after the categories of the HL7 Java validator's test cases (invariants,
/// references, extensions, bundles); none is copied from there.
public enum InvalidResourceCorpus {
    public struct Case: Sendable {
        /// A short name for messages.
        public var name: String
        /// The issue's category: invariant, reference, extension or bundle.
        public var category: String
        public var type: String
        public var body: String
        /// Text the refusing issue's diagnostics contain: the constraint key, or the rule's words.
        public var diagnostic: String
        /// Text the refusing issue's expression (its location) contains.
        public var location: String
    }

    static let patient1 = #"{"reference":"Patient/1"}"#

    /// The cases, by category.
    public static let cases: [Case] = invariants + references + extensions + bundles

    static let invariants: [Case] = [
        Case(
            name: "probability of 101%", category: "invariant", type: "RiskAssessment",
            body:
                ##"{"resourceType":"RiskAssessment","status":"final","subject":\##(patient1),"prediction":[{"outcome":{"text":"death"},"probabilityDecimal":101}]}"##,
            diagnostic: "ras-2", location: "RiskAssessment.prediction[0]"),
        Case(
            name: "value beside a dataAbsentReason", category: "invariant", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"text":"weight"},"valueQuantity":{"value":70,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"},"dataAbsentReason":{"text":"not asked"}}"##,
            diagnostic: "obs-6", location: "Observation"),
        Case(
            name: "#ref to a contained resource that does not exist", category: "invariant", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":"#nobody"}}"##,
            diagnostic: "ref-1", location: "Observation.subject"),
        Case(
            name: "contained resource nothing refers to", category: "invariant", type: "Observation",
            body:
                ##"{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p1","gender":"male"}],"status":"final","code":{"text":"weight"}}"##,
            diagnostic: "dom-3", location: "Observation"),
        Case(
            name: "contained resource with a security label", category: "invariant", type: "Patient",
            body:
                ##"{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]},"name":"Clinic"}],"managingOrganization":{"reference":"#o1"}}"##,
            diagnostic: "dom-5", location: "Patient"),
        Case(
            name: "period ending before it starts", category: "invariant", type: "Encounter",
            body:
                ##"{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"period":{"start":"2020-02-01","end":"2020-01-01"}}"##,
            diagnostic: "per-1", location: "Encounter.period"),
        Case(
            name: "three enableWhen without enableBehavior", category: "invariant", type: "Questionnaire",
            body:
                ##"{"resourceType":"Questionnaire","status":"active","item":[{"linkId":"1","type":"boolean"},{"linkId":"2","type":"string","enableWhen":[{"question":"1","operator":"exists","answerBoolean":true},{"question":"1","operator":"=","answerBoolean":true},{"question":"1","operator":"!=","answerBoolean":false}]}]}"##,
            diagnostic: "que-12", location: "Questionnaire.item[1]"),
        Case(
            name: "a component repeating the code with a value", category: "invariant", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120}}]}"##,
            diagnostic: "obs-7", location: "Observation"),
        Case(
            name: "telecom value without a system", category: "invariant", type: "Patient",
            body: ##"{"resourceType":"Patient","telecom":[{"value":"555-0100"}]}"##,
            diagnostic: "cpt-2", location: "Patient.telecom[0]"),
        Case(
            name: "unit code without a system", category: "invariant", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"text":"dose"},"valueQuantity":{"value":1,"code":"mg"}}"##,
            diagnostic: "qty-3", location: "Observation.valueQuantity"),
        Case(
            name: "contact without any detail", category: "invariant", type: "Patient",
            body: ##"{"resourceType":"Patient","contact":[{"gender":"male"}]}"##,
            diagnostic: "pat-1", location: "Patient.contact[0]"),
        Case(
            name: "comparator on a SimpleQuantity", category: "invariant", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"text":"weight"},"referenceRange":[{"low":{"value":1,"comparator":"<"}}]}"##,
            diagnostic: "sqty-1", location: "Observation.referenceRange[0].low"),
        Case(
            name: "extension with both a value and extensions", category: "invariant", type: "Patient",
            body:
                ##"{"resourceType":"Patient","extension":[{"url":"http://example.org/fhir/StructureDefinition/local","valueString":"a","extension":[{"url":"part","valueString":"b"}]}]}"##,
            diagnostic: "ext-1", location: "Patient.extension[0]"),
        Case(
            name: "element with nothing but an id", category: "invariant", type: "Patient",
            body: ##"{"resourceType":"Patient","name":[{"id":"n1"}]}"##,
            diagnostic: "ele-1", location: "Patient.name[0]"),
    ]

    static let references: [Case] = [
        Case(
            name: "Observation.subject naming a Medication", category: "reference", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":"Medication/1"}}"##,
            diagnostic: "names Medication", location: "Observation.subject"),
        Case(
            name: "absolute reference to a wrong type", category: "reference", type: "Patient",
            body:
                ##"{"resourceType":"Patient","generalPractitioner":[{"reference":"https://other.example/fhir/Observation/9/_history/2"}]}"##,
            diagnostic: "names Observation", location: "Patient.generalPractitioner"),
        Case(
            name: "Reference.type of a wrong type", category: "reference", type: "Observation",
            body:
                ##"{"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"type":"Medication","display":"aspirin"}}"##,
            diagnostic: "Reference.type names Medication", location: "Observation.subject"),
        Case(
            name: "#ref to a contained resource of a wrong type", category: "reference", type: "Observation",
            body:
                ##"{"resourceType":"Observation","contained":[{"resourceType":"Medication","id":"m1"}],"status":"final","code":{"text":"weight"},"subject":{"reference":"#m1"}}"##,
            diagnostic: "names Medication", location: "Observation.subject"),
    ]

    static let extensions: [Case] = [
        Case(
            name: "birthTime extension with a string value", category: "extension", type: "Patient",
            body:
                ##"{"resourceType":"Patient","birthDate":"1990-01-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueString":"noon"}]}}"##,
            diagnostic: "takes valueDateTime, not 'valueString'", location: "Patient._birthDate.extension[0]"),
        Case(
            name: "patient extension on an Observation", category: "extension", type: "Observation",
            body:
                ##"{"resourceType":"Observation","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueAddress":{"city":"Bern"}}],"status":"final","code":{"text":"weight"}}"##,
            diagnostic: "is not allowed at Observation", location: "Observation.extension[0]"),
        Case(
            name: "mother's family name extension on a HumanName", category: "extension", type: "Patient",
            body:
                ##"{"resourceType":"Patient","name":[{"family":"Garcia","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/humanname-mothers-family","valueString":"Lopez"}]}]}"##,
            diagnostic: "is not allowed at Patient.name", location: "Patient.name[0].extension[0]"),
        Case(
            name: "complex extension with a value", category: "extension", type: "Patient",
            body:
                ##"{"resourceType":"Patient","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-nationality","valueString":"CH"}]}"##,
            diagnostic: "carries nested extensions", location: "Patient.extension[0]"),
        Case(
            name: "modifier extension in extension", category: "extension", type: "NutritionOrder",
            body:
                ##"{"resourceType":"NutritionOrder","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/request-doNotPerform","valueBoolean":true}],"status":"active","intent":"order","patient":\##(patient1),"dateTime":"2020-01-01","oralDiet":{"type":[{"text":"regular"}]}}"##,
            diagnostic: "belongs in modifierExtension", location: "NutritionOrder.extension[0]"),
    ]

    static let bundles: [Case] = [
        Case(
            name: "duplicate fullUrl", category: "bundle", type: "Bundle",
            body:
                ##"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:3b5a5e8e-7e4e-4a4a-9a0e-0c6f2b3c4d5e","resource":{"resourceType":"Patient","gender":"male"}},{"fullUrl":"urn:uuid:3b5a5e8e-7e4e-4a4a-9a0e-0c6f2b3c4d5e","resource":{"resourceType":"Patient","gender":"female"}}]}"##,
            diagnostic: "bdl-7", location: "Bundle.entry[1]"),
        Case(
            name: "two self links", category: "bundle", type: "Bundle",
            body:
                ##"{"resourceType":"Bundle","type":"collection","link":[{"relation":"self","url":"https://example.org/fhir/a"},{"relation":"self","url":"https://example.org/fhir/b"}]}"##,
            diagnostic: "'self' occurs more than once", location: "Bundle.link[1]"),
        Case(
            name: "total in a collection", category: "bundle", type: "Bundle",
            body: ##"{"resourceType":"Bundle","type":"collection","total":3}"##,
            diagnostic: "bdl-1", location: "Bundle"),
        Case(
            name: "versioned fullUrl", category: "bundle", type: "Bundle",
            body:
                ##"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"https://example.org/fhir/Patient/1/_history/2","resource":{"resourceType":"Patient","id":"1"}}]}"##,
            diagnostic: "bdl-8", location: "Bundle.entry[0]"),
        Case(
            name: "document without an identifier", category: "bundle", type: "Bundle",
            body:
                ##"{"resourceType":"Bundle","type":"document","timestamp":"2020-01-01T00:00:00Z","entry":[{"fullUrl":"urn:uuid:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f","resource":{"resourceType":"Composition","status":"final","type":{"text":"note"},"date":"2020-01-01","author":[{"display":"Dr A"}],"title":"Note"}}]}"##,
            diagnostic: "bdl-9", location: "Bundle"),
    ]
}
