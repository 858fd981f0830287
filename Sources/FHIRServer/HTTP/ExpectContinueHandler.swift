import NIOCore
import NIOHTTP1

/// Answers `Expect: 100-continue` with `100 Continue`, so that a client waiting for it sends
/// its body at once.
///
/// Neither NIO nor Hummingbird answers it. curl asks it of every body over 1 MB and then
/// waits a second before sending the body anyway: one second on each large transaction
/// Bundle (5 of the 23 Synthea patients' Bundles, posted with curl, took 1.1 s instead of
/// 0.06-0.11 s).
///
/// No `100` goes out when the answer will not want the body: a `Content-Length` past the
/// largest body accepted (the server answers 413 without reading it), or no body at all. Nor
/// after an answer that closes the connection, nor to an HTTP/1.0
/// request (RFC 9110, 10.1.1: such a server ignores the expectation), nor while an earlier
/// request of the connection is unanswered: its response may be on the wire, and a 100 in
/// the middle of it would corrupt it (the client then waits out its own timeout, as before).
/// The 100 goes out before the request is authorized or routed: an answer given before the
/// body is read (401, 404, 415) still closes the connection, as when the client had sent its
/// body after its own wait (see ``ConnectionWatch/answeredEarly(_:)``).
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let watch: ConnectionWatch
    let maximumBodySize: Int

    init(_ watch: ConnectionWatch, maximumBodySize: Int) {
        self.watch = watch
        self.maximumBodySize = maximumBodySize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), Self.wantsContinue(head, maximumBodySize: maximumBodySize),
            watch.requestsInProgress == 0, !watch.closing
        {
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }

    /// Whether `head` asks for a 100 that the server should give: HTTP/1.1 or later, an
    /// `Expect` of `100-continue` (its only defined value, case-insensitive), and a body
    /// that may be accepted.
    static func wantsContinue(_ head: HTTPRequestHead, maximumBodySize: Int) -> Bool {
        guard head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1) else { return false }
        let expectations = head.headers["expect"].flatMap { $0.split(separator: ",") }
        guard expectations.contains(where: { $0.lowercased().filter { $0 != " " && $0 != "\t" } == "100-continue" })
        else { return false }
        if let length = head.headers.first(name: "content-length") {
            return (Int(length) ?? 0) > 0 && !FHIRExchange.announcesTooLarge(length, maximumBodySize: maximumBodySize)
        }
        return head.headers.contains(name: "transfer-encoding")  // no length and no chunks: no body
    }
}
