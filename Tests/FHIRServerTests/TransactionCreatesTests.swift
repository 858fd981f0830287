import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A transaction's creates made ready on every core ahead of the writer (issue 16): what the
/// client sees is what the entries one at a time give. Bundles here are longer than the
/// chunks prepared ahead (8 entries, 4 chunks), so that entries are written while later ones
/// are still being prepared.
@Suite struct TransactionCreatesTests {
    static let backends = TestDatabases.backends

    /// A transaction of `count` POST entries: `entry(i)` gives each one's JSON.
    static func transaction(_ count: Int, _ entry: (Int) -> String) -> String {
        #"{"resourceType":"Bundle","type":"transaction","entry":["# + (0..<count).map(entry).joined(separator: ",")
            + "]}"
    }

    static func observation(_ index: Int, subject: String, status: String = #""final""#) -> String {
        #"{"fullUrl":"urn:uuid:00000000-0000-4000-8000-\#(String(format: "%012d", index))","resource":{"resourceType":"Observation","#
            + #""status":\#(status),"code":{"coding":[{"system":"urn:test","code":"c\#(index)"}]},"subject":{"reference":"\#(subject)"}},"#
            + #""request":{"method":"POST","url":"Observation"}}"#
    }

    static func patient(_ index: Int, mrn: String) -> String {
        #"{"fullUrl":"urn:uuid:00000000-0000-4000-8000-\#(String(format: "%012d", index))","resource":{"resourceType":"Patient","#
            + #""identifier":[{"system":"urn:mrn","value":"\#(mrn)"}]},"request":{"method":"POST","url":"Patient"}}"#
    }

    static func total(_ client: any TestClientProtocol, _ query: String) async throws -> Int? {
        let bundle = try #require(try await client.fhir(.get, query).json)
        guard case .number(let text)? = bundle["total"] else { return nil }
        return Int(text)
    }

    @Test(arguments: backends)
    func aLongTransactionWritesEveryEntryInOrderWithItsReferencesAndIndex(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            // 99 Observations refer forward to the Patient, the last entry.
            let patientUrl = "urn:uuid:00000000-0000-4000-8000-000000000099"
            let bundle = Self.transaction(100) {
                $0 == 99 ? Self.patient(99, mrn: "LONG") : Self.observation($0, subject: patientUrl)
            }
            let response = try await client.fhir(.post, "", body: bundle)
            #expect(response.status == .ok, "\(response.text)")
            let entries = try #require(response.json?["entry"]?.arrayValue)
            try #require(entries.count == 100)
            let locations = entries.compactMap { $0["response"]?["location"]?.stringValue }
            #expect(locations.count == 100)
            #expect(Set(locations).count == 100)
            #expect(entries.allSatisfy { $0["response"]?["status"] == "201 Created" })
            #expect(locations.prefix(99).allSatisfy { $0.hasPrefix("Observation/") })
            let patientId = try #require(locations.last?.split(separator: "/").dropFirst().first.map(String.init))
            // Stamped in processing order (all POSTs: the Bundle's order).
            let stamps = entries.compactMap { $0["response"]?["lastModified"]?.stringValue }
            #expect(stamps.count == 100)
            #expect(stamps == stamps.sorted())
            // Every reference rewritten, every entry indexed, each at its own place.
            #expect(try await Self.total(client, "Observation?subject=Patient/\(patientId)") == 99)
            #expect(try await Self.total(client, "Patient?identifier=urn:mrn%7CLONG") == 1)
            for index in [0, 7, 8, 40, 98] {
                let location = locations[index].split(separator: "/").prefix(2).joined(separator: "/")
                let stored = try #require(try await client.fhir(.get, location).json)
                #expect(stored["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue == "c\(index)")
                #expect(stored["subject"]?["reference"]?.stringValue == "Patient/\(patientId)")
                #expect(stored["meta"]?["lastUpdated"]?.stringValue.flatMap { FHIRDateRange(parsing: $0) } != nil)
                #expect(
                    try await Self.total(client, "Observation?code=urn:test%7Cc\(index)&subject=Patient/\(patientId)")
                        == 1)
            }
        }
    }

    @Test(arguments: backends)
    func theFirstFailingEntryInOrderIsReportedAndNothingIsWritten(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            // Entries 30 and 70 are invalid (status must be a code); entry 30's error is the answer.
            let bundle = Self.transaction(80) { index in
                index == 0
                    ? Self.patient(0, mrn: "FAILS")
                    : Self.observation(
                        index, subject: "urn:uuid:00000000-0000-4000-8000-000000000000",
                        status: index == 30 || index == 70 ? "12" : #""final""#)
            }
            let response = try await client.fhir(.post, "", body: bundle)
            #expect(response.status == .unprocessableContent, "\(response.text)")
            let issues = try #require(response.json?["issue"]?.arrayValue)
            let diagnostics = issues.compactMap { $0["diagnostics"]?.stringValue }
            #expect(!diagnostics.isEmpty)
            #expect(diagnostics.allSatisfy { $0.hasPrefix("Bundle.entry[30]: ") }, "\(diagnostics)")
            #expect(try await Self.total(client, "Patient?identifier=urn:mrn%7CFAILS") == 0)
            #expect(try await Self.total(client, "Observation?code=urn:test%7Cc1") == 0)
        }
    }

    @Test(arguments: backends)
    func aConditionalReferenceAmongCreatesSeesTheEntriesWrittenBeforeIt(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            // Entry 40 finds, by its criteria, the Patient that entry 0 of the same Bundle creates.
            let bundle = Self.transaction(60) { index in
                switch index {
                case 0: return Self.patient(0, mrn: "COND")
                case 40: return Self.observation(40, subject: "Patient?identifier=urn:mrn|COND")
                default: return Self.observation(index, subject: "urn:uuid:00000000-0000-4000-8000-000000000000")
                }
            }
            let response = try await client.fhir(.post, "", body: bundle)
            #expect(response.status == .ok, "\(response.text)")
            let entries = try #require(response.json?["entry"]?.arrayValue)
            let patientId = try #require(
                entries.first?["response"]?["location"]?.stringValue?.split(separator: "/").dropFirst().first)
            let location = try #require(entries[40]["response"]?["location"]?.stringValue)
            let stored = try #require(
                try await client.fhir(.get, location.split(separator: "/").prefix(2).joined(separator: "/")).json)
            #expect(stored["subject"]?["reference"]?.stringValue == "Patient/\(patientId)")
            #expect(try await Self.total(client, "Observation?subject=Patient/\(patientId)") == 59)

            // Matching nothing, it fails the whole transaction at its place.
            let unmatched = Self.transaction(30) { index in
                index == 20
                    ? Self.observation(20, subject: "Patient?identifier=urn:mrn|NOBODY")
                    : Self.patient(index, mrn: "UNMATCHED-\(index)")
            }
            let failed = try await client.fhir(.post, "", body: unmatched)
            #expect(failed.status == .preconditionFailed, "\(failed.text)")
            #expect(
                failed.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.hasPrefix("Bundle.entry[20]: ")
                    == true)
            #expect(try await Self.total(client, "Patient?identifier=urn:mrn%7CUNMATCHED-0") == 0)
        }
    }

    @Test(arguments: backends)
    func aStoreThatRefusesAnEntryMidwayRollsBackTheWholeTransaction(backend: TestBackend) async throws {
        let store = try await TestDatabases.makeStore(backend)
        // A store without the prepare/commit split: its creates run one by one, as before.
        let app = Application(router: FHIRApplication.buildRouter(store: PoisonedStore(base: store, poison: "POISON")))
        do {
            try await app.test(.router) { client in
                let bundle = Self.transaction(50) { index in
                    Self.patient(index, mrn: index == 25 ? "POISON" : "REFUSED-\(index)")
                }
                let response = try await client.fhir(.post, "", body: bundle)
                #expect(response.status == .internalServerError, "\(response.text)")
                #expect(try await Self.total(client, "Patient?identifier=urn:mrn%7CREFUSED-0") == 0)
                #expect(try await Self.total(client, "Patient?identifier=urn:mrn%7CREFUSED-24") == 0)
                let written = try await client.fhir(
                    .post, "", body: Self.transaction(20) { Self.patient($0, mrn: "KEPT-\($0)") })
                #expect(written.status == .ok, "\(written.text)")
                #expect(try await Self.total(client, "Patient?identifier=urn:mrn%7CKEPT-19") == 1)
            }
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }
}
