import FHIR
import Foundation

/// One worker's rounds: the admission steps, in the order a hospital's apps take them.
struct AdmissionScript {
    let session: FHIRHTTPSession
    let runToken: String
    /// The worker's attending practitioner; created by its first round, found by the later ones.
    let npi: String
    let everything: Bool
    var practitionerId: String?

    init(session: FHIRHTTPSession, runToken: String, npi: String, everything: Bool) {
        self.session = session
        self.runToken = runToken
        self.npi = npi
        self.everything = everything
    }

    typealias R = ClinicalResources

    mutating func run(round: Int) async throws {
        let mrn = "\(runToken)-\(round)"
        let person = R.people[round % R.people.count]

        // Registration. The practitioner is created once per ward: If-None-Exist finds it later.
        let practitionerReply = try await session.send(
            .conditionalCreate, .POST, "Practitioner", body: R.practitioner(npi: npi),
            headers: [("If-None-Exist", QueryString.make([("identifier", "\(R.npiSystem)|\(npi)")]))],
            expect: practitionerId == nil ? [201] : [200])
        let practitioner = try session.createdId(practitionerReply, type: "Practitioner", .conditionalCreate)
        try session.check(
            practitionerId == nil || practitionerId == practitioner, .conditionalCreate,
            "Practitioner?identifier=\(npi) found \(practitioner), not the \(practitionerId ?? "") created before")
        practitionerId = practitioner

        let patient = try session.createdId(
            try await session.send(.create, .POST, "Patient", body: R.patient(mrn: mrn, person: person), expect: [201]),
            type: "Patient", .create)
        // A second app registers the same patient: the MRN finds the one already there.
        let again = try await session.send(
            .conditionalCreate, .POST, "Patient", body: R.patient(mrn: mrn, person: person),
            headers: [("If-None-Exist", QueryString.make([("identifier", "\(R.mrnSystem)|\(mrn)")]))], expect: [200])
        try session.check(
            try session.createdId(again, type: "Patient", .conditionalCreate) == patient, .conditionalCreate,
            "re-registering MRN \(mrn) answered \(again.location ?? "no Location"), not Patient/\(patient)")

        // Admission: the encounter, vital signs, diagnosis and prescription.
        let encounter = try await create(
            "Encounter", R.encounter(patient: patient, practitioner: practitioner, discharged: false))
        var observations: [String] = []
        for vital in R.admissionVitals {
            observations.append(
                try await create(
                    "Observation", R.observation(vital, patient: patient, encounter: "Encounter/\(encounter)")))
        }
        let condition = try await create("Condition", R.condition(patient: patient, encounter: encounter))
        let prescription = try await create(
            "MedicationRequest",
            R.medicationRequest(
                patient: patient, encounter: encounter, practitioner: practitioner, condition: condition))

        // The chart, read back.
        for key in [
            "Patient/\(patient)", "Encounter/\(encounter)", "Observation/\(observations[0])", "Condition/\(condition)",
            "MedicationRequest/\(prescription)",
        ] {
            let reply = try await session.send(.read, .GET, key, expect: [200])
            try session.check(
                reply.body.flatMap(BundleReading.key) == key, .read, "GET \(key) answered another resource")
            try session.check(
                reply.etag == "W/\"1\"", .read, "GET \(key): ETag '\(reply.etag ?? "none")', expected W/\"1\"")
        }

        try await searches(
            person: person, mrn: mrn, patient: patient, practitioner: practitioner, encounter: encounter,
            observations: observations, condition: condition, prescription: prescription)

        // Discharge, then a second app's edit based on the admission version: refused.
        let discharge = R.encounter(id: encounter, patient: patient, practitioner: practitioner, discharged: true)
        let updated = try await session.send(
            .update, .PUT, "Encounter/\(encounter)", body: discharge, headers: [("If-Match", "W/\"1\"")], expect: [200])
        _ = try session.createdId(updated, type: "Encounter", version: "2", .update)
        _ = try await session.send(
            .update, .PUT, "Encounter/\(encounter)", body: discharge, headers: [("If-Match", "W/\"1\"")], expect: [412])
        let admitted = try await session.send(.vread, .GET, "Encounter/\(encounter)/_history/1", expect: [200])
        try session.check(
            admitted.body?["status"]?.stringValue == "in-progress", .vread,
            "Encounter/\(encounter)/_history/1 is not the admission version")
        let history = try await session.send(.history, .GET, "Encounter/\(encounter)/_history", expect: [200])
        try session.check(
            history.body?["type"] == "history" && BundleReading.total(history.body) == 2
                && BundleReading.entries(history.body).count == 2,
            .history,
            "Encounter/\(encounter)/_history: expected a history Bundle of 2 versions, got total \(BundleReading.total(history.body).map(String.init) ?? "none")"
        )

        let followUp = try await followUpVisit(patient: patient, practitioner: practitioner)

        if everything {
            let reply = try await session.send(.everything, .GET, "Patient/\(patient)/$everything", expect: [200])
            let found = Set(BundleReading.entries(reply.body).compactMap { $0["resource"].flatMap(BundleReading.key) })
            let written = [
                "Patient/\(patient)", "Practitioner/\(practitioner)", "Encounter/\(encounter)",
                "Condition/\(condition)",
                "MedicationRequest/\(prescription)",
            ]
            let expected = written + observations.map { "Observation/\($0)" } + followUp
            let missing = expected.filter { !found.contains($0) }
            try session.check(
                missing.isEmpty, .everything, "Patient/\(patient)/$everything lacks \(missing.joined(separator: ", "))")
        }

        // The prescription was entered in error.
        _ = try await session.send(.delete, .DELETE, "MedicationRequest/\(prescription)", expect: [200, 204])
        _ = try await session.send(.read, .GET, "MedicationRequest/\(prescription)", expect: [410])
    }

    /// POST of a new resource; its id.
    func create(_ type: String, _ body: String) async throws -> String {
        try session.createdId(
            try await session.send(.create, .POST, type, body: body, expect: [201]), type: type, .create)
    }

    /// The searches a chart view makes, each answer checked against what the round wrote.
    func searches(
        person: ClinicalResources.Person, mrn: String, patient: String, practitioner: String, encounter: String,
        observations: [String], condition: String, prescription: String
    ) async throws {
        // Other rounds share the family name: any answer must be Patients bearing it.
        let byName = try await search("Patient", [("name", person.family), ("_count", "10")])
        try session.check(
            !byName.isEmpty
                && byName.allSatisfy {
                    $0["resourceType"] == "Patient" && JSONWriter().string($0["name"] ?? .null).contains(person.family)
                },
            .search, "Patient?name=\(person.family) found no such patient")
        try await expectMatches("Patient", [("identifier", "\(R.mrnSystem)|\(mrn)")], ["Patient/\(patient)"])
        try await expectMatches(
            "Observation", [("patient", patient), ("code", "http://loinc.org|8867-4")],
            ["Observation/\(observations[0])"])
        // The admission day's vital signs, not the next morning's weight.
        try await expectMatches(
            "Observation",
            [
                ("patient", patient), ("category", "vital-signs"), ("date", "ge\(R.admissionDay)"),
                ("date", "lt\(R.nextDay)"),
            ],
            observations.prefix(3).map { "Observation/\($0)" })
        try await expectMatches(
            "Encounter", [("subject", "Patient/\(patient)"), ("date", "ge2024-03-01"), ("date", "le2024-03-31")],
            ["Encounter/\(encounter)"])

        // Every vital sign, two a page, following the next links to the end.
        var page = try await searchBundle("Observation", [("patient", patient), ("_sort", "date"), ("_count", "2")])
        var seen: [String] = []
        while true {
            seen += BundleReading.keys(page, mode: "match")
            guard let next = BundleReading.link(page, "next") else { break }
            try session.check(
                next.hasPrefix(session.baseURL + "/"), .searchPage, "next link \(next) is not under \(session.baseURL)")
            try session.check(seen.count < 100, .searchPage, "Observation?patient=\(patient) pages never end")
            page = try await session.send(.searchPage, .GET, next, expect: [200]).body
        }
        try session.check(
            seen.sorted() == observations.map { "Observation/\($0)" }.sorted(), .searchPage,
            "paging Observation?patient=\(patient) by 2 gave \(seen), not the \(observations.count) observations")

        let included = try await session.send(
            .search, .GET,
            "MedicationRequest?"
                + QueryString.make([
                    ("patient", patient), ("_include", "MedicationRequest:subject"),
                    ("_include", "MedicationRequest:requester"),
                ]), expect: [200])
        try session.check(
            BundleReading.keys(included.body, mode: "match") == ["MedicationRequest/\(prescription)"]
                && Set(BundleReading.keys(included.body, mode: "include")) == [
                    "Patient/\(patient)", "Practitioner/\(practitioner)",
                ],
            .search,
            "MedicationRequest?patient=\(patient)&_include=...: matches \(BundleReading.keys(included.body, mode: "match")), includes \(BundleReading.keys(included.body, mode: "include"))"
        )

        let revincluded = try await session.send(
            .search, .GET,
            "Patient?"
                + QueryString.make([
                    ("_id", patient), ("_revinclude", "Observation:subject"), ("_revinclude", "Condition:subject"),
                ]),
            expect: [200])
        let expectedIncludes = Set(observations.map { "Observation/\($0)" } + ["Condition/\(condition)"])
        try session.check(
            BundleReading.keys(revincluded.body, mode: "match") == ["Patient/\(patient)"]
                && Set(BundleReading.keys(revincluded.body, mode: "include")) == expectedIncludes,
            .search,
            "Patient?_id=\(patient)&_revinclude=...: matches \(BundleReading.keys(revincluded.body, mode: "match")), includes \(BundleReading.keys(revincluded.body, mode: "include"))"
        )
    }

    /// A search's first page, checked to be a searchset Bundle.
    func searchBundle(_ type: String, _ parameters: [(String, String)]) async throws -> JSONValue? {
        let query = "\(type)?" + QueryString.make(parameters)
        let reply = try await session.send(.search, .GET, query, expect: [200])
        try session.check(
            reply.body?["type"] == "searchset", .search, "\(query) is not answered with a searchset Bundle")
        return reply.body
    }

    /// The resources a search's first page matched.
    func search(_ type: String, _ parameters: [(String, String)]) async throws -> [JSONValue] {
        BundleReading.entries(try await searchBundle(type, parameters))
            .filter { $0["search"]?["mode"]?.stringValue == "match" }.compactMap { $0["resource"] }
    }

    /// A search whose matches must be exactly `expected` (`Type/id`), with `total` to agree.
    func expectMatches(_ type: String, _ parameters: [(String, String)], _ expected: [String]) async throws {
        let bundle = try await searchBundle(type, parameters)
        let found = BundleReading.keys(bundle, mode: "match")
        try session.check(
            found.sorted() == expected.sorted() && BundleReading.total(bundle) == expected.count, .search,
            "\(type)?\(QueryString.make(parameters)) matched \(found) (total \(BundleReading.total(bundle).map(String.init) ?? "none")), expected \(expected)"
        )
    }

    /// The follow-up visit and its vital signs in one transaction; the `Type/id` of each, with
    /// the observations' `urn:uuid` encounter references checked to be rewritten.
    func followUpVisit(patient: String, practitioner: String) async throws -> [String] {
        let encounterUUID = UUID().uuidString.lowercased()
        let observationUUIDs = ClinicalResources.followUpVitals.map { _ in UUID().uuidString.lowercased() }
        let bundle = ClinicalResources.followUpTransaction(
            patient: patient, practitioner: practitioner, encounterUUID: encounterUUID,
            observationUUIDs: observationUUIDs)
        let reply = try await session.send(.transaction, .POST, "", body: bundle, expect: [200])
        let entries = BundleReading.entries(reply.body)
        try session.check(
            reply.body?["type"] == "transaction-response" && entries.count == 1 + observationUUIDs.count, .transaction,
            "the follow-up transaction answered \(entries.count) entries in a '\(reply.body?["type"]?.stringValue ?? "")' Bundle"
        )
        var keys: [String] = []
        for entry in entries {
            let status = entry["response"]?["status"]?.stringValue ?? ""
            let location = entry["response"]?["location"]?.stringValue ?? ""
            let parts = location.split(separator: "/")
            try session.check(
                status.hasPrefix("201") && parts.count >= 2, .transaction,
                "a follow-up entry answered '\(status)' at '\(location)'")
            keys.append("\(parts[0])/\(parts[1])")
        }
        try session.check(
            keys.first?.hasPrefix("Encounter/") == true && keys.dropFirst().allSatisfy { $0.hasPrefix("Observation/") },
            .transaction,
            "the follow-up entries answered \(keys), not in the Bundle's order")
        let observation = try await session.send(.read, .GET, keys[1], expect: [200])
        try session.check(
            observation.body?["encounter"]?["reference"]?.stringValue == keys[0], .read,
            "\(keys[1]).encounter is \(observation.body?["encounter"]?["reference"]?.stringValue ?? "none"), not the rewritten \(keys[0])"
        )
        return keys
    }
}
