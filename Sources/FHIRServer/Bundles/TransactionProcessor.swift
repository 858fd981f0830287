import FHIR
import FHIRStore
import Foundation

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
    let returnRepresentation: Bool
    /// The token's grant; `nil` when access control is off.
    var access: AccessGrant? { store.grant }
    /// Refuse entries that write AuditEvents (the server keeps the audit trail), but security
    /// alerts created by an audit source.
    var protectsAuditEvents = false
    /// Told what the response's entries return (GET results, and written or matched resources
    /// with `Prefer: return=representation`), for the exfiltration detector (``AuditRecord/patientsReturned``).
    var noteReturned: (@Sendable ([StoredResource]) -> Void)?

    /// What one entry did, for its response entry.
    struct EntryResult: Sendable {
        var status: String
        var stored: StoredResource?
        /// A resource to return whatever the preference (GET results).
        var resource: String?
        /// The stored resources `resource` shows (for the exfiltration detector).
        var returned: [StoredResource] = []
        var outcome: JSONValue?
    }

    func process(_ bundle: JSONValue) async throws -> String {
        guard bundle["resourceType"]?.stringValue == "Bundle" else {
            throw FHIRError.badRequest("Only a Bundle of type transaction or batch can be posted to the base URL")
        }
        let type = bundle["type"]?.stringValue
        guard type == "transaction" || type == "batch" else {
            throw FHIRError.badRequest("Bundle.type must be transaction or batch, not '\(type ?? "missing")'", expression: ["Bundle.type"])
        }
        let entries = bundle["entry"]?.arrayValue ?? []
        let results: [EntryResult]
        if type == "transaction" {
            let requests = try entries.enumerated().map { try BundleRequest(entry: $1, index: $0, baseURL: baseURL) }
            // Every entry's scope is checked before anything runs: all or nothing.
            for request in requests { try await located(request) { _ = try permitted(request) } }
            results = try await store.transaction { transaction in
                try await self.runTransaction(requests, in: transaction)
            }
        } else {
            results = await runBatch(entries)
        }
        return responseBundle(type: type == "transaction" ? "transaction-response" : "batch-response", results: results)
    }

    // MARK: Transaction

    func runTransaction(_ requests: [BundleRequest], in transaction: AuthorizedTransaction) async throws -> [EntryResult] {
        // 1. Ids for every entry that creates or names a resource, so that references between
        //    entries can be rewritten before anything is written.
        var identities: [String: String] = [:]  // fullUrl -> Type/id
        var plannedIds: [Int: String] = [:]
        var existing: [Int: StoredResource] = [:]
        for request in requests {
            try await located(request) {
                guard let type = request.type else { return }
                switch request.method {
                case .POST:
                    if let criteria = request.ifNoneExist, let match = try await transaction.existing(type: type, criteria: criteria) {
                        existing[request.index] = match
                        plannedIds[request.index] = match.id
                    } else {
                        plannedIds[request.index] = UUID().uuidString.lowercased()
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
        // 2. Rewrite references, then 3. run the entries in processing order.
        var results = [EntryResult?](repeating: nil, count: requests.count)
        for request in requests.sorted(by: { ($0.processingRank, $0.index) < ($1.processingRank, $1.index) }) {
            results[request.index] = try await located(request) {
                var request = request
                if let resource = request.resource, request.method == .POST || request.method == .PUT {
                    request.resource = try await rewriteReferences(in: resource, identities: identities, transaction: transaction)
                }
                if request.method == .POST, let found = existing[request.index] {
                    return EntryResult(status: "200 OK", stored: found)
                }
                return try await run(request, id: plannedIds[request.index], in: transaction)
            }
        }
        return results.map { $0! }
    }

    /// What an entry needs: the permission its method asks on its type, and search (with a
    /// scope not limited to one patient) for its conditional criteria and for the types of
    /// its conditional references (403 when not granted). Checked before the entry touches
    /// any data; the door (``AuthorizedTransaction``) checks again as it runs.
    func permitted(_ request: BundleRequest) throws -> AccessGrant.Access {
        guard let type = request.type else { return .unrestricted }  // refused later as malformed
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
        let granted = try access.require(permission, type)
        // Applying a patch reveals the current content: it needs read as well.
        if request.method == .PATCH { _ = try access.require(.read, type) }
        if (request.method == .POST && request.ifNoneExist != nil) || (request.id == nil && [.PUT, .DELETE].contains(request.method)) {
            try store.requireCriteria(on: type)
        }
        if request.method == .POST || request.method == .PUT, let resource = request.resource {
            for referenced in Self.conditionalReferenceTypes(in: resource) { try store.requireCriteria(on: referenced) }
        }
        return granted
    }

    /// The id a PUT entry writes to: its own, or what its conditional criteria find (a new
    /// one when they find nothing and the body names none).
    func plannedUpdateId(_ request: BundleRequest, type: String, in transaction: AuthorizedTransaction) async throws -> String? {
        if let id = request.id { return id }
        guard let criteria = request.query, let resource = request.resource else { return nil }
        let target = try await transaction.updateTarget(resource, type: type, criteria: criteria)
        return target ?? UUID().uuidString.lowercased()
    }

    /// The types named by conditional references (`Patient?identifier=...`) in `value`.
    static func conditionalReferenceTypes(in value: JSONValue) -> Set<String> {
        switch value {
        case .object(let object):
            var types = Set<String>()
            for (key, member) in object {
                if key == "reference", let text = member.stringValue {
                    if let question = text.firstIndex(of: "?"), FHIRResourceType.isKnown(text[..<question]) { types.insert(String(text[..<question])) }
                } else {
                    types.formUnion(conditionalReferenceTypes(in: member))
                }
            }
            return types
        case .array(let items):
            return items.reduce(into: Set<String>()) { $0.formUnion(conditionalReferenceTypes(in: $1)) }
        default:
            return []
        }
    }

    /// Runs `body`, naming the entry in any error it throws.
    func located<T>(_ request: BundleRequest, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var error as FHIRError {
            error.issues = error.issues.map { issue in
                var issue = issue
                issue.diagnostics = "\(request.location): \(issue.diagnostics)"
                issue.expression = issue.expression.isEmpty
                    ? [request.location] : issue.expression.map { "\(request.location).resource.\($0)" }
                return issue
            }
            throw error
        }
    }

    /// Replaces every `reference` that names an entry's `fullUrl` with `Type/id`, and resolves
    /// conditional references (`Patient?identifier=...`) to the one resource they match.
    func rewriteReferences(in value: JSONValue, identities: [String: String], transaction: AuthorizedTransaction) async throws -> JSONValue {
        switch value {
        case .object(var object):
            for (key, member) in object {
                if key == "reference", let text = member.stringValue {
                    if let target = identities[text] {
                        object[key] = .string(target)
                    } else if let question = text.firstIndex(of: "?"), FHIRResourceType.isKnown(text[..<question]) {
                        let type = String(text[..<question])
                        let criteria = String(text[text.index(after: question)...])
                        let found = try await transaction.matches(type: type, criteria: criteria)
                        guard found.count == 1 else {
                            throw FHIRError.preconditionFailed("The conditional reference '\(text)' matches \(found.count) resources, not one")
                        }
                        object[key] = .string("\(type)/\(found[0].id)")
                    }
                } else if case .object = member {
                    object[key] = try await rewriteReferences(in: member, identities: identities, transaction: transaction)
                } else if case .array = member {
                    object[key] = try await rewriteReferences(in: member, identities: identities, transaction: transaction)
                }
            }
            return .object(object)
        case .array(let items):
            var rewritten: [JSONValue] = []
            rewritten.reserveCapacity(items.count)
            for item in items { rewritten.append(try await rewriteReferences(in: item, identities: identities, transaction: transaction)) }
            return .array(rewritten)
        default:
            return value
        }
    }

    /// One entry's interaction inside `transaction`.
    func run(_ request: BundleRequest, id plannedId: String?, in transaction: AuthorizedTransaction) async throws -> EntryResult {
        _ = try permitted(request)
        switch request.method {
        case .POST:
            let type = request.type!
            let resource = request.resource!
            try configuration.validator.validateCreate(resource, type: type)
            if type == "AuditEvent", protectsAuditEvents { try AuditFeed.requireSecurityAlert(resource) }
            return EntryResult(status: "201 Created", stored: try await transaction.create(resource, type: type, id: plannedId))
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
            return EntryResult(status: outcome.created ? "201 Created" : "200 OK", stored: outcome.resource)
        case .PATCH:
            guard let type = request.type, let id = request.id else {
                throw FHIRError.badRequest("A PATCH entry needs Type/id in request.url")
            }
            let patch = try Self.jsonPatch(from: request.resource!)
            let outcome = try await transaction.patch(patch, type: type, id: id, ifMatch: request.ifMatch, validator: configuration.validator)
            return EntryResult(status: "200 OK", stored: outcome)
        case .DELETE:
            let type = request.type!
            let deleted: StoredResource?
            if let id = request.id {
                deleted = try await transaction.delete(type: type, id: id, ifMatch: request.ifMatch)
            } else {
                deleted = try await transaction.conditionalDelete(type: type, criteria: request.query ?? "")
            }
            return EntryResult(status: "204 No Content", stored: deleted.map { var d = $0; d.body = nil; return d })
        case .GET, .HEAD:
            guard let type = request.type else { throw FHIRError.badRequest("A GET entry needs a resource type") }
            if let id = request.id {
                let stored = try await transaction.read(type: type, id: id)
                return EntryResult(status: "200 OK", stored: stored, resource: stored.body, returned: [stored])
            }
            let query = try parser.parse(
                resourceType: type, parameters: FHIRQueryString.parse(Substring(request.query ?? "")), strict: false)
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
        for (index, entry) in entries.enumerated() {
            do {
                let request = try BundleRequest(entry: entry, index: index, baseURL: baseURL)
                // The entry's scopes before anything it asks runs (criteria and conditional
                // references are searches).
                try await located(request) { _ = try permitted(request) }
                let result = try await store.transaction { transaction in
                    try await self.located(request) {
                        var request = request
                        if let resource = request.resource, request.method == .POST || request.method == .PUT {
                            request.resource = try await self.rewriteReferences(in: resource, identities: [:], transaction: transaction)
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
                results.append(result)
            } catch let error as FHIRError {
                results.append(EntryResult(status: Self.statusLine(error.status), outcome: error.operationOutcome))
            } catch {
                // The error's text may hold SQL or paths: the client gets none of it.
                let failure = FHIRError(status: 500, code: "exception", "Bundle.entry[\(index)]: the server could not run this entry")
                results.append(EntryResult(status: "500 Internal Server Error", outcome: failure.operationOutcome))
            }
        }
        return results
    }

    static func statusLine(_ status: Int) -> String {
        let reasons = [
            200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 410: "Gone", 412: "Precondition Failed", 422: "Unprocessable Entity",
        ]
        return "\(status) \(reasons[status] ?? "Error")"
    }

    // MARK: Response

    /// The response Bundle; every resource it carries is noted as returned (``noteReturned``),
    /// here, where the bodies are written, so that no kind of entry escapes the count.
    func responseBundle(type: String, results: [EntryResult]) -> String {
        var entries: [JSONValue] = []
        var returned: [StoredResource] = []
        for result in results {
            var entry = JSONObject()
            var response = JSONObject([("status", .string(result.status))])
            if let stored = result.stored {
                entry["fullUrl"] = .string("\(baseURL)/\(stored.type)/\(stored.id)")
                if !stored.deleted {
                    response["location"] = .string("\(stored.type)/\(stored.id)/_history/\(stored.versionId)")
                }
                response["etag"] = .string(stored.etag)
                response["lastModified"] = .string(stored.lastUpdatedInstant)
                if returnRepresentation, result.resource == nil, let body = stored.body, let parsed = try? JSONParser.parse(body) {
                    entry["resource"] = parsed
                    returned.append(stored)
                }
            }
            if let resource = result.resource, let parsed = try? JSONParser.parse(resource) {
                entry["resource"] = parsed
                returned += result.returned
            }
            if let outcome = result.outcome { response["outcome"] = outcome }
            entry["response"] = .object(response)
            entries.append(.object(entry))
        }
        if !returned.isEmpty { noteReturned?(returned) }
        let bundle = JSONValue.object(JSONObject([
            ("resourceType", "Bundle"),
            ("id", .string(UUID().uuidString.lowercased())),
            ("type", .string(type)),
            ("entry", .array(entries)),
        ]))
        return JSONWriter().string(bundle)
    }
}
