import FHIR
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error into an OperationOutcome with the right status, so that clients never
/// see an HTML page or an empty 500, and nothing a user sends crashes the server.
struct OperationOutcomeMiddleware: RouterMiddleware {
    typealias Context = FHIRRequestContext
    let configuration: FHIRServerConfiguration

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as FHIRError {
            return respond(error, request: request)
        } catch let error as HTTPError where error.status == .notFound {
            return respond(routeNotFound(request), request: request)
        } catch let error as any HTTPResponseError {
            return respond(FHIRError(status: Int(error.status.code), code: "processing", "\(error)"), request: request)
        } catch {
            context.logger.error("Unexpected error: \(error)")
            return respond(FHIRError(status: 500, code: "exception", "Internal error: \(error)"), request: request)
        }
    }

    /// A path that names a resource type but not this method is a 405; anything else a 404.
    func routeNotFound(_ request: Request) -> FHIRError {
        let path = request.uri.path
        guard path.hasPrefix(configuration.basePath) else { return .notFound("No FHIR endpoint at \(path)") }
        let segments = path.dropFirst(configuration.basePath.count).split(separator: "/")
        if let first = segments.first, !first.hasPrefix("_"), first != "metadata", !FHIRResourceType.isKnown(first) {
            return .notFound("Unknown resource type '\(first)'")
        }
        if segments.count <= 4 {
            return FHIRError(status: 405, code: "not-supported", "\(request.method) is not supported on \(path)")
        }
        return .notFound("No FHIR endpoint at \(path)")
    }

    func respond(_ error: FHIRError, request: Request) -> Response {
        let pretty = request.uri.queryParameters.get("_pretty") == "true"
        var bytes = JSONWriter(pretty: pretty).bytes(error.operationOutcome)
        if pretty { bytes.append(0x0A) }
        var headers = HTTPFields()
        headers[.contentType] = FHIRExchange.fhirJSON
        return Response(
            status: HTTPResponse.Status(code: error.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
