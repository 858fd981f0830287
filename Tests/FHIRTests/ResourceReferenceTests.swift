@testable import FHIR
import Testing

/// `ResourceReference(parsing:)`: the type and id are the last two `/`-separated segments
/// once a trailing `_history/n` is dropped; the rest is the base.
@Suite struct ResourceReferenceTests {
    /// Each text and what it parses to (type, id, base), or nil.
    static let table: [(String, (String, String, String?)?)] = [
        ("Patient/123", ("Patient", "123", nil)),
        ("Patient/123/_history/4", ("Patient", "123", nil)),
        ("http://example.org/fhir/Patient/a-b.c", ("Patient", "a-b.c", "http://example.org/fhir")),
        ("http://example.org/fhir/Observation/o1/_history/2", ("Observation", "o1", "http://example.org/fhir")),
        ("https://h/Patient/p/_history/", ("Patient", "p", "https://h")),
        ("/Patient/1", ("Patient", "1", "")),
        ("x//Patient/1", ("Patient", "1", "x/")),
        // Not references: no type, an unknown type, an invalid id, too few segments.
        ("Patient", nil), ("", nil), ("/", nil), ("Patient/", nil), ("/1", nil),
        ("Patients/1", nil), ("patient/1", nil), ("Patient/1 2", nil), ("Patient/é", nil),
        ("Patient//1", nil), ("urn:uuid:0e2b1c3a-7a33-4d8a-9a51-9a7c1e7c2f11", nil), ("#contained", nil),
        // `_history` needs a type and an id before it.
        ("_history/1", nil), ("1/_history/2", nil), ("/_history/1", nil), ("//_history/1", nil),
        ("Patient/_history", nil), ("Patient/1/_history", nil),
        // A segment named `_history` elsewhere is a segment like any other.
        ("Patient/1/_history/2/x", nil), ("_history/Patient/1", ("Patient", "1", "_history")),
        (
            String(repeating: "a/", count: 10_000) + "Patient/1",
            ("Patient", "1", String(repeating: "a/", count: 9_999) + "a")
        ),
        ("ñ/Patient/1", ("Patient", "1", "ñ")),
        // A version is not checked (it never was): one starting with a combining mark, which a
        // split on Characters did not see as a separate segment, is dropped as any other.
        ("Patient/1/_history/\u{301}2", ("Patient", "1", nil)),
    ]

    @Test func parsesEachTextAsTheTableSays() {
        for (text, expected) in Self.table {
            let parsed = ResourceReference(parsing: text)
            #expect(parsed?.type == expected?.0 && parsed?.id == expected?.1, "\(text.prefix(60))")
            #expect(parsed?.base == expected?.2, "\(text.prefix(60))")
        }
    }
}
