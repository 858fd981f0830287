import FHIR
import FHIRTestSupport
import Foundation
import HummingbirdTesting
import Testing

/// Core profiles through the API: a write that claims a known profile and breaks it is
/// refused with 422 naming the profile, the element and the rule (create, update,
/// transaction and batch entries); `$validate?profile=` checks without writing.
@Suite struct ProfileRoutesTests {
    static let backends = TestDatabases.backends
    static let base = "http://hl7.org/fhir/StructureDefinition/"

    static func example(_ name: String) throws -> JSONValue {
        let url = TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-examples").appendingPathComponent(name)
        return try JSONParser.parse(Array(try Data(contentsOf: url)))
    }

    /// The heart-rate example claiming heartrate, without its id (for POST) unless `id` is given.
    static func heartRate(
        id: String? = nil, profiles: [String] = ["heartrate"], _ edit: (inout JSONObject) -> Void = { _ in }
    ) throws -> String {
        guard case .object(var object) = try example("Observation-heart-rate.json") else { return "" }
        object["id"] = id.map(JSONValue.string)
        object["meta"] =
            profiles.isEmpty ? nil : .object(JSONObject([("profile", .array(profiles.map { .string(base + $0) }))]))
        edit(&object)
        return JSONWriter().string(.object(object))
    }

    /// The heart rate coded in SNOMED CT only: heartrate's LOINC slice is missing.
    static func withoutLOINC(_ object: inout JSONObject) {
        object["code"] = ["coding": [["system": "http://snomed.info/sct", "code": "364075005"]], "text": "Heart rate"]
    }

    static func diagnostics(_ response: FHIRTestResponse) -> [String] {
        response.json?["issue"]?.arrayValue?.compactMap { $0["diagnostics"]?.stringValue } ?? []
    }

    @Test(arguments: backends)
    func writesThatBreakAClaimedProfileAreRefused(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            var accepted = 0
            for file in [
                "Observation-heart-rate.json", "Observation-blood-pressure.json", "Observation-vitals-panel.json",
                "Observation-bmi.json",
            ] {
                let response = try await client.fhir(
                    .post, "Observation", body: JSONWriter().string(try Self.example(file)))
                #expect(response.status == .created, "\(file): \(response.text)")
                accepted += response.status == .created ? 1 : 0
            }
            let good = try await client.fhir(.post, "Observation", body: try Self.heartRate())
            #expect(good.status == .created, "\(good.text)")

            let missingSlice = try await client.fhir(.post, "Observation", body: try Self.heartRate(Self.withoutLOINC))
            #expect(missingSlice.status == .unprocessableContent)
            let text = Self.diagnostics(missingSlice).joined(separator: "\n")
            #expect(
                text.contains(Self.base + "heartrate") && text.contains("slice 'HeartRateCode'"), "\(missingSlice.text)"
            )
            #expect(missingSlice.json?["issue"]?.arrayValue?.first?["expression"] == ["Observation.code.coding"])

            let wrongUnit = try await client.fhir(
                .post, "Observation",
                body: try Self.heartRate { object in
                    object["valueQuantity"] = [
                        "value": 44, "unit": "beats/second", "system": "http://unitsofmeasure.org", "code": "/s",
                    ]
                })
            #expect(wrongUnit.status == .unprocessableContent)
            #expect(
                Self.diagnostics(wrongUnit).contains {
                    $0.contains("Observation.value[x]:valueQuantity.code must be exactly")
                }, "\(wrongUnit.text)")

            let outsideBinding = try await client.fhir(
                .post, "Observation",
                body: try Self.heartRate(profiles: ["vitalsigns"]) { object in
                    object["component"] = [
                        [
                            "code": ["text": "x"],
                            "valueQuantity": ["value": 1, "system": "http://unitsofmeasure.org", "code": "kPa"],
                        ]
                    ]
                })
            #expect(outsideBinding.status == .unprocessableContent)
            #expect(
                outsideBinding.json?["issue"]?.arrayValue?.first?["code"] == "code-invalid", "\(outsideBinding.text)")

            let cardinality = try await client.fhir(
                .post, "Observation", body: try Self.heartRate { $0["effectiveDateTime"] = nil })
            #expect(cardinality.status == .unprocessableContent)
            #expect(
                Self.diagnostics(cardinality).contains { $0.contains("Observation.effective[x] requires at least 1") },
                "\(cardinality.text)")

            let constraint = try await client.fhir(
                .post, "Observation", body: try Self.heartRate { $0["effectiveDateTime"] = "1999" })
            #expect(constraint.status == .unprocessableContent)
            #expect(Self.diagnostics(constraint).contains { $0.contains("vs-1") }, "\(constraint.text)")

            // A profile the server does not know is no reason to refuse a write.
            let unknown = try await client.fhir(
                .post, "Observation",
                body: try Self.heartRate { object in
                    object["meta"] = ["profile": ["http://example.org/fhir/StructureDefinition/local-vitals"]]
                })
            #expect(unknown.status == .created, "\(unknown.text)")

            // Update: refused, and the stored version stays.
            #expect(
                try await client.fhir(.put, "Observation/hr1", body: try Self.heartRate(id: "hr1")).status == .created)
            let badUpdate = try await client.fhir(
                .put, "Observation/hr1", body: try Self.heartRate(id: "hr1", Self.withoutLOINC))
            #expect(badUpdate.status == .unprocessableContent, "\(badUpdate.text)")
            let stored = try await client.fhir(.get, "Observation/hr1")
            #expect(
                stored.json?["meta"]?["versionId"] == "1"
                    && stored.json?["code"]?["coding"]?.arrayValue?.first?["code"] == "8867-4")
            #expect(
                try await client.fhir(.get, "Observation?_summary=count").json?["total"]
                    == .number(String(accepted + 3)))
        }
    }

    @Test(arguments: backends)
    func transactionAndBatchEntriesAreChecked(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let good = try Self.heartRate()
            let bad = try Self.heartRate(Self.withoutLOINC)
            let transaction = """
                {"resourceType":"Bundle","type":"transaction","entry":[
                 {"resource":\(good),"request":{"method":"POST","url":"Observation"}},
                 {"resource":\(bad),"request":{"method":"POST","url":"Observation"}}]}
                """
            let refused = try await client.fhir(.post, "", body: transaction)
            #expect(refused.status == .unprocessableContent, "\(refused.text)")
            #expect(Self.diagnostics(refused).contains { $0.contains("HeartRateCode") })
            #expect(try await client.fhir(.get, "Observation?_summary=count").json?["total"] == 0)

            let batch = transaction.replacingOccurrences(of: "\"transaction\"", with: "\"batch\"")
            let answered = try await client.fhir(.post, "", body: batch)
            #expect(answered.status == .ok)
            #expect(answered.entryStatusCodes == ["201", "422"], "\(answered.text)")
            #expect(try await client.fhir(.get, "Observation?_summary=count").json?["total"] == 1)
        }
    }

    @Test func capabilityStatementListsTheCheckedProfiles() async throws {
        try await withFHIRApp(.sqlite) { client in
            let resources = try #require(
                try await client.fhir(.get, "metadata").json?["rest"]?.arrayValue?.first?["resource"]?.arrayValue)
            let observation = try #require(resources.first { $0["type"] == "Observation" })
            let profiles = observation["supportedProfile"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(
                profiles.count == 17 && profiles.contains(Self.base + "vitalsigns")
                    && profiles.contains(Self.base + "bp"), "\(profiles)")
            #expect(resources.first { $0["type"] == "Patient" }?["supportedProfile"] == nil)
        }
    }

    @Test(arguments: backends)
    func validateWithAProfileParameter(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let profile = encodeQuery(Self.base + "heartrate")
            // No meta.profile: the check comes from the parameter alone.
            let clean = try await client.fhir(
                .post, "Observation/$validate?profile=\(profile)", body: try Self.heartRate(profiles: []))
            #expect(clean.status == .ok)
            #expect(clean.json?["issue"]?.arrayValue?.first?["severity"] == "information", "\(clean.text)")

            let broken = try Self.heartRate(profiles: [], Self.withoutLOINC)
            let plain = try await client.fhir(.post, "Observation/$validate", body: broken)
            #expect(
                plain.json?["issue"]?.arrayValue?.first?["severity"] == "information",
                "without a profile it is a valid Observation: \(plain.text)")
            let checked = try await client.fhir(.post, "Observation/$validate?profile=\(profile)", body: broken)
            #expect(checked.status == .ok)
            let issues = try #require(checked.json?["issue"]?.arrayValue)
            #expect(
                issues.contains {
                    $0["severity"] == "error"
                        && ($0["diagnostics"]?.stringValue ?? "").contains("slice 'HeartRateCode'")
                }, "\(checked.text)")
            #expect(
                issues.contains { $0["severity"] == "warning" && $0["code"] == "code-invalid" },
                "the extensible binding: \(checked.text)")

            let parameters = """
                {"resourceType":"Parameters","parameter":[{"name":"resource","resource":\(broken)},
                 {"name":"profile","valueCanonical":"\(Self.base)heartrate"}]}
                """
            let viaParameters = try await client.fhir(.post, "Observation/$validate", body: parameters)
            #expect(
                Self.diagnostics(viaParameters).contains { $0.contains("slice 'HeartRateCode'") },
                "\(viaParameters.text)")

            let unknownProfile = try await client.fhir(
                .post, "Observation/$validate?profile=\(encodeQuery("http://example.org/nope"))", body: broken)
            #expect(
                unknownProfile.status == .badRequest
                    && unknownProfile.json?["issue"]?.arrayValue?.first?["code"] == "not-supported",
                "\(unknownProfile.text)")

            let eleven = Array(repeating: "profile=\(profile)", count: 11).joined(separator: "&")
            let tooMany = try await client.fhir(.post, "Observation/$validate?\(eleven)", body: broken)
            #expect(tooMany.status == .badRequest, "\(tooMany.text)")

            let claimsUnknown = try Self.heartRate {
                $0["meta"] = ["profile": ["http://example.org/fhir/StructureDefinition/local-vitals"]]
            }
            let warned = try await client.fhir(.post, "Observation/$validate", body: claimsUnknown)
            let warnings = warned.json?["issue"]?.arrayValue?.filter { $0["severity"] != "information" } ?? []
            #expect(
                warned.status == .ok && warnings.count == 1 && warnings.first?["severity"] == "warning"
                    && warnings.first?["code"] == "not-supported",
                "a meta.profile the server does not know is a warning: \(warned.text)")
            #expect(try await client.fhir(.get, "Observation?_summary=count").json?["total"] == 0)
        }
    }
}
