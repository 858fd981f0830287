/// Valid requests a client sends every day, the corpus the mutator starts from, and the
/// resources a server is seeded with so that they find data.
enum HostileCorpus {
    static let seedResources: [(target: String, body: String)] = [
        ("Organization/org1", #"{"resourceType":"Organization","id":"org1","name":"Hostile Clinic"}"#),
        (
            "Patient/p1",
            #"{"resourceType":"Patient","id":"p1","name":[{"family":"Hostile","given":["Ada"]}],"gender":"female","birthDate":"1970-01-01","identifier":[{"system":"urn:hostile","value":"1"}],"managingOrganization":{"reference":"Organization/org1"}}"#
        ),
        (
            "Patient/p2",
            #"{"resourceType":"Patient","id":"p2","name":[{"family":"Other","given":["Bob"]}],"gender":"male","birthDate":"1980-02-02","link":[{"other":{"reference":"Patient/p1"},"type":"seealso"}]}"#
        ),
        (
            "Encounter/e1",
            #"{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"serviceProvider":{"reference":"Organization/org1"}}"#
        ),
        (
            "Observation/o1",
            #"{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2026-01-01T10:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}"#
        ),
        (
            "Observation/o2",
            #"{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"subject":{"reference":"Patient/p2"},"valueQuantity":{"value":120,"unit":"mm[Hg]"}}"#
        ),
    ]

    static let searches = [
        "Patient/p1", "Patient?family=Hostile&_count=5",
        "Observation?subject=Patient/p1&code=http://loinc.org%7C8867-4",
        "Observation?subject:Patient.family=Hostile", "Patient?_has:Observation:subject:code=8867-4",
        "Patient/p1/$everything",
        "Patient/p1/_history/1", "_history?_count=2", "metadata",
        "Patient?_include=Patient:organization&_revinclude=Observation:subject",
        "Observation?_include=Observation:subject&_sort=-date,code", "Observation?value-quantity=gt50&_total=accurate",
        "Encounter?subject.organization.name=Hostile", "Patient?birthdate=ge1960-01-01&birthdate=le1990",
        "Patient?_id=p1,p2&_elements=name",
        "Observation?code-value-quantity=8867-4$gt60", "Patient?name:contains=ost&_summary=count",
        "Patient?_lastUpdated=gt2020-01-01",
    ]

    /// One valid request to mutate.
    static func pick(_ random: inout SeededRandom, basePath: String) -> HostileRequest {
        let fhirJSON = [HostileHeader("Content-Type", "application/fhir+json")]
        switch random.below(6) {
        case 0, 1, 2:
            return HostileRequest(index: 0, kind: "get", method: "GET", target: "\(basePath)/\(random.pick(searches))")
        case 3:
            let (target, body) = random.pick(seedResources)
            return HostileRequest(
                index: 0, kind: "put", method: random.pick(["PUT", "POST"]), target: "\(basePath)/\(target)",
                headers: fhirJSON, body: Array(body.utf8))
        case 4:
            let body =
                #"[{"op":"replace","path":"/gender","value":"other"},{"op":"add","path":"/name/-","value":{"family":"Added"}},{"op":"copy","from":"/name/0","path":"/name/-"},{"op":"test","path":"/id","value":"p1"}]"#
            return HostileRequest(
                index: 0, kind: "patch", method: "PATCH", target: "\(basePath)/Patient/p1",
                headers: [HostileHeader("Content-Type", "application/json-patch+json")], body: Array(body.utf8))
        default:
            let body =
                #"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","name":[{"family":"Hostile"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:hostile|9"}},{"resource":{"resourceType":"Observation","status":"final","code":{"text":"t"},"subject":{"reference":"urn:uuid:a"}},"request":{"method":"POST","url":"Observation"}},{"request":{"method":"GET","url":"Patient?family=Hostile"}},{"request":{"method":"DELETE","url":"Observation?code=nothing"}}]}"#
            return HostileRequest(
                index: 0, kind: "bundle", method: "POST", target: basePath, headers: fhirJSON, body: Array(body.utf8))
        }
    }
}

/// Byte-level mutations of a valid request: inserted hostile fragments, deleted, repeated and
/// swapped ranges, in the target or the body.
enum HostileMutator {
    static let fragments = [
        ".", "..", ":", "::", ",", ",,,,", "|", "$", "&", "=", "?", "/", "%", "%00", "%2E", "%zz", "_has:",
        "._has:Patient:link:", ":missing", ":not",
        "\"", "{", "}", "[", "]", "\\", "\\u0000", "null", "-1", "1e999999", "\u{FEFF}", "\u{E9}", "\u{1F600}",
        "Patient?.=x", ".subject", "subject.",
    ]

    static func mutate(_ original: HostileRequest, basePath: String, _ random: inout SeededRandom) -> HostileRequest {
        var request = original
        let mutations = 1 + random.below(4)
        var mutatedBody = false
        for _ in 0..<mutations {
            if let body = request.body, random.chance(0.6) {
                request.body = mutateBytes(body, &random)
                mutatedBody = true
            } else {
                // Keep the base path mostly intact so the mutation reaches the FHIR routes.
                let target = Array(request.target.utf8)
                let keep = random.chance(0.85) && request.target.hasPrefix(basePath) ? basePath.utf8.count : 0
                let mutated = Array(target.prefix(keep)) + mutateBytes(Array(target.dropFirst(keep)), &random)
                request.target = TargetEncoding.wireSafe(String(decoding: mutated, as: UTF8.self))
            }
        }
        request.kind = "mutated.\(original.kind).\(mutatedBody ? "body" : "target")"
        return request
    }

    static func mutateBytes(_ bytes: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
        var bytes = bytes
        let position = random.below(bytes.count + 1)
        switch random.below(6) {
        case 0, 1:
            bytes.insert(contentsOf: Array(random.pick(fragments).utf8), at: position)
        case 2:
            let length = min(bytes.count - position, 1 + random.below(12))
            if length > 0 { bytes.removeSubrange(position..<(position + length)) }
        case 3:
            // A range repeated: thousands of commas, chain links or nested brackets.
            let length = min(bytes.count - position, 1 + random.below(8))
            guard length > 0 else { break }
            let range = Array(bytes[position..<(position + length)])
            let times = random.size(small: 8, large: min(20_000, 400_000 / length))
            bytes.insert(contentsOf: Array([[UInt8]](repeating: range, count: times).joined()), at: position)
        case 4:
            if position < bytes.count { bytes[position] = random.pick(Array(".:,|&=?/%$_\"{}[]\\ -0".utf8)) }
        default:
            if position < bytes.count { bytes[position] ^= UInt8(1 << random.below(8)) }
        }
        return bytes
    }
}
