import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Testing

/// A transaction Bundle's own rules (bdl-*) are checked beside its entries' preparation
/// (``BundleRulesCheck``): the answer must be what checking them first gave. Their error wins
/// over an entry's and over a permission's, and nothing of a Bundle that breaks them is stored,
/// however many of its creates were prepared meanwhile.
@Suite struct BundleRulesCheckTests {
    static let backends = TestDatabases.backends

    static func patientEntry(_ number: Int, fullUrl: String? = nil) -> String {
        let url = fullUrl ?? String(format: "urn:uuid:0b6f5a1e-0000-4000-8000-%012d", number)
        return
            #"{"fullUrl":"\#(url)","resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}}"#
    }

    static func transaction(_ entries: [String]) -> String {
        #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#
    }

    static func diagnostics(_ response: FHIRTestResponse) -> [String] {
        (response.json?["issue"]?.arrayValue ?? []).compactMap { $0["diagnostics"]?.stringValue }
    }

    /// 100 creates (more than the chunks prepared ahead of the writer), the last fullUrl a
    /// repeat of the first (bdl-7), and an entry that breaks obs-6 near the start: its chunk is
    /// prepared, and fails, while the rules are checked.
    @Test(arguments: backends)
    func theRulesErrorWinsAndNothingIsStored(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let obs6 = InvalidResourceCorpus.cases.first { $0.diagnostic == "obs-6" }!
            var entries = (0..<99).map { Self.patientEntry($0) }
            entries.insert(#"{"resource":\#(obs6.body),"request":{"method":"POST","url":"Observation"}}"#, at: 1)
            entries.append(Self.patientEntry(99, fullUrl: "urn:uuid:0b6f5a1e-0000-4000-8000-000000000000"))
            let answered = try await client.fhir(.post, "", body: Self.transaction(entries))
            #expect(answered.status == .unprocessableContent, "\(answered.text.prefix(300))")
            let said = Self.diagnostics(answered)
            #expect(said.contains { $0.contains("bdl-7") }, "\(said)")
            #expect(!said.contains { $0.contains("obs-6") }, "the entry's error is not the answer: \(said)")
            #expect(try await client.fhir(.get, "Patient?_summary=count").json?["total"] == 0)

            // Without the repeated fullUrl, the entry's error is the answer, and still nothing is stored.
            entries.removeLast()
            let entryRefused = try await client.fhir(.post, "", body: Self.transaction(entries))
            #expect(entryRefused.status == .unprocessableContent)
            #expect(
                Self.diagnostics(entryRefused).contains { $0.contains("obs-6") }, "\(entryRefused.text.prefix(300))")
            #expect(try await client.fhir(.get, "Patient?_summary=count").json?["total"] == 0)

            // Valid, all 99 creates are stored.
            entries.remove(at: 1)
            let stored = try await client.fhir(.post, "", body: Self.transaction(entries))
            #expect(stored.status == .ok, "\(stored.text.prefix(300))")
            #expect(try await client.fhir(.get, "Patient?_summary=count").json?["total"] == 99)
        }
    }

    /// A Bundle of only reads or conditional entries breaking a rule is refused with the rule's error.
    @Test(arguments: backends)
    func readsAndConditionalEntriesWaitForTheRules(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let versioned =
                #"{"fullUrl":"http://example.org/fhir/Patient/p1/_history/1","request":{"method":"GET","url":"Patient?gender=female"}}"#
            let read = try await client.fhir(.post, "", body: Self.transaction([versioned]))
            #expect(read.status == .unprocessableContent, "\(read.text.prefix(300))")
            #expect(Self.diagnostics(read).contains { $0.contains("bdl-8") }, "\(read.text.prefix(300))")

            let conditional =
                #"{"fullUrl":"http://example.org/fhir/Patient/p2/_history/1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"gender=male"}}"#
            let created = try await client.fhir(.post, "", body: Self.transaction([conditional]))
            #expect(created.status == .unprocessableContent, "\(created.text.prefix(300))")
            #expect(Self.diagnostics(created).contains { $0.contains("bdl-8") })
            #expect(try await client.fhir(.get, "Patient?_summary=count").json?["total"] == 0)
        }
    }

    /// With a token that may not create what the Bundle creates, a Bundle breaking a rule still
    /// answers with the rule's error (the rules were checked before permissions), and a valid one with 403.
    @Test(arguments: backends)
    func theRulesErrorWinsOverAPermissionError(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            let narrow = try await harness.token("user/Practitioner.cruds")
            let first = Self.patientEntry(0)
            let repeated = Self.patientEntry(1, fullUrl: "urn:uuid:0b6f5a1e-0000-4000-8000-000000000000")
            let broken = try await harness.call(.post, "", token: narrow, body: Self.transaction([first, repeated]))
            #expect(broken.status == .unprocessableContent, "\(broken.text.prefix(300))")
            #expect(Self.diagnostics(broken).contains { $0.contains("bdl-7") })
            let forbidden = try await harness.call(.post, "", token: narrow, body: Self.transaction([first]))
            #expect(forbidden.status == .forbidden, "\(forbidden.text.prefix(300))")
        }
    }

    /// A `?` with a combining mark after it is one Character: a reference split by Characters in
    /// one place and by bytes in another was found as conditional and then not split, a trap
    /// that stopped the server. Each is now split in one place (`conditionalParts`).
    @Test(arguments: backends)
    func aConditionalReferenceWithACombiningMarkIsAnsweredNotFatal(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            let observation =
                #"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?\u0301identifier=x"}}"#
            for kind in ["transaction", "batch"] {
                let bundle =
                    #"{"resourceType":"Bundle","type":"\#(kind)","entry":[{"resource":\#(observation),"request":{"method":"POST","url":"Observation"}}]}"#
                let answered = try await client.fhir(.post, "", body: bundle)
                #expect(answered.status.code < 500, "\(kind): \(answered.status) \(answered.text.prefix(300))")
                #expect(answered.json?["resourceType"] != nil, "\(kind): \(answered.text.prefix(300))")
            }
            #expect(try await client.fhir(.get, "Observation?_summary=count").json?["total"] == 0)
        }
    }
}
