import FHIR
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// The 23 Synthea patients loaded as transaction Bundles, then checked (issue 3).
@Suite struct SyntheaTests {
    static let backends = TestDatabases.backends

    static var bundleFiles: [URL] {
        let directory = TestDatabases.sharedFHIRDirectory.appendingPathComponent("synthea")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { directory.appendingPathComponent($0) }
    }

    /// Every `reference` string in `value`.
    static func references(in value: JSONValue, into result: inout [String]) {
        switch value {
        case .object(let object):
            for (key, member) in object {
                if key == "reference", let text = member.stringValue {
                    result.append(text)
                } else {
                    references(in: member, into: &result)
                }
            }
        case .array(let items):
            for item in items { references(in: item, into: &result) }
        default:
            break
        }
    }

    static func total(_ client: any TestClientProtocol, _ query: String) async throws -> Int {
        let response = try await client.fhir(.get, query, headers: ["Prefer": "handling=strict"])
        guard case .number(let text)? = response.json?["total"], let total = Int(text) else {
            Issue.record("\(query): \(response.text.prefix(300))")
            return -1
        }
        return total
    }

    @Test(arguments: backends)
    func loadsEveryPatientAndAnswersClinicalSearches(backend: TestBackend) async throws {
        let files = Self.bundleFiles
        #expect(files.count == 23)
        try await withFHIRApp(backend) { client in
            var expectedCounts: [String: Int] = [:]
            var patientOfBundle: [(patientId: String, bundle: JSONValue)] = []
            for file in files {
                let text = try String(contentsOf: file, encoding: .utf8)
                let bundle = try JSONParser.parse(text)
                for entry in bundle["entry"]?.arrayValue ?? [] {
                    expectedCounts[entry["resource"]?["resourceType"]?.stringValue ?? "?", default: 0] += 1
                }
                let response = try await client.fhir(.post, "", body: text)
                #expect(response.status == .ok, "\(file.lastPathComponent): \(response.text.prefix(300))")
                let entries = try #require(response.json?["entry"]?.arrayValue)
                #expect(entries.allSatisfy { $0["response"]?["status"] == "201 Created" })
                let patientLocation = try #require(
                    entries.first { $0["response"]?["location"]?.stringValue?.hasPrefix("Patient/") == true }?[
                        "response"]?["location"]?.stringValue)
                patientOfBundle.append((String(patientLocation.split(separator: "/")[1]), bundle))
            }

            // Resource counts per type.
            for (type, count) in expectedCounts.sorted(by: { $0.key < $1.key }) {
                #expect(try await Self.total(client, "\(type)?_count=0") == count, "\(type)")
            }

            // Every reference resolves to a stored resource.
            var stored = Set<String>()
            var references: [String] = []
            for type in expectedCounts.keys.sorted() {
                var page = 1
                while true {
                    let bundle = try #require(try await client.fhir(.get, "\(type)?_count=1000&_page=\(page)").json)
                    let resources = bundle["entry"]?.arrayValue?.compactMap { $0["resource"] } ?? []
                    for resource in resources {
                        stored.insert("\(type)/\(resource["id"]?.stringValue ?? "")")
                        Self.references(in: resource, into: &references)
                    }
                    if resources.count < 1000 { break }
                    page += 1
                }
            }
            let external = references.filter { !$0.hasPrefix("#") }
            #expect(external.count > 10_000)
            let unresolved = external.filter { !stored.contains($0) }
            #expect(unresolved.isEmpty, "\(unresolved.count) unresolved, such as \(unresolved.prefix(3))")
            #expect(!external.contains { $0.hasPrefix("urn:uuid:") })

            // A patient's Observations by LOINC code and date range, against a count from the bundle.
            let (patientId, bundle) = try #require(patientOfBundle.first)
            var codes: [String: [String]] = [:]  // LOINC code -> effective dates
            for entry in bundle["entry"]?.arrayValue ?? [] where entry["resource"]?["resourceType"] == "Observation" {
                let resource = entry["resource"]!
                if let code = resource["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue,
                    let date = resource["effectiveDateTime"]?.stringValue
                {
                    codes[code, default: []].append(date)
                }
            }
            let (code, dates) = try #require(codes.max { $0.value.count < $1.value.count })
            let sorted = dates.sorted()
            let from = String(sorted[sorted.count / 4].prefix(10))
            let expected = dates.filter { String($0.prefix(10)) >= from }.count
            #expect(
                try await Self.total(
                    client, "Observation?subject=Patient/\(patientId)&code=http://loinc.org%7C\(code)&date=ge\(from)")
                    == expected)
            #expect(try await Self.total(client, "Observation?patient=\(patientId)&code=\(code)") == dates.count)

            // Encounters with their Patient included.
            let encounters = try #require(
                try await client.fhir(
                    .get, "Encounter?subject=Patient/\(patientId)&_include=Encounter:subject&_count=5"
                ).json)
            let included = encounters["entry"]?.arrayValue?.filter { $0["search"]?["mode"] == "include" } ?? []
            #expect(included.count == 1)
            #expect(included.first?["resource"]?["id"]?.stringValue == patientId)

            // $everything returns the patient's whole record: every resource of its bundle
            // (each refers to the patient or is referred to by what does).
            let everything = try #require(try await client.fhir(.get, "Patient/\(patientId)/$everything").json)
            let bundleTypes = (bundle["entry"]?.arrayValue ?? []).compactMap {
                $0["resource"]?["resourceType"]?.stringValue
            }
            let everythingTypes =
                everything["entry"]?.arrayValue?.compactMap { $0["resource"]?["resourceType"]?.stringValue } ?? []
            #expect(
                everythingTypes.count == bundleTypes.count,
                "\(Dictionary(grouping: everythingTypes, by: { $0 }).mapValues(\.count)) vs \(Dictionary(grouping: bundleTypes, by: { $0 }).mapValues(\.count))"
            )
            #expect(everythingTypes.first == "Patient")
            let onlyConditions = try #require(
                try await client.fhir(.get, "Patient/\(patientId)/$everything?_type=Condition").json)
            #expect(onlyConditions["total"]?.stringValue == nil)
            let conditionCount = bundleTypes.filter { $0 == "Condition" }.count
            #expect(onlyConditions["entry"]?.arrayValue?.count == conditionCount)

            // Patients with a Condition, by reverse chaining, against the bundles.
            let conditionCodes = patientOfBundle.map { item -> Set<String> in
                Set(
                    (item.bundle["entry"]?.arrayValue ?? []).compactMap { entry -> String? in
                        guard entry["resource"]?["resourceType"] == "Condition" else { return nil }
                        return entry["resource"]?["code"]?["coding"]?.arrayValue?.first?["code"]?.stringValue
                    })
            }
            let someCode = try #require(conditionCodes.flatMap { $0 }.first)
            let withCondition = conditionCodes.filter { $0.contains(someCode) }.count
            #expect(try await Self.total(client, "Patient?_has:Condition:patient:code=\(someCode)") == withCondition)
        }
    }
}
