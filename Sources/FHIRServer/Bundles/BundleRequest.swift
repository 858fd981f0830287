import FHIR

/// One entry of a transaction or batch Bundle, parsed: what to do, to what.
struct BundleRequest {
    enum Method: String { case GET, HEAD, POST, PUT, PATCH, DELETE }

    /// The entry's position in the Bundle, for error locations.
    var index: Int
    var method: Method
    var type: String?
    var id: String?
    /// The query string of a conditional or search URL.
    var query: String?
    var resource: JSONValue?
    var fullUrl: String?
    var ifMatch: Int?
    var ifNoneExist: String?

    /// Where an error in this entry is reported.
    var location: String { "Bundle.entry[\(index)]" }

    /// The order a transaction processes entries in (R4 3.1.0.11.2).
    var processingRank: Int {
        switch method {
        case .DELETE: return 0
        case .POST: return 1
        case .PUT, .PATCH: return 2
        case .GET, .HEAD: return 3
        }
    }

    init(entry: JSONValue, index: Int, baseURL: String) throws {
        self.index = index
        let location = "Bundle.entry[\(index)]"
        guard let request = entry["request"] else {
            throw FHIRError.badRequest("The entry has no request", expression: ["\(location).request"])
        }
        guard let methodText = request["method"]?.stringValue, let method = Method(rawValue: methodText) else {
            throw FHIRError.badRequest(
                "The entry's request.method is missing or unknown", expression: ["\(location).request.method"])
        }
        guard var url = request["url"]?.stringValue, !url.isEmpty else {
            throw FHIRError.badRequest("The entry's request.url is missing", expression: ["\(location).request.url"])
        }
        self.method = method
        if url.hasPrefix(baseURL + "/") { url.removeFirst(baseURL.count + 1) }
        while url.hasPrefix("/") { url.removeFirst() }
        if let question = url.firstIndex(of: "?") {
            query = String(url[url.index(after: question)...])
            url = String(url[..<question])
        }
        let segments = url.split(separator: "/").map(String.init)
        if let first = segments.first {
            guard FHIRResourceType.isKnown(first) else {
                throw FHIRError.badRequest(
                    "Unknown resource type '\(first)' in request.url", expression: ["\(location).request.url"])
            }
            type = first
        }
        if segments.count >= 2 {
            guard FHIRResourceType.isValidId(segments[1]) else {
                throw FHIRError.badRequest(
                    "'\(segments[1])' is not a valid id", expression: ["\(location).request.url"])
            }
            id = segments[1]
        }
        // Version reads (`Type/id/_history/n`) are not supported in Bundles: refused rather
        // than answered with the current version.
        guard segments.count <= 2 else {
            throw FHIRError.badRequest(
                "request.url '\(url)' is not supported in a Bundle", expression: ["\(location).request.url"])
        }
        resource = entry["resource"]
        fullUrl = entry["fullUrl"]?.stringValue
        if let header = request["ifMatch"]?.stringValue {
            let digits = header.filter(\.isNumber)
            guard let version = Int(digits) else {
                throw FHIRError.badRequest(
                    "ifMatch must be an ETag such as W/\"3\"", expression: ["\(location).request.ifMatch"])
            }
            ifMatch = version
        }
        ifNoneExist = request["ifNoneExist"]?.stringValue
        switch method {
        case .POST, .PUT:
            guard resource?.objectValue != nil else {
                throw FHIRError.badRequest("A \(method) entry needs a resource", expression: ["\(location).resource"])
            }
            guard type != nil else {
                throw FHIRError.badRequest("request.url needs a resource type", expression: ["\(location).request.url"])
            }
            if method == .PUT, id == nil, query == nil {
                throw FHIRError.badRequest(
                    "A PUT entry needs Type/id or Type?criteria", expression: ["\(location).request.url"])
            }
        case .PATCH:
            guard resource != nil else {
                throw FHIRError.badRequest(
                    "A PATCH entry needs a Binary or Parameters resource", expression: ["\(location).resource"])
            }
        case .DELETE:
            guard type != nil, id != nil || query != nil else {
                throw FHIRError.badRequest(
                    "A DELETE entry needs Type/id or Type?criteria", expression: ["\(location).request.url"])
            }
        case .GET, .HEAD:
            break
        }
    }
}

extension JSONValue {
    /// Calls `body` with the text of every string `reference` member anywhere in this value
    /// (contained resources included), in document order.
    func forEachReference(_ body: (String) -> Void) {
        switch self {
        case .object(let object):
            for (key, member) in object {
                if key == "reference", let text = member.stringValue {
                    body(text)
                } else {
                    member.forEachReference(body)
                }
            }
        case .array(let items):
            for item in items { item.forEachReference(body) }
        default:
            break
        }
    }
}
