/// The resources of one admission, as a hospital's apps write them: small, coded with LOINC,
/// SNOMED CT and RxNorm, valid R4. Dates are fixed so that the date searches have known answers.
enum ClinicalResources {
    static let mrnSystem = "http://hospital.example.org/fhir/sid/mrn"
    static let npiSystem = "http://hl7.org/fhir/sid/us-npi"

    /// Admission day: the first three vital signs are taken on it, the weight the day after.
    static let admissionDay = "2024-03-04"
    static let nextDay = "2024-03-05"

    struct Person {
        var family: String
        var given: String
        var gender: String
        var birthDate: String
    }

    static let people = [
        Person(family: "Garcia", given: "Maria", gender: "female", birthDate: "1958-07-21"),
        Person(family: "Nguyen", given: "Thanh", gender: "male", birthDate: "1946-02-03"),
        Person(family: "Okafor", given: "Chidi", gender: "male", birthDate: "1971-11-30"),
        Person(family: "Schmidt", given: "Anna", gender: "female", birthDate: "1983-05-12"),
        Person(family: "Rossi", given: "Luca", gender: "male", birthDate: "1964-09-08"),
        Person(family: "Haddad", given: "Layla", gender: "female", birthDate: "1990-01-17"),
        Person(family: "Tanaka", given: "Yuki", gender: "other", birthDate: "1952-12-25"),
        Person(family: "Kowalski", given: "Piotr", gender: "male", birthDate: "1977-04-02"),
    ]

    static func practitioner(npi: String) -> String {
        """
        {"resourceType": "Practitioner", "identifier": [{"system": "\(npiSystem)", "value": "\(npi)"}], "active": true,
         "name": [{"family": "Chen", "given": ["Wei"], "prefix": ["Dr."]}]}
        """
    }

    static func patient(mrn: String, person: Person) -> String {
        """
        {"resourceType": "Patient", "identifier": [{"use": "usual", "system": "\(mrnSystem)", "value": "\(mrn)"}],
         "active": true, "name": [{"use": "official", "family": "\(person.family)", "given": ["\(person.given)"]}],
         "telecom": [{"system": "phone", "value": "+1 555 0100", "use": "home"}],
         "gender": "\(person.gender)", "birthDate": "\(person.birthDate)"}
        """
    }

    /// The inpatient stay: in progress at admission, `finished` with an end at discharge.
    static func encounter(id: String? = nil, patient: String, practitioner: String, discharged: Bool) -> String {
        let idMember = id.map { "\"id\": \"\($0)\", " } ?? ""
        let period =
            discharged
            ? #"{"start": "2024-03-04T08:00:00Z", "end": "2024-03-06T10:00:00Z"}"#
            : #"{"start": "2024-03-04T08:00:00Z"}"#
        return """
            {"resourceType": "Encounter", \(idMember)"status": "\(discharged ? "finished" : "in-progress")",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
             "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "32485007", "display": "Hospital admission"}]}],
             "subject": {"reference": "Patient/\(patient)"},
             "participant": [{"individual": {"reference": "Practitioner/\(practitioner)"}}],
             "period": \(period)}
            """
    }

    /// One vital sign: its LOINC code and how its value is written.
    struct VitalSign {
        var loinc: String
        var display: String
        var effective: String
        /// `valueQuantity` or `component` members, without braces.
        var value: String
    }

    static func quantity(_ value: String, _ unit: String, _ code: String) -> String {
        #"{"value": \#(value), "unit": "\#(unit)", "system": "http://unitsofmeasure.org", "code": "\#(code)"}"#
    }

    /// Taken at admission (three on the admission day, the weight the next morning).
    static let admissionVitals = [
        VitalSign(
            loinc: "8867-4", display: "Heart rate", effective: "2024-03-04T08:15:00Z",
            value: #""valueQuantity": \#(quantity("72", "beats/minute", "/min"))"#),
        VitalSign(
            loinc: "8310-5", display: "Body temperature", effective: "2024-03-04T08:15:00Z",
            value: #""valueQuantity": \#(quantity("37.2", "C", "Cel"))"#),
        VitalSign(
            loinc: "85354-9", display: "Blood pressure panel with all children optional",
            effective: "2024-03-04T08:16:00Z",
            value:
                #""component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]}, "valueQuantity": \#(quantity("142", "mmHg", "mm[Hg]"))}, {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]}, "valueQuantity": \#(quantity("91", "mmHg", "mm[Hg]"))}]"#
        ),
        VitalSign(
            loinc: "29463-7", display: "Body weight", effective: "2024-03-05T07:30:00Z",
            value: #""valueQuantity": \#(quantity("81.4", "kg", "kg"))"#),
    ]

    /// Taken at the follow-up visit, posted in one transaction with it.
    static let followUpVitals = [
        VitalSign(
            loinc: "59408-5", display: "Oxygen saturation in Arterial blood by Pulse oximetry",
            effective: "2024-03-18T09:10:00Z", value: #""valueQuantity": \#(quantity("97", "%", "%"))"#),
        VitalSign(
            loinc: "9279-1", display: "Respiratory rate", effective: "2024-03-18T09:10:00Z",
            value: #""valueQuantity": \#(quantity("16", "breaths/minute", "/min"))"#),
    ]

    /// `encounter` is a reference (`Encounter/id` or a transaction's `urn:uuid:...`).
    static func observation(_ vital: VitalSign, patient: String, encounter: String) -> String {
        """
        {"resourceType": "Observation", "status": "final",
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "\(vital.loinc)", "display": "\(vital.display)"}]},
         "subject": {"reference": "Patient/\(patient)"}, "encounter": {"reference": "\(encounter)"},
         "effectiveDateTime": "\(vital.effective)", \(vital.value)}
        """
    }

    static func condition(patient: String, encounter: String) -> String {
        """
        {"resourceType": "Condition",
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
         "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}]}],
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensive disorder, systemic arterial (disorder)"}]},
         "subject": {"reference": "Patient/\(patient)"}, "encounter": {"reference": "Encounter/\(encounter)"},
         "onsetDateTime": "2024-03-04", "recordedDate": "2024-03-04T09:02:00Z"}
        """
    }

    static func medicationRequest(patient: String, encounter: String, practitioner: String, condition: String) -> String
    {
        """
        {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}]},
         "subject": {"reference": "Patient/\(patient)"}, "encounter": {"reference": "Encounter/\(encounter)"},
         "authoredOn": "2024-03-04T09:30:00Z", "requester": {"reference": "Practitioner/\(practitioner)"},
         "reasonReference": [{"reference": "Condition/\(condition)"}],
         "dosageInstruction": [{"text": "10 mg by mouth once daily", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
           "doseAndRate": [{"doseQuantity": \(quantity("10", "mg", "mg"))}]}]}
        """
    }

    /// The follow-up outpatient visit and its vital signs, linked by `urn:uuid` full URLs the
    /// server rewrites to the ids it assigns.
    static func followUpTransaction(
        patient: String, practitioner: String, encounterUUID: String, observationUUIDs: [String]
    ) -> String {
        let visit = """
            {"resourceType": "Encounter", "status": "finished",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
             "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185389009", "display": "Follow-up visit"}]}],
             "subject": {"reference": "Patient/\(patient)"},
             "participant": [{"individual": {"reference": "Practitioner/\(practitioner)"}}],
             "period": {"start": "2024-03-18T09:00:00Z", "end": "2024-03-18T09:30:00Z"}}
            """
        var entries = [
            #"{"fullUrl": "urn:uuid:\#(encounterUUID)", "resource": \#(visit), "request": {"method": "POST", "url": "Encounter"}}"#
        ]
        for (vital, uuid) in zip(followUpVitals, observationUUIDs) {
            let observation = observation(vital, patient: patient, encounter: "urn:uuid:\(encounterUUID)")
            entries.append(
                #"{"fullUrl": "urn:uuid:\#(uuid)", "resource": \#(observation), "request": {"method": "POST", "url": "Observation"}}"#
            )
        }
        return #"{"resourceType": "Bundle", "type": "transaction", "entry": [\#(entries.joined(separator: ",\n"))]}"#
    }
}
