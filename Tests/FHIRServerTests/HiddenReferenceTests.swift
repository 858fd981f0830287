import FHIRTestSupport
import Testing

/// Attacker findings A7 and A6 (session 25): what the search index does not hold must not
/// decide what a token sees.
@Suite struct HiddenReferenceTests {
    static let backends = TestDatabases.backends

    /// A7: patient A's Observation holding a contained Observation of patient B (or naming B
    /// outside any search parameter) was shown whole to A's token by read, search and
    /// `$everything`, though A's own write of the same body is refused.
    @Test(arguments: backends)
    func anotherPatientInAContainedResourceHidesTheContainer(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AuthorizationRegressionTests.seed(harness)
            let admin = try await harness.token("system/*.*")
            let contained =
                ##"{"resourceType":"Observation","id":"oac","status":"final","code":{"text":"with contained"},"subject":{"reference":"Patient/p1"},"hasMember":[{"reference":"#c1"}],"contained":[{"resourceType":"Observation","id":"c1","status":"final","code":{"coding":[{"code":"b-secret"}]},"subject":{"reference":"Patient/p2"}}]}"##
            let noted =
                #"{"resourceType":"Observation","id":"oan","status":"final","code":{"text":"noted"},"subject":{"reference":"Patient/p1"},"note":[{"authorReference":{"reference":"Patient/p2"},"text":"b-secret"}]}"#
            let own =
                #"{"resourceType":"Observation","id":"oown","status":"final","code":{"text":"own"},"subject":{"reference":"Patient/p1"}}"#
            for (id, body) in [("oac", contained), ("oan", noted), ("oown", own)] {
                #expect(try await harness.call(.put, "Observation/\(id)", token: admin, body: body).status.code < 300)
            }
            let a = try await harness.token("patient/*.rs", subject: "a", patient: "p1")
            for path in ["Observation/oac", "Observation/oan"] {
                #expect(try await harness.call(.get, path, token: a).status == .notFound, "\(path)")
            }
            #expect(try await harness.call(.get, "Observation/oown", token: a).status == .ok)
            for path in [
                "Observation?_id=oac,oan,oown", "Observation", "Patient/p1/$everything",
                "Patient/p1/$everything?_type=Observation",
            ] {
                let response = try await harness.call(.get, path, token: a)
                #expect(response.status == .ok, "\(path)")
                #expect(AuthorizationRegressionTests.leaks(response, asked: path).isEmpty, "\(path): \(response.text)")
                #expect(!response.text.contains(#""id":"oac""#) && !response.text.contains(#""id":"oan""#), "\(path)")
                #expect(response.text.contains(#""id":"oown""#), "\(path)")
            }
            // The total of a page counts only what the page shows.
            let search = try await harness.call(.get, "Observation?_id=oac,oan,oown", token: a)
            #expect(search.json?["total"] == 1)
            // The admin still sees all three.
            #expect(try await harness.call(.get, "Observation?_id=oac,oan,oown", token: admin).json?["total"] == 3)
        }
    }

    /// A9: `$validate` said "valid" for what the same token's write refuses.
    @Test func validateSaysWhatThePatientScopedWriteRefuses() async throws {
        try await AccessControlTests.withSecureApp(.sqlite) { harness in
            try await AuthorizationRegressionTests.seed(harness)
            let a = try await harness.token("patient/*.cruds", subject: "a", patient: "p1")
            func body(_ patient: String) -> String {
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/\#(patient)"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}"#
            }
            let refused = try await harness.call(.post, "Observation/$validate", token: a, body: body("p2"))
            #expect(refused.status == .ok)
            #expect(
                refused.json?["issue"]?.arrayValue?.contains { $0["code"] == "forbidden" && $0["severity"] == "error" }
                    == true, "\(refused.text)")
            #expect(try await harness.call(.post, "Observation", token: a, body: body("p2")).status == .forbidden)
            let allowed = try await harness.call(.post, "Observation/$validate", token: a, body: body("p1"))
            #expect(allowed.json?["issue"]?.arrayValue?.first?["severity"] == "information", "\(allowed.text)")
        }
    }

    /// A6: `$everything` for a token without MedicationRequest or Observation returned the
    /// Medication and Practitioner that hidden ones refer to, which tells what they say.
    @Test(arguments: backends)
    func everythingTakesTargetsOnlyFromWhatTheTokenSees(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            try await AuthorizationRegressionTests.seed(harness)
            let admin = try await harness.token("system/*.*")
            let writes = [
                ("Practitioner/onc", #"{"resourceType":"Practitioner","id":"onc","name":[{"family":"Oncologist"}]}"#),
                ("Medication/med1", #"{"resourceType":"Medication","id":"med1","code":{"text":"antiretroviral X"}}"#),
                (
                    "MedicationRequest/mra",
                    #"{"resourceType":"MedicationRequest","id":"mra","status":"active","intent":"order","subject":{"reference":"Patient/p1"},"medicationReference":{"reference":"Medication/med1"}}"#
                ),
                (
                    "Observation/oonc",
                    #"{"resourceType":"Observation","id":"oonc","status":"final","code":{"text":"seen"},"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/onc"}]}"#
                ),
            ]
            for (path, body) in writes {
                #expect(try await harness.call(.put, path, token: admin, body: body).status.code < 300, "\(path)")
            }
            let withTargets = try await harness.call(.get, "Patient/p1/$everything", token: admin)
            #expect(withTargets.text.contains("antiretroviral X") && withTargets.text.contains("Oncologist"))
            for scopes in [
                "user/Patient.r user/Practitioner.r user/Medication.r",
                "patient/Patient.r user/Medication.r user/Practitioner.r",
            ] {
                let token = try await harness.token(scopes, patient: "p1")
                for path in ["Patient/p1/$everything", "Patient/$everything"] {
                    let response = try await harness.call(.get, path, token: token)
                    #expect(response.status == .ok, "\(scopes) \(path)")
                    #expect(
                        !response.text.contains("antiretroviral X") && !response.text.contains("Oncologist"),
                        "\(scopes) \(path): \(response.text)")
                }
            }
        }
    }
}
