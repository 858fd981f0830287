import FHIRServer
import HTTPTypes
import Hummingbird
import Logging

/// Sends requests straight to a FHIR router's responder in this process: no socket, no HTTP
/// parsing, no event loop between client and route. What the in-process benchmarks (`bench
/// fhir`, `bench synthea`, `bench paging`, `bench auth`) measure is therefore the routes, the
/// store and the database, not the network.
///
/// It does what Hummingbird's router test client does (the request's body as one buffer rather
/// than 32 KB parts, a thrown `HTTPResponseError` answered as the server would answer it, any
/// other error as 500), without linking a testing library into a production module.
public struct InProcessFHIRClient: Sendable {
    let responder: any HTTPResponder<FHIRRequestContext>
    let remoteAddress: String?
    let logger: Logger

    /// A client of `router`'s responder; `remoteAddress` is the address the routes (and the
    /// audit trail) see, nil for none.
    public init(router: Router<FHIRRequestContext>, remoteAddress: String? = nil, logger: Logger = Self.quietLogger) {
        self.init(responder: router.buildResponder(), remoteAddress: remoteAddress, logger: logger)
    }

    /// A client of `responder` (a router's, built once and shared by concurrent clients).
    public init(
        responder: any HTTPResponder<FHIRRequestContext>, remoteAddress: String? = nil,
        logger: Logger = Self.quietLogger
    ) {
        self.responder = responder
        self.remoteAddress = remoteAddress
        self.logger = logger
    }

    /// A logger that prints errors only: the benchmarks print their own figures.
    public static var quietLogger: Logger {
        var logger = Logger(label: "caduceus.bench")
        logger.logLevel = .error
        return logger
    }

    /// Sends one request (`uri` is the path and query, as a server would receive it) and
    /// collects the whole answer.
    public func execute(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> InProcessResponse {
        var fields = headers
        if let body { fields[.contentLength] = String(body.readableBytes) }
        let head = HTTPRequest(method: method, scheme: "http", authority: "localhost", path: uri, headerFields: fields)
        let request = Request(head: head, body: RequestBody(buffer: body ?? ByteBuffer()))
        let context = FHIRRequestContext(logger: logger, remoteAddress: remoteAddress)
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            response = Response(status: .internalServerError)
        }
        let collector = ResponseCollector()
        try await response.body.write(collector)
        return InProcessResponse(status: response.status, headers: response.headers, body: collector.body)
    }
}

/// One answer of ``InProcessFHIRClient``: its status, header fields and whole body.
public struct InProcessResponse: Sendable {
    /// The response's status.
    public let status: HTTPResponse.Status
    /// The response's header fields.
    public let headers: HTTPFields
    /// The body, every part the route wrote.
    public let body: ByteBuffer
}

/// Collects a response body's parts into one buffer. A class, because `ResponseBody.write`
/// consumes its writer; one request's body is written by one task, one part after another.
private final class ResponseCollector: ResponseBodyWriter, @unchecked Sendable {
    var body = ByteBuffer()

    func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        body.writeBuffer(&buffer)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
