/// The words hostile requests are made of: the seeded resources' ids, valid search syntax to
/// start from, and the values that broke parsers before.
enum HostileVocabulary {
    static let types = [
        "Patient", "Observation", "Organization", "Encounter", "Practitioner", "Bundle", "AuditEvent", "Binary", "Task",
    ]
    static let oddTypes = [
        "patient", "Nope", "Resource", "DomainResource", "_search", "$everything", "metadata", "_history", "..", ".",
        "%00", "Patient%00", "P\u{E4}tient", String(repeating: "A", count: 3000),
    ]
    static let ids = ["p1", "p2", "o1", "o2", "org1", "e1", "nope"]
    static let oddIds = [
        ".", "..", "%2E", "%2E%2E", "%00", "p1%00", "-", "a/b", "p1/", "%2F", "\u{0}", "p\u{E9}", "'", "\"", "*", "$",
        "_history", "1e999", String(repeating: "x", count: 65),
    ]

    /// Search parameters per type, valid in R4 (the grammar starts from these).
    static let parameters: [String: [String]] = [
        "Patient": [
            "name", "family", "given", "birthdate", "gender", "identifier", "general-practitioner", "organization",
            "link", "address-city", "telecom", "active", "death-date",
        ],
        "Observation": [
            "subject", "patient", "code", "value-quantity", "date", "status", "performer", "encounter",
            "code-value-quantity", "category", "value-string", "combo-code",
        ],
        "Organization": ["name", "partof", "identifier", "address"],
        "Encounter": ["subject", "patient", "date", "status", "participant", "service-provider", "part-of"],
        "Practitioner": ["name", "identifier"],
        "Bundle": ["identifier", "type", "composition", "message"],
        "AuditEvent": ["entity", "agent", "date", "patient", "type"],
        "Binary": [], "Task": ["owner", "patient", "subject", "status"],
    ]
    /// Reference parameters and the type each points at, so that chains and `_has` can be
    /// valid for many links and reach the database.
    static let references: [String: [(parameter: String, target: String)]] = [
        "Patient": [("general-practitioner", "Practitioner"), ("organization", "Organization"), ("link", "Patient")],
        "Observation": [
            ("subject", "Patient"), ("patient", "Patient"), ("performer", "Practitioner"), ("encounter", "Encounter"),
        ],
        "Encounter": [("subject", "Patient"), ("service-provider", "Organization"), ("part-of", "Encounter")],
        "Organization": [("partof", "Organization")],
        "Task": [("patient", "Patient"), ("owner", "Organization")],
    ]

    /// A valid value for a parameter of the grammar, by the parameter's type.
    static func goodValue(for name: String, _ random: inout SeededRandom) -> String {
        let dates = ["2020", "ge1960-01-01", "le2030-12-31T23:59:59Z", "gt2026-01-01", "1970-01-01", "ne2000"]
        switch name {
        case "birthdate", "date", "_lastUpdated", "death-date", "_since": return random.pick(dates)
        case "gender": return random.pick(["female", "male", "other", "unknown"])
        case "identifier": return random.pick(["urn:hostile|1", "|1", "urn:hostile|", "1"])
        case "code", "combo-code", "category", "_tag":
            return random.pick(["http://loinc.org|8867-4", "8867-4", "|8480-6", "http://loinc.org|"])
        case "status": return random.pick(["final", "finished", "active"])
        case "active": return random.pick(["true", "false"])
        case "value-quantity":
            return random.pick(["gt50", "72", "le120|http://unitsofmeasure.org|mm[Hg]", "ap72||/min"])
        case "_id": return random.pick(ids)
        case "_count", "_page": return random.pick(["1", "5", "0", "100"])
        case "_sort": return random.pick(["name", "-birthdate", "_id", "-_lastUpdated", "family,given"])
        case "_include", "_revinclude":
            return random.pick([
                "Patient:organization", "Observation:subject", "*", "Observation:subject:Patient", "Encounter:subject",
            ])
        default:
            if references.values.contains(where: { $0.contains { $0.parameter == name } }) {
                return random.pick(["Patient/p1", "p1", "Organization/org1", "Encounter/e1", "Patient/p2"])
            }
            return random.pick(["Hostile", "hostile", "Other", "Ada", "Clinic"])
        }
    }

    static let common = [
        "_id", "_lastUpdated", "_tag", "_profile", "_security", "_text", "_content", "_list", "_source", "_query",
        "_filter",
    ]
    static let results = [
        "_count", "_page", "_sort", "_include", "_revinclude", "_elements", "_summary", "_total", "_format", "_pretty",
        "_contained", "_containedType", "_type", "_since", "_at", "_outputFormat",
    ]
    static let referenceLinks = [
        "subject", "patient", "general-practitioner", "organization", "partof", "performer", "encounter", "link",
        "part-of", "service-provider", "subject:Patient", "performer:Practitioner", "organization:Organization",
        "subject:Nope", "entity",
    ]
    static let modifiers = [
        "exact", "contains", "missing", "not", "text", "above", "below", "in", "not-in", "of-type", "identifier",
        "Patient", "iterate", "", ":", "nope", "%00", "EXACT",
    ]
    static let prefixes = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz", "gtgt"]
    static let oddNames = [
        ".", "", "..", "...", ".x", "x.", "a.b.c", ":", "::", "name:", ":name", "_", "__", "_has", "_has:", "_has:::",
        "_has:Patient", "%2E", "%00", "\u{540D}\u{524D}", "name[0]", "name%5B%5D", "_count:missing", "subject.",
        "subject..name", "subject.:Patient", "_has:Observation:subject:.x", "subject:.name", "=", "&",
    ]

    /// Values that broke parsers, stores or writers before.
    static let oddValues = [
        "", " ", "%00", "\u{0}", "'", "\"", "\\", "';DROP TABLE resources;--", "%", "%zz", "%E2%82", "|", "||", "|||",
        "$", "$$", ",", ",,", "*", "null",
        "1e999999", "-1e999999", "99999999999999999999999999", "-0", "NaN", "Infinity", "0x10", "2020-13-45",
        "2020-02-30", "99999-01-01", "0000",
        "2020-01-01T25:61:61Z", "T", "ge", "eq", "http://", "Patient/", "Patient/..", "Patient/p1/_history/x",
        "urn:uuid:", "\u{1F600}", "\u{202E}evil",
        "<script>alert(1)</script>", "../../../../etc/passwd", "Patient?.=x", "\u{D7FF}\u{E000}", "a\tb", "true", "-",
        "gt-5",
    ]

    static let contentTypes = [
        "application/fhir+json", "application/json", "application/fhir+json; charset=utf-8",
        "application/fhir+json; charset=latin1",
        "application/fhir+xml", "text/plain", "", "application/json-patch+json", "multipart/form-data; boundary=",
        "application/x-www-form-urlencoded",
        ";;;", "application/fhir+json; fhirVersion=9.9", "*/*", "application/\u{E9}",
    ]
    /// `Expect` values: the one defined (any case, in a list) and others a server ignores.
    static let expectations = ["100-continue", "100-CONTINUE", "foo, 100-continue", "200-ok", "", "100-continue;x=1"]

    static let accepts = [
        "application/fhir+json", "*/*", "application/fhir+xml", "text/html", "", "application/fhir+json;q=0",
        "a/b, c/d;q=x", "application/json; fhirVersion=1.0",
    ]
    static let prefers = [
        "return=representation", "return=minimal", "return=OperationOutcome", "return=", "return=nope",
        "handling=strict", "handling=lenient", "respond-async", "return=representation, return=minimal", ";;;",
        "wait=99999999999",
    ]
    static let ifMatches = [
        "W/\"1\"", "W/\"0\"", "W/\"-1\"", "W/\"99999999999999999999\"", "W/\"\"", "\"1\"", "W/", "*", "",
        "W/\"1\", W/\"2\"", "W/\"1e3\"", "W/\"\u{E9}\"",
    ]
    static let tenants = [
        "default", "", "..", "../../etc", "a/b", "%00", "DEFAULT", "t1", "tenant-one",
        String(repeating: "t", count: 300), "\u{E9}t\u{E9}", "t 1", "t;DROP",
    ]
    static let authorizations = [
        "Bearer ", "Bearer", "Bearer a.b.c", "Bearer ...", "Basic YTpi", "bearer x", "Bearer eyJhbGciOiJub25lIn0.e30.",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6InN5c3RlbS8qLioifQ.AAAA", "Negotiate x",
        String(repeating: "Bearer x", count: 200),
    ]
}
