import FHIR
import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// The split itself, on the store: nothing is written until the commit, and what the commit
/// writes is what a create writes.
@Suite struct PreparedCreateTests {
    @Test(arguments: TestDatabases.backends)
    func aPreparedCreateWritesNothingUntilItsCommit(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            let resource = try JSONParser.parse(
                #"{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"PREP"}]}"#)
            let query = try SearchQueryParser().parse(
                resourceType: "Patient", parameters: [(name: "identifier", value: "urn:mrn|PREP")], strict: true)
            let stored = try await store.transaction { transaction in
                let prepared = try transaction.prepareCreate(resource, type: "Patient", id: "prepared-1")
                try await Task.sleep(for: .milliseconds(5))
                let before = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
                #expect(try await transaction.search(query).total == 0)
                await #expect(throws: FHIRError.self) { try await transaction.read(type: "Patient", id: "prepared-1") }
                let stored = try await transaction.commit(prepared)
                // Stamped at the commit, not at the preparation.
                #expect(stored.lastUpdated >= before)
                #expect(try await transaction.search(query).total == 1)
                return stored
            }
            let read = try await store.read(type: "Patient", id: "prepared-1")
            #expect(read.body == stored.body)
            #expect(read.lastUpdated == stored.lastUpdated)
            let body = try JSONParser.parse(try #require(read.body))
            #expect(
                body["meta"]?["lastUpdated"]?.stringValue
                    == FHIRDateRange.instantString(milliseconds: stored.lastUpdated))
            #expect(body["meta"]?["versionId"] == "1")
            // A body holding NUL is refused by the preparation, as by a create.
            let nul = JSONValue.object(
                JSONObject([("resourceType", .string("Patient")), ("gender", .string("a\u{0}b"))]))
            await #expect(throws: FHIRError.self) {
                try await store.transaction { try $0.prepareCreate(nul, type: "Patient", id: "nul") }
            }
        }
    }
}
