import FHIR
import Foundation

/// A patient on the server that the clinical mix looks up, and what apps find it by.
public struct KnownPatient: Sendable, Equatable {
    /// The server's id.
    public var id: String
    public var family: String?
    /// `system|value` of its first identifier.
    public var identifier: String?
    /// `system|code` of the Observation code it has most of, and the median date of those, for
    /// a search by code and date known to match something.
    public var observationCode: String?
    public var observedFrom: String?
    /// Encounters it is known to have (0 when unknown).
    public var encounters: Int

    public init(
        id: String, family: String? = nil, identifier: String? = nil, observationCode: String? = nil,
        observedFrom: String? = nil, encounters: Int = 0
    ) {
        self.id = id
        self.family = family
        self.identifier = identifier
        self.observationCode = observationCode
        self.observedFrom = observedFrom
        self.encounters = encounters
    }

    /// From a transaction Bundle that was loaded and the server's transaction-response (whose
    /// entries answer the Bundle's in order); nil when the Bundle holds no Patient.
    public init?(bundle: JSONValue, response: JSONValue) {
        let entries = BundleReading.entries(bundle)
        guard let index = entries.firstIndex(where: { $0["resource"]?["resourceType"] == "Patient" }),
            let patient = entries[index]["resource"]
        else { return nil }
        let answers = BundleReading.entries(response)
        let location = index < answers.count ? answers[index]["response"]?["location"]?.stringValue : nil
        let parts = (location ?? "").split(separator: "/")
        guard parts.count >= 2, parts[0] == "Patient" else { return nil }
        self.init(resource: patient, id: String(parts[1]))
        var dates: [String: [String]] = [:]
        for entry in entries {
            guard let resource = entry["resource"] else { continue }
            if resource["resourceType"] == "Encounter" { encounters += 1 }
            if resource["resourceType"] == "Observation",
                let coding = resource["code"]?["coding"]?.arrayValue?.first,
                let system = coding["system"]?.stringValue, let code = coding["code"]?.stringValue,
                let date = resource["effectiveDateTime"]?.stringValue
            {
                dates["\(system)|\(code)", default: []].append(String(date.prefix(10)))
            }
        }
        if let (code, observed) = dates.max(by: { ($0.value.count, $0.key) < ($1.value.count, $1.key) }) {
            observationCode = code
            observedFrom = observed.sorted()[observed.count / 2]
        }
    }

    /// From a Patient resource the server answered with; nil without an id.
    public init?(resource: JSONValue) {
        guard resource["resourceType"] == "Patient", let id = resource["id"]?.stringValue else { return nil }
        self.init(resource: resource, id: id)
    }

    private init(resource: JSONValue, id: String) {
        let identifier = resource["identifier"]?.arrayValue?.first {
            $0["system"]?.stringValue != nil && $0["value"]?.stringValue != nil
        }
        self.init(
            id: id, family: resource["name"]?.arrayValue?.first?["family"]?.stringValue,
            identifier: identifier.map { "\($0["system"]!.stringValue!)|\($0["value"]!.stringValue!)" })
    }
}

/// One worker of the clinical mix: each `step` is exactly one interaction, chosen with the
/// weights of a hospital's day (about four in five reads and searches: a chart opened, a patient
/// looked up by name or record number, vital signs by code and date, the visit list; the rest
/// writes: an emergency visit registered, its status moved along the tracking board with
/// `If-Match`, vital signs recorded in it). Every answer is checked against what is known.
///
/// The visits a worker writes are its own, so that its `If-Match` versions are never stale.
struct ClinicalMix {
    let session: FHIRHTTPSession
    let patients: [KnownPatient]
    let everything: Bool
    var random: SeededRandom
    /// This worker's visits not yet finished, with the version it last wrote.
    var visits: [(id: String, patient: String, start: String, status: Int, version: Int)] = []

    /// The tracking board: created at the first, updated through the rest; finished ends it.
    static let statuses = ["arrived", "triaged", "in-progress", "finished"]
    /// Open visits a worker keeps at most: beyond, a new arrival moves an old visit along instead.
    static let openVisits = 8

    enum Step: CaseIterable {
        case readPatient, searchByName, searchByIdentifier, observationsByCodeAndDate, encountersByPatient
        case conditionsByPatient, everything, readVisit, recordVitals, registerVisit, updateVisit

        /// Out of 100.
        var weight: Int {
            switch self {
            case .readPatient: 14
            case .searchByName, .searchByIdentifier: 10
            case .observationsByCodeAndDate: 18
            case .encountersByPatient: 12
            case .conditionsByPatient: 6
            case .everything, .readVisit: 4
            case .recordVitals: 12
            case .registerVisit, .updateVisit: 5
            }
        }
    }

    init(session: FHIRHTTPSession, patients: [KnownPatient], everything: Bool, random: SeededRandom) {
        self.session = session
        self.patients = patients
        self.everything = everything
        self.random = random
    }

    mutating func step() async throws {
        var roll = Int.random(in: 0..<100, using: &random)
        var step = Step.allCases.first {
            roll -= $0.weight; return roll < 0
        }!
        // Steps that need something the worker lacks fall back to one that needs nothing.
        if step == .everything && !everything { step = .readPatient }
        if [.readVisit, .recordVitals, .updateVisit].contains(step) && visits.isEmpty { step = .registerVisit }
        if step == .registerVisit && visits.count >= Self.openVisits { step = .updateVisit }
        let patient = patients.randomElement(using: &random)!
        switch step {
        case .readPatient:
            let reply = try await session.send(.read, .GET, "Patient/\(patient.id)", expect: [200])
            try session.check(
                reply.body.flatMap(BundleReading.key) == "Patient/\(patient.id)", .read,
                "GET Patient/\(patient.id) answered another resource")
        case .searchByName:
            guard let family = patient.family else {
                try await searchByPatient("Encounter", patient)
                return
            }
            let matches = try await search("Patient", [("name", family), ("_count", "10")])
            try session.check(
                !matches.isEmpty && matches.allSatisfy { $0["resourceType"] == "Patient" }, .search,
                "Patient?name=\(family) found no Patient, though Patient/\(patient.id) is \(family)")
        case .searchByIdentifier:
            guard let identifier = patient.identifier else {
                try await searchByPatient("Encounter", patient)
                return
            }
            let matches = try await search("Patient", [("identifier", identifier)])
            try session.check(
                matches.contains { BundleReading.key($0) == "Patient/\(patient.id)" }, .search,
                "Patient?identifier=\(identifier) did not find Patient/\(patient.id)")
        case .observationsByCodeAndDate:
            // Without a known code, the heart rates the mix records itself.
            let code = patient.observationCode ?? "http://loinc.org|8867-4"
            let matches = try await searchByPatient(
                "Observation", patient,
                [("code", code), ("date", "ge\(patient.observedFrom ?? "2000-01-01")"), ("_count", "50")])
            try session.check(
                !matches.isEmpty || patient.observationCode == nil, .search,
                "Observation?patient=\(patient.id)&code=\(code)&date=ge\(patient.observedFrom ?? ""): no match")
        case .encountersByPatient:
            let matches = try await searchByPatient("Encounter", patient)
            try session.check(
                matches.count >= min(patient.encounters, 20), .search,
                "Encounter?patient=\(patient.id) found \(matches.count), expected \(patient.encounters) or more")
        case .conditionsByPatient:
            try await searchByPatient("Condition", patient)
        case .everything:
            let reply = try await session.send(.everything, .GET, "Patient/\(patient.id)/$everything", expect: [200])
            try session.check(
                BundleReading.entries(reply.body).contains {
                    $0["resource"].flatMap(BundleReading.key) == "Patient/\(patient.id)"
                }, .everything, "Patient/\(patient.id)/$everything lacks the Patient")
        case .readVisit:
            let visit = visits.randomElement(using: &random)!
            let reply = try await session.send(.read, .GET, "Encounter/\(visit.id)", expect: [200])
            let status = reply.body?["status"]?.stringValue ?? "none"
            try session.check(
                reply.etag == "W/\"\(visit.version)\"" && status == Self.statuses[visit.status], .read,
                "GET Encounter/\(visit.id): ETag \(reply.etag ?? "none"), status \(status); "
                    + "this worker wrote version \(visit.version), \(Self.statuses[visit.status])")
        case .recordVitals:
            let visit = visits.randomElement(using: &random)!
            let value = String(Int.random(in: 55...115, using: &random))
            let observation = Self.vitalSign(
                loinc: "8867-4", display: "Heart rate", value: value, unit: "/min",
                subject: ["reference": .string("Patient/\(visit.patient)")], encounter: "Encounter/\(visit.id)",
                effective: Self.now())
            let reply = try await session.send(
                .create, .POST, "Observation", body: JSONWriter().string(observation), expect: [201])
            _ = try session.createdId(reply, type: "Observation", .create)
        case .registerVisit:
            let start = Self.now()
            let reply = try await session.send(
                .create, .POST, "Encounter", body: Self.visit(id: nil, patient: patient.id, start: start, status: 0),
                expect: [201])
            visits.append((try session.createdId(reply, type: "Encounter", .create), patient.id, start, 0, 1))
        case .updateVisit:
            let index = Int.random(in: 0..<visits.count, using: &random)
            let visit = visits[index]
            let reply = try await session.send(
                .update, .PUT, "Encounter/\(visit.id)",
                body: Self.visit(id: visit.id, patient: visit.patient, start: visit.start, status: visit.status + 1),
                headers: [("If-Match", "W/\"\(visit.version)\"")], expect: [200])
            _ = try session.createdId(reply, type: "Encounter", version: String(visit.version + 1), .update)
            visits[index].status += 1
            visits[index].version += 1
            if visits[index].status == Self.statuses.count - 1 { visits.remove(at: index) }
        }
    }

    /// A search's matches, checked to be a searchset Bundle.
    func search(_ type: String, _ parameters: [(String, String)]) async throws -> [JSONValue] {
        let query = "\(type)?" + QueryString.make(parameters)
        let reply = try await session.send(.search, .GET, query, expect: [200])
        try session.check(reply.body?["type"] == "searchset", .search, "\(query) is not answered with a searchset")
        return BundleReading.entries(reply.body)
            .filter { $0["search"]?["mode"]?.stringValue == "match" }.compactMap { $0["resource"] }
    }

    /// `type?patient=id&...`, every match checked to be that patient's.
    @discardableResult
    func searchByPatient(_ type: String, _ patient: KnownPatient, _ more: [(String, String)] = [("_count", "20")])
        async throws -> [JSONValue]
    {
        let matches = try await search(type, [("patient", patient.id)] + more)
        let stranger = matches.first { $0["subject"]?["reference"]?.stringValue != "Patient/\(patient.id)" }
        try session.check(
            stranger == nil, .search,
            "\(type)?patient=\(patient.id) matched \(stranger.flatMap(BundleReading.key) ?? ""), another patient's")
        return matches
    }

    /// An emergency visit at tracking-board status `status`, from `start`; `finished` ends its period now.
    static func visit(id: String?, patient: String, start: String, status: Int) -> String {
        var visit: JSONValue = [
            "resourceType": "Encounter", "status": .string(statuses[status]),
            "class": [
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER", "display": "emergency",
            ],
            "type": [
                [
                    "coding": [
                        ["system": "http://snomed.info/sct", "code": "50849002", "display": "Emergency room admission"]
                    ]
                ]
            ],
            "subject": ["reference": .string("Patient/\(patient)")],
            "period": status == statuses.count - 1
                ? ["start": .string(start), "end": .string(now())] : ["start": .string(start)],
        ]
        if let id, case .object(var object) = visit {
            object.set("id", .string(id), after: ["resourceType"])
            visit = .object(object)
        }
        return JSONWriter().string(visit)
    }

    /// A vital-sign Observation (`value` in UCUM `unit`), in `encounter` (a reference or `urn:uuid`).
    static func vitalSign(
        loinc: String, display: String, value: String, unit: String, subject: JSONValue, encounter: String,
        effective: String
    ) -> JSONValue {
        [
            "resourceType": "Observation", "status": "final",
            "category": [
                [
                    "coding": [
                        [
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                            "display": "Vital Signs",
                        ]
                    ]
                ]
            ],
            "code": ["coding": [["system": "http://loinc.org", "code": .string(loinc), "display": .string(display)]]],
            "subject": subject, "encounter": ["reference": .string(encounter)], "effectiveDateTime": .string(effective),
            "valueQuantity": [
                "value": .number(value), "unit": .string(unit), "system": "http://unitsofmeasure.org",
                "code": .string(unit),
            ],
        ]
    }

    /// Now, as a FHIR instant in UTC.
    static func now() -> String {
        ISO8601DateFormatter().string(from: Date())
    }
}
