/// Hostile FHIR requests, deterministic from a seed: request lines, query parameter names and
/// values, headers, bodies, Bundles and JSON Patches, made from a grammar of valid requests and
/// by mutating a corpus of valid ones.
///
/// Request `index` of a seed is always the same request, whatever ran before it, so a failure
/// is reproduced by its seed and index alone, and concurrent senders can share one generator.
/// The fuzz test (Tests/FHIRServerTests/HostileRequestFuzzTests.swift) and `caduceus bench
/// hostile` both use it.
public struct HostileRequestGenerator: Sendable {
    public let seed: UInt64
    /// The server's FHIR base path; most targets start with it.
    public let basePath: String

    public init(seed: UInt64, basePath: String = "/fhir-server/api/v4") {
        self.seed = seed
        self.basePath = basePath
    }

    /// Request number `index` of this seed.
    public func request(_ index: Int) -> HostileRequest {
        var random = SeededRandom(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED03))
        _ = random.next()
        var request: HostileRequest
        switch random.below(100) {
        case 0..<24: request = search(&random)
        case 24..<29: request = formSearch(&random)
        case 29..<39: request = requestLine(&random)
        case 39..<53: request = write(&random)
        case 53..<66: request = bundle(&random)
        case 66..<76: request = patch(&random)
        default:
            request = HostileMutator.mutate(
                HostileCorpus.pick(&random, basePath: basePath), basePath: basePath, &random)
        }
        request.index = index
        addHeaders(&request, &random)
        return request
    }

    /// The resources a server is seeded with before the requests, as (target, body) for a PUT.
    public static var seedResources: [(target: String, body: String)] { HostileCorpus.seedResources }

    // MARK: Search

    func search(_ random: inout SeededRandom) -> HostileRequest {
        let type = random.chance(0.9) ? random.pick(HostileVocabulary.types) : random.pick(HostileVocabulary.oddTypes)
        let (kind, query) = queryString(&random, type: type)
        let path = random.chance(0.9) ? "\(basePath)/\(TargetEncoding.wireSafe(type))" : basePath
        return HostileRequest(
            index: 0, kind: kind, method: random.chance(0.95) ? "GET" : "HEAD", target: "\(path)?\(query)")
    }

    func formSearch(_ random: inout SeededRandom) -> HostileRequest {
        let type = random.pick(HostileVocabulary.types)
        let (kind, query) = queryString(&random, type: type)
        let target = random.chance(0.8) ? "\(basePath)/\(type)/_search" : "\(basePath)/_search"
        return HostileRequest(
            index: 0, kind: "form." + kind, method: "POST", target: target,
            headers: [
                HostileHeader(
                    "Content-Type",
                    random.chance(0.85)
                        ? "application/x-www-form-urlencoded" : random.pick(HostileVocabulary.contentTypes))
            ],
            body: Array(query.utf8))
    }

    /// A query string; its kind names the most hostile part in it.
    func queryString(_ random: inout SeededRandom, type: String, small: Bool = false) -> (String, String) {
        var kinds: [String] = []
        var pairs: [String] = []
        let count = random.chance(0.97) || small ? 1 + random.below(5) : random.size(small: 50, large: 1200)
        if count > 40 { kinds.append("many-parameters") }
        for _ in 0..<count {
            let (kind, name) = parameterName(&random, type: type)
            let (valueKind, value) = parameterValue(&random, name: name, small: small)
            kinds += [kind, valueKind].filter { !$0.isEmpty }
            let encode = random.chance(0.7)
            let pair =
                encode
                ? TargetEncoding.encode(name) + "=" + TargetEncoding.encode(value)
                : TargetEncoding.wireSafe(name) + (random.chance(0.95) ? "=" : "") + TargetEncoding.wireSafe(value)
            pairs.append(pair)
        }
        let separator = random.chance(0.97) ? "&" : random.pick(["&&", ";", "&=&", "?"])
        return ("search." + (kinds.first ?? "plain"), pairs.joined(separator: separator))
    }

    func parameterName(_ random: inout SeededRandom, type: String) -> (String, String) {
        let own = HostileVocabulary.parameters[type] ?? []
        switch random.below(100) {
        case 0..<30:
            return ("", random.pick(own.isEmpty ? HostileVocabulary.common : own))
        case 30..<42:
            return ("", random.pick(HostileVocabulary.results))
        case 42..<52:
            let base = random.pick(own.isEmpty ? HostileVocabulary.common : own)
            return ("modifier", base + ":" + random.pick(HostileVocabulary.modifiers))
        case 52..<60:
            // A chain that follows the references' types (with or without `:Type`), so that
            // it reaches the database: usually short, sometimes far past any sane depth.
            let links = random.chance(0.9) ? 1 + random.below(6) : random.size(small: 30, large: 400)
            var parts: [String] = []
            var current = type
            for _ in 0..<links {
                guard let reference = HostileVocabulary.references[current].map({ random.pick($0) }) else { break }
                parts.append(reference.parameter + (random.chance(0.5) ? ":" + reference.target : ""))
                current = reference.target
            }
            let own = HostileVocabulary.parameters[current] ?? []
            parts.append(random.chance(0.85) && !own.isEmpty ? random.pick(own) : random.pick(["_id", "name"]))
            return (parts.count > 12 ? "chain-deep" : "chain", parts.joined(separator: "."))
        case 60..<67:
            // Any links at all: unknown, untyped (every target type) and odd ones.
            let links = random.chance(0.95) ? 1 + random.below(6) : random.size(small: 30, large: 400)
            var parts = (0..<links).map { _ in random.pick(HostileVocabulary.referenceLinks) }
            parts.append(
                random.chance(0.8)
                    ? random.pick(["name", "family", "code", "_id", "identifier", "status"])
                    : random.pick(HostileVocabulary.oddNames))
            return (links > 12 ? "chain-deep" : "chain-any", parts.joined(separator: "."))
        case 67..<77:
            let depth = random.chance(0.9) ? 1 + random.below(3) : random.size(small: 20, large: 300)
            var name = ""
            // Valid nesting keeps to the type: a Patient linked from a Patient, an Organization part of one.
            let valid = random.chance(0.6)
            let chainable = type == "Organization" ? "Organization:partof" : "Patient:link"
            for level in 0..<depth {
                let inner =
                    valid
                    ? (level == 0 && type == "Patient" && random.chance(0.3) ? "Observation:subject" : chainable)
                    : random.pick([
                        "Observation:subject", "Observation:patient", "Encounter:subject", "Patient:link",
                        "Organization:partof", "Nope:subject", "Observation:nope", ":", "Observation::",
                    ])
                name += "_has:\(inner):"
            }
            name +=
                random.chance(0.8)
                ? random.pick(["code", "status", "_id", "name", "value-quantity"])
                : random.pick(HostileVocabulary.oddNames)
            return (depth > 5 ? "has-deep" : "has", name)
        case 77..<92:
            return ("odd-name", random.pick(HostileVocabulary.oddNames))
        default:
            let length = random.size(small: 300, large: 20000)
            return ("long-name", String(repeating: random.pick(["a", ".", ":", "_has:", "%"]), count: length))
        }
    }

    func parameterValue(_ random: inout SeededRandom, name: String, small: Bool = false) -> (String, String) {
        // The value is for the last link of a chain or `_has`.
        let last = String(name.split(separator: ".").last?.split(separator: ":").last ?? "")
        switch random.below(100) {
        case 0..<50:
            return ("", HostileVocabulary.goodValue(for: last, &random))
        case 50..<70:
            return ("odd-value", random.pick(HostileVocabulary.prefixes) + random.pick(HostileVocabulary.oddValues))
        case 70..<82:
            let count = small ? 1 + random.below(20) : random.size(small: 20, large: 3000)
            let values = (0..<count).map { _ in
                random.chance(0.1) ? "" : HostileVocabulary.goodValue(for: last, &random)
            }
            return (count > 100 ? "or-values" : "", values.joined(separator: ","))
        case 82..<90:
            return (
                "long-value",
                String(
                    repeating: random.pick(["a", "9", "\u{E9}", "|", "$", "\\,"]),
                    count: small ? 200 : random.size(small: 500, large: 60000))
            )
        default:
            return ("", "")
        }
    }

    // MARK: Request lines

    func requestLine(_ random: inout SeededRandom) -> HostileRequest {
        let method =
            random.chance(0.8)
            ? random.pick(["GET", "GET", "DELETE", "HEAD", "PUT", "PATCH", "POST"])
            : random.pick(["OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO", "get"])
        let type =
            random.chance(0.85)
            ? random.pick(HostileVocabulary.types) : TargetEncoding.wireSafe(random.pick(HostileVocabulary.oddTypes))
        let id =
            random.chance(0.5)
            ? random.pick(HostileVocabulary.ids) : TargetEncoding.wireSafe(random.pick(HostileVocabulary.oddIds))
        let hugeID = String(
            repeating: random.pick(["a", "1", "%41", ".", "/"]), count: random.size(small: 100, large: 30000))
        let path: String
        switch random.below(12) {
        case 0: path = "\(basePath)/\(type)/\(id)"
        case 1: path = "\(basePath)/\(type)/\(hugeID)"
        case 2:
            path =
                "\(basePath)/\(type)/\(id)/_history/\(random.pick(["1", "0", "-1", "99999999999999999999", "x", "", "1.5", "%00"]))"
        case 3:
            path =
                "\(basePath)/\(type)/\(id)/_history?_since=\(random.pick(["2020", "x", "", "9999-99-99", "%00"]))&_count=\(random.pick(["0", "-1", "1000000", "x"]))"
        case 4: path = "\(basePath)/\(type)/\(id)/$everything?\(queryString(&random, type: "Patient").1)"
        case 5:
            path =
                "\(basePath)/\(random.pick(["../..", "..", "%2E%2E", "./.", "//", "/./", "%2F", ";", "..%2F..%2Fetc%2Fpasswd"]))/\(type)/\(id)"
        case 6:
            path = random.pick([
                "/", "", "*", "/..", "/fhir-server", basePath + "/", basePath + "//",
                basePath + "/metadata?_format=" + random.pick(["xml", "json", "", "%00", "text/html"]), "/admin",
                "/.env",
            ])
        case 7:
            path =
                "\(basePath)/\(random.pick(["$export", "Patient/$export", "Group/g/$export", "$export-poll-status/\(id)", "$export-file/\(id)/\(random.pick(["..", "../../etc/passwd", "x.ndjson", "%2E%2E"]))"]))?_type=\(random.pick(["Patient", "", "Nope", ".."]))"
        case 8:
            path =
                "\(basePath)/\(type)/\(id)/\(random.pick(["$validate", "$meta", "$nope", "_history/1/_history", "x/y/z/w/v", "$everything/x"]))"
        case 9: path = "\(basePath)/_history?\(queryString(&random, type: "Patient").1)"
        case 10:
            path =
                "\(basePath)/\(type)/\(id)?\(random.pick(["_format=xml", "_summary=count", "_elements=,,,", "_pretty=true", "_pretty=%00"]))"
        default: path = "\(basePath)/\(type)/_history/\(id)"
        }
        return HostileRequest(
            index: 0, kind: "line." + (method.allSatisfy(\.isUppercase) ? method : "odd-method"), method: method,
            target: path)
    }

    // MARK: Headers

    func addHeaders(_ request: inout HostileRequest, _ random: inout SeededRandom) {
        func add(_ name: String, _ value: String) {
            // Control characters would split the header on a socket; the router never sees them.
            let clean = String(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
            request.headers.append(HostileHeader(name, clean))
        }
        if random.chance(0.15) { add("Prefer", random.pick(HostileVocabulary.prefers)) }
        if random.chance(0.1) { add("If-Match", random.pick(HostileVocabulary.ifMatches)) }
        if random.chance(0.08) { add("If-None-Exist", queryString(&random, type: "Patient", small: true).1) }
        if random.chance(0.05) { add("If-None-Match", random.pick(HostileVocabulary.ifMatches)) }
        if random.chance(0.05) {
            add(
                "If-Modified-Since",
                random.pick(["Sat, 01 Jan 2000 00:00:00 GMT", "yesterday", "", "Sat, 99 Foo 99999 99:99:99 GMT"]))
        }
        if random.chance(0.1) { add("Accept", random.pick(HostileVocabulary.accepts)) }
        if random.chance(0.06) { add("X-FHIR-TENANT-ID", random.pick(HostileVocabulary.tenants)) }
        if random.chance(0.08) { add("Authorization", random.pick(HostileVocabulary.authorizations)) }
        if random.chance(0.03) { add("X-Forwarded-Host", random.pick(["evil.example", "", "a:b:c", "%00"])) }
        if request.body != nil, !request.headers.contains(where: { $0.name == "Content-Type" }) {
            add(
                "Content-Type",
                random.chance(0.85) ? "application/fhir+json" : random.pick(HostileVocabulary.contentTypes))
        }
        // Last, so that a seed's earlier draws (and requests) stay what they were before it.
        // The body goes out with the head, without waiting for the 100.
        if request.body != nil, random.chance(0.1) { add("Expect", random.pick(HostileVocabulary.expectations)) }
    }

    // MARK: Writes, Bundles, patches

    func write(_ random: inout SeededRandom) -> HostileRequest {
        let (kind, body) = HostileBodies.resourceBody(&random)
        let type = random.chance(0.9) ? random.pick(HostileVocabulary.types) : random.pick(HostileVocabulary.oddTypes)
        if random.chance(0.5) {
            let query = random.chance(0.1) ? "?" + queryString(&random, type: type).1 : ""
            return HostileRequest(
                index: 0, kind: "create." + kind, method: "POST",
                target: "\(basePath)/\(TargetEncoding.wireSafe(type))\(query)", body: body)
        }
        let id =
            random.chance(0.6)
            ? random.pick(HostileVocabulary.ids) : TargetEncoding.wireSafe(random.pick(HostileVocabulary.oddIds))
        let target =
            random.chance(0.9)
            ? "\(basePath)/\(TargetEncoding.wireSafe(type))/\(id)"
            : "\(basePath)/\(type)?\(queryString(&random, type: type).1)"
        return HostileRequest(index: 0, kind: "update." + kind, method: "PUT", target: target, body: body)
    }

    func bundle(_ random: inout SeededRandom) -> HostileRequest {
        let entries = random.size(small: 6, large: 400)
        var kinds = entries > 100 ? ["many-entries"] : []
        var parts: [String] = []
        for index in 0..<entries {
            var request: [String] = []
            let method =
                random.chance(0.9)
                ? random.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
                : random.pick(["", "get", "FOO", "null"])
            request.append(#""method":"\#(method)""#)
            let url: String
            switch random.below(6) {
            case 0:
                url =
                    random.pick(HostileVocabulary.types) + "/"
                    + random.pick(HostileVocabulary.ids + HostileVocabulary.oddIds)
            case 1, 2:
                let type = random.pick(HostileVocabulary.types)
                let (kind, query) = queryString(&random, type: type, small: true)
                kinds.append(kind)
                url = "\(type)?\(query)"
            case 3:
                url = random.pick([
                    "", "/", "metadata", "_history", "Patient/p1/$everything", "$export", "Bundle",
                    "http://evil.example/Patient/p1", "../Patient/p1", "Patient/p1/_history/1", "Patient?.=x", "%00",
                ])
            default: url = random.pick(HostileVocabulary.types)
            }
            request.append(#""url":\#(HostileBodies.jsonString(url))"#)
            if random.chance(0.3) {
                kinds.append("ifNoneExist")
                request.append(
                    #""ifNoneExist":\#(HostileBodies.jsonString(queryString(&random, type: "Patient", small: true).1))"#
                )
            }
            if random.chance(0.1) {
                request.append(#""ifMatch":\#(HostileBodies.jsonString(random.pick(HostileVocabulary.ifMatches)))"#)
            }
            var entry: [String] = []
            if random.chance(0.7) {
                entry.append(
                    #""fullUrl":"\#(random.pick(["urn:uuid:a", "urn:uuid:b", "urn:uuid:\(index)", "Patient/p1", "", "urn:uuid:", "http://evil.example/x"]))""#
                )
            }
            if method == "POST" || method == "PUT" || random.chance(0.1) {
                // Hostile bodies in the first few entries only, so that a Bundle stays a few MB.
                let resource =
                    index < 3
                    ? String(decoding: HostileBodies.resourceBody(&random).1, as: UTF8.self)
                    : #"{"resourceType":"Patient","name":[{"family":"Hostile"}]}"#
                entry.append(#""resource":\#(resource)"#)
            }
            if random.chance(0.97) { entry.append(#""request":{\#(request.joined(separator: ","))}"#) }
            parts.append("{" + entry.joined(separator: ",") + "}")
        }
        let type =
            random.chance(0.9)
            ? random.pick(["batch", "transaction"]) : random.pick(["searchset", "", "collection", "Transaction"])
        let body = #"{"resourceType":"Bundle","type":"\#(type)","entry":[\#(parts.joined(separator: ","))]}"#
        let target =
            random.chance(0.9)
            ? basePath : random.pick([basePath + "/", basePath + "/Bundle", basePath + "?_format=json"])
        return HostileRequest(
            index: 0, kind: "bundle." + (kinds.first ?? type), method: "POST", target: target, body: Array(body.utf8))
    }

    func patch(_ random: inout SeededRandom) -> HostileRequest {
        let (kind, body) = HostileBodies.patchBody(&random)
        let type = random.pick(["Patient", "Patient", "Observation", "Organization", "Nope"])
        let id =
            random.chance(0.85)
            ? random.pick(HostileVocabulary.ids) : TargetEncoding.wireSafe(random.pick(HostileVocabulary.oddIds))
        let contentType =
            random.chance(0.85) ? "application/json-patch+json" : random.pick(HostileVocabulary.contentTypes)
        return HostileRequest(
            index: 0, kind: "patch." + kind, method: "PATCH", target: "\(basePath)/\(type)/\(id)",
            headers: [HostileHeader("Content-Type", contentType)], body: Array(body.utf8))
    }
}
