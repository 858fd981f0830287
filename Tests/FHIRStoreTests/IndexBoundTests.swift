import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// Index rows keep at most `IndexKinds.maximumIndexedBytes` of a value: PostgreSQL refused a
/// btree entry over about 2,700 bytes, so a resource with one long name failed whole (a 500).
/// A search bounds its values the same way, so long values still find their resources.
@Suite struct IndexBoundTests {
    /// `count` letters, with a multi-byte character where the cut falls, so that the cut must
    /// keep whole characters.
    static func long(_ count: Int, seed: Character) -> String {
        String(repeating: seed, count: 511) + "é" + String(repeating: "x", count: count - 512)
    }

    @Test func boundedCutsBetweenCharactersAndLeavesShortValuesAlone() {
        #expect(IndexKinds.bounded("short") == "short")
        let cut = IndexKinds.bounded(Self.long(3000, seed: "a"))
        // 511 bytes of "a", then "é" (2 bytes) would pass 512: it is left out whole.
        #expect(cut == String(repeating: "a", count: 511))
        #expect(IndexKinds.bounded(String(repeating: "b", count: 600)).utf8.count == 512)
    }

    /// A column left whole (`inIndex: false`) is in none of its table's CREATE INDEX statements,
    /// so every column an index holds is cut.
    @Test func inIndexAgreesWithTheIndexesCreated() {
        for kind in IndexKinds.all {
            let indexed = Set(
                kind.createStatements(text: "TEXT", real: "REAL").filter { $0.hasPrefix("CREATE INDEX") }.flatMap {
                    statement -> [String] in
                    guard let open = statement.firstIndex(of: "("), let close = statement.firstIndex(of: ")") else {
                        return []
                    }
                    return statement[statement.index(after: open)..<close].split(separator: ",").map {
                        $0.trimmingCharacters(in: .whitespaces)
                    }
                })
            for column in kind.columns where !column.inIndex {
                #expect(!indexed.contains(column.name), "\(kind.table).\(column.name) is in an index: it must be cut")
            }
        }
        #expect(IndexKinds.all.flatMap(\.columns).contains { !$0.inIndex }, "StringIndex's exact is left whole")
    }

    @Test(arguments: TestDatabases.backends)
    func aResourceWithLongIndexedValuesIsStoredAndFound(backend: TestBackend) async throws {
        try await TestDatabases.withStore(backend) { store in
            // Incompressible, so that PostgreSQL cannot shrink the index entry under its limit.
            var generator = SystemRandomNumberGenerator()
            let letters = Array("abcdefghijklmnopqrstuvwxyz")
            let family = String((0..<12_000).map { _ in letters.randomElement(using: &generator)! })
            let identifier = String((0..<3_000).map { _ in letters.randomElement(using: &generator)! })
            // Short enough for a `_filter` (4,096 characters), longer than the bound.
            let given = String((0..<2_000).map { _ in letters.randomElement(using: &generator)! })
            let patient: JSONValue = .object(
                JSONObject([
                    ("resourceType", .string("Patient")),
                    (
                        "name",
                        .array([
                            .object(JSONObject([("family", .string(family)), ("given", .array([.string(given)]))]))
                        ])
                    ),
                    (
                        "identifier",
                        .array([
                            .object(
                                JSONObject([("system", .string("urn:example:long")), ("value", .string(identifier))]))
                        ])
                    ),
                ]))
            let created = try await store.create(patient, type: "Patient")
            // Also inside a transaction (the statement-by-statement path on PostgreSQL).
            let other = try await store.transaction { try await $0.create(patient, type: "Patient", id: nil) }
            let both = Set([created.id, other.id])
            func found(_ name: String, _ value: String, modifier: String? = nil) async throws -> Set<String> {
                let query = try SearchQueryParser().parse(
                    resourceType: "Patient",
                    parameters: [(name: modifier.map { "\(name):\($0)" } ?? name, value: value)],
                    strict: true)
                return Set(try await store.search(query).resources.map(\.id))
            }
            #expect(try await found("family", String(family.prefix(20))) == both)
            #expect(try await found("family", family) == both, "a value longer than the bound finds its resources")
            #expect(try await found("family", family, modifier: "exact") == both, ":exact compares all of it")
            #expect(try await found("family", String(family.prefix(5000)), modifier: "exact").isEmpty)
            #expect(try await found("identifier", "urn:example:long|" + identifier) == both)
            #expect(try await found("_filter", "given eq \"\(given)\"") == both, "_filter compares the bounded value")
        }
    }
}
