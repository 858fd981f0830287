import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Lab
import Testing

/// Loading patients (generated and Synthea's) and the clinical mix, against the FHIR
/// application on a loopback socket over a fresh SQLite store.
@Suite struct WorkloadTests {
    static let synthea = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/fhir/synthea").standardizedFileURL.path
    static var syntheaPresent: Bool { FileManager.default.fileExists(atPath: synthea) }
    /// On CI the Synthea data must be there: its test runs (and fails) rather than being skipped.
    static var onCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// A live server for `body`, given its FHIR base URL and a client to check it with.
    func withServer(_ body: @escaping @Sendable (String, any TestClientProtocol) async throws -> Void) async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let app = Application(router: FHIRApplication.buildRouter(store: store))
            try await app.test(.live) { client in
                let port = try #require(client.port)
                try await body("http://localhost:\(port)/fhir-server/api/v4", client)
            }
        }
    }

    /// The `total` of a search's answer.
    func total(_ client: any TestClientProtocol, _ query: String) async throws -> Int? {
        let response = try await client.execute(uri: "/fhir-server/api/v4/\(query)", method: .get)
        #expect(response.status == .ok, "\(query)")
        guard case .number(let text)? = try JSONParser.parse(Array(response.body.readableBytesView))["total"] else {
            return nil
        }
        return Int(text)
    }

    @Test func generatedPatientsAreRepeatableAndDiffer() {
        let generator = PatientGenerator(seed: 42)
        #expect(generator.patient(3).bundle == PatientGenerator(seed: 42).patient(3).bundle)
        #expect(generator.patient(3).bundle != generator.patient(4).bundle)
        #expect(generator.patient(3).bundle != PatientGenerator(seed: 43).patient(3).bundle)
        let patient = generator.patient(0)
        #expect(patient.mrn == "S42-0")
        #expect((1...3).contains(patient.encounters) && patient.observations >= 2 * patient.encounters)
    }

    @Test func theServerAcceptsGeneratedPatientsAndFindsThem() async throws {
        try await withServer { base, client in
            let generator = PatientGenerator(seed: 7)
            let report = try await PatientLoader(baseURL: base, concurrency: 2).load(generator.bundles(count: 6))
            #expect(report.failures.isEmpty, "\(report)")
            #expect(report.patients.count == 6)
            let expected = (0..<6).map(generator.patient)
            #expect(report.resources == expected.reduce(0) { $0 + 1 + $1.encounters + $1.observations + $1.conditions })
            for (generated, known) in zip(expected, report.patients) {
                #expect(known.identifier == "\(PatientGenerator.mrnSystem)|\(generated.mrn)")
                #expect(known.family == generated.family && known.encounters == generated.encounters)
                let mrn = "\(PatientGenerator.mrnSystem)%7C\(generated.mrn)"
                #expect(try await total(client, "Patient?identifier=\(mrn)") == 1)
                #expect(try await total(client, "Patient?_id=\(known.id)&birthdate=\(generated.birthDate)") == 1)
                #expect(try await total(client, "Encounter?patient=\(known.id)") == generated.encounters)
                #expect(try await total(client, "Observation?patient=\(known.id)") == generated.observations)
                #expect(try await total(client, "Condition?patient=\(known.id)") == generated.conditions)
            }
        }
    }

    @Test func aCountLimitedMixSendsExactlyThatManyInteractions() async throws {
        try await withServer { base, _ in
            let loaded = try await PatientLoader(baseURL: base).load(PatientGenerator(seed: 3).bundles(count: 5))
            let finals = Finals()
            var workload = ClinicalWorkload(
                baseURL: base, limit: .interactions(240), patients: loaded.patients, concurrency: 3, seed: 9)
            workload.progress = { if $0.finished { finals.add($0.interactions) } }
            let report = try await workload.run()
            #expect(report.failureCount == 0, "\(report)")
            #expect(report.succeeded)
            #expect(report.interactions == 240)
            #expect(finals.values == [240])
            #expect(report.patients == 5 && report.everythingSupported)
            // Mostly reads and searches, some writes: every kind of the mix shows up in 240.
            for kind in [InteractionKind.read, .search, .create, .update, .everything] {
                #expect(report.count(of: kind) > 0, "\(kind.rawValue)")
            }
            let writes = report.count(of: .create) + report.count(of: .update)
            #expect(writes * 100 < report.interactions * 35 && writes * 100 > report.interactions * 10)
            #expect(report.json["interactions"] == .number("240"))
            // The kinds' rates share out the run's rate.
            let rates = report.kinds.map(report.perSecond).reduce(0, +)
            #expect(abs(rates - 240 / report.elapsedSeconds) < 1e-6 * rates, "\(rates)")
        }
    }

    @Test func aMixWithoutPatientsFindsThemOnTheServer() async throws {
        try await withServer { base, _ in
            let empty = await #expect(throws: (any Error).self) {
                try await ClinicalWorkload(baseURL: base, limit: .interactions(10)).run()
            }
            #expect("\(empty!)".contains("holds no Patient"))
            _ = try await PatientLoader(baseURL: base).load(PatientGenerator(seed: 5).bundles(count: 2))
            let report = try await ClinicalWorkload(baseURL: base, limit: .interactions(30), concurrency: 2).run()
            #expect(report.failureCount == 0 && report.interactions == 30 && report.patients == 2, "\(report)")
        }
    }

    @Test func aDurationLimitedMixStopsNearItsDeadline() async throws {
        try await withServer { base, _ in
            let loaded = try await PatientLoader(baseURL: base).load(PatientGenerator(seed: 11).bundles(count: 3))
            let report = try await ClinicalWorkload(
                baseURL: base, limit: .seconds(3), patients: loaded.patients, concurrency: 2
            ).run()
            #expect(report.failureCount == 0, "\(report)")
            // The mix ran; how much it did depends on the machine's load, so no rate is asserted
            // (in a full parallel test run the two clients finished one interaction in 3 s).
            #expect(report.interactions >= 1)
            // It ran to the deadline, and only the interactions in flight then finish after it
            // (each a single request: seconds at most, even on a loaded machine).
            #expect(report.elapsedSeconds >= 3 && report.elapsedSeconds < 8, "\(report.elapsedSeconds) s")
        }
    }

    @Test(.enabled(if: WorkloadTests.syntheaPresent || WorkloadTests.onCI, "no Synthea data at ../shared/fhir/synthea"))
    func twoSyntheaPatientsLoadAndTheMixFindsThem() async throws {
        let bundles = try PatientLoader.syntheaBundles(directory: Self.synthea, limit: 2)
        #expect(bundles.count == 2)
        try await withServer { base, client in
            let loaded = try await PatientLoader(baseURL: base, concurrency: 2).load(bundles)
            #expect(loaded.failures.isEmpty, "\(loaded)")
            #expect(loaded.patients.count == 2 && loaded.resources > 2 * 100, "\(loaded)")
            for patient in loaded.patients {
                #expect(patient.observationCode != nil && patient.encounters > 0)
                #expect(try await total(client, "Encounter?patient=\(patient.id)") == patient.encounters)
            }
            let report = try await ClinicalWorkload(
                baseURL: base, limit: .interactions(80), patients: loaded.patients, concurrency: 2
            ).run()
            #expect(report.failureCount == 0 && report.interactions == 80, "\(report)")
        }
    }

    @Test func badInputIsRefusedClearly() async throws {
        await #expect(throws: (any Error).self) {
            try await ClinicalWorkload(baseURL: "ftp://example.org/fhir", limit: .interactions(5)).run()
        }
        let missing = #expect(throws: (any Error).self) {
            try PatientLoader.syntheaBundles(directory: "/nonexistent/synthea")
        }
        #expect("\(missing!)".contains("does not exist"))
        // A bundle the server refuses is reported with the OperationOutcome's text, not thrown.
        try await withServer { base, _ in
            let refused = PatientBundle(
                name: "bad.json",
                text:
                    #"{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Patient", "gender": "robot"}, "request": {"method": "POST", "url": "Patient"}}]}"#
            )
            let report = try await PatientLoader(baseURL: base).load([refused])
            #expect(report.allFailed && report.failures.count == 1)
            #expect(report.failures[0].hasPrefix("bad.json: ") && report.failures[0].contains("gender"), "\(report)")
        }
    }
}

/// The progress reports marked final, from any thread.
final class Finals: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [Int] = []
    func add(_ value: Int) {
        lock.lock()
        seen.append(value)
        lock.unlock()
    }
    var values: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }
}
