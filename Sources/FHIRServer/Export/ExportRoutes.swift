import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// The Bulk Data routes: kick-off at system, Patient and Group level, status polling,
/// cancellation, and the NDJSON files.
struct ExportRoutes {
    /// The stores, reachable only through each request's grant.
    let stores: AuthorizedStores
    let configuration: FHIRServerConfiguration
    let jobs: ExportJobs

    init(stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration, jobs: ExportJobs) {
        self.stores = AuthorizedStores(stores, parser: SearchQueryParser())
        self.configuration = configuration
        self.jobs = jobs
    }

    static let ndjsonFormats: Set<String> = ["application/fhir+ndjson", "application/ndjson", "ndjson"]

    func add(to group: RouterGroup<FHIRRequestContext>) {
        group.get("$export", use: kickOff)
        group.get(":type/$export", use: kickOff)
        group.get(":type/:id/$export", use: kickOff)
        group.get("$export-poll-status/:job", use: status)
        group.delete("$export-poll-status/:job", use: cancel)
        group.get("$export-file/:job/:file", use: file)
    }

    @Sendable func kickOff(request: Request, context: FHIRRequestContext) async throws -> Response {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let prefer = request.headers[values: .prefer].joined(separator: ",")
        guard prefer.contains("respond-async") else {
            throw FHIRError.badRequest("$export runs asynchronously: send Prefer: respond-async")
        }
        let scope: ExportJobs.Scope
        switch (context.parameters.get("type"), context.parameters.get("id")) {
        case (nil, _): scope = .system
        case ("Patient"?, nil): scope = .patients
        case ("Group"?, let id?):
            guard FHIRResourceType.isValidId(id) else { throw FHIRError.badRequest("'\(id)' is not a valid id") }
            scope = .group(id: id)
        default:
            throw FHIRError(
                status: 405, code: "not-supported", "$export runs at system level, on Patient, or on Group/[id]")
        }
        var types: Set<String>?
        var since: Int64?
        for (name, value) in exchange.query {
            switch name {
            case "_outputFormat":
                guard Self.ndjsonFormats.contains(value) else {
                    throw FHIRError.badRequest("_outputFormat '\(value)' is not supported; use application/fhir+ndjson")
                }
            case "_since":
                guard let range = FHIRDateRange(parsing: value) else {
                    throw FHIRError.badRequest("_since must be an instant")
                }
                since = range.low
            case "_type":
                let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let unknown = names.first(where: { !FHIRResourceType.isKnown($0) }) else {
                    types = (types ?? []).union(names)
                    continue
                }
                throw FHIRError.badRequest("Unknown resource type '\(unknown)' in _type")
            case "_format", "_pretty":
                break
            default:
                throw FHIRError.badRequest("$export does not support the parameter '\(name)'")
            }
        }
        let store = try await stores.store(for: request, context: context)
        if case .group(let id) = scope { _ = try await store.read(type: "Group", id: id) }  // 404 before accepting
        let jobTenant = tenant(request)
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        let origin = String(exchange.baseURL.dropLast(configuration.basePath.count))
        let source = try store.exportSource()
        let id = try await jobs(for: source).start(
            ExportJobs.Request(
                scope: scope, types: types, since: since, url: origin + path, baseURL: exchange.baseURL,
                tenant: jobTenant,
                client: Self.client(context), requiresAccessToken: context.access != nil),
            store: source)
        var headers = HTTPFields()
        headers[.contentLocation] = "\(exchange.baseURL)/$export-poll-status/\(id)"
        return Response(status: .accepted, headers: headers)
    }

    /// Where the jobs of `source`'s tenant are kept: in its database when that is PostgreSQL,
    /// so that every replica finds them; else in this server's memory and disk.
    func jobs(for source: any FHIRStore) -> any ExportJobStore {
        guard let database = SharedExportJobs.database(of: source) else { return jobs }
        return SharedExportJobs(database: database, retention: jobs.retention, maximumJobs: jobs.maximumJobs)
    }

    /// The jobs a poll, cancel or file request may reach (after ``owner(_:)``'s check).
    func jobs(for request: Request, context: FHIRRequestContext) async throws -> any ExportJobStore {
        jobs(for: try await stores.store(for: request, context: context).exportSource())
    }

    /// The tenant a job belongs to: `nil` for the default one, however it was named.
    func tenant(_ request: Request) -> String? {
        request.headers[.tenant].flatMap { try? TenantStores.normalize($0) }.flatMap {
            $0 == TenantStores.defaultTenant ? nil : $0
        }
    }

    /// Who a job belongs to: the token's subject, else its client id; `nil` without access
    /// control. Another client's job answers 404, as a missing one does.
    static func client(_ context: FHIRRequestContext) -> String? {
        context.access.map { $0.agentName ?? "" }
    }

    /// The owner of the jobs a poll, cancel or file request may reach; the grant is checked
    /// here too, not only by SecurityMiddleware's reading of the path.
    static func owner(_ context: FHIRRequestContext) throws -> String? {
        try context.access.requireAllTypes(.read, "Bulk Data export")
        return client(context)
    }

    @Sendable func status(request: Request, context: FHIRRequestContext) async throws -> Response {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let id = try context.parameters.require("job")
        let owner = try Self.owner(context)
        guard
            let state = try await jobs(for: request, context: context).state(
                of: id, tenant: tenant(request), client: owner)
        else {
            throw FHIRError.notFound("No export job '\(id)'")
        }
        switch state {
        case .running(let exported):
            var headers = HTTPFields()
            headers[.xProgress] = "\(exported) resources exported"
            headers[.retryAfter] = "1"
            return Response(status: .accepted, headers: headers)
        case .completed(let manifest):
            var bytes = JSONWriter(pretty: exchange.pretty).bytes(manifest)
            bytes.append(0x0A)
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        case .failed(let error):
            return exchange.json(error.operationOutcome, status: .internalServerError)
        }
    }

    @Sendable func cancel(request: Request, context: FHIRRequestContext) async throws -> Response {
        let id = try context.parameters.require("job")
        let owner = try Self.owner(context)
        guard try await jobs(for: request, context: context).delete(id, tenant: tenant(request), client: owner) else {
            throw FHIRError.notFound("No export job '\(id)'")
        }
        return Response(status: .accepted)
    }

    @Sendable func file(request: Request, context: FHIRRequestContext) async throws -> Response {
        let id = try context.parameters.require("job")
        let name = try context.parameters.require("file")
        let owner = try Self.owner(context)
        guard
            let data = try await jobs(for: request, context: context).fileData(
                name, of: id, tenant: tenant(request), client: owner)
        else {
            throw FHIRError.notFound("No export file '\(name)' for job '\(id)'")
        }
        if context.protectsAuditEvents {
            context.noteReturnedPatients(
                ids: ReturnedPatients.inNDJSON(data, type: String(name.dropLast(".ndjson".count))))
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/fhir+ndjson"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension HTTPField.Name {
    static let xProgress = HTTPField.Name("X-Progress")!
}
