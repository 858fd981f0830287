import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Testing

/// The REST interactions of issue 2, at router level on both databases.
@Suite struct RESTInteractionTests {
    static let backends = TestDatabases.backends

    static let allergy =
        #"{"resourceType": "AllergyIntolerance", "meta": {"tag": [{"code": "fba/minimal"}]}, "clinicalStatus": {"coding": [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}]}, "patient": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}}"#

    /// IBM FHIR Server's style, kept by `caduceus serve --default-return minimal`: a create
    /// answers with an empty body and the Location.
    @Test(arguments: backends)
    func ibmStyleCreateAndSearch(backend: TestBackend) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.defaultReturn = .minimal
        try await withFHIRApp(backend, configuration: configuration) { client in
            let created = try await client.fhir(
                .post, "AllergyIntolerance", body: Self.allergy, headers: ["Accept": "*/*"])
            #expect(created.status == .created)
            #expect(created.text.isEmpty)
            let location = try #require(created.header("Location"))
            #expect(location.hasPrefix("http://localhost\(basePath)/AllergyIntolerance/"))
            #expect(location.hasSuffix("/_history/1"))
            #expect(created.header("ETag") == #"W/"1""#)
            #expect(created.header("Last-Modified")?.hasSuffix(" GMT") == true)

            let search = try await client.fhir(.get, "AllergyIntolerance")
            #expect(search.status == .ok)
            #expect(search.header("Content-Type") == "application/fhir+json; charset=utf-8")
            let bundle = try #require(search.json)
            #expect(bundle["type"] == "searchset")
            #expect(bundle["total"] == 1)
            let selfLink = try #require(
                bundle["link"]?.arrayValue?.first { $0["relation"] == "self" }?["url"]?.stringValue)
            #expect(selfLink.contains("_count=10") && selfLink.contains("_page=1"))
            let entry = try #require(bundle["entry"]?.arrayValue?.first)
            let id = location.split(separator: "/").dropLast(2).last.map(String.init)
            #expect(entry["fullUrl"]?.stringValue == "http://localhost\(basePath)/AllergyIntolerance/\(id ?? "")")
            #expect(entry["resource"]?["clinicalStatus"] != nil)
        }
    }

    @Test(arguments: backends)
    func preferReturnShapesTheAnswer(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let representation = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","active":true}"#,
                headers: ["Prefer": "return=representation"])
            #expect(representation.status == .created)
            #expect(representation.json?["active"] == true)
            #expect(representation.json?["meta"]?["versionId"] == "1")
            let outcome = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient"}"#, headers: ["Prefer": "return=OperationOutcome"])
            #expect(outcome.json?["resourceType"] == "OperationOutcome")
            let minimal = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient"}"#, headers: ["Prefer": "return=minimal"])
            #expect(minimal.text.isEmpty)
        }
    }

    @Test(arguments: backends)
    func readUpdateVersionsDeleteAndHistory(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            // Create on update with a client id.
            let put = try await client.fhir(
                .put, "Patient/pat-1", body: #"{"resourceType":"Patient","id":"pat-1","gender":"male"}"#)
            #expect(put.status == .created)
            let update = try await client.fhir(
                .put, "Patient/pat-1", body: #"{"resourceType":"Patient","id":"pat-1","gender":"female"}"#,
                headers: ["If-Match": #"W/"1""#])
            #expect(update.status == .ok)
            #expect(update.header("ETag") == #"W/"2""#)
            let stale = try await client.fhir(
                .put, "Patient/pat-1", body: #"{"resourceType":"Patient","id":"pat-1"}"#,
                headers: ["If-Match": #"W/"1""#])
            #expect(stale.status == .preconditionFailed)
            #expect(stale.json?["resourceType"] == "OperationOutcome")

            let read = try await client.fhir(.get, "Patient/pat-1")
            #expect(read.status == .ok && read.json?["gender"] == "female")
            #expect(read.header("ETag") == #"W/"2""#)
            let v1 = try await client.fhir(.get, "Patient/pat-1/_history/1")
            #expect(v1.json?["gender"] == "male")
            #expect(try await client.fhir(.get, "Patient/pat-1/_history/9").status == .notFound)

            let delete = try await client.fhir(.delete, "Patient/pat-1")
            #expect(delete.status == .noContent)
            #expect(try await client.fhir(.get, "Patient/pat-1").status == .gone)
            #expect(try await client.fhir(.delete, "Patient/never").status == .notFound)

            let history = try #require(try await client.fhir(.get, "Patient/pat-1/_history").json)
            #expect(history["type"] == "history")
            #expect(history["total"] == 3)
            let methods = history["entry"]?.arrayValue?.compactMap { $0["request"]?["method"]?.stringValue }
            #expect(methods == ["DELETE", "PUT", "POST"])
            #expect(history["entry"]?.arrayValue?.first?["resource"] == nil)

            _ = try await client.fhir(.post, "Organization", body: #"{"resourceType":"Organization","name":"O"}"#)
            let typeHistory = try #require(try await client.fhir(.get, "Patient/_history?_count=1").json)
            #expect(typeHistory["total"] == 3)
            #expect(typeHistory["entry"]?.arrayValue?.count == 1)
            #expect(typeHistory["link"]?.arrayValue?.contains { $0["relation"] == "next" } == true)
            let systemHistory = try #require(try await client.fhir(.get, "_history").json)
            #expect(systemHistory["total"] == 4)
            let future = try #require(try await client.fhir(.get, "_history?_since=2999-01-01T00:00:00Z").json)
            #expect(future["total"] == 0)
            #expect(try await client.fhir(.get, "Patient/unknown/_history").status == .notFound)
        }
    }

    @Test(arguments: backends)
    func pagingLinksCanBeFollowedToTheEnd(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            for index in 0..<23 {
                _ = try await client.fhir(
                    .post, "Patient",
                    body: #"{"resourceType":"Patient","name":[{"family":"Pager","given":["\#(index)"]}]}"#)
            }
            var next: String? = "\(basePath)/Patient?family=pager&_count=5"
            var seen: [String] = []
            var pages = 0
            while let url = next {
                let bundle = try #require(try await client.fhir(.get, pathOf(url)).json)
                #expect(bundle["total"] == 23)
                seen += bundle["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []
                next = bundle["link"]?.arrayValue?.first { $0["relation"] == "next" }?["url"]?.stringValue
                pages += 1
                #expect(pages <= 5)
            }
            #expect(seen.count == 23 && Set(seen).count == 23)
            let last = try #require(try await client.fhir(.get, "Patient?family=pager&_count=5&_page=5").json)
            #expect(last["link"]?.arrayValue?.contains { $0["relation"] == "previous" } == true)
            let sorted = try #require(try await client.fhir(.get, "Patient?family=pager&_count=3&_sort=-_id").json)
            let ids = sorted["entry"]?.arrayValue?.compactMap { $0["resource"]?["id"]?.stringValue } ?? []
            #expect(ids == ids.sorted(by: >))
            let counted = try #require(try await client.fhir(.get, "Patient?_count=0").json)
            #expect(counted["total"] == 23 && counted["entry"] == nil)
            let summary = try #require(try await client.fhir(.get, "Patient?_summary=count").json)
            #expect(summary["total"] == 23 && summary["entry"] == nil)
        }
    }

    @Test(arguments: backends)
    func searchByPostAndAtSystemLevel(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            _ = try await client.fhir(
                .post, "Patient",
                body: #"{"resourceType":"Patient","gender":"other","meta":{"tag":[{"system":"urn:t","code":"x"}]}}"#)
            _ = try await client.fhir(
                .post, "Observation",
                body:
                    #"{"resourceType":"Observation","status":"final","code":{"text":"c"},"meta":{"tag":[{"system":"urn:t","code":"x"}]}}"#
            )
            let posted = try await client.fhir(
                .post, "Patient/_search", body: "gender=other", contentType: "application/x-www-form-urlencoded")
            #expect(posted.json?["total"] == 1)
            let system = try #require(try await client.fhir(.get, "?_tag=urn:t%7Cx").json)
            #expect(system["total"] == 2)
            let typed = try #require(try await client.fhir(.get, "?_tag=urn:t%7Cx&_type=Observation").json)
            #expect(typed["total"] == 1)
        }
    }

    @Test(arguments: backends)
    func errorsAreOperationOutcomesWithTheRightStatus(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let cases: [(FHIRTestResponse, Int)] = [
                (try await client.fhir(.post, "Patient", body: "{not json"), 400),
                (try await client.fhir(.get, "Patient?birthdate=yesterday"), 400),
                (try await client.fhir(.get, "Patient?_page=9223372036854775807&_count=1000"), 400),
                (try await client.fhir(.get, "Patient/_history?_page=9223372036854775807&_count=1000"), 400),
                (try await client.fhir(.get, "Patient?nonsense=1", headers: ["Prefer": "handling=strict"]), 400),
                (try await client.fhir(.get, "Patient/does-not-exist"), 404),
                (try await client.fhir(.get, "NoSuchType"), 404),
                (try await client.fhir(.get, "Patient/bad id!"), 400),
                (try await client.fhir(.delete, "Patient"), 405),
                (try await client.fhir(.put, "Patient", body: #"{"resourceType":"Patient"}"#), 405),
                (try await client.fhir(.patch, "Patient/x", body: "[]"), 415),
                (try await client.fhir(.get, "Patient", headers: ["Accept": "application/fhir+xml"]), 406),
                (try await client.fhir(.get, "Patient?_format=xml"), 406),
                (try await client.fhir(.post, "Patient", body: "{}", contentType: "text/plain"), 415),
                (try await client.fhir(.post, "Patient", body: #"{"resourceType":"Observation"}"#), 422),
                (try await client.fhir(.post, "Patient", body: #"["resourceType"]"#), 422),
                (try await client.fhir(.post, "Patient", body: #"{"resourceType":"Patient","id":"no spaces"}"#), 422),
                (try await client.fhir(.post, "Patient", body: #"{"gender":"male"}"#), 422),
                (
                    try await client.fhir(
                        .post, "Patient", body: #"{"resourceType":"Patient","birthDate":"2020-02-30"}"#), 422
                ),
                (
                    try await client.fhir(
                        .post, "Patient", body: #"{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}"#), 422
                ),
                (try await client.fhir(.get, "Patient?name=%00"), 400),
                (try await client.fhir(.put, "Patient/a", body: #"{"resourceType":"Patient","id":"b"}"#), 400),
                (try await client.fhir(.put, "Patient/a", body: #"{"resourceType":"Patient"}"#), 400),
            ]
            for (index, (response, status)) in cases.enumerated() {
                #expect(Int(response.status.code) == status, "case \(index): \(response.text)")
                #expect(response.json?["resourceType"] == "OperationOutcome", "case \(index)")
                #expect(response.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.isEmpty == false)
            }
            // Lenient handling (the default) ignores the parameter and says so in the Bundle.
            let lenient = try #require(try await client.fhir(.get, "Patient?nonsense=1").json)
            let outcome = lenient["entry"]?.arrayValue?.first { $0["search"]?["mode"] == "outcome" }
            #expect(outcome?["resource"]?["resourceType"] == "OperationOutcome")
            #expect(lenient["link"]?.arrayValue?.first?["url"]?.stringValue?.contains("nonsense") == false)
        }
    }

    @Test(arguments: backends)
    func formatsAndPrettyPrinting(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            _ = try await client.fhir(.put, "Patient/f1", body: #"{"resourceType":"Patient","id":"f1"}"#)
            let json = try await client.fhir(.get, "Patient/f1", headers: ["Accept": "application/json"])
            #expect(json.header("Content-Type") == "application/json; charset=utf-8")
            let format = try await client.fhir(.get, "Patient/f1?_format=application/fhir%2Bjson&_pretty=true")
            #expect(format.header("Content-Type") == "application/fhir+json; charset=utf-8")
            #expect(format.text.contains("\n  \"resourceType\": \"Patient\""))
            let plain = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient"}"#, contentType: "application/json")
            #expect(plain.status == .created)
        }
    }

    @Test func capabilityStatementListsWhatIsSupported() async throws {
        try await withFHIRApp(.sqlite) { client in
            let response = try await client.fhir(.get, "metadata")
            #expect(response.status == .ok)
            let statement = try #require(response.json)
            #expect(statement["resourceType"] == "CapabilityStatement")
            #expect(statement["fhirVersion"] == "4.0.1")
            let resources = try #require(statement["rest"]?.arrayValue?.first?["resource"]?.arrayValue)
            #expect(resources.count == FHIRResourceType.all.count)
            let patient = try #require(resources.first { $0["type"] == "Patient" })
            let names = patient["searchParam"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            #expect(names.contains("birthdate") && names.contains("_tag"))
            #expect(!names.contains("near"))
            // Every supported parameter is listed, and only those.
            var listed = 0
            var supported = 0
            for resource in resources {
                let type = try #require(resource["type"]?.stringValue)
                listed += resource["searchParam"]?.arrayValue?.count ?? 0
                supported +=
                    SearchParameterRegistry.r4.parameters(of: type).filter { $0.type != .special }.count
                    + SearchParameterRegistry.r4.common.values.filter { $0.type != .special }.count
            }
            #expect(listed == supported)
            print(
                "CapabilityStatement lists \(listed) search parameters; \(SearchParameterRegistry.unsupportedDefinitions.count) R4 definitions are reported unsupported"
            )
        }
    }

    @Test func liveServerOnARealSocket() async throws {
        try await withFHIRApp(.sqlite, setup: .live) { client in
            let created = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","gender":"unknown"}"#)
            #expect(created.status == .created)
            let location = try #require(created.header("Location"))
            #expect(location.hasPrefix("http://localhost"))  // the Host the test client sent
            let read = try await client.fhir(.get, pathOf(location))
            #expect(read.json?["gender"] == "unknown")
            let search = try await client.fhir(.get, "Patient?gender=unknown")
            #expect(search.json?["total"] == 1)
        }
    }
}
