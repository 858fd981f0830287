import FHIR
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// HTTP/1.1 connections under ``ConnectionLimits``: a deadline for each request's head (from
/// accept for the first), a time-and-rate budget for each body, an idle timeout that counts
/// the response's bytes as they reach the client, and a cap per peer address.
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
    let peers: PeerConnections
    /// The largest body accepted: a request announcing more gets no `100 Continue`.
    let maximumBodySize: Int

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard peers.admit(channel) else {
            logger.debug(
                "Closed a connection beyond the per-address maximum",
                metadata: ["peer": "\(channel.remoteAddress?.ipAddress ?? "?")"])
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        let watch = ConnectionWatch(limits)
        do {
            // First in the pipeline: it sees the raw bytes before the HTTP decoder holds them
            // back, and the response's bytes as they go to the socket.
            try channel.pipeline.syncOperations.addHandler(RawBytesHandler(watch), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestPartsHandler(watch)], idleTimeout: nil)
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
            .flatMapThrowing { value in
                // Behind NIO's decoder, where the request's HTTP version is still known.
                let decoder = try channel.pipeline.syncOperations.handler(
                    type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                try channel.pipeline.syncOperations.addHandler(
                    ExpectContinueHandler(watch, maximumBodySize: maximumBodySize), position: .after(decoder))
                return value
            }
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
    }
}

/// Open connections counted by peer address, so that one address cannot hold them all.
final class PeerConnections: Sendable {
    let maximumPerAddress: Int
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    init(maximumPerAddress: Int) { self.maximumPerAddress = maximumPerAddress }

    /// Counts `channel` against its address until it closes; false (not counted) when the
    /// address already holds the maximum.
    func admit(_ channel: any Channel) -> Bool {
        guard maximumPerAddress > 0, let address = channel.remoteAddress?.ipAddress else { return true }
        let admitted = counts.withLockedValue { counts in
            guard counts[address, default: 0] < maximumPerAddress else { return false }
            counts[address, default: 0] += 1
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { [counts] _ in
                counts.withLockedValue { counts in
                    counts[address, default: 1] -= 1
                    if counts[address] == 0 { counts[address] = nil }
                }
            }
        }
        return admitted
    }
}

/// One connection's clocks, shared by its two handlers; both run on the connection's event
/// loop only, so it needs no lock.
final class ConnectionWatch: @unchecked Sendable {
    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    let minimumBodyRate: Int
    /// How long a connection answered before its request's body was read stays open for
    /// the client to read the answer, with its output already closed.
    static let lingerAfterEarlyAnswer = TimeAmount.seconds(2)
    /// Between requests: the next byte starts a head.
    var awaitingHead = true
    var headDeadline: Scheduled<Void>?
    /// Requests read whose response has not been handed over yet: the server is working.
    var requestsInProgress = 0
    /// The last byte read, or the last slice of a response the socket took.
    var lastActivity = NIODeadline.now()
    var idleCheck: Scheduled<Void>?
    /// The body being read: its bytes so far, and how long the server has waited for them
    /// (only while it asked for more, so a server busy elsewhere does not use up the budget).
    var body: (started: NIODeadline, bytes: Int, waited: TimeAmount)?
    /// When the server last asked for bytes that have not come yet.
    var waitingSince: NIODeadline?
    var bodyCheck: Scheduled<Void>?
    /// NIO's HTTP decoder refused the bytes; Hummingbird answers that with a bare 400.
    var headRefused = false
    /// An answer that ends the connection has been handed over: nothing more is promised on it
    /// (no `100 Continue` to a request sent behind it).
    var closing = false

    init(_ limits: ConnectionLimits) {
        headerTimeout = TimeAmount(limits.headerTimeout)
        idleTimeout = TimeAmount(limits.idleTimeout)
        bodyTimeout = TimeAmount(limits.bodyTimeout)
        minimumBodyRate = limits.minimumBodyRate
    }

    func touch() { lastActivity = .now() }

    /// The connection opened: its first head is due within the header timeout, from now.
    func opened(_ channel: any Channel) {
        headDeadline = channel.eventLoop.scheduleTask(in: headerTimeout) { channel.close(promise: nil) }
        scheduleIdleCheck(channel, at: .now() + idleTimeout)
    }

    /// Raw bytes arrived: the first of a head starts its deadline; a body's count.
    func bytesArrived(_ context: ChannelHandlerContext, count: Int) {
        touch()
        if let current = body {
            let waited = waitingSince.map { .now() - max($0, current.started) } ?? .zero
            // Only decoded body bytes earn time (bodyBytesDecoded): chunk sizes and chunk
            // extensions sent at the minimum rate would otherwise keep a body open for ever.
            body = (current.started, current.bytes, current.waited + waited)
        }
        waitingSince = nil
        guard awaitingHead, headDeadline == nil else { return }
        let channel = context.channel
        headDeadline = context.eventLoop.scheduleTask(in: headerTimeout) { channel.close(promise: nil) }
    }

    /// Bytes of a request's body as decoded: what `minimumBodyRate` counts.
    func bodyBytesDecoded(_ count: Int) {
        if let current = body { body = (current.started, current.bytes + count, current.waited) }
    }

    /// The server asked for more bytes.
    func readRequested() {
        if waitingSince == nil { waitingSince = .now() }
    }

    /// A request's head was decoded: its deadline ends, its body's budget starts, and the
    /// server is at work.
    func headDecoded(_ channel: any Channel) {
        headDeadline?.cancel()
        headDeadline = nil
        awaitingHead = false
        requestsInProgress += 1
        body = (.now(), 0, .zero)
        scheduleBodyCheck(channel, in: bodyTimeout)
    }

    func requestEnded() {
        awaitingHead = true
        body = nil
        bodyCheck?.cancel()
        bodyCheck = nil
    }

    func responseEnded() {
        requestsInProgress = max(0, requestsInProgress - 1)
        touch()
    }

    /// Closes the connection once the body has used up its time: the body timeout plus a
    /// second per `minimumBodyRate` bytes received, counting only the time the server waited.
    func scheduleBodyCheck(_ channel: any Channel, in delay: TimeAmount) {
        bodyCheck = channel.eventLoop.scheduleTask(in: delay) { [self] in
            guard let body else { return }
            let waited = body.waited + (waitingSince.map { .now() - max($0, body.started) } ?? .zero)
            let allowed = bodyTimeout + .nanoseconds(Int64(body.bytes) * 1_000_000_000 / Int64(minimumBodyRate))
            if waited >= allowed {
                channel.close(promise: nil)
            } else {
                scheduleBodyCheck(channel, in: max(allowed - waited, .milliseconds(100)))
            }
        }
    }

    /// Closes the connection once it has been idle for the idle timeout: nothing read and
    /// nothing of a response taken by the socket, while no request is at work or while a
    /// request's body is awaited (a body that stops coming is idle too).
    func scheduleIdleCheck(_ channel: any Channel, at deadline: NIODeadline) {
        idleCheck = channel.eventLoop.scheduleTask(deadline: deadline) { [self] in
            if let since = idleSince, NIODeadline.now() >= since + idleTimeout {
                channel.close(promise: nil)
            } else {
                scheduleIdleCheck(channel, at: (idleSince ?? .now()) + idleTimeout)
            }
        }
    }

    /// Since when the connection waits for its client, or nil while the server is the one
    /// to act. Within a body, only from when the server asked for more of it: a handler slow
    /// to take the body (a loaded machine) holds the reads back, and a client whose bytes
    /// wait in the socket is not idle (a 4 MB PUT was cut off so under a full test run).
    var idleSince: NIODeadline? {
        guard awaitingHead else { return waitingSince.map { max($0, lastActivity) } }
        return requestsInProgress == 0 ? lastActivity : nil
    }

    /// The answer to a request whose body is still unread (401, 413, ...) has been written:
    /// the rest of the body is not wanted, so the connection ends (its output at once, so
    /// that the client sees the end; the rest after a moment to read the answer, since
    /// closing with unread bytes resets the connection).
    func answeredEarly(_ channel: any Channel) {
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: Self.lingerAfterEarlyAnswer) { channel.close(promise: nil) }
    }

    func stop() {
        headDeadline?.cancel()
        idleCheck?.cancel()
        bodyCheck?.cancel()
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
        watch.opened(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        watch.bytesArrived(context, count: unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    /// Reaches the socket only when every handler behind wants more (none holds it back
    /// for backpressure): from here the server waits for the client.
    func read(context: ChannelHandlerContext) {
        watch.readRequested()
        context.read()
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
/// work from its head to its response's end. An answer given before its request's body was
/// read closes the connection; the decoder's bare 400 gets an OperationOutcome.
final class RequestPartsHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let watch: ConnectionWatch
    /// The OperationOutcome replacing the decoder's empty 400, until its end is written.
    var refusalBody: ByteBuffer?
    /// The request is a CONNECT: NIO writes no body nor its length in any answer to one, so
    /// the answer's end is told by closing the connection, once its head is on the wire (the
    /// head is all of it), and by Hummingbird after the answer (the request is marked
    /// `Connection: close`).
    var closesAfterAnswer = false

    init(_ watch: ConnectionWatch) { self.watch = watch }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(var head) where head.method == .connect:
            // Hummingbird ends the connection after answering a request that asks it to: a
            // second way to the close, should the head's write never report (the close after
            // it alone left a CI run's connection open 20 s, twice).
            closesAfterAnswer = true
            head.headerFields[.connection] = "close"
            watch.headDecoded(context.channel)
            return context.fireChannelRead(wrapInboundOut(.head(head)))
        case .head:
            watch.headDecoded(context.channel)
        case .end: watch.requestEnded()
        case .body(let bytes): watch.bodyBytesDecoded(bytes.readableBytes)
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError { watch.headRefused = true }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head where closesAfterAnswer:
            let written = context.eventLoop.makePromise(of: Void.self)
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
            written.futureResult.cascade(to: promise)
            context.writeAndFlush(data, promise: written)
        case .head(var head) where watch.headRefused && head.status == .badRequest && refusalBody == nil:
            let outcome = FHIRError(
                status: 400, code: "structure", "The request's line or headers are malformed or too large"
            ).operationOutcome
            let body = context.channel.allocator.buffer(bytes: JSONWriter().bytes(outcome))
            head.headerFields[.contentType] = FHIRExchange.fhirJSON
            head.headerFields[.contentLength] = String(body.readableBytes)
            refusalBody = body
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .head(var head)
        where watch.requestsInProgress == 1 && !watch.awaitingHead && head.status.kind != .informational:
            head.headerFields[.connection] = "close"  // the body is still coming: see answeredEarly
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end(let trailers):
            if let body = refusalBody {
                refusalBody = nil
                context.write(wrapOutboundOut(.body(body)), promise: nil)
            }
            let early = watch.requestsInProgress == 1 && !watch.awaitingHead
            if early || closesAfterAnswer { watch.closing = true }
            watch.responseEnded()
            guard early else { return context.write(wrapOutboundOut(.end(trailers)), promise: promise) }
            let written = context.eventLoop.makePromise(of: Void.self)
            let (watch, channel) = (watch, context.channel)
            written.futureResult.whenComplete { _ in watch.answeredEarly(channel) }
            written.futureResult.cascade(to: promise)
            context.write(wrapOutboundOut(.end(trailers)), promise: written)
        default:
            context.write(data, promise: promise)
        }
    }
}
