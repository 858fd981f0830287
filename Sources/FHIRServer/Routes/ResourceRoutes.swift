import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// The type- and instance-level interactions: create, read, vread, update, delete, search
/// and history of one resource type.
struct ResourceRoutes {
    /// The stores, reachable only through each request's grant.
    let stores: AuthorizedStores
    let configuration: FHIRServerConfiguration
    let parser: SearchQueryParser

    init(stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration, parser: SearchQueryParser) {
        self.stores = AuthorizedStores(stores, parser: parser)
        self.configuration = configuration
        self.parser = parser
    }

    func add(to group: RouterGroup<FHIRRequestContext>) {
        group.post(":type", use: typeLevel(create))
        group.put(":type", use: typeLevel(conditionalUpdate))
        group.delete(":type", use: typeLevel(conditionalDelete))
        group.get(":type", use: search)
        group.post(":type/_search", use: search)
        group.post(":type/$validate", use: validate)
        group.post(":type/:id/$validate", use: validate)
        group.get(":type/:id/$everything", use: everything)
        group.get(":type/$everything", use: everythingOfAll)
        group.get(":type/_history", use: typeHistory)
        group.get(":type/:id", use: instanceLevel(read))
        group.put(":type/:id", use: instanceLevel(update))
        group.delete(":type/:id", use: instanceLevel(delete))
        group.patch(":type/:id", use: instanceLevel(patch))
        group.get(":type/:id/_history", use: instanceHistory)
        group.get(":type/:id/_history/:version", use: vread)
        group.get(":type/:id/:compartmentType", use: compartmentSearch)
        group.post(":type/:id/:compartmentType/_search", use: compartmentSearch)
    }

    func resourceType(_ context: FHIRRequestContext) throws -> String {
        let type = try context.parameters.require("type")
        guard FHIRResourceType.isKnown(type) else { throw FHIRError.notFound("Unknown resource type '\(type)'") }
        return type
    }

    func resourceId(_ context: FHIRRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard FHIRResourceType.isValidId(id) else {
            throw FHIRError.badRequest("'\(id)' is not a valid resource id (1 to 64 letters, digits, '-' or '.')")
        }
        return id
    }

    /// The version an `If-Match: W/"n"` header expects.
    static func ifMatchVersion(_ request: Request) throws -> Int? {
        guard let header = request.headers[.ifMatch] else { return nil }
        var text = Substring(header.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        text = text.drop(while: { $0 == "\"" })
        while text.last == "\"" { text = text.dropLast() }
        guard let version = Int(text) else { throw FHIRError.badRequest("If-Match must be an ETag such as W/\"3\"") }
        return version
    }

    // MARK: Writes

    @Sendable func create(_ call: TypeCall) async throws -> Response {
        let (request, context, store, type, exchange) = (
            call.request, call.context, call.store, call.type, call.exchange
        )
        _ = try context.access.require(.create, type)
        // Conditional create: If-None-Exist, or criteria in the URL as fhirpy sends them.
        let criteria = request.headers[.ifNoneExist] ?? exchange.criteria
        if criteria != nil { try store.requireCriteria(on: type) }
        let resource = try await exchange.resourceBody(context: context)
        try configuration.validator.validateCreate(resource, type: type)
        // Only an audit source gets here (SecurityMiddleware), and only with security alerts.
        if type == "AuditEvent", context.protectsAuditEvents { try AuditFeed.requireSecurityAlert(resource) }
        guard let criteria else {
            return written(
                try await store.create(resource, type: type), status: .created, exchange: exchange, context: context,
                echoesRequest: true)
        }
        let outcome = try await store.transaction { transaction in
            try await transaction.conditionalCreate(resource, type: type, ifNoneExist: criteria)
        }
        switch outcome {
        case .created(let stored):
            return written(stored, status: .created, exchange: exchange, context: context, echoesRequest: true)
        case .existing(let stored):
            return written(stored, status: .ok, exchange: exchange, context: context, verb: "Found")
        }
    }

    /// `PUT Type?criteria`.
    @Sendable func conditionalUpdate(_ call: TypeCall) async throws -> Response {
        let (request, context, store, type, exchange) = (
            call.request, call.context, call.store, call.type, call.exchange
        )
        guard let criteria = exchange.criteria else {
            throw FHIRError(
                status: 405, code: "not-supported", "PUT needs an id (\(type)/id) or search criteria (\(type)?...)")
        }
        _ = try context.access.require(.update, type)
        try store.requireCriteria(on: type)
        let resource = try await exchange.resourceBody(context: context)
        try configuration.validator.validateCreate(resource, type: type)
        let ifMatch = try Self.ifMatchVersion(request)
        let outcome = try await store.transaction { transaction in
            try await transaction.conditionalUpdate(resource, type: type, criteria: criteria, ifMatch: ifMatch)
        }
        return written(
            outcome.resource, status: outcome.created ? .created : .ok, exchange: exchange, context: context,
            echoesRequest: true)
    }

    /// `DELETE Type?criteria`.
    @Sendable func conditionalDelete(_ call: TypeCall) async throws -> Response {
        let (context, store, type, exchange) = (call.context, call.store, call.type, call.exchange)
        guard let criteria = exchange.criteria else {
            throw FHIRError(
                status: 405, code: "not-supported", "DELETE needs an id (\(type)/id) or search criteria (\(type)?...)")
        }
        _ = try context.access.require(.delete, type)
        try store.requireCriteria(on: type)
        let deleted = try await store.transaction { transaction in
            try await transaction.conditionalDelete(type: type, criteria: criteria)
        }
        var headers = HTTPFields()
        if let deleted { headers[.eTag] = deleted.etag }
        return Response(status: .noContent, headers: headers)
    }

    /// `PATCH Type/id` with a JSON Patch document.
    @Sendable func patch(_ call: InstanceCall) async throws -> Response {
        let (request, context, store, type, id, exchange) = (
            call.request, call.context, call.store, call.type, call.id, call.exchange
        )
        // Applying a patch reveals the current content (the answer, `test` operations): read too.
        _ = try context.access.require(.update, type)
        _ = try context.access.require(.read, type)
        let patch = try await exchange.jsonPatchBody()
        let ifMatch = try Self.ifMatchVersion(request)
        let validator = configuration.validator
        let stored = try await store.transaction { transaction in
            try await transaction.patch(patch, type: type, id: id, ifMatch: ifMatch, validator: validator)
        }
        return written(stored, status: .ok, exchange: exchange, context: context)
    }

    @Sendable func update(_ call: InstanceCall) async throws -> Response {
        let (request, context, store, type, id, exchange) = (
            call.request, call.context, call.store, call.type, call.id, call.exchange
        )
        _ = try context.access.require(.update, type)
        let resource = try await exchange.resourceBody(context: context)
        try configuration.validator.validateUpdate(resource, type: type, id: id)
        let outcome = try await store.update(resource, type: type, id: id, ifMatch: try Self.ifMatchVersion(request))
        return written(
            outcome.resource, status: outcome.created ? .created : .ok, exchange: exchange, context: context,
            echoesRequest: true)
    }

    /// The answer to a create or update, shaped by `Prefer: return=` (the resource by default,
    /// ``FHIRServerConfiguration/defaultReturn``). A resource in the body counts as returned
    /// patient data when it shows what was stored before (a PATCH, a conditional create's
    /// match); not when it `echoesRequest`, the client's own body with its new id and meta, so
    /// that loading patients is not taken for reading them (the exfiltration detector).
    func written(
        _ stored: StoredResource, status: HTTPResponse.Status, exchange: FHIRExchange, context: FHIRRequestContext,
        echoesRequest: Bool = false, verb: String? = nil
    ) -> Response {
        var headers = exchange.versionHeaders(stored)
        headers[.location] = "\(exchange.baseURL)/\(stored.type)/\(stored.id)/_history/\(stored.versionId)"
        switch exchange.returnPreference {
        case .minimal:
            return Response(status: status, headers: headers)
        case .representation:
            if !echoesRequest { context.noteReturnedPatients([stored]) }
            return exchange.json(stored.body ?? "{}", status: status, headers: headers)
        case .operationOutcome:
            let verb = verb ?? (status == .created ? "Created" : "Updated")
            return exchange.json(
                OperationOutcome.information("\(verb) \(stored.type)/\(stored.id) version \(stored.versionId)"),
                status: status, headers: headers)
        }
    }

    @Sendable func delete(_ call: InstanceCall) async throws -> Response {
        let (request, context, store, type, id, exchange) = (
            call.request, call.context, call.store, call.type, call.id, call.exchange
        )
        _ = try context.access.require(.delete, type)
        let deleted = try await store.delete(type: type, id: id, ifMatch: try Self.ifMatchVersion(request))
        var headers = HTTPFields()
        headers[.eTag] = deleted.etag
        if exchange.returnPreference == .operationOutcome {
            return exchange.json(OperationOutcome.information("Deleted \(type)/\(id)"), status: .ok, headers: headers)
        }
        return Response(status: .noContent, headers: headers)
    }

    /// `$validate`: the resource in the body (bare, or as the `resource` parameter of a
    /// Parameters resource) checked as a write would be; 200 with an OperationOutcome either way.
    @Sendable func validate(request: Request, context: FHIRRequestContext) async throws -> Response {
        let type = try resourceType(context)
        // It reads no stored data, but says what a write would: it needs a scope to write the type.
        let access = try (try? context.access.require(.create, type)) ?? context.access.require(.update, type)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        var resource = try await exchange.resourceBody(context: context)
        var parameters: JSONValue?
        if resource["resourceType"]?.stringValue == "Parameters", type != "Parameters" {
            guard
                let inner = resource["parameter"]?.arrayValue?.first(where: { $0["name"]?.stringValue == "resource" })?[
                    "resource"]
            else {
                throw FHIRError.badRequest("$validate takes a resource, or Parameters with a 'resource' parameter")
            }
            parameters = resource
            resource = inner
        }
        let profiles = try ValidateProfileParameters.profiles(query: exchange.query, parameters: parameters)
        var problems = configuration.validator.problems(resource, type: type, profiles: profiles)
        if let id = context.parameters.get("id"), resource["id"]?.stringValue != id {
            problems.append(
                FHIRError.Issue(
                    code: "invalid", diagnostics: "The resource's id is not '\(id)'", expression: ["\(type).id"]))
        }
        // What this token's write would refuse (a patient/ scope and another patient's data).
        do {
            try AccessGuard.checkWrite(
                resource, type: type, id: context.parameters.get("id") ?? resource["id"]?.stringValue, access)
        } catch let error as FHIRError {
            problems += error.issues
        }
        // Valid with warnings (dom-6: no narrative, ...): said first, the warnings after.
        if !problems.contains(where: { $0.severity == "error" || $0.severity == "fatal" }) {
            problems.insert(
                FHIRError.Issue(
                    severity: "information", code: "informational",
                    diagnostics: problems.isEmpty
                        ? "No issues: the \(type) is valid"
                        : "No errors: the \(type) is valid, with \(problems.count) warning(s)"), at: 0)
        }
        let outcome = OperationOutcome.make(problems)
        return exchange.json(outcome, status: .ok)
    }

    // MARK: Reads

    @Sendable func read(_ call: InstanceCall) async throws -> Response {
        let (context, store, type, id, exchange) = (call.context, call.store, call.type, call.id, call.exchange)
        let stored = try await store.read(type: type, id: id)
        context.noteReturnedPatients([stored])
        return exchange.json(stored.body ?? "{}", status: .ok, headers: exchange.versionHeaders(stored))
    }

    @Sendable func vread(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let type = try resourceType(context)
        let id = try resourceId(context)
        let versionText = try context.parameters.require("version")
        guard let version = Int(versionText), version > 0 else {
            throw FHIRError.badRequest("'\(versionText)' is not a version number")
        }
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let stored = try await store.vread(type: type, id: id, version: version)
        context.noteReturnedPatients([stored])
        return exchange.json(stored.body ?? "{}", status: .ok, headers: exchange.versionHeaders(stored))
    }

    @Sendable func search(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let type = try resourceType(context)
        return try await SearchResponder(store: store, configuration: configuration, parser: parser)
            .search(type: type, path: "/\(type)", request: request, context: context)
    }

    @Sendable func typeHistory(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let type = try resourceType(context)
        return try await HistoryResponder(store: store, configuration: configuration, parser: parser)
            .history(type: type, id: nil, path: "/\(type)/_history", request: request, context: context)
    }

    @Sendable func instanceHistory(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let type = try resourceType(context)
        let id = try resourceId(context)
        return try await HistoryResponder(store: store, configuration: configuration, parser: parser)
            .history(type: type, id: id, path: "/\(type)/\(id)/_history", request: request, context: context)
    }
}
