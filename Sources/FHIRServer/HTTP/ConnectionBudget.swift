import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// HTTP/1.1 connections under ``ConnectionLimits``: Hummingbird's idle timeout, plus a
/// deadline for each request's head, which the idle timeout alone does not give (it runs
/// from the last complete request part, so a head sent a byte at a time holds the
/// connection for the whole idle timeout, and a server's worth of such connections holds
/// every file handle: slowloris).
struct BudgetedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let handlers = HeadDeadline(timeout: TimeAmount(limits.headerTimeout)).handlers
        do {
            // First in the pipeline: it sees the raw bytes before the HTTP decoder holds them back.
            try channel.pipeline.syncOperations.addHandler(handlers.start, position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [handlers.end], idleTimeout: TimeAmount(limits.idleTimeout))
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
    }
}

/// One connection's head deadline, shared by its two handlers; both run on the connection's
/// event loop only, so it needs no lock.
final class HeadDeadline: @unchecked Sendable {
    let timeout: TimeAmount
    /// Between requests: the next byte starts a head.
    var awaitingHead = true
    var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// Raw bytes arrived: the first of a head starts the deadline.
    func bytesArrived(_: ByteBuffer, context: ChannelHandlerContext) {
        guard awaitingHead, timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    /// A request part was decoded: a whole head ends the deadline; the request's end awaits the next head.
    func partDecoded(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head:
            cancel()
            awaitingHead = false
        case .end: awaitingHead = true
        case .body: break
        }
    }

    func cancel() {
        timer?.cancel()
        timer = nil
    }

    /// The handler before the HTTP decoder (raw bytes) and the one after it (request parts).
    var handlers: (start: DeadlineHandler<ByteBuffer>, end: DeadlineHandler<HTTPRequestPart>) {
        (DeadlineHandler(self, HeadDeadline.bytesArrived), DeadlineHandler(self, HeadDeadline.partDecoded))
    }
}

/// Passes what it reads on, after showing it to the connection's ``HeadDeadline``.
final class DeadlineHandler<Part>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Part
    typealias InboundOut = Part

    let deadline: HeadDeadline
    let observe: (HeadDeadline) -> (Part, ChannelHandlerContext) -> Void

    init(_ deadline: HeadDeadline, _ observe: @escaping (HeadDeadline) -> (Part, ChannelHandlerContext) -> Void) {
        self.deadline = deadline
        self.observe = observe
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        observe(deadline)(unwrapInboundIn(data), context)
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.cancel()
        context.fireChannelInactive()
    }
}
