import Hummingbird

/// The request context of every FHIR route.
public struct FHIRRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }
}
