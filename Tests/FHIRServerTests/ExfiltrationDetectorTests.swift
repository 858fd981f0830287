import FHIR
@testable import FHIRServer
import FHIRStore
import Foundation
import Testing

/// The audit trail's bulk-read detector on its own, fed records with chosen times and clients:
/// the threshold, the sliding window, one alert per client and window, clients kept apart.
@Suite struct ExfiltrationDetectorTests {
    static let t0 = Date(timeIntervalSince1970: 1_746_100_800)

    /// A search by `subject` (a token's `sub`) at `t0 + seconds` that returned `patients`.
    static func read(
        _ patients: [String], by subject: String? = "scraper", address: String? = "10.0.0.1", at seconds: Double,
        tenant: String? = nil
    )
        -> AuditRecord
    {
        AuditRecord(
            subtypes: [.interaction("search-type")], action: "E", recorded: t0.addingTimeInterval(seconds),
            outcome: "0",
            agentName: subject, agentClientId: subject.map { "\($0)-app" }, agentAddress: address, tenant: tenant,
            patientsReturned: Set(patients))
    }

    static func ids(_ range: Range<Int>) -> [String] { range.map { "p\($0)" } }

    @Test func alertsOnlyAboveTheLimit() throws {
        var detector = try ExfiltrationDetector(patients: 5, window: 60)
        #expect(detector.observe(Self.read(Self.ids(0..<3), at: 0)) == nil)
        #expect(detector.observe(Self.read(Self.ids(2..<5), at: 1)) == nil)  // 5 distinct: at the limit, not over
        #expect(detector.observe(Self.read(Self.ids(0..<5), at: 2)) == nil)  // the same five again
        let observed = detector.observe(Self.read(["p5"], at: 3))
        let alert = try #require(observed)
        #expect(detector.alerts == 1 && detector.peakPatients == 6)
        #expect(alert.type == .securityAlert && alert.outcome == "8" && alert.action == "E")
        #expect(alert.subtypes.map(\.code) == [ExfiltrationDetector.ruleId, "T1213"])
        #expect(alert.subtypes.first?.display == "Bulk read of patient records")
        #expect(
            alert.agentName == "scraper" && alert.agentClientId == "scraper-app" && alert.agentAddress == "10.0.0.1")
        #expect(alert.recorded == Self.t0.addingTimeInterval(3))
        #expect(alert.entityDescription == "6 distinct patients read within 60 s (limit 5)")
        #expect(
            alert.outcomeDescription?.contains(
                "'scraper' received the data of 6 distinct patients within 60 s (limit 5)") == true)
        #expect(alert.patientsReturned.isEmpty)
        // As an AuditEvent: the DICOM type, both subtypes, the client as agent.
        let event = alert.resource(observer: "test")
        #expect(event["type"]?["code"] == "110113")
        #expect(event["subtype"]?.arrayValue?.map { $0["code"]?.stringValue } == ["CAD-API-001", "T1213"])
        #expect(event["subtype"]?.arrayValue?.first?["system"] == .string(AuditCoding.ruleSystem))
        #expect(event["agent"]?.arrayValue?.first?["name"] == "scraper")
        #expect(event["entity"]?.arrayValue?.first?["description"] == "6 distinct patients read within 60 s (limit 5)")
    }

    @Test func oneAlertPerClientAndWindow() throws {
        var detector = try ExfiltrationDetector(patients: 5, window: 60)
        var alerts: [Double] = []
        // A scrape of 10 new patients every 10 s for 3 minutes: over the limit all along.
        for step in 0..<18 {
            let at = Double(step * 10)
            if detector.observe(Self.read(Self.ids(step * 10..<step * 10 + 10), at: at)) != nil { alerts.append(at) }
        }
        #expect(alerts == [0, 60, 120], "one alert at the start and one per window after it")
        #expect(detector.alerts == 3)
        // The window holds 7 steps of 10 patients at most (at 60 s: those of 0, 10, ..., 60 s).
        #expect(detector.peakPatients == 70)
    }

    @Test func theWindowSlides() throws {
        var detector = try ExfiltrationDetector(patients: 5, window: 60)
        #expect(detector.observe(Self.read(Self.ids(0..<3), at: 0)) == nil)
        #expect(detector.observe(Self.read(Self.ids(3..<5), at: 30)) == nil)
        // 61 s after the first three, they have left the window: 2 + 3 = 5, not over.
        #expect(detector.observe(Self.read(Self.ids(5..<8), at: 61)) == nil)
        // Reading one of the first three again brings it back: 6 in the window.
        let alert = detector.observe(Self.read(["p0"], at: 62))
        #expect(alert?.entityDescription == "6 distinct patients read within 60 s (limit 5)")
        // A fixed minute (0-60, 60-120) would never have seen more than 5 at once.
    }

    @Test func clientsAreKeptApart() throws {
        var detector = try ExfiltrationDetector(patients: 5, window: 60)
        // Four clients read the same 5 patients and 5 others each: 10 distinct in all, 5 each.
        let clients: [(String?, String?)] = [
            ("alice", "10.0.0.1"), ("bob", "10.0.0.1"), (nil, "10.0.0.2"), (nil, "10.0.0.3"),
        ]
        for (index, client) in clients.enumerated() {
            #expect(
                detector.observe(Self.read(Self.ids(0..<5), by: client.0, address: client.1, at: Double(index))) == nil)
        }
        #expect(detector.peakPatients == 5)
        // The same ids in two tenants are different patients.
        #expect(detector.observe(Self.read(Self.ids(0..<3), by: "carol", at: 5, tenant: "north")) == nil)
        let alert = detector.observe(Self.read(Self.ids(0..<3), by: "carol", at: 6, tenant: "south"))
        #expect(alert?.tenant == "south" && alert?.agentName == "carol")
        // An anonymous client is named by its address.
        let anonymous = detector.observe(Self.read(Self.ids(5..<11), by: nil, address: "10.0.0.2", at: 7))
        #expect(anonymous?.outcomeDescription?.contains("an anonymous client at 10.0.0.2") == true)
        #expect(anonymous?.agentName == nil && anonymous?.agentAddress == "10.0.0.2")
    }

    @Test func onlyRESTRecordsWithPatientsCount() throws {
        var detector = try ExfiltrationDetector(patients: 1, window: 60)
        var alert = AuditRecord(
            type: .securityAlert, subtypes: [], action: "E", outcome: "8", patientsReturned: ["p1", "p2"])
        #expect(detector.observe(alert) == nil)
        alert.type = .rest
        alert.patientsReturned = []
        #expect(detector.observe(alert) == nil)
        #expect(detector.peakPatients == 0)
        #expect(throws: ExfiltrationDetector.InvalidSettings.self) { try ExfiltrationDetector(patients: 0) }
        #expect(throws: ExfiltrationDetector.InvalidSettings.self) { try ExfiltrationDetector(patients: 5, window: 0) }
    }

    @Test func patientsAreFoundInReturnedResources() {
        func stored(_ type: String, _ id: String, _ body: String?, deleted: Bool = false) -> StoredResource {
            StoredResource(type: type, id: id, versionId: 1, lastUpdated: 0, deleted: deleted, body: body)
        }
        var found = Set<String>()
        ReturnedPatients.collect(stored("Patient", "p1", #"{"resourceType":"Patient","id":"p1"}"#), into: &found)
        ReturnedPatients.collect(stored("Patient", "gone", nil, deleted: true), into: &found)
        let observation =
            #"{"resourceType":"Observation","id":"o1","subject":{"display":"x","reference":"Patient/p2"},"#
            + #""performer":[{"reference":"Practitioner/dr"},{"reference":"http://other.example/fhir/Patient/p3/_history/2"}],"#
            + #""note":[{"text":"see \"reference\":\"Patient/fake\""}],"contained":[{"resourceType":"Patient","id":"c"}],"#
            + ##""focus":[{"reference":"#c"}]}"##
        ReturnedPatients.collect(stored("Observation", "o1", observation), into: &found)
        #expect(found == ["p1", "p2", "p3"])
        // A Bulk Data file: ids of Patient.ndjson, references elsewhere.
        let patients = Data(
            (#"{"resourceType":"Patient","name":[{"id":"n1"}],"id":"p7"}"# + "\n"
                + #"{"resourceType":"Patient","id":"p8"}"# + "\n").utf8)
        #expect(ReturnedPatients.inNDJSON(patients, type: "Patient") == ["p7", "p8"])
        let observations = Data(
            (#"{"subject":{"reference":"Patient/p7"}}"# + "\n" + #"{"subject":{"reference":"Patient/p9"}}"#).utf8)
        #expect(ReturnedPatients.inNDJSON(observations, type: "Observation") == ["p7", "p9"])
    }
}
