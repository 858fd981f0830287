import FHIR
import Foundation

/// Synthetic patients to load beside (or instead of) Synthea's: each a transaction Bundle of a
/// Patient (names, birth date, address, telecom, a medical record number) with one to three
/// ambulatory Encounters, two or three vital-sign Observations (LOINC, UCUM) in each, and up to
/// two Conditions (SNOMED CT), linked by `urn:uuid` full URLs that the server rewrites.
///
/// Deterministic: patient `i` of seed `s` is always the same resources (its own random stream,
/// so it does not depend on how many patients come before it). Loading one seed twice into the
/// same database therefore gives two patients per medical record number; use another seed.
public struct PatientGenerator: Sendable {
    /// The system of the generated medical record numbers.
    public static let mrnSystem = "http://caduceus.example.org/fhir/sid/synthetic-mrn"

    /// One generated patient: its transaction Bundle and what it holds, to check a server against.
    public struct GeneratedPatient: Sendable {
        /// `S<seed>-<index>`, under `mrnSystem`.
        public var mrn: String
        public var family: String
        public var given: String
        public var birthDate: String
        public var encounters: Int
        public var observations: Int
        public var conditions: Int
        /// The transaction Bundle, as JSON text.
        public var bundle: String
    }

    public var seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
    }

    /// Patients `0..<count`, as bundles to load.
    public func bundles(count: Int) -> [PatientBundle] {
        (0..<count).map { index in PatientBundle(name: "generated patient \(index)", text: patient(index).bundle) }
    }

    public func patient(_ index: Int) -> GeneratedPatient {
        var random = SeededRandom(seed: seed ^ (UInt64(index) &+ 1) &* 0xD1B5_4A32_D192_ED03)
        let female = Bool.random(using: &random)
        let given = (female ? Self.femaleNames : Self.maleNames).randomElement(using: &random)!
        let family = Self.familyNames.randomElement(using: &random)!
        let birthYear = Int.random(in: 1935...2018, using: &random)
        let birthDate = String(
            format: "%04d-%02d-%02d", birthYear, Int.random(in: 1...12, using: &random),
            Int.random(in: 1...28, using: &random))
        let mrn = "S\(seed)-\(index)"
        let (city, state, zip) = Self.cities.randomElement(using: &random)!
        let patientURL = random.uuidURL()
        let patient: JSONValue = [
            "resourceType": "Patient",
            "identifier": [
                [
                    "use": "usual",
                    "type": ["coding": [["system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"]]],
                    "system": .string(Self.mrnSystem), "value": .string(mrn),
                ]
            ],
            "active": true,
            "name": [["use": "official", "family": .string(family), "given": [.string(given)]]],
            "telecom": [
                [
                    "system": "phone", "use": "home",
                    "value": .string(String(format: "+1 555 %04d", Int.random(in: 100...9999, using: &random))),
                ]
            ],
            "gender": female ? "female" : "male",
            "birthDate": .string(birthDate),
            "address": [
                [
                    "use": "home",
                    "line": [
                        .string(
                            "\(Int.random(in: 1...9999, using: &random)) \(Self.streets.randomElement(using: &random)!)"
                        )
                    ],
                    "city": .string(city), "state": .string(state), "postalCode": .string(zip), "country": "US",
                ]
            ],
        ]
        var entries = [Self.entry(patientURL, patient)]
        let subject: JSONValue = ["reference": .string(patientURL)]

        // Visits after the patient's second birthday, in order, on separate days.
        let encounterCount = Int.random(in: 1...3, using: &random)
        var observationCount = 0
        var firstVisit: (url: String, date: String)?
        var day = Int.random(in: 0...400, using: &random)
        for _ in 0..<encounterCount {
            let date = Self.date(year: max(birthYear + 2, 2016), plusDays: day)
            day += Int.random(in: 30...365, using: &random)
            let url = random.uuidURL()
            if firstVisit == nil { firstVisit = (url, date) }
            let visit = Self.visitTypes.randomElement(using: &random)!
            entries.append(
                Self.entry(
                    url,
                    [
                        "resourceType": "Encounter", "status": "finished",
                        "class": [
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                            "display": "ambulatory",
                        ],
                        "type": [
                            [
                                "coding": [
                                    [
                                        "system": "http://snomed.info/sct", "code": .string(visit.0),
                                        "display": .string(visit.1),
                                    ]
                                ]
                            ]
                        ],
                        "subject": subject,
                        "period": ["start": .string("\(date)T09:00:00Z"), "end": .string("\(date)T09:40:00Z")],
                    ]))
            for vital in Self.vitals.shuffled(using: &random).prefix(Int.random(in: 2...3, using: &random)) {
                let value = Double.random(in: vital.range, using: &random)
                entries.append(
                    Self.entry(
                        random.uuidURL(),
                        ClinicalMix.vitalSign(
                            loinc: vital.loinc, display: vital.display, value: String(format: vital.format, value),
                            unit: vital.unit, subject: subject, encounter: url, effective: "\(date)T09:10:00Z")))
                observationCount += 1
            }
        }

        let conditionCount = Int.random(in: 0...2, using: &random)
        for condition in Self.conditions.shuffled(using: &random).prefix(conditionCount) {
            let visit = firstVisit!
            entries.append(
                Self.entry(
                    random.uuidURL(),
                    [
                        "resourceType": "Condition",
                        "clinicalStatus": [
                            "coding": [
                                [
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active",
                                ]
                            ]
                        ],
                        "verificationStatus": [
                            "coding": [
                                [
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                    "code": "confirmed",
                                ]
                            ]
                        ],
                        "category": [
                            [
                                "coding": [
                                    [
                                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                        "code": "problem-list-item",
                                    ]
                                ]
                            ]
                        ],
                        "code": [
                            "coding": [
                                [
                                    "system": "http://snomed.info/sct", "code": .string(condition.0),
                                    "display": .string(condition.1),
                                ]
                            ]
                        ],
                        "subject": subject, "encounter": ["reference": .string(visit.url)],
                        "onsetDateTime": .string(visit.date), "recordedDate": .string("\(visit.date)T09:30:00Z"),
                    ]))
        }
        let bundle: JSONValue = ["resourceType": "Bundle", "type": "transaction", "entry": .array(entries)]
        return GeneratedPatient(
            mrn: mrn, family: family, given: given, birthDate: birthDate, encounters: encounterCount,
            observations: observationCount, conditions: conditionCount, bundle: JSONWriter().string(bundle))
    }

    /// A transaction entry creating `resource` under the full URL `url`.
    static func entry(_ url: String, _ resource: JSONValue) -> JSONValue {
        let type = resource["resourceType"]?.stringValue ?? ""
        return ["fullUrl": .string(url), "resource": resource, "request": ["method": "POST", "url": .string(type)]]
    }

    /// `YYYY-MM-DD`, `days` after the first of January of `year` (UTC).
    static func date(year: Int, plusDays days: Int) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: year, month: 1, day: 1))!
        let date = calendar.date(byAdding: .day, value: days, to: start)!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    static let femaleNames = ["Maria", "Anna", "Layla", "Yuki", "Grace", "Amara", "Sofia", "Ingrid", "Priya", "Chloe"]
    static let maleNames = ["Thanh", "Chidi", "Luca", "Piotr", "Omar", "Mateo", "Kenji", "Arjun", "Noah", "Elias"]
    static let familyNames = [
        "Garcia", "Nguyen", "Okafor", "Schmidt", "Rossi", "Haddad", "Tanaka", "Kowalski", "Johansson", "Patel",
        "Moreau", "Silva", "Kim", "Dubois", "Novak", "Murphy",
    ]
    static let streets = ["Main Street", "Oak Avenue", "Harbor Road", "Elm Court", "Mill Lane", "Park Boulevard"]
    static let cities = [
        ("Springfield", "MA", "01103"), ("Worcester", "MA", "01608"), ("Boston", "MA", "02118"),
        ("Lowell", "MA", "01852"), ("Cambridge", "MA", "02139"), ("Quincy", "MA", "02169"),
    ]
    static let visitTypes = [
        ("185349003", "Encounter for check up"), ("185345009", "Encounter for symptom"),
        ("390906007", "Follow-up encounter"),
    ]
    static let conditions = [
        ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
        ("44054006", "Diabetes mellitus type 2 (disorder)"), ("195967001", "Asthma (disorder)"),
        ("55822004", "Hyperlipidemia (disorder)"),
    ]

    /// A vital sign the generator takes: LOINC code, UCUM unit, a plausible range, how many decimals.
    struct Vital {
        var loinc: String
        var display: String
        var unit: String
        var range: ClosedRange<Double>
        var format: String
    }

    static let vitals = [
        Vital(loinc: "8867-4", display: "Heart rate", unit: "/min", range: 52...110, format: "%.0f"),
        Vital(loinc: "8310-5", display: "Body temperature", unit: "Cel", range: 36.1...38.4, format: "%.1f"),
        Vital(loinc: "29463-7", display: "Body weight", unit: "kg", range: 12...130, format: "%.1f"),
        Vital(loinc: "8302-2", display: "Body height", unit: "cm", range: 90...198, format: "%.1f"),
        Vital(loinc: "9279-1", display: "Respiratory rate", unit: "/min", range: 11...22, format: "%.0f"),
    ]
}

/// SplitMix64: small, fast and the same on every platform, unlike the system generator.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A version-4 UUID from this stream, as a `urn:uuid:` URL: repeatable, unlike `UUID()`.
    mutating func uuidURL() -> String {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &self) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(
                hex[
                    hex.index(
                        hex.startIndex, offsetBy: range.lowerBound)..<hex.index(
                            hex.startIndex, offsetBy: range.upperBound)])
        }
        return "urn:uuid:" + parts.joined(separator: "-")
    }
}
