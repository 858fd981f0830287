import FHIR
import Hummingbird

/// What a type-level route (`[base]/Type`) has opened before its handler runs: the request's
/// store (its tenant's, seen through its grant), the resource type from the path (404 when
/// unknown), and the exchange (content negotiation, `Prefer`, the query). Handlers take it as
/// their one typed parameter (see ``ResourceRoutes/typeLevel(_:)``), as Hummingbird's route
/// handlers take decoded parameters, instead of each repeating the same four lines.
struct TypeCall {
    let request: Request
    let context: FHIRRequestContext
    let store: AuthorizedStore
    let type: String
    let exchange: FHIRExchange
}

/// A ``TypeCall`` with the resource id from the path (`[base]/Type/id`, 400 when malformed).
struct InstanceCall {
    let request: Request
    let context: FHIRRequestContext
    let store: AuthorizedStore
    let type: String
    let id: String
    let exchange: FHIRExchange
}

extension ResourceRoutes {
    typealias Handler = @Sendable (Request, FHIRRequestContext) async throws -> Response

    /// `handler` behind the type-level opening, in the order each check answers: the store,
    /// the type, the exchange.
    func typeLevel(_ handler: @escaping @Sendable (TypeCall) async throws -> Response) -> Handler {
        { request, context in
            let store = try await stores.store(for: request, context: context)
            let type = try resourceType(context)
            let exchange = try FHIRExchange(request: request, configuration: configuration)
            return try await handler(
                TypeCall(request: request, context: context, store: store, type: type, exchange: exchange))
        }
    }

    /// `handler` behind the instance-level opening: the store, the type, the id, the exchange.
    func instanceLevel(_ handler: @escaping @Sendable (InstanceCall) async throws -> Response) -> Handler {
        { request, context in
            let store = try await stores.store(for: request, context: context)
            let type = try resourceType(context)
            let id = try resourceId(context)
            let exchange = try FHIRExchange(request: request, configuration: configuration)
            return try await handler(
                InstanceCall(request: request, context: context, store: store, type: type, id: id, exchange: exchange))
        }
    }
}
