import FHIR
import FHIRServer
import FHIRTestSupport
import Foundation
import Testing

/// All official R4 examples round-trip through the API and are found by search.
@Suite struct OfficialExamplesTests {
    static let backends = TestDatabases.backends

    /// `meta` without the two elements the server owns.
    static func withoutServerMeta(_ value: JSONValue) -> JSONValue {
        guard case .object(var object) = value else { return value }
        if case .object(var meta)? = object["meta"] {
            meta["versionId"] = nil
            meta["lastUpdated"] = nil
            object["meta"] = meta.count == 0 ? nil : .object(meta)
        }
        return .object(object)
    }

    /// A search value with FHIR's escapes for `\`, `,`, `|` and `$`.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\,|$".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// One token or string parameter of the resource that has a value, as `name=value`.
    static func searchableParameter(of resource: JSONValue, type: String) -> String? {
        let entries = SearchIndexer().entries(for: resource, resourceType: type)
        if let token = entries.tokens.first(where: { $0.code != nil && !$0.parameter.hasPrefix("_") }) {
            let value = token.system.map { escape($0) + "|" + escape(token.code!) } ?? escape(token.code!)
            return "\(token.parameter)=\(encodeQuery(value))"
        }
        if let string = entries.strings.first(where: { !$0.parameter.hasPrefix("_") }) {
            return "\(string.parameter):exact=\(encodeQuery(escape(string.exact)))"
        }
        return nil
    }

    @Test(arguments: backends)
    func everyExampleRoundTripsAndIsFound(backend: TestBackend) async throws {
        let directory = TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
            .sorted()
        #expect(files.count == 717)
        // Two official examples break their StructureDefinition (see ValidationTests), so this
        // round trip runs with structure validation off; the next test runs it on.
        let lenient = FHIRServerConfiguration(validator: ResourceValidator(checksStructure: false))
        try await withFHIRApp(backend, configuration: lenient) { client in
            var searchedByParameter = 0
            for file in files {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                let original = try JSONParser.parse(text)
                let type = try #require(original["resourceType"]?.stringValue)
                let id = try #require(original["id"]?.stringValue, "\(file) has no id")
                let put = try await client.fhir(.put, "\(type)/\(id)", body: text)
                #expect(put.status == .created || put.status == .ok, "\(file): \(put.text)")
                let read = try await client.fhir(.get, "\(type)/\(id)")
                let stored = try #require(read.json, "\(file)")
                #expect(
                    Self.withoutServerMeta(stored) == Self.withoutServerMeta(original),
                    "\(file) changed in the round trip")

                let byId = try #require(try await client.fhir(.get, "\(type)?_id=\(id)").json)
                #expect(byId["total"] == 1, "\(file) not found by _id")
                if let parameter = Self.searchableParameter(of: stored, type: type) {
                    let response = try await client.fhir(
                        .get, "\(type)?_id=\(id)&\(parameter)", headers: ["Prefer": "handling=strict"])
                    #expect(
                        response.json?["total"] == 1, "\(file) not found by \(parameter): \(response.text.prefix(300))")
                    searchedByParameter += 1
                }
            }
            print(
                "\(backend): \(files.count) examples round-tripped; \(searchedByParameter) also found by a token or string parameter"
            )
            #expect(searchedByParameter > 650)
        }
    }

    /// With validation on (the default), the two invalid examples are refused with the
    /// location of what is wrong, and `$validate` says the same without storing anything.
    @Test func invalidExamplesAreRefusedWithTheirLocation() async throws {
        let directory = TestDatabases.sharedFHIRDirectory.appendingPathComponent("r4-examples")
        let cases = [("Questionnaire-qs1.json", "linkId"), ("ig-r4.json", "ImplementationGuide.name")]
        try await withFHIRApp(.sqlite) { client in
            for (file, location) in cases {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                let original = try JSONParser.parse(text)
                let type = original["resourceType"]!.stringValue!
                let id = original["id"]!.stringValue!
                let put = try await client.fhir(.put, "\(type)/\(id)", body: text)
                #expect(put.status == .unprocessableContent, "\(file)")
                let expressions =
                    put.json?["issue"]?.arrayValue?.flatMap { $0["expression"]?.arrayValue ?? [] }.compactMap(
                        \.stringValue) ?? []
                #expect(expressions.contains { $0.contains(location) }, "\(file): \(expressions)")
                let validated = try await client.fhir(.post, "\(type)/$validate", body: text)
                #expect(validated.status == .ok)
                #expect(validated.json?["issue"]?.arrayValue?.first?["severity"] == "error")
                #expect(try await client.fhir(.get, "\(type)/\(id)").status == .notFound)
            }
            let valid = try await client.fhir(
                .post, "Patient/$validate",
                body:
                    #"{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient","gender":"female"}}]}"#
            )
            #expect(valid.json?["issue"]?.arrayValue?.first?["severity"] == "information")
            let wrong = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","gender":"xx","birthDate":"1990-13-01"}"#)
            #expect(wrong.status == .unprocessableContent)
            #expect(wrong.json?["issue"]?.arrayValue?.count == 2)
        }
    }
}
