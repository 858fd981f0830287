import FHIR
import FHIRStore
import Foundation
import Logging

/// Runs transaction and batch Bundles posted to the base URL.
///
/// A transaction is all-or-nothing: every entry runs inside one database transaction, in
/// the order R4 prescribes (DELETE, POST, PUT/PATCH, GET), after `fullUrl`s such as
/// `urn:uuid:...` have been given ids and every reference to them rewritten. A batch runs
/// each entry on its own and answers each with its own status.
struct TransactionProcessor {
    /// Every entry reaches data through it, under the request's grant.
    let store: AuthorizedStore
    let parser: SearchQueryParser
    let configuration: FHIRServerConfiguration
    let baseURL: String
    /// What written entries answer with (the request's `Prefer: return=`, else the server's default).
    let returnPreference: ReturnPreference
    /// The token's grant; `nil` when access control is off.
    var access: AccessGrant? { store.grant }
    /// Refuse entries that write AuditEvents (the server keeps the audit trail), but security
    /// alerts created by an audit source.
    var protectsAuditEvents = false
    /// Told what the response's entries return (GET results, and matched or patched resources
    /// with `Prefer: return=representation`; not a create's or update's own body, see
    /// ``EntryResult/echoesRequest``), for the exfiltration detector (``AuditRecord/patientsReturned``).
    var noteReturned: (@Sendable ([StoredResource]) -> Void)?
    /// Where a batch entry's unexpected error is logged under its incident id.
    var logger = Logger(label: "caduceus.bundles")

    /// What one entry did, for its response entry.
    struct EntryResult: Sendable {
        var status: String
        var stored: StoredResource?
        /// A resource to return whatever the preference (GET results).
        var resource: String?
        /// The stored resources `resource` shows (for the exfiltration detector).
        var returned: [StoredResource] = []
        var outcome: JSONValue?
        /// `stored` is the entry's own resource as written (a create or an update), which
        /// shows the client nothing it did not send but its id and meta.
        var echoesRequest = false
    }

    func process(_ bundle: JSONValue) async throws -> String {
        guard bundle["resourceType"]?.stringValue == "Bundle" else {
            throw FHIRError.badRequest("Only a Bundle of type transaction or batch can be posted to the base URL")
        }
        let type = bundle["type"]?.stringValue
        guard type == "transaction" || type == "batch" else {
            throw FHIRError.badRequest(
                "Bundle.type must be transaction or batch, not '\(type ?? "missing")'", expression: ["Bundle.type"])
        }
        let entries = bundle["entry"]?.arrayValue ?? []
        try BundleBudget.requireEntries(entries.count, limit: configuration.maximumBundleEntries)
        let results: [EntryResult]
        if type == "transaction" {
            let requests = try entries.enumerated().map { try BundleRequest(entry: $1, index: $0, baseURL: baseURL) }
            let rules = BundleRulesCheck(bundle, validator: configuration.validator)
            defer { rules.cancel() }
            do {
                // Every entry's scope is checked before anything runs: all or nothing.
                for request in requests { try await located(request) { try permitted(request) } }
                results = try await store.transaction { transaction in
                    try await self.runTransaction(requests, in: transaction, rules: rules)
                }
            } catch {
                throw await rules.precedence(over: error)
            }
        } else {
            try configuration.validator.validateBundleInput(bundle)
            results = await runBatch(entries)
        }
        return responseBundle(type: type == "transaction" ? "transaction-response" : "batch-response", results: results)
    }

    // MARK: Transaction

    /// Runs `requests` in `transaction`; no entry runs before `rules` passed.
    func runTransaction(_ requests: [BundleRequest], in transaction: AuthorizedTransaction, rules: BundleRulesCheck)
        async throws -> [EntryResult]
    {
        // 1. Ids for every entry that creates or names a resource, so that references between
        //    entries can be rewritten before anything is written.
        var identities: [String: String] = [:]  // fullUrl -> Type/id
        var plannedIds: [Int: String] = [:]
        var existing: [Int: StoredResource] = [:]
        var budget = BundleBudget(configuration, returnPreference: returnPreference)
        // Conditional entries search before anything is written: a Bundle that breaks its rules
        // must not get that far.
        if requests.contains(where: { $0.ifNoneExist != nil || ($0.method == .PUT && $0.id == nil) }) {
            try await rules.passed()
        }
        // Every conditional create's and update's lock at once, in sorted order, before any
        // row is locked: taken one by one in entry order, two Bundles could each hold what
        // the other waits for.
        try await transaction.lock(
            names: requests.compactMap { request in
                guard let type = request.type else { return nil }
                if request.method == .POST, let criteria = request.ifNoneExist {
                    return ConditionalInteractions.lockName(type: type, criteria: criteria)
                }
                if request.method == .PUT, request.id == nil, let criteria = request.query {
                    return ConditionalInteractions.lockName(type: type, criteria: criteria)
                }
                return nil
            })
        for request in requests {
            try budget.requireTime()
            try await located(request) {
                guard let type = request.type else { return }
                switch request.method {
                case .POST:
                    if let criteria = request.ifNoneExist,
                        let match = try await transaction.existing(type: type, criteria: criteria)
                    {
                        existing[request.index] = match
                        plannedIds[request.index] = match.id
                    } else {
                        plannedIds[request.index] = ResourceIds.make()
                    }
                case .PUT:
                    plannedIds[request.index] = try await plannedUpdateId(request, type: type, in: transaction)
                default:
                    break
                }
                if let fullUrl = request.fullUrl, let id = plannedIds[request.index] {
                    identities[fullUrl] = "\(type)/\(id)"
                }
            }
        }
        // 2. Rewrite references, then 3. run the entries in processing order: a run of creates
        //    together, made ready on every core ahead of the writer (``runCreates``).
        var results = [EntryResult?](repeating: nil, count: requests.count)
        let ordered = requests.sorted(by: { ($0.processingRank, $0.index) < ($1.processingRank, $1.index) })
        var position = 0
        while position < ordered.count {
            var end = position
            while end < ordered.count, ordered[end].method == .POST, existing[ordered[end].index] == nil { end += 1 }
            if end > position {
                try await runCreates(
                    ordered[position..<end], plannedIds: plannedIds, identities: identities, in: transaction,
                    rules: rules, budget: &budget, results: &results)
                position = end
                continue
            }
            let request = ordered[position]
            position += 1
            try budget.requireTime()
            try await rules.passed()
            let result = try await located(request) {
                var request = request
                if let resource = request.resource, request.method == .POST || request.method == .PUT {
                    request.resource = try await rewriteReferences(
                        in: resource, identities: identities, transaction: transaction)
                }
                if request.method == .POST, let found = existing[request.index] {
                    return EntryResult(status: "200 OK", stored: found)
                }
                return try await run(request, id: plannedIds[request.index], in: transaction)
            }
            try budget.charge(result)
            results[request.index] = result
        }
        try await rules.passed()  // a Bundle without entries
        // Every entry ran or the transaction threw: an entry without a result is a defect here,
        // and it must roll the transaction back, not stop the server.
        return try results.map { result in
            guard let result else { throw CancellationError() }
            return result
        }
    }

    /// What an entry needs: the permission its method asks on its type, and search (with a
    /// scope not limited to one patient) for its conditional criteria and for the types of
    /// its conditional references (403 when not granted). Checked before the entry touches
    /// any data, once per entry, by the transaction and batch paths before ``run``; the door
    /// (``AuthorizedTransaction``) checks again as it runs.
    func permitted(_ request: BundleRequest) throws {
        guard let type = request.type else { return }  // refused later as malformed
        if protectsAuditEvents, type == "AuditEvent", request.method != .GET, request.method != .HEAD,
            request.method != .POST || access?.isAuditSource != true
        {
            throw AccessGuard.auditEventsAreReadOnly
        }
        let permission: SMARTPermission
        switch request.method {
        case .POST: permission = .create
        case .PUT, .PATCH: permission = .update
        case .DELETE: permission = .delete
        case .GET, .HEAD: permission = request.id == nil ? .search : .read
        }
        _ = try access.require(permission, type)
        // Applying a patch reveals the current content: it needs read as well.
        if request.method == .PATCH { _ = try access.require(.read, type) }
        if (request.method == .POST && request.ifNoneExist != nil)
            || (request.id == nil && [.PUT, .DELETE].contains(request.method))
        {
            try store.requireCriteria(on: type)
        }
        if request.method == .POST || request.method == .PUT, let resource = request.resource {
            for referenced in Self.conditionalReferenceTypes(in: resource) { try store.requireCriteria(on: referenced) }
        }
    }

    /// The id a PUT entry writes to: its own, or what its conditional criteria find (a new
    /// one when they find nothing and the body names none).
    func plannedUpdateId(_ request: BundleRequest, type: String, in transaction: AuthorizedTransaction) async throws
        -> String?
    {
        if let id = request.id { return id }
        guard let criteria = request.query, let resource = request.resource else { return nil }
        let target = try await transaction.updateTarget(resource, type: type, criteria: criteria)
        return target ?? ResourceIds.make()
    }

    /// The types named by conditional references (`Patient?identifier=...`) in `value`.
    static func conditionalReferenceTypes(in value: JSONValue) -> Set<String> {
        Set(conditionalReferences(in: value, identities: [:]).compactMap { conditionalParts($0)?.type })
    }

    /// Whether `text` is a conditional reference: `Type?criteria`.
    static func isConditional(_ text: String) -> Bool { conditionalParts(text) != nil }

    /// The type and criteria of a conditional reference, `Type?criteria`; nil for any other
    /// text. Split at the first `?` byte, in one place for every use (finding, permitting and
    /// resolving them): a split by Characters elsewhere would not find the `?` of
    /// `Patient?\u{301}x` that this one finds.
    static func conditionalParts(_ text: String) -> (type: String, criteria: String)? {
        guard let question = text.utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        let type = text[..<question]
        guard FHIRResourceType.isKnown(type) else { return nil }
        return (String(type), String(text[text.utf8.index(after: question)...]))
    }

    /// The conditional references in `value` that name no entry's `fullUrl` (`identities`),
    /// in document order.
    static func conditionalReferences(in value: JSONValue, identities: [String: String]) -> [String] {
        var found: [String] = []
        value.forEachReference { text in
            if identities[text] == nil, isConditional(text) { found.append(text) }
        }
        return found
    }

    /// Runs `body`, naming the entry in any error it throws.
    func located<T>(_ request: BundleRequest, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var error as FHIRError {
            error.issues = error.issues.map { issue in
                var issue = issue
                issue.diagnostics = "\(request.location): \(issue.diagnostics)"
                issue.expression =
                    issue.expression.isEmpty
                    ? [request.location] : issue.expression.map { "\(request.location).resource.\($0)" }
                return issue
            }
            throw error
        }
    }

    /// Replaces every `reference` that names an entry's `fullUrl` with `Type/id`, and resolves
    /// conditional references (`Patient?identifier=...`) to the one resource they match.
    func rewriteReferences(in value: JSONValue, identities: [String: String], transaction: AuthorizedTransaction)
        async throws -> JSONValue
    {
        var resolved: [String: String] = [:]
        for text in Self.conditionalReferences(in: value, identities: identities) where resolved[text] == nil {
            guard let (type, criteria) = Self.conditionalParts(text) else { continue }  // found as one
            let found = try await transaction.matches(type: type, criteria: criteria)
            guard found.count == 1 else {
                throw FHIRError.preconditionFailed(
                    "The conditional reference '\(text)' matches \(found.count) resources, not one")
            }
            resolved[text] = "\(type)/\(found[0].id)"
        }
        return Self.rewritten(value, identities: identities, resolved: resolved)!
    }

    /// `value` with every `reference` that names an entry's `fullUrl` (`identities`) or a
    /// resolved conditional reference (`resolved`) replaced by `Type/id`; `nil` when it holds a
    /// conditional reference not yet resolved. Pure: runs on any task.
    static func rewritten(_ value: JSONValue, identities: [String: String], resolved: [String: String] = [:])
        -> JSONValue?
    {
        switch rewriting(value, identities: identities, resolved: resolved) {
        case .unchanged: return value
        case .changed(let done): return done
        case .conditional: return nil
        }
    }

    /// What ``rewritten(_:identities:resolved:)`` does to one value.
    private enum Rewrite {
        case unchanged
        case changed(JSONValue)
        case conditional
    }

    /// Copies only the objects and arrays on the way to a rewritten reference: copying every
    /// one (each write to a shared object copies it) was most of this walk's cost.
    private static func rewriting(_ value: JSONValue, identities: [String: String], resolved: [String: String])
        -> Rewrite
    {
        switch value {
        case .object(let object):
            var copy: JSONObject?
            for (key, member) in object {
                if key == "reference", let text = member.stringValue {
                    if let target = identities[text] ?? resolved[text] {
                        if copy == nil { copy = object }
                        copy![key] = .string(target)
                    } else if isConditional(text) {
                        return .conditional
                    }
                    continue
                }
                switch member {
                case .object, .array:
                    switch rewriting(member, identities: identities, resolved: resolved) {
                    case .unchanged: break
                    case .conditional: return .conditional
                    case .changed(let done):
                        if copy == nil { copy = object }
                        copy![key] = done
                    }
                default: break
                }
            }
            return copy.map { .changed(.object($0)) } ?? .unchanged
        case .array(let items):
            var copy: [JSONValue]?
            for (offset, item) in items.enumerated() {
                switch rewriting(item, identities: identities, resolved: resolved) {
                case .unchanged: break
                case .conditional: return .conditional
                case .changed(let done):
                    if copy == nil { copy = items }
                    copy![offset] = done
                }
            }
            return copy.map { .changed(.array($0)) } ?? .unchanged
        default:
            return .unchanged
        }
    }

    /// One entry's interaction inside `transaction`.
    func run(_ request: BundleRequest, id plannedId: String?, in transaction: AuthorizedTransaction) async throws
        -> EntryResult
    {
        switch request.method {
        case .POST:
            let type = request.type!
            let resource = request.resource!
            try configuration.validator.validateCreate(resource, type: type)
            if type == "AuditEvent", protectsAuditEvents { try AuditFeed.requireSecurityAlert(resource) }
            return EntryResult(
                status: "201 Created", stored: try await transaction.create(resource, type: type, id: plannedId),
                echoesRequest: true)
        case .PUT:
            let type = request.type!
            var resource = request.resource!
            let id = plannedId ?? request.id!
            if request.id == nil, case .object(var object) = resource, object["id"] == nil {
                object.set("id", .string(id), after: ["resourceType"])  // conditional update names no id
                resource = .object(object)
            }
            try configuration.validator.validateUpdate(resource, type: type, id: id)
            let outcome = try await transaction.update(resource, type: type, id: id, ifMatch: request.ifMatch)
            return EntryResult(
                status: outcome.created ? "201 Created" : "200 OK", stored: outcome.resource, echoesRequest: true)
        case .PATCH:
            guard let type = request.type, let id = request.id else {
                throw FHIRError.badRequest("A PATCH entry needs Type/id in request.url")
            }
            let patch = try Self.jsonPatch(from: request.resource!)
            let outcome = try await transaction.patch(
                patch, type: type, id: id, ifMatch: request.ifMatch, validator: configuration.validator)
            return EntryResult(status: "200 OK", stored: outcome)
        case .DELETE:
            let type = request.type!
            let deleted: StoredResource?
            if let id = request.id {
                deleted = try await transaction.delete(type: type, id: id, ifMatch: request.ifMatch)
            } else {
                deleted = try await transaction.conditionalDelete(type: type, criteria: request.query ?? "")
            }
            return EntryResult(
                status: "204 No Content",
                stored: deleted.map {
                    var d = $0; d.body = nil; return d
                })
        case .GET, .HEAD:
            guard let type = request.type else { throw FHIRError.badRequest("A GET entry needs a resource type") }
            if let id = request.id {
                let stored = try await transaction.read(type: type, id: id)
                return EntryResult(status: "200 OK", stored: stored, resource: stored.body, returned: [stored])
            }
            let parameters = FHIRQueryString.parse(Substring(request.query ?? ""))
            // Stored POST searches and keyset cursors page through their own route only: here
            // they would be dropped silently and answer a different search.
            if let paging = parameters.first(where: {
                $0.name == SearchResponder.storedSearchParameter || $0.name == "_cursor"
            }) {
                throw FHIRError.badRequest(
                    "\(paging.name) is not supported in a Bundle entry: follow the paging link with its own GET")
            }
            let query = try parser.parse(resourceType: type, parameters: parameters, strict: false)
            let page = try await transaction.search(query)
            let bundle = BundleWriter(baseURL: baseURL).searchset(answering: query, with: page, path: "/\(type)")
            return EntryResult(status: "200 OK", resource: bundle, returned: page.resources + page.included)
        }
    }

    /// The JSON Patch a PATCH entry carries as a Binary (base64 `data`).
    static func jsonPatch(from resource: JSONValue) throws -> JSONValue {
        guard resource["resourceType"]?.stringValue == "Binary", let data = resource["data"]?.stringValue,
            let bytes = Data(base64Encoded: data)
        else {
            throw FHIRError.badRequest("A PATCH entry carries its JSON Patch as a Binary resource with base64 data")
        }
        do {
            return try JSONParser.parse(Array(bytes))
        } catch {
            throw FHIRError.badRequest("The PATCH entry's Binary does not hold JSON: \(error)")
        }
    }

    // MARK: Batch

    func runBatch(_ entries: [JSONValue]) async -> [EntryResult] {
        var results: [EntryResult] = []
        var budget = BundleBudget(configuration, returnPreference: returnPreference)
        for (index, entry) in entries.enumerated() {
            if let refusal = budget.refusal(index) {
                results.append(refusal)
                continue
            }
            let method = entry["request"]?["method"]?.stringValue
            let reads = method == "GET" || method == "HEAD"
            do {
                let result = try await runBatchEntry(entry, index: index)
                results.append(budget.admit(result, index: index, wrote: !reads))
            } catch {
                // As the REST API answers: a FHIRError as it is, a stopped statement 503
                // `too-costly`, anything else an incident id (the error's text may hold SQL).
                var failure = OperationOutcomeMiddleware.outcome(of: error, logger: logger)
                if !(error is FHIRError) {
                    failure.issues = failure.issues.map {
                        var issue = $0; issue.diagnostics = "Bundle.entry[\(index)]: \(issue.diagnostics)"; return issue
                    }
                }
                results.append(
                    budget.admit(
                        EntryResult(status: Self.statusLine(failure.status), outcome: failure.operationOutcome),
                        index: index, wrote: false))
            }
        }
        return results
    }

    /// One batch entry on its own. A read runs on a reader connection, so that a slow search
    /// does not hold the single writer (and every write of the server) for its duration.
    func runBatchEntry(_ entry: JSONValue, index: Int) async throws -> EntryResult {
        let request = try BundleRequest(entry: entry, index: index, baseURL: baseURL)
        // The entry's scopes before anything it asks runs (criteria and conditional
        // references are searches).
        try await located(request) { try permitted(request) }
        if request.method == .GET || request.method == .HEAD {
            let read = {
                try await store.reading { transaction in
                    try await self.located(request) { try await self.run(request, id: request.id, in: transaction) }
                }
            }
            // A search waits for its turn before it takes a connection, as over REST.
            return try await request.id == nil ? configuration.searchGate.run(read) : read()
        }
        return try await store.transaction { transaction in
            try await self.located(request) {
                var request = request
                if let resource = request.resource, request.method == .POST || request.method == .PUT {
                    request.resource = try await self.rewriteReferences(
                        in: resource, identities: [:], transaction: transaction)
                }
                if request.method == .POST, let criteria = request.ifNoneExist,
                    let found = try await transaction.existing(type: request.type!, criteria: criteria)
                {
                    return EntryResult(status: "200 OK", stored: found)
                }
                var plannedId = request.id
                if request.method == .PUT, let type = request.type {
                    plannedId = try await self.plannedUpdateId(request, type: type, in: transaction)
                }
                return try await self.run(request, id: plannedId, in: transaction)
            }
        }
    }

    static func statusLine(_ status: Int) -> String {
        let reasons = [
            200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed",
            409: "Conflict", 410: "Gone", 412: "Precondition Failed", 413: "Content Too Large",
            422: "Unprocessable Entity",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
        ]
        return "\(status) \(reasons[status] ?? "Error")"
    }

    // MARK: Response

    /// The response Bundle, written as text: each resource's stored or searchset text is
    /// embedded as it is, not parsed and written again (which cost several times its size).
    /// Every resource it carries is noted as returned (``noteReturned``), here, where the
    /// bodies are written, so that no kind of entry escapes the count.
    func responseBundle(type: String, results: [EntryResult]) -> String {
        let budget = BundleBudget(configuration, returnPreference: returnPreference)
        var out: [UInt8] = []
        var returned: [StoredResource] = []
        out.reserveCapacity(results.reduce(128) { $0 + budget.bytes(of: $1) })
        out.append(
            contentsOf: "{\"resourceType\":\"Bundle\",\"id\":\"\(UUID().uuidString.lowercased())\",\"type\":".utf8)
        JSONWriter.writeString(type, into: &out)
        out.append(contentsOf: ",\"entry\":[".utf8)
        for (index, result) in results.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            var resource = result.resource
            if resource != nil { returned += result.returned }
            if let stored = result.stored {
                out.append(contentsOf: "\"fullUrl\":".utf8)
                JSONWriter.writeString("\(baseURL)/\(stored.type)/\(stored.id)", into: &out)
                out.append(UInt8(ascii: ","))
                if returnPreference == .representation, resource == nil, let body = stored.body {
                    resource = body
                    if !result.echoesRequest { returned.append(stored) }
                }
            }
            if let resource {
                out.append(contentsOf: "\"resource\":".utf8)
                out.append(contentsOf: resource.utf8)
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: "\"response\":{\"status\":".utf8)
            JSONWriter.writeString(result.status, into: &out)
            if let stored = result.stored {
                if !stored.deleted {
                    out.append(contentsOf: ",\"location\":".utf8)
                    JSONWriter.writeString("\(stored.type)/\(stored.id)/_history/\(stored.versionId)", into: &out)
                }
                out.append(contentsOf: ",\"etag\":".utf8)
                JSONWriter.writeString(stored.etag, into: &out)
                out.append(contentsOf: ",\"lastModified\":".utf8)
                JSONWriter.writeString(stored.lastUpdatedInstant, into: &out)
            }
            if let outcome = result.outcome ?? budget.writtenOutcome(result) {
                out.append(contentsOf: ",\"outcome\":".utf8)
                JSONWriter().write(outcome, into: &out)
            }
            out.append(contentsOf: "}}".utf8)
        }
        if !returned.isEmpty { noteReturned?(returned) }
        out.append(contentsOf: "]}".utf8)
        return String(decoding: out, as: UTF8.self)
    }
}
