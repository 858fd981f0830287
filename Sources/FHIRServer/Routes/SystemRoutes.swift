import FHIR
import FHIRStore
import HTTPTypes
import Hummingbird

/// System-level interactions: the CapabilityStatement, search across types, and history.
struct SystemRoutes {
    /// The stores, reachable only through each request's grant.
    let stores: AuthorizedStores
    let configuration: FHIRServerConfiguration
    let parser: SearchQueryParser
    let capabilityStatement: JSONValue

    init(
        stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration, parser: SearchQueryParser,
        capabilityStatement: JSONValue
    ) {
        self.stores = AuthorizedStores(stores, parser: parser)
        self.configuration = configuration
        self.parser = parser
        self.capabilityStatement = capabilityStatement
    }

    func add(to group: RouterGroup<FHIRRequestContext>) {
        group.get("metadata", use: metadata)
        group.get("_history", use: history)
        group.get("_search", use: search)
        group.post("_search", use: search)
        group.get("", use: search)
        group.post("", use: transaction)
    }

    /// A transaction or batch Bundle posted to the base URL.
    @Sendable func transaction(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        // A token without any resource scope can run no entry: refused before its body is read,
        // which such a client could otherwise trickle in to hold the connection.
        if let grant = context.access, grant.scopes.isEmpty {
            throw FHIRError(
                status: 403, code: "forbidden",
                "The access token has no resource scope (such as user/Patient.rs): no Bundle entry could run")
        }
        let bundle = try await exchange.resourceBody(context: context)
        var processor = TransactionProcessor(
            store: store, parser: parser, configuration: configuration, baseURL: exchange.baseURL,
            returnPreference: exchange.returnPreference)
        processor.protectsAuditEvents = context.protectsAuditEvents
        processor.noteReturned = { context.noteReturnedPatients($0) }
        processor.logger = context.logger
        context.auditNote.subtype = bundle["type"]?.stringValue == "batch" ? "batch" : "transaction"
        return exchange.json(try await processor.process(bundle), status: .ok)
    }

    @Sendable func metadata(request: Request, context: FHIRRequestContext) async throws -> Response {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        return exchange.json(capabilityStatement, status: .ok)
    }

    @Sendable func history(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        return try await HistoryResponder(store: store, configuration: configuration, parser: parser)
            .history(type: nil, id: nil, path: "/_history", request: request, context: context)
    }

    @Sendable func search(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        return try await SearchResponder(store: store, configuration: configuration, parser: parser)
            .search(type: nil, path: "", request: request, context: context)
    }
}
