import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error into an OperationOutcome with the right status, so that clients never
/// see an HTML page or an empty 500, and nothing a user sends crashes the server.
///
/// It also bounds each request's database statements by the configured time limit, and keeps
/// internals out of 5xx answers: an unexpected error is logged with an incident id and the
/// client gets only that id, never SQL, database messages, file paths or type names.
struct OperationOutcomeMiddleware: RouterMiddleware {
    typealias Context = FHIRRequestContext
    let configuration: FHIRServerConfiguration

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        // NIO writes no body (nor its length) in any answer to CONNECT, so a client could only
        // tell its end when the connection closes: refuse it and close at once.
        if request.method == .connect {
            var response = respond(
                FHIRError(status: 405, code: "not-supported", "CONNECT is not a FHIR interaction"), request: request)
            response.headers[.connection] = "close"
            return response
        }
        do {
            return try await SQLStatementTimeLimit.$current.withValue(configuration.statementTimeLimit) {
                try await next(request, context)
            }
        } catch let error as HTTPError where error.status == .notFound {
            return respond(routeNotFound(request), request: request)
        } catch {
            return respond(Self.outcome(of: error, logger: context.logger), request: request)
        }
    }

    /// What a client may be told about `error`: a ``FHIRError`` below 500 as it is; a stopped
    /// statement as 503 `too-costly`; an unreachable database as 503 `transient`; Hummingbird's 4xx by their message (not their type);
    /// anything else (and a FHIRError 500, which is built from another error's text) logged in
    /// full under a new incident id, answered with only that id. Bundle entries and job
    /// statuses that report an error should use this too.
    static func outcome(of error: any Error, logger: Logger) -> FHIRError {
        switch error {
        case let error as FHIRError where error.status != 500:
            return error
        case let timeout as SQLStatementTimeout:
            return tooSlow(timeout)
        case let unavailable as SQLDatabaseUnavailable:
            // The database is down or changing primary: a 503 the client may retry (after reading
            // back a write whose outcome the message says is unknown), not an incident.
            logger.warning("Database unavailable: \(unavailable)")
            return FHIRError(status: 503, code: "transient", unavailable.detail)
        case let error as any HTTPResponseError where error.status.code < 500:
            let message = (error as? HTTPError)?.body ?? error.status.reasonPhrase
            return FHIRError(status: Int(error.status.code), code: "processing", message)
        default:
            let incident = incidentID()
            logger.error(
                "Internal error, incident \(incident): \(String(reflecting: error))",
                metadata: ["incident": "\(incident)"])
            return FHIRError(
                status: 500, code: "exception",
                "The server failed to answer this request; the operator can find the details in the server log under incident \(incident)"
            )
        }
    }

    /// 503: the database stopped a statement at the time limit. A 5xx rather than a 4xx
    /// because the request was valid and the same search may finish on a less busy server;
    /// `too-costly` tells the client to narrow it.
    static func tooSlow(_ timeout: SQLStatementTimeout) -> FHIRError {
        FHIRError(
            status: 503, code: "too-costly",
            "The search took longer than this server's time limit of \(timeout.limit) for one database statement and was stopped;"
                + " narrow it (more specific parameters, fewer values or chains) and retry")
    }

    /// Twelve hex digits: enough to find one line in a log, nothing about the error.
    static func incidentID() -> String {
        String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12)).lowercased()
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
