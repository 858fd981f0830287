import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// Access control and audit, around every FHIR request.
///
/// With a verifier, every request but `GET /metadata` needs `Authorization: Bearer <JWT>`;
/// without one, or with an invalid one, the answer is 401 with `WWW-Authenticate: Bearer`.
/// The token's grant (bound to the request's tenant) is put in the context; routes reach
/// the store only through ``AuthorizedStore``, made from it, which checks the SMART scopes
/// before any query. With an audit trail, every request then leaves exactly one AuditEvent;
/// AuditEvents cannot be changed or deleted, and only an audit source (the audit feed token,
/// or a JWT granting `system/AuditEvent.c`) may create them: 401 for a feed with a wrong
/// token, 405 for anyone else, as for every write of the audit trail.
struct SecurityMiddleware: RouterMiddleware {
    typealias Context = FHIRRequestContext
    let configuration: FHIRServerConfiguration
    let verifier: AccessTokenVerifier?
    let audit: AuditTrail?
    /// Makes a request presenting it an audit source (``AuditFeedToken``).
    let auditFeed: AuditFeedToken?
    let outcomes: OperationOutcomeMiddleware

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let interaction = Interaction(request: request, basePath: configuration.basePath)
        var context = context
        context.protectsAuditEvents = audit != nil
        let writesAuditEvent =
            audit != nil && interaction.type == "AuditEvent" && ["C", "U", "D"].contains(interaction.action)
        // Who asks: the audit feed's token, else a verified JWT (when required).
        let presented = request.headers[.authorization] == nil ? nil : try? Self.bearerToken(request)
        if let auditFeed, let presented, auditFeed.matches(presented) {
            context.access = AuditFeedToken.grant
        } else if let verifier, !interaction.isOpen {
            do {
                let grant = try await verifier.verify(try Self.bearerToken(request))
                try Self.checkTenant(grant, request)
                context.access = grant
            } catch let error as AccessTokenError {
                return try await audited(
                    Self.unauthorized(error.description, request: request, outcomes: outcomes), interaction, request,
                    context)
            }
        } else if writesAuditEvent, auditFeed != nil, request.headers[.authorization] != nil {
            // An open server ignores tokens, except a feed attempt with the wrong one.
            return try await audited(
                Self.unauthorized("The bearer token is not the audit feed token", request: request, outcomes: outcomes),
                interaction, request, context)
        }
        // AuditEvents are never changed or deleted; only an audit source creates them (the
        // route then takes security alerts only, AuditFeed.requireSecurityAlert).
        if writesAuditEvent, interaction.action != "C" || context.access?.isAuditSource != true {
            return try await audited(
                outcomes.respond(AccessGuard.auditEventsAreReadOnly, request: request), interaction, request, context)
        }
        if interaction.operation?.hasPrefix("$export") == true {
            do {
                try context.access.requireAllTypes(.read, "Bulk Data export")
            } catch let error as FHIRError {
                return try await audited(outcomes.respond(error, request: request), interaction, request, context)
            }
        }
        let started = ContinuousClock.now
        let response = try await run(request, context: context, next: next)
        let handled = ContinuousClock.now
        defer { Self.logIfSlow(request, context: context, handled: handled - started, audited: .now - handled) }
        return try await audited(response, interaction, request, context)
    }

    /// A request that took over 2 s is logged with where its time went: in its handler, or
    /// waiting for its AuditEvent's commit.
    static func logIfSlow(_ request: Request, context: Context, handled: Duration, audited: Duration) {
        guard handled + audited >= .seconds(2) else { return }
        context.logger.notice(
            "Slow request \(request.method) \(request.uri.path): \(handled) in its handler, \(audited) for its AuditEvent"
        )
    }

    func audited(_ response: Response, _ interaction: Interaction, _ request: Request, _ context: Context) async throws
        -> Response
    {
        guard let audit else { return response }
        // A success waits for its AuditEvent's commit (with --audit-commit before-response); an
        // error answer does not: it discloses nothing, and in a database outage it is the
        // answer that says so.
        let succeeded = response.status.code < 400
        let stored = await audit.record(
            interaction.record(request: request, response: response, context: context), waitingForCommit: succeeded)
        // Data goes out only with its AuditEvent committed: a read whose event the database could
        // not take in time is answered 503 instead (the event stays queued). A write already
        // carried out is answered as it went, its event still queued.
        guard !stored, audit.commit == .beforeResponse, succeeded, interaction.discloses(request: request) else {
            return response
        }
        let changes = !(request.method == .get || request.method == .head || interaction.subtype.hasPrefix("search"))
        return outcomes.respond(
            FHIRError(
                status: 503, code: "transient",
                "This server could not record the request in its audit trail within \(audit.maximumWait), so its"
                    + " answer is not sent"
                    + (changes ? "; what it asked for was carried out: read it back before retrying" : "; retry later")),
            request: request)
    }

    func run(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as FHIRError {
            return outcomes.respond(error, request: request)
        }
    }

    /// A token is for one tenant: its `tenant` claim (absent: the default tenant) must be the
    /// request's `X-FHIR-TENANT-ID` (absent: the default tenant), so that a token issued for
    /// one tenant's data never opens another's.
    static func checkTenant(_ grant: AccessGrant, _ request: Request) throws {
        func normalized(_ tenant: String?) -> String {
            guard let tenant else { return TenantStores.defaultTenant }
            return (try? TenantStores.normalize(tenant)) ?? tenant
        }
        guard normalized(grant.tenant) == normalized(request.headers[.tenant]) else {
            throw AccessTokenError("The token is not valid for this tenant")
        }
    }

    static func bearerToken(_ request: Request) throws -> String {
        guard let header = request.headers[.authorization] else {
            throw AccessTokenError("An access token is required (Authorization: Bearer ...)")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw AccessTokenError("The Authorization header must be 'Bearer <token>'")
        }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    static func unauthorized(_ message: String, request: Request, outcomes: OperationOutcomeMiddleware) -> Response {
        var response = outcomes.respond(FHIRError(status: 401, code: "login", message), request: request)
        let escaped = message.replacingOccurrences(of: "\"", with: "'")
        response.headers[.wwwAuthenticate] =
            #"Bearer realm="fhir", error="invalid_token", error_description="\#(escaped)""#
        return response
    }
}

/// The FHIR interaction a request is, from its method and path, for audit.
struct Interaction {
    var subtype: String
    var action: String
    var type: String?
    var id: String?
    var version: String?
    var operation: String?
    /// `GET /metadata` needs no token.
    var isOpen = false

    /// Whether the answer hands out stored data: a read, a search (also by POST), a history, a
    /// GET operation (`$everything`, an export's status and files), a batch or transaction
    /// Bundle (whose entries may read).
    func discloses(request: Request) -> Bool {
        request.method == .get || request.method == .head || subtype.hasPrefix("search") || action == "E"
    }

    init(request: Request, basePath: String) {
        let path = request.uri.path
        let relative = path.hasPrefix(basePath) ? path.dropFirst(basePath.count) : Substring(path)
        let segments = relative.split(separator: "/").map(String.init)
        let method = request.method
        let first = segments.first
        if let operation = segments.last(where: { $0.hasPrefix("$") }) {
            subtype = "operation"
            action = "E"
            self.operation = operation
            if let first, FHIRResourceType.isKnown(first) { type = first }
            if segments.count >= 3, let first, FHIRResourceType.isKnown(first) { id = segments[1] }
            return
        }
        switch (method, segments.count) {
        case (.post, 0):
            subtype = "transaction"; action = "E"
        case (_, 1) where first == "metadata":
            subtype = "capabilities"; action = "R"; isOpen = true
        case (_, 1) where first == "_history":
            subtype = "history-system"; action = "R"
        case (_, 1) where first == "_search":
            subtype = "search-system"; action = "E"
        case (.post, 1):
            subtype = "create"; action = "C"; type = first
        case (.put, 1):
            subtype = "update"; action = "U"; type = first
        case (.delete, 1):
            subtype = "delete"; action = "D"; type = first
        case (_, 1):
            subtype = "search-type"; action = "E"; type = first
        case (_, 2) where segments[1] == "_search":
            subtype = "search-type"; action = "E"; type = first
        case (_, 2) where segments[1] == "_history":
            subtype = "history-type"; action = "R"; type = first
        case (.put, 2):
            subtype = "update"; action = "U"; type = first; id = segments[1]
        case (.patch, 2):
            subtype = "patch"; action = "U"; type = first; id = segments[1]
        case (.delete, 2):
            subtype = "delete"; action = "D"; type = first; id = segments[1]
        case (_, 2):
            subtype = "read"; action = "R"; type = first; id = segments[1]
        case (_, 3) where segments[2] != "_history", (_, 4) where segments[3] == "_search":
            // Compartment search, `Patient/123/Observation`: about its owner.
            subtype = "search-type"; action = "E"; type = first; id = segments[1]
        case (_, 3):
            subtype = "history-instance"; action = "R"; type = first; id = segments[1]
        case (_, 4):
            subtype = "vread"; action = "R"; type = first; id = segments[1]; version = segments[3]
        case (_, 0):
            subtype = "search-system"; action = "E"
        default:
            subtype = "operation"; action = "E"
        }
        if let type, !FHIRResourceType.isKnown(type) { self.type = nil; id = nil }
    }

    /// The most query-string bytes one AuditEvent keeps. Every request is audited, a 401
    /// without a token too, so whatever a request may put into its event is bounded: a 60 KB
    /// query once stored an 81 KB AuditEvent per anonymous request, kept forever.
    static let recordedQueryLimit = 2048
    /// The most patients named by the query that one AuditEvent lists.
    static let recordedPatientLimit = 20

    /// The AuditEvent of this interaction, ended with `response`.
    func record(request: Request, response: Response, context: FHIRRequestContext) -> AuditRecord {
        let status = Int(response.status.code)
        var entity: String?
        // Path segments are the client's: only a valid id names an entity.
        if let type, let id, FHIRResourceType.isValidId(id) {
            entity = version.flatMap { Int($0) }.map { "\(type)/\(id)/_history/\($0)" } ?? "\(type)/\(id)"
        }
        // A create names what it made in Location.
        if entity == nil, status < 300, let location = response.headers[.location], let type,
            let range = location.range(of: "/\(type)/")
        {
            entity = String(location[location.index(after: range.lowerBound)...])
        }
        // A refused request (401, 403, any 4xx) names patients in its query or form only by its
        // own say-so: crediting them would let anyone with any token fill any patient's audit
        // trail (and slow that patient's searches). Its query is kept, bounded, for the record.
        let refused = status >= 400
        var patients = refused ? [] : context.auditNote.patients
        if let patient = context.access?.patient { patients.append(patient) }
        if type == "Patient", let id, FHIRResourceType.isValidId(id) { patients.append(id) }
        let urlQuery = request.uri.query.flatMap { $0.isEmpty ? nil : $0 }
        if let urlQuery, !refused {
            patients += AuditRecord.patients(
                searchedIn: FHIRQueryString.parse(Substring(urlQuery)),
                limit: max(0, Self.recordedPatientLimit - patients.count))
        }
        // A `POST _search`'s criteria are its form, then its URL's query, as the search reads them.
        var query = context.auditNote.form.map { form in urlQuery.map { "\(form)&\($0)" } ?? form } ?? urlQuery
        var unique: [String] = []
        var seen = Set<String>()
        for patient in patients where seen.insert(patient).inserted { unique.append(patient) }
        var description =
            operation.map { "\(request.method) \($0.prefix(64))" } ?? (entity == nil && type != nil ? type : nil)
        if let whole = query, whole.utf8.count > Self.recordedQueryLimit {
            query = String(decoding: whole.utf8.prefix(Self.recordedQueryLimit), as: UTF8.self)
            description =
                (description.map { $0 + "; " } ?? "")
                + "query truncated to \(Self.recordedQueryLimit) of \(whole.utf8.count) bytes"
        }
        let grant = context.access
        return AuditRecord(
            subtypes: [.interaction(context.auditNote.subtype ?? subtype)], action: action,
            outcome: AuditRecord.outcome(httpStatus: status),
            outcomeDescription: "HTTP \(status)", agentName: grant?.agentName, agentClientId: grant?.clientId,
            agentReference: grant?.fhirUser,
            agentAddress: context.remoteAddress, entityReference: entity,
            query: (subtype.hasPrefix("search") || subtype.hasPrefix("history") || operation != nil) ? query : nil,
            entityDescription: description,
            patients: unique, tenant: request.headers[.tenant],
            patientsReturned: status < 400 ? context.auditNote.patientsReturned : [])
    }
}
