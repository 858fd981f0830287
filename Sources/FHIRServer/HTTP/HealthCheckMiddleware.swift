import HTTPTypes
import Hummingbird

/// `GET /healthz`: 200 `ok` while the process answers HTTP, for the probes of a
/// load balancer or an orchestrator (HAProxy's `option httpchk`, Kubernetes' liveness and
/// readiness probes).
///
/// It runs before access control and audit: a probe every few seconds from each of several
/// checkers would otherwise need a token and leave an AuditEvent each time, burying the
/// record accesses. It says nothing but `ok`, reads no store and takes no body.
///
/// It does not ask the database on purpose: every replica shares one, so a database outage
/// would take every replica out of the load balancer at once and clients would get refused
/// connections instead of the servers' own OperationOutcomes.
struct HealthCheckMiddleware: RouterMiddleware {
    typealias Context = FHIRRequestContext
    static let path = "/healthz"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.uri.path == Self.path, request.method == .get else {
            return try await next(request, context)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok\n")))
    }
}
