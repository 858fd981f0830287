import FHIR
import FHIRStore
import Hummingbird
import HummingbirdCore
import Logging

/// Access control and audit of the FHIR API; both off by default.
public struct FHIRSecurity: Sendable {
    /// Verifies bearer tokens; `nil` leaves the API open.
    public var verifier: AccessTokenVerifier?
    /// Records one AuditEvent per interaction; `nil` records none.
    public var audit: AuditTrail?
    /// Lets a client presenting this token feed security-alert AuditEvents (with `audit` only).
    public var auditFeed: AuditFeedToken?

    public init(verifier: AccessTokenVerifier? = nil, audit: AuditTrail? = nil, auditFeed: AuditFeedToken? = nil) {
        self.verifier = verifier
        self.audit = audit
        self.auditFeed = auditFeed
    }

    public static let off = FHIRSecurity()
}

/// Assembles the FHIR API.
public enum FHIRApplication {
    /// The router with every FHIR route under `configuration.basePath` (and `GET /healthz`
    /// for load balancers' and orchestrators' probes), on one store (tenants
    /// other than the default are refused); usable without a socket in tests through
    /// `app.test(.router)`.
    public static func buildRouter(
        store: any FHIRStore, configuration: FHIRServerConfiguration = .init(), registry: SearchParameterRegistry = .r4,
        security: FHIRSecurity = .off
    ) -> Router<FHIRRequestContext> {
        buildRouter(
            stores: TenantStores(defaultStore: store), configuration: configuration, registry: registry,
            security: security)
    }

    /// The router, choosing each request's store by its `X-FHIR-TENANT-ID`.
    public static func buildRouter(
        stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration = .init(),
        registry: SearchParameterRegistry = .r4,
        security: FHIRSecurity = .off
    ) -> Router<FHIRRequestContext> {
        FHIRDefinitions.load()
        let router = Router(context: FHIRRequestContext.self)
        let outcomes = OperationOutcomeMiddleware(configuration: configuration)
        // First: a probe needs no token and leaves no AuditEvent.
        router.add(middleware: HealthCheckMiddleware())
        if security.verifier != nil || security.audit != nil {
            router.add(
                middleware: SecurityMiddleware(
                    configuration: configuration, verifier: security.verifier, audit: security.audit,
                    auditFeed: security.auditFeed, outcomes: outcomes))
        }
        router.add(middleware: outcomes)
        let parser = SearchQueryParser(
            registry: registry, defaultCount: configuration.defaultPageSize,
            maximumCount: configuration.maximumPageSize,
            limits: configuration.searchLimits)
        let group = router.group(RouterPath(configuration.basePath.isEmpty ? "/" : configuration.basePath))
        var capabilityStatement = CapabilityStatementBuilder.build(registry: registry, configuration: configuration)
        if security.verifier != nil {
            capabilityStatement = CapabilityStatementBuilder.advertisingSMART(capabilityStatement)
        }
        SystemRoutes(
            stores: stores, configuration: configuration, parser: parser, capabilityStatement: capabilityStatement
        )
        .add(to: group)
        // Constant segments such as `$export` win over `:type` in the router's trie.
        ExportRoutes(
            stores: stores, configuration: configuration,
            jobs: ExportJobs(
                directory: configuration.exportDirectory, retention: configuration.exportRetention,
                maximumJobs: configuration.maximumExportJobs)
        )
        .add(to: group)
        TerminologyRoutes(stores: stores, configuration: configuration, parser: parser).add(to: group)
        ResourceRoutes(stores: stores, configuration: configuration, parser: parser).add(to: group)
        return router
    }

    /// The HTTP server on `host`:`port`, its connections held to `configuration.connections`.
    public static func buildApplication(
        stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration, security: FHIRSecurity = .off,
        host: String, port: Int,
        logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let limits = configuration.connections
        let peers = PeerConnections(maximumPerAddress: limits.maximumConnectionsPerAddress)
        return Application(
            router: buildRouter(stores: stores, configuration: configuration, security: security),
            server: HTTPServerBuilder { responder in
                BudgetedHTTP1Channel(
                    responder: responder, limits: limits, peers: peers, maximumBodySize: configuration.maximumBodySize)
            },
            configuration: .init(
                address: .hostname(host, port: port), serverName: "Caduceus",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.maximumConnections, logger: logger)),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
