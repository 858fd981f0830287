import FHIR
import FHIRStore
import FHIRTestSupport
import Testing

/// The store's contract, run against a real SQLite file and a real PostgreSQL database.
@Suite struct SQLFHIRStoreTests {
    static let backends = TestDatabases.backends

    func patient(_ family: String, birthDate: String = "1980-05-01", extra: String = "") throws -> JSONValue {
        try JSONParser.parse(
            #"{"resourceType":"Patient","name":[{"family":"\#(family)"}],"birthDate":"\#(birthDate)"\#(extra)}"#)
    }

    func withStore(_ backend: TestBackend, _ body: (SQLFHIRStore) async throws -> Void) async throws {
        try await TestDatabases.withStore(backend, body)
    }

    @Test(arguments: backends)
    func createStampsIdAndMetaAndReadsBack(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let created = try await store.create(
                try patient("Smith", extra: #","id":"client-id","meta":{"versionId":"9","tag":[{"code":"t"}]}"#),
                type: "Patient")
            #expect(created.versionId == 1)
            #expect(created.id != "client-id")
            let read = try await store.read(type: "Patient", id: created.id)
            let body = try JSONParser.parse(#require(read.body))
            #expect(body["id"] == .string(created.id))
            #expect(body["meta"]?["versionId"] == .string("1"))
            #expect(body["meta"]?["lastUpdated"] == .string(created.lastUpdatedInstant))
            #expect(body["meta"]?["tag"] != nil)
            #expect(body["name"] == (try patient("Smith"))["name"])
        }
    }

    @Test(arguments: backends)
    func updatesVersionAndHonoursIfMatch(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let first = try await store.update(
                try patient("A", extra: #","id":"p1""#), type: "Patient", id: "p1", ifMatch: nil)
            #expect(first.created && first.resource.versionId == 1)
            let second = try await store.update(
                try patient("B", extra: #","id":"p1""#), type: "Patient", id: "p1", ifMatch: 1)
            #expect(!second.created && second.resource.versionId == 2)
            await #expect(throws: FHIRError.self) {
                _ = try await store.update(
                    try patient("C", extra: #","id":"p1""#), type: "Patient", id: "p1", ifMatch: 1)
            }
            let v1 = try await store.vread(type: "Patient", id: "p1", version: 1)
            #expect(try JSONParser.parse(#require(v1.body))["name"]?.arrayValue?.first?["family"] == .string("A"))
            let current = try await store.read(type: "Patient", id: "p1")
            #expect(current.versionId == 2)
        }
    }

    @Test(arguments: backends)
    func deleteLeavesAGoneMarkerAndHistory(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let created = try await store.create(try patient("Gone"), type: "Patient")
            let deleted = try #require(try await store.delete(type: "Patient", id: created.id, ifMatch: nil))
            #expect(deleted.versionId == 2 && deleted.deleted)
            await #expect { try await store.read(type: "Patient", id: created.id) } throws: {
                ($0 as? FHIRError)?.status == 410
            }
            await #expect { try await store.read(type: "Patient", id: "never") } throws: {
                ($0 as? FHIRError)?.status == 404
            }
            await #expect { try await store.vread(type: "Patient", id: created.id, version: 2) } throws: {
                ($0 as? FHIRError)?.status == 410
            }
            #expect(try await store.delete(type: "Patient", id: "never", ifMatch: nil) == nil)
            let history = try await store.history(type: "Patient", id: created.id, since: nil, count: 10, offset: 0)
            #expect(history.total == 2)
            #expect(history.resources.map(\.versionId) == [2, 1])
            let search = try await store.search(
                try SearchQueryParser().parse(resourceType: "Patient", parameters: [("family", "gone")], strict: true))
            #expect(search.total == 0)
            // Re-creating a deleted resource by update starts a new version.
            let revived = try await store.update(
                try patient("Back", extra: #","id":"\#(created.id)""#), type: "Patient", id: created.id, ifMatch: nil)
            #expect(revived.created && revived.resource.versionId == 3)
        }
    }

    @Test(arguments: backends)
    func searchesEveryParameterKind(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let a = try await store.create(
                try patient(
                    "Müller", birthDate: "1970-01-15",
                    extra:
                        #","gender":"female","identifier":[{"system":"urn:mrn","value":"A1"}],"managingOrganization":{"reference":"Organization/o1"}"#
                ), type: "Patient")
            let b = try await store.create(
                try patient(
                    "Mueller", birthDate: "1990-06-30",
                    extra: #","gender":"male","identifier":[{"system":"urn:other","value":"A1"}]"#), type: "Patient")
            _ = try await store.create(
                try JSONParser.parse(
                    #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/\#(a.id)"},"effectiveDateTime":"2021-03-04T10:00:00Z","valueQuantity":{"value":72,"system":"http://unitsofmeasure.org","code":"/min"}}"#
                ), type: "Observation")
            func ids(_ type: String, _ parameters: [(String, String)]) async throws -> Set<String> {
                let query = try SearchQueryParser().parse(
                    resourceType: type, parameters: parameters.map { (name: $0.0, value: $0.1) }, strict: true)
                let page = try await store.search(query)
                #expect(page.total == page.resources.count)
                return Set(page.resources.map(\.id))
            }
            #expect(try await ids("Patient", [("family", "mul")]) == [a.id])  // accents folded, prefix
            #expect(try await ids("Patient", [("family", "MUE")]) == [b.id])  // case folded
            #expect(try await ids("Patient", [("family:exact", "Müller")]) == [a.id])
            #expect(try await ids("Patient", [("family:exact", "müller")]) == [])
            #expect(try await ids("Patient", [("family:contains", "ell")]) == [b.id])
            #expect(try await ids("Patient", [("family", "mul,mue")]) == [a.id, b.id])  // OR
            #expect(try await ids("Patient", [("family", "mu"), ("gender", "male")]) == [b.id])  // AND
            #expect(try await ids("Patient", [("identifier", "A1")]) == [a.id, b.id])
            #expect(try await ids("Patient", [("identifier", "urn:mrn|A1")]) == [a.id])
            #expect(try await ids("Patient", [("identifier", "urn:mrn|")]) == [a.id])
            #expect(try await ids("Patient", [("gender:not", "male")]) == [a.id])
            #expect(try await ids("Patient", [("organization", "Organization/o1")]) == [a.id])
            #expect(try await ids("Patient", [("organization:missing", "true")]) == [b.id])
            #expect(try await ids("Patient", [("birthdate", "1970")]) == [a.id])
            #expect(try await ids("Patient", [("birthdate", "lt1980")]) == [a.id])
            #expect(try await ids("Patient", [("birthdate", "ge1970-01-15")]) == [a.id, b.id])
            #expect(try await ids("Patient", [("birthdate", "gt1970-01-15")]) == [b.id])
            #expect(try await ids("Patient", [("birthdate", "sa1980"), ("birthdate", "eb2000")]) == [b.id])
            #expect(try await ids("Patient", [("birthdate", "ne1970-01-15")]) == [b.id])
            #expect(try await ids("Patient", [("_id", "\(a.id),nope")]) == [a.id])
            #expect(try await ids("Patient", [("_lastUpdated", "gt2000-01-01")]) == [a.id, b.id])
            #expect(try await ids("Patient", [("_lastUpdated", "lt2000-01-01")]) == [])
            #expect(try await ids("Observation", [("patient", a.id)]).count == 1)
            #expect(try await ids("Observation", [("subject:Patient", a.id)]).count == 1)
            #expect(
                try await ids("Observation", [("code", "http://loinc.org|8867-4"), ("date", "2021-03")]).count == 1)
            #expect(
                try await ids("Observation", [("value-quantity", "gt70|http://unitsofmeasure.org|/min")]).count == 1)
            #expect(try await ids("Observation", [("value-quantity", "lt70")]).isEmpty)
        }
    }

    @Test(arguments: backends)
    func pagesAndSortsDeterministically(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            var created: [String] = []
            for index in 0..<25 {
                created.append(try await store.create(try patient("Page\(index)"), type: "Patient").id)
            }
            var seen: [String] = []
            for page in 1...3 {
                let query = try SearchQueryParser().parse(
                    resourceType: "Patient",
                    parameters: [
                        ("family", "page"), ("_count", "10"), ("_page", String(page)), ("_sort", "-_lastUpdated"),
                    ], strict: true)
                let result = try await store.search(query)
                #expect(result.total == 25)
                seen += result.resources.map(\.id)
            }
            #expect(seen == created.reversed())
        }
    }

    @Test(arguments: backends)
    func historyAtTypeAndSystemLevelHonoursSince(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let first = try await store.create(try patient("H1"), type: "Patient")
            try await Task.sleep(for: .milliseconds(5))
            let second = try await store.create(try patient("H2"), type: "Patient")
            _ = try await store.create(
                try JSONParser.parse(#"{"resourceType":"Organization","name":"O"}"#), type: "Organization")
            let typeLevel = try await store.history(type: "Patient", id: nil, since: nil, count: 10, offset: 0)
            #expect(typeLevel.total == 2)
            let systemLevel = try await store.history(type: nil, id: nil, since: nil, count: 10, offset: 0)
            #expect(systemLevel.total == 3)
            let since = try await store.history(
                type: "Patient", id: nil, since: second.lastUpdated, count: 10, offset: 0)
            #expect(since.resources.map(\.id) == [second.id])
            #expect(first.lastUpdated < second.lastUpdated)
        }
    }

    @Test(arguments: backends)
    func concurrentCreateOnUpdateOfOneIdYieldsDistinctVersions(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let resource = try patient("Race", extra: #","id":"race""#)
            let versions = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await store.update(resource, type: "Patient", id: "race", ifMatch: nil).resource.versionId
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(versions.sorted() == Array(1...8))
        }
    }
}
