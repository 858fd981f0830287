import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Testing

/// A parameter that selects exactly what two others select together (Observation's `combo-*`:
/// the Observation's own code and value and its components') has no index rows of its own; its
/// searches read the two others' rows and answer as they did when it had rows.
@Suite struct UnionParameterTests {
    /// Found from the R4 definitions, not listed by hand: a change in the rule shows here.
    @Test func theUnionsAreObservationsComboParameters() {
        var found: [String: [String]] = [:]
        for type in FHIRResourceType.all {
            for parameter in SearchParameterRegistry.r4.parameters(of: type) {
                if let parts = parameter.unionOf { found["\(type).\(parameter.code)"] = parts }
            }
        }
        #expect(
            found == [
                "Observation.combo-code": ["code", "component-code"],
                "Observation.combo-code-value-concept": ["code-value-concept", "component-code-value-concept"],
                "Observation.combo-code-value-quantity": ["code-value-quantity", "component-code-value-quantity"],
                "Observation.combo-data-absent-reason": ["component-data-absent-reason", "data-absent-reason"],
                "Observation.combo-value-concept": ["component-value-concept", "value-concept"],
                "Observation.combo-value-quantity": ["component-value-quantity", "value-quantity"],
            ])
        let indexed = Set(SearchParameterRegistry.r4.indexedParameters(of: "Observation").map(\.code))
        #expect(indexed.isDisjoint(with: found.keys.map { String($0.dropFirst("Observation.".count)) }))
        #expect(indexed.isSuperset(of: found.values.flatMap { $0 }))
    }

    @Test(arguments: TestDatabases.backends)
    func aUnionsSearchesReadItsPartsRows(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            func create(_ text: String) async throws -> String {
                try await store.create(try JSONParser.parse(text), type: "Observation").id
            }
            let panel = try await create(CompositeSearchTests.bloodPressure)
            let heart = try await create(
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":72,"system":"http://unitsofmeasure.org","code":"/min"}}"#
            )
            let smoker = try await create(
                #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"449868002"}]}}"#
            )
            func found(_ parameters: [(String, String)]) async throws -> [String] {
                let query = try SearchQueryParser().parse(
                    resourceType: "Observation", parameters: parameters.map { (name: $0.0, value: $0.1) },
                    strict: true)
                return try await store.search(query).resources.map(\.id)
            }
            func set(_ name: String, _ value: String) async throws -> Set<String> {
                Set(try await found([(name, value)]))
            }
            // Tokens: the Observation's code and its components'.
            #expect(try await set("combo-code", "85354-9") == [panel])
            #expect(try await set("combo-code", "http://loinc.org|8480-6") == [panel])
            #expect(try await set("combo-code", "8867-4,8462-4") == [heart, panel])
            #expect(try await set("combo-code:not", "8480-6") == [heart, smoker])
            #expect(try await set("combo-code:missing", "false") == [panel, heart, smoker])
            #expect(try await set("combo-code:missing", "true") == [])
            #expect(try await set("combo-code:text", "systolic") == [panel])
            #expect(try await set("combo-value-concept", "449868002") == [smoker])
            #expect(try await set("combo-value-concept:missing", "true") == [panel, heart])
            // Quantities: the Observation's value and its components'.
            #expect(try await set("combo-value-quantity", "72") == [heart])
            #expect(try await set("combo-value-quantity", "gt100") == [panel])
            #expect(try await set("combo-value-quantity", "lt90") == [heart, panel])
            // Composites: both parts in one instance, the Observation or one component.
            #expect(try await set("combo-code-value-quantity", "8867-4$72") == [heart])
            #expect(try await set("combo-code-value-quantity", "8480-6$120") == [panel])
            #expect(try await set("combo-code-value-quantity", "8480-6$80") == [])
            #expect(try await set("combo-code-value-concept", "72166-2$449868002") == [smoker])
            // `_filter` and `_sort` read the same rows.
            #expect(try await set("_filter", "combo-code eq 8462-4") == [panel])
            // Each resource's least code: 72166-2, 8462-4 (a component of the panel), 8867-4.
            #expect(try await found([("_sort", "combo-code")]) == [smoker, panel, heart])
            // Each one's greatest: 8867-4, 85354-9, 72166-2.
            #expect(try await found([("_sort", "-combo-code")]) == [heart, panel, smoker])

            var stored: Int64 = 0
            for kind in IndexKinds.all {
                stored +=
                    try await store.database.withConnection {
                        try await $0.query("SELECT COUNT(*) FROM \(kind.table) WHERE param LIKE 'combo-%'", [])
                    }.first?.first?.int ?? -1
            }
            #expect(stored == 0)
        }
    }

    /// A page link of SQLite's walk made by an earlier version, when `combo-*` searches walked
    /// their own rows: refused, never answered with the first page again.
    @Test func aWalkPageLinkOfAUnionIsRefused() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            var query = try SearchQueryParser().parse(
                resourceType: "Observation", parameters: [(name: "combo-code", value: "8480-6")], strict: true)
            query.cursor = .walk(row: 5, bound: 10)
            await #expect(throws: FHIRError.self) { try await store.search(query) }
            query.cursor = nil
            #expect(try await store.search(query).resources.isEmpty)
        }
    }
}
