import FHIR
import FHIRStore
import Foundation
import Hummingbird

/// The terminology operations on the code systems and value sets of R4 compiled into the
/// server (``Terminology/r4``): `ValueSet/$expand`, `ValueSet/$validate-code`,
/// `CodeSystem/$lookup` and `CodeSystem/$subsumes`, at type and instance level, by GET or
/// by POST with a Parameters body.
///
/// On R4's content they read no stored data; with access control on, a token needs read or
/// search on the resource type operated on (`ValueSet` or `CodeSystem`) in any context
/// (`patient/`, `user/`, `system/`): the answer is the same public R4 content for everyone.
/// A value set R4 does not have is looked for in the store, through the request's grant
/// (`ValueSet/[id]` needs read, `url=` a search), and its compose evaluated the same way.
struct TerminologyRoutes {
    let stores: AuthorizedStores
    let configuration: FHIRServerConfiguration
    let terminology: Terminology

    /// The most concepts one expansion may reach before paging (r4-core's largest,
    /// c80-doc-typecodes, has 6,401): beyond it the answer is a 422 `too-costly`.
    static let maximumExpansion = 10_000
    /// The longest `filter` text of `$expand`.
    static let maximumFilterLength = 256
    /// The most words a `filter` is split into.
    static let maximumFilterWords = 16

    init(
        stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration, parser: SearchQueryParser,
        terminology: Terminology = .r4
    ) {
        self.stores = AuthorizedStores(stores, parser: parser)
        self.configuration = configuration
        self.terminology = terminology
    }

    func add(to group: RouterGroup<FHIRRequestContext>) {
        for (operation, handler) in [
            ("$expand", expand), ("$validate-code", validateCode), ("$lookup", lookup), ("$subsumes", subsumes),
        ] as [(String, @Sendable (Request, FHIRRequestContext) async throws -> Response)] {
            group.get(RouterPath(":type/\(operation)"), use: handler)
            group.post(RouterPath(":type/\(operation)"), use: handler)
            group.get(RouterPath(":type/:id/\(operation)"), use: handler)
            group.post(RouterPath(":type/:id/\(operation)"), use: handler)
        }
    }

    /// The CapabilityStatement's operations of `type`.
    static func capabilityOperations(for type: String) -> [JSONValue] {
        switch type {
        case "ValueSet":
            return [
                ["name": "expand", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"],
                [
                    "name": "validate-code",
                    "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
                ],
            ]
        case "CodeSystem":
            return [
                ["name": "lookup", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"],
                ["name": "subsumes", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes"],
            ]
        default:
            return []
        }
    }

    /// The operation's resource type, checked and authorized, and the instance id if any.
    func target(_ operation: String, on type: String, context: FHIRRequestContext) throws -> String? {
        let asked = try context.parameters.require("type")
        guard asked == type else {
            guard FHIRResourceType.isKnown(asked) else {
                throw FHIRError.notFound("Unknown resource type '\(asked.prefix(64))'")
            }
            throw FHIRError(
                status: 400, code: "not-supported", "\(operation) is an operation on \(type), not on \(asked)")
        }
        // No patient data is read: any read or search scope on the type will do.
        guard context.access.visibility(type) != nil else { throw AccessGrant.forbidden(.read, type: type) }
        guard let id = context.parameters.get("id") else { return nil }
        guard FHIRResourceType.isValidId(id) else {
            throw FHIRError.badRequest(
                "'\(id.prefix(64))' is not a valid resource id (1 to 64 letters, digits, '-' or '.')")
        }
        return id
    }

    // MARK: ValueSet

    /// The value set an operation is about: the instance, the `url` (with `valueSetVersion`),
    /// or a ValueSet resource posted as `valueSet`; R4's first, then the store's.
    func resolveValueSet(_ parameters: OperationParameters, id: String?, request: Request, context: FHIRRequestContext)
        async throws
        -> TerminologyValueSet
    {
        if let id {
            if let valueSet = terminology.valueSet(id: id) { return valueSet }
            let store = try await stores.store(for: request, context: context)
            let stored: StoredResource
            do {
                stored = try await store.read(type: "ValueSet", id: id)
            } catch let error as FHIRError where error.status == 404 || error.status == 410 {
                throw FHIRError.notFound("ValueSet/\(id) is neither one of R4's value sets nor stored here")
            }
            return try TerminologyValueSet(resource: try JSONParser.parse(stored.body ?? "{}"))
        }
        let version = try parameters.string("valueSetVersion", maximumLength: 64)
        if let url = try parameters.string("url", maximumLength: 1024) {
            if let valueSet = terminology.valueSet(url: url, version: version) { return valueSet }
            let store = try await stores.store(for: request, context: context)
            var criteria: [(name: String, value: String)] = [("url", url)]
            if let version { criteria.append(("version", version)) }
            let query = FHIRQueryString.encode(criteria)
            let found = try await store.reading { try await $0.matches(type: "ValueSet", criteria: query) }
            guard let stored = found.first else {
                throw FHIRError.notFound(
                    "The value set \(url)\(version.map { " version \($0)" } ?? "") is neither one of R4's nor stored here"
                )
            }
            return try TerminologyValueSet(resource: try JSONParser.parse(stored.body ?? "{}"))
        }
        if let resource = try parameters.single("valueSet") {
            return try TerminologyValueSet(resource: resource)
        }
        throw FHIRError.badRequest(
            "\(parameters.operation) needs a url (or a ValueSet instance, or a valueSet resource by POST)")
    }

    @Sendable func expand(request: Request, context: FHIRRequestContext) async throws -> Response {
        let id = try target("$expand", on: "ValueSet", context: context)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try await OperationParameters.read(
            "$expand", request: request, exchange: exchange, context: context)
        try parameters.allowOnly([
            "url", "valueSetVersion", "valueSet", "filter", "count", "offset", "activeOnly", "excludeNested",
            "includeDesignations",
            "displayLanguage",
        ])
        let filter = try parameters.string("filter", maximumLength: Self.maximumFilterLength)
        let count =
            try parameters.integer("count", maximum: configuration.maximumPageSize) ?? configuration.maximumPageSize
        let offset = try parameters.integer("offset", maximum: Self.maximumExpansion) ?? 0
        let activeOnly = try parameters.boolean("activeOnly") ?? false
        let valueSet = try await resolveValueSet(parameters, id: id, request: request, context: context)
        var entries = try valueSet.expand(in: terminology, limit: Self.maximumExpansion)
        if activeOnly { entries.removeAll { $0.inactive } }
        if let filter {
            let words = filter.lowercased().split(whereSeparator: \.isWhitespace).prefix(Self.maximumFilterWords)
            entries = entries.filter { entry in
                let text = "\(entry.code) \(entry.display ?? "")".lowercased()
                return words.allSatisfy { text.contains($0) }
            }
        }
        var used: [JSONValue] = [
            ["name": "offset", "valueInteger": .number(offset)], ["name": "count", "valueInteger": .number(count)],
        ]
        if let filter { used.append(["name": "filter", "valueString": .string(filter)]) }
        if activeOnly { used.append(["name": "activeOnly", "valueBoolean": true]) }
        let page = entries.dropFirst(offset).prefix(count)
        var expansion = JSONObject([
            ("identifier", .string("urn:uuid:\(UUID().uuidString.lowercased())")),
            (
                "timestamp",
                .string(FHIRDateRange.instantString(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)))
            ),
            ("total", .number(entries.count)), ("offset", .number(offset)), ("parameter", .array(used)),
        ])
        if !page.isEmpty { expansion["contains"] = .array(page.map(Self.contains)) }
        let answer = JSONObject([
            ("resourceType", "ValueSet"), ("id", .string(valueSet.id)), ("url", .string(valueSet.url)),
            ("version", .string(valueSet.version)),
            ("name", .string(valueSet.name)), ("status", .string(valueSet.status)), ("expansion", .object(expansion)),
        ])
        return exchange.json(.object(JSONObject(answer.filter { $0.value != "" })), status: .ok)
    }

    static func contains(_ entry: ExpansionEntry) -> JSONValue {
        var object = JSONObject([("system", .string(entry.system))])
        if let version = entry.version, !version.isEmpty { object["version"] = .string(version) }
        if entry.abstract { object["abstract"] = true }
        if entry.inactive { object["inactive"] = true }
        object["code"] = .string(entry.code)
        if let display = entry.display { object["display"] = .string(display) }
        return .object(object)
    }

    @Sendable func validateCode(request: Request, context: FHIRRequestContext) async throws -> Response {
        let id = try target("$validate-code", on: "ValueSet", context: context)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try await OperationParameters.read(
            "$validate-code", request: request, exchange: exchange, context: context)
        try parameters.allowOnly([
            "url", "valueSetVersion", "valueSet", "code", "system", "systemVersion", "display", "coding",
            "codeableConcept", "abstract",
            "displayLanguage", "context", "date",
        ])
        let codings = try Self.codings(parameters)
        let valueSet = try await resolveValueSet(parameters, id: id, request: request, context: context)
        var undecided: [String] = []
        for coding in codings {
            guard let system = coding.system else {
                throw FHIRError.badRequest("$validate-code needs the system of the code '\(coding.code.prefix(64))'")
            }
            let known = terminology.codeSystem(url: system)?.concept(coding.code)
            switch valueSet.contains(system: system, code: coding.code, in: terminology) {
            case true?:
                var result: [JSONValue] = [Self.parameter("result", "valueBoolean", true)]
                if let known { result.append(Self.parameter("display", "valueString", .string(known.display))) }
                if let display = coding.display, let known, display != known.display {
                    let message =
                        "The display '\(display.prefix(256))' is not the display of \(system)#\(coding.code), '\(known.display)'"
                    result.insert(Self.parameter("message", "valueString", .string(message)), at: 1)
                }
                return exchange.json(Self.parameters(result), status: .ok)
            case false?:
                continue
            case nil:
                undecided.append("\(system)#\(coding.code.prefix(64))")
            }
        }
        if !undecided.isEmpty {
            throw FHIRError(
                status: 422, code: "not-supported",
                "Cannot validate \(undecided.joined(separator: ", ")) against \(valueSet.url): the value set draws on concepts (such as all of an external code system, or a filter) this server does not hold"
            )
        }
        let named = codings.map { "\($0.system ?? "")#\($0.code.prefix(64))" }.joined(separator: ", ")
        var message = "\(named) is not in the value set \(valueSet.url)"
        if codings.count == 1, let system = codings[0].system, let codeSystem = terminology.codeSystem(url: system),
            codeSystem.isComplete,
            codeSystem.concept(codings[0].code) == nil
        {
            message = "Unknown code '\(codings[0].code.prefix(64))' in the code system \(system): " + message
        }
        return exchange.json(
            Self.parameters([
                Self.parameter("result", "valueBoolean", false),
                Self.parameter("message", "valueString", .string(message)),
            ]),
            status: .ok)
    }

    /// The codings to check: `code` with `system`, or `coding`, or `codeableConcept`.
    static func codings(_ parameters: OperationParameters) throws -> [(system: String?, code: String, display: String?)]
    {
        let display = try parameters.string("display", maximumLength: 1024)
        if let code = try parameters.string("code", maximumLength: 256) {
            return [(try parameters.string("system", maximumLength: 1024), code, display)]
        }
        if let coding = try parameters.coding("coding") { return [coding] }
        if let codings = try parameters.codeableConcept("codeableConcept") { return codings }
        throw FHIRError.badRequest("\(parameters.operation) needs a code and system, a coding, or a codeableConcept")
    }

    // MARK: Parameters

    static func parameter(_ name: String, _ type: String, _ value: JSONValue) -> JSONValue {
        .object(JSONObject([("name", .string(name)), (type, value)]))
    }

    static func parameters(_ list: [JSONValue]) -> JSONValue {
        .object(JSONObject([("resourceType", "Parameters"), ("parameter", .array(list))]))
    }
}
