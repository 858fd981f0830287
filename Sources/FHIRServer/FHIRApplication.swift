import FHIR
import FHIRStore
import Hummingbird
import Logging

/// Assembles the FHIR API.
public enum FHIRApplication {
    /// The router with every FHIR route under `configuration.basePath`, on one store (tenants
    /// other than the default are refused); usable without a socket in tests through
    /// `app.test(.router)`.
    public static func buildRouter(
        store: any FHIRStore, configuration: FHIRServerConfiguration = .init(), registry: SearchParameterRegistry = .r4
    ) -> Router<FHIRRequestContext> {
        buildRouter(stores: TenantStores(defaultStore: store), configuration: configuration, registry: registry)
    }

    /// The router, choosing each request's store by its `X-FHIR-TENANT-ID`.
    public static func buildRouter(
        stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration = .init(), registry: SearchParameterRegistry = .r4
    ) -> Router<FHIRRequestContext> {
        let router = Router(context: FHIRRequestContext.self)
        router.add(middleware: OperationOutcomeMiddleware(configuration: configuration))
        let parser = SearchQueryParser(
            registry: registry, defaultCount: configuration.defaultPageSize, maximumCount: configuration.maximumPageSize)
        let group = router.group(RouterPath(configuration.basePath.isEmpty ? "/" : configuration.basePath))
        let capabilityStatement = CapabilityStatementBuilder.build(registry: registry, configuration: configuration)
        SystemRoutes(stores: stores, configuration: configuration, parser: parser, capabilityStatement: capabilityStatement)
            .add(to: group)
        // Constant segments such as `$export` win over `:type` in the router's trie.
        ExportRoutes(stores: stores, configuration: configuration, jobs: ExportJobs(directory: configuration.exportDirectory))
            .add(to: group)
        ResourceRoutes(stores: stores, configuration: configuration, parser: parser).add(to: group)
        return router
    }

    /// The HTTP server on `host`:`port`.
    public static func buildApplication(
        stores: any FHIRStoreProvider, configuration: FHIRServerConfiguration, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: buildRouter(stores: stores, configuration: configuration),
            configuration: .init(address: .hostname(host, port: port), serverName: "Caduceus"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
