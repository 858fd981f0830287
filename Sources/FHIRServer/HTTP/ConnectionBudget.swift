import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// HTTP/1.1 connections under ``ConnectionLimits``: a deadline for each request's head, and
/// an idle timeout that counts the response's bytes as they reach the client.
///
/// Hummingbird's own idle timeout gives neither. It runs from the last complete request part,
/// so a head sent a byte at a time held the connection for the whole timeout (a server's
/// worth of such connections held every file handle: slowloris); and it runs from the moment
/// a response is handed to the channel, so it cut off a slow client still reading a large
/// response (a 4 MB search page at 300 KB/s was truncated after the timeout).
struct BudgetedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let watch = ConnectionWatch(headerTimeout: TimeAmount(limits.headerTimeout), idleTimeout: TimeAmount(limits.idleTimeout))
        do {
            // First in the pipeline: it sees the raw bytes before the HTTP decoder holds them
            // back, and the response's bytes as they go to the socket.
            try channel.pipeline.syncOperations.addHandler(RawBytesHandler(watch), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let configuration = HTTP1Channel.Configuration(additionalChannelHandlers: [RequestPartsHandler(watch)], idleTimeout: nil)
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
    }
}

/// One connection's clocks, shared by its two handlers; both run on the connection's event
/// loop only, so it needs no lock.
final class ConnectionWatch: @unchecked Sendable {
    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    /// Between requests: the next byte starts a head.
    var awaitingHead = true
    var headDeadline: Scheduled<Void>?
    /// Requests read whose response has not been handed over yet: the server is working.
    var requestsInProgress = 0
    /// The last byte read, or the last slice of a response the socket took.
    var lastActivity = NIODeadline.now()
    var idleCheck: Scheduled<Void>?

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    func touch() { lastActivity = .now() }

    /// Raw bytes arrived: the first of a head starts its deadline.
    func bytesArrived(_ context: ChannelHandlerContext) {
        touch()
        guard awaitingHead, headDeadline == nil else { return }
        let channel = context.channel
        headDeadline = context.eventLoop.scheduleTask(in: headerTimeout) { channel.close(promise: nil) }
    }

    /// A request's head was decoded: its deadline ends, and the server is at work.
    func headDecoded() {
        headDeadline?.cancel()
        headDeadline = nil
        awaitingHead = false
        requestsInProgress += 1
    }

    func requestEnded() { awaitingHead = true }

    func responseEnded() {
        requestsInProgress = max(0, requestsInProgress - 1)
        touch()
    }

    /// Closes the connection once it has been idle for the idle timeout: nothing read and
    /// nothing of a response taken by the socket, while no request is at work or while a
    /// request's body is awaited (a body that stops coming is idle too).
    func scheduleIdleCheck(_ channel: any Channel, at deadline: NIODeadline) {
        idleCheck = channel.eventLoop.scheduleTask(deadline: deadline) { [self] in
            let due = lastActivity + idleTimeout
            let waitsForClient = requestsInProgress == 0 || !awaitingHead
            if waitsForClient, NIODeadline.now() >= due {
                channel.close(promise: nil)
            } else {
                scheduleIdleCheck(channel, at: waitsForClient ? due : .now() + idleTimeout)
            }
        }
    }

    func stop() {
        headDeadline?.cancel()
        idleCheck?.cancel()
    }
}

/// The bytes on the wire: reads start head deadlines and count as activity; a response is
/// written in slices, each counting as activity when the socket has taken it, so that a slow
/// reader is not idle but one that stopped reading is.
final class RawBytesHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    static let slice = 64 << 10
    let watch: ConnectionWatch

    init(_ watch: ConnectionWatch) { self.watch = watch }

    func handlerAdded(context: ChannelHandlerContext) {
        watch.scheduleIdleCheck(context.channel, at: .now() + watch.idleTimeout)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        watch.bytesArrived(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var buffer) = unwrapOutboundIn(data), buffer.readableBytes > 0 else {
            return context.write(data, promise: promise)
        }
        let watch = watch
        while buffer.readableBytes > 0 {
            let part = buffer.readSlice(length: min(Self.slice, buffer.readableBytes))!
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenSuccess { watch.touch() }
            if buffer.readableBytes == 0, let promise { written.futureResult.cascade(to: promise) }
            context.write(wrapOutboundOut(.byteBuffer(part)), promise: written)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.stop()
        context.fireChannelInactive()
    }
}

/// The decoded requests and their responses: a head ends its deadline, and a request is at
/// work from its head to its response's end.
final class RequestPartsHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let watch: ConnectionWatch

    init(_ watch: ConnectionWatch) { self.watch = watch }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: watch.headDecoded()
        case .end: watch.requestEnded()
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { watch.responseEnded() }
        context.write(data, promise: promise)
    }
}
