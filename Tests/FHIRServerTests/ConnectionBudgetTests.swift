import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

// Raw sockets through Glibc (SOCK_STREAM's type, MSG_NOSIGNAL): Linux, where the server is deployed.
#if os(Linux)
    import Glibc

    /// The server's connection budgets on real sockets (issue 13): about 20,000 idle connections,
    /// or connections sending their headers a byte at a time (slowloris), once held every file
    /// handle, after which every request failed.
    @Suite(.serialized) struct ConnectionBudgetTests {
        /// A TCP connection driven byte by byte, as an attacker's client would. Its blocking
        /// calls run on a thread of their own: on the concurrency pool (two threads on a
        /// two-core machine) they held back the server's handlers, and under a full parallel test
        /// run the server answered nothing until a client gave up.
        final class RawConnection: @unchecked Sendable {
            let descriptor: Int32
            /// The server's port: ``peerPort`` should still name it.
            let port: Int

            /// A connection to `port`; `receiveBuffer` shrinks the socket's receive buffer (and so
            /// the window the server may fill while this client reads nothing).
            init(port: Int, receiveBuffer: Int32? = nil) throws {
                // Connected before `self` is whole: a failure closes the descriptor once, here.
                // (deinit runs for an initializer that throws after setting every property, and a
                // second close could end another test's descriptor that took the number.)
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
                if var size = receiveBuffer {
                    setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
                }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard connected == 0 else {
                    close(descriptor)
                    throw POSIXError(.ECONNREFUSED)
                }
                var wait = timeval(tv_sec: 0, tv_usec: 100_000)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
                self.descriptor = descriptor
                self.port = port
            }

            deinit { close(descriptor) }

            /// The port the descriptor is connected to now, or nil: not ``port`` when something
            /// else in the process closed the descriptor and its number was reused, which a test
            /// that waits for the server to close should tell apart from a server that did not.
            var peerPort: Int? {
                var address = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let named = withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
                }
                return named == 0 ? Int(UInt16(bigEndian: address.sin_port)) : nil
            }

            /// The kernel's TCP state of this end (`TCP_INFO`): "established" when the server has
            /// not closed its end, "close-wait" when it has and this end has not read the close.
            /// Tells a server that kept a connection from a client that missed its end.
            var tcpState: String {
                var info = tcp_info()
                var length = socklen_t(MemoryLayout<tcp_info>.size)
                guard getsockopt(descriptor, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else {
                    return "unknown (errno \(errno))"
                }
                let names: [UInt8: String] = [1: "established", 7: "close", 8: "close-wait", 9: "last-ack"]
                return names[info.tcpi_state] ?? "state \(info.tcpi_state)"
            }

            /// Sends `text`; false once the server has closed the connection.
            @discardableResult
            func write(_ text: String) async -> Bool {
                await Self.offPool { self.blockingWrite(text) }
            }

            /// Runs `work`, which blocks, on a new thread.
            static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
                await withCheckedContinuation { continuation in
                    Thread { continuation.resume(returning: work()) }.start()
                }
            }

            func blockingWrite(_ text: String) -> Bool {
                let bytes = Array(text.utf8)
                return bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    == bytes.count
            }

            /// One read of at most `limit` bytes (waiting up to 0.1 s): how many arrived, and
            /// whether the server has closed the connection.
            func readOnce(upTo limit: Int) async -> (count: Int, closed: Bool) {
                await Self.offPool { self.blockingReadOnce(upTo: limit) }
            }

            func blockingReadOnce(upTo limit: Int) -> (count: Int, closed: Bool) {
                var buffer = [UInt8](repeating: 0, count: limit)
                let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                if count == 0 { return (0, true) }
                if count < 0 { return (0, !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) }
                return (count, false)
            }

            /// Reads until the server closes the connection or `seconds` pass: what arrived, and
            /// whether the server closed it.
            func read(for seconds: Double, until stop: @escaping @Sendable (String) -> Bool = { _ in false }) async -> (
                text: String, closed: Bool
            ) {
                await Self.offPool { self.blockingRead(for: seconds, until: stop) }
            }

            func blockingRead(for seconds: Double, until stop: (String) -> Bool) -> (text: String, closed: Bool) {
                let deadline = Date().addingTimeInterval(seconds)
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while Date() < deadline {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                    if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
                    if count < 0 {
                        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                        return (String(decoding: received, as: UTF8.self), true)
                    }
                    received += buffer[0..<count]
                    if stop(String(decoding: received, as: UTF8.self)) { break }
                }
                return (String(decoding: received, as: UTF8.self), false)
            }
        }

        static let metadata = "GET \(basePath)/metadata HTTP/1.1\r\nHost: localhost\r\n\r\n"

        /// The server `caduceus serve` runs (port 0) with `limits`, on a fresh SQLite store. Run
        /// as `serve` runs it, not through the test framework's live mode, which keeps the bind
        /// address of the configuration but not its connection limit.
        static func withServer(
            _ limits: ConnectionLimits, configure: (inout FHIRServerConfiguration) -> Void = { _ in },
            security: FHIRSecurity = .off,
            _ body: @escaping @Sendable (Int) async throws -> Void
        ) async throws {
            let store = try await TestDatabases.makeStore(.sqlite)
            var configuration = FHIRServerConfiguration(connections: limits)
            configure(&configuration)
            let (ports, announce) = AsyncStream.makeStream(of: Int.self)
            let app = FHIRApplication.buildApplication(
                stores: TenantStores(defaultStore: store), configuration: configuration, security: security,
                host: "127.0.0.1", port: 0,
                logger: Logger(label: "connection-budget-test")
            ) { port in announce.yield(port) }
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await app.runService(gracefulShutdownSignals: []) }
                    var iterator = ports.makeAsyncIterator()
                    let port = try #require(await iterator.next())
                    try await body(port)
                    group.cancelAll()
                }
                try await store.close()
            } catch {
                try? await store.close()
                throw error
            }
        }

        static func isResponse(_ text: String) -> Bool { text.contains("\r\n\r\n") && text.hasSuffix("}") }

        @Test func aHalfSentRequestHeadIsClosedAfterTheHeaderTimeout() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(120), headerTimeout: .seconds(1))) {
                port in
                let connection = try RawConnection(port: port)
                let started = Date()
                #expect(await connection.write("GET \(basePath)/metadata HTTP/1.1\r\nHost: localhost\r\n"))
                // Waits up to 100 s: below the 120 s idle timeout, so only the 1 s header timeout can
                // close it in time, with room for a loaded machine to be late (in the full parallel
                // test run it once took over 25 s, with every test of the process sharing two cores).
                let (text, closed) = await connection.read(for: 100)
                #expect(closed && text.isEmpty)
                #expect(Date().timeIntervalSince(started) < 119)
            }
        }

        @Test func aHeadTrickledAByteAtATimeIsClosedWhileItTrickles() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(30), headerTimeout: .seconds(1))) { port in
                let connection = try RawConnection(port: port)
                let started = Date()
                var refused = false
                // Each byte would reset a timer that runs from the last byte; the head's deadline does not move.
                for byte in "GET \(basePath)/metadata HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".utf8
                    + Array(repeating: UInt8(ascii: "a"), count: 200)
                {
                    try await Task.sleep(for: .milliseconds(100))
                    var closed = await !connection.write(String(decoding: [byte], as: UTF8.self))
                    if !closed { closed = await connection.read(for: 0.05).closed }
                    if closed {
                        refused = true
                        break
                    }
                }
                #expect(refused)
                // Well under the other timeout (30 s), loosely: the suite runs in parallel.
                #expect(Date().timeIntervalSince(started) < 20)
            }
        }

        @Test func anIdleConnectionIsClosedAfterTheIdleTimeout() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(1), headerTimeout: .seconds(30))) { port in
                let connection = try RawConnection(port: port)
                let (_, closed) = await connection.read(for: 10)
                #expect(closed)
            }
        }

        @Test func aBodyThatStopsComingIsClosedAfterTheIdleTimeout() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(1), headerTimeout: .seconds(30))) { port in
                let connection = try RawConnection(port: port)
                let started = Date()
                await connection.write(
                    "POST \(basePath)/Patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{\"resource"
                )
                let (_, closed) = await connection.read(for: 10)
                #expect(closed)
                // Well under the other timeout (30 s), loosely: the suite runs in parallel.
                #expect(Date().timeIntervalSince(started) < 20)
            }
        }

        /// A connection that never sends a byte has the header timeout, not the idle timeout
        /// (4,200 silent connections once held newcomers in the backlog for 45 s).
        @Test func aSilentConnectionIsClosedAfterTheHeaderTimeout() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(30), headerTimeout: .seconds(1))) { port in
                let connection = try RawConnection(port: port)
                let started = Date()
                // Waits up to 25 s: below the 30 s idle timeout, so only the 1 s header timeout can
                // close it in time, with room for a loaded machine to be late.
                let (text, closed) = await connection.read(for: 25)
                #expect(closed && text.isEmpty)
                #expect(Date().timeIntervalSince(started) < 29)
            }
        }

        /// Sends `head`, then `piece` every 200 ms, to a server whose body budget is 1 s plus a
        /// second per 1,000 body bytes, until it closes the connection or 15 s pass: whether it
        /// closed, and when.
        static func trickleUntilClosed(head: String, piece: String) async throws -> (closed: Bool, seconds: Double) {
            let limits = ConnectionLimits(
                idleTimeout: .seconds(30), headerTimeout: .seconds(30), bodyTimeout: .seconds(1), minimumBodyRate: 1000)
            let result = TrickleResult()
            try await Self.withServer(limits) { port in
                let connection = try RawConnection(port: port)
                let started = Date()
                await connection.write(head)
                var closed = false
                while !closed, Date().timeIntervalSince(started) < 15 {
                    try await Task.sleep(for: .milliseconds(200))
                    closed = await !connection.write(piece)
                    if !closed { closed = await connection.read(for: 0.05).closed }
                }
                await result.set(closed: closed, seconds: Date().timeIntervalSince(started))
            }
            return await (result.closed, result.seconds)
        }

        actor TrickleResult {
            var closed = false
            var seconds = 0.0
            func set(closed: Bool, seconds: Double) { (self.closed, self.seconds) = (closed, seconds) }
        }

        /// Chunk extensions are framing, not body: sent at many times the minimum rate, with no
        /// body byte at all, they once kept a connection open for ever (second attacker pass).
        @Test func chunkExtensionsDoNotCountAsBody() async throws {
            let (closed, seconds) = try await Self.trickleUntilClosed(
                head:
                    "POST \(basePath)/Patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\n1;x=",
                piece: String(repeating: "a", count: 2000))
            #expect(closed)
            #expect(seconds < 8)
        }

        /// A body sent a byte at a time: each byte is activity, so only the body's own budget
        /// (its timeout plus a second per minimum-rate bytes) ends it.
        @Test func aBodyTrickledAByteAtATimeIsClosedAfterTheBodyTimeout() async throws {
            let (closed, seconds) = try await Self.trickleUntilClosed(
                head:
                    "POST \(basePath)/Patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{",
                piece: " ")
            #expect(closed)
            #expect(seconds < 6)
        }

        /// A body that keeps up the minimum rate goes through although it takes longer than the
        /// body timeout.
        @Test func aBodyKeepingUpTheMinimumRateGoesThrough() async throws {
            let limits = ConnectionLimits(
                idleTimeout: .seconds(30), headerTimeout: .seconds(30), bodyTimeout: .seconds(2),
                minimumBodyRate: 10_000)
            try await Self.withServer(limits) { port in
                let body = Array(
                    #"{"resourceType":"Binary","contentType":"text/plain","data":"\#(String(repeating: "QUJD", count: 20_000))"}"#
                        .utf8)
                let connection = try RawConnection(port: port)
                let started = Date()
                await connection.write(
                    "POST \(basePath)/Binary HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: \(body.count)\r\n\r\n"
                )
                var sent = 0
                while sent < body.count {
                    try await Task.sleep(for: .milliseconds(200))
                    // 20 KB/s (twice the minimum) by the clock: a step late on a loaded machine
                    // sends what is due, so the client's rate does not drop below the minimum.
                    let due = min(body.count, Int(Date().timeIntervalSince(started) * 20_000))
                    #expect(await connection.write(String(decoding: body[sent..<due], as: UTF8.self)))
                    sent = due
                }
                #expect(Date().timeIntervalSince(started) > 3)  // longer than the body timeout
                #expect(
                    await connection.read(for: 10, until: { $0.contains("\r\n\r\n") }).text.hasPrefix("HTTP/1.1 201"))
            }
        }

        /// One address may hold only so many connections; the rest are closed as they come (and
        /// do not count against the server's maximum), and a closed one frees its place.
        @Test func connectionsBeyondThePerAddressMaximumAreClosed() async throws {
            try await Self.withServer(ConnectionLimits(maximumConnections: 4, maximumConnectionsPerAddress: 2)) {
                port in
                var held: [RawConnection] = []
                for _ in 0..<2 {
                    let connection = try RawConnection(port: port)
                    await connection.write(Self.metadata)
                    #expect(await connection.read(for: 10, until: Self.isResponse).text.hasPrefix("HTTP/1.1 200"))
                    held.append(connection)
                }
                for _ in 0..<5 {
                    let refused = try RawConnection(port: port)
                    await refused.write(Self.metadata)
                    let answer = await refused.read(for: 5)
                    #expect(answer.closed && answer.text.isEmpty)
                }
                held.removeFirst()
                try await Task.sleep(for: .milliseconds(300))
                let fourth = try RawConnection(port: port)
                await fourth.write(Self.metadata)
                #expect(await fourth.read(for: 10, until: Self.isResponse).text.hasPrefix("HTTP/1.1 200"))
            }
        }

        /// A request answered before its body is read (413 past the body limit, 401 without a
        /// token) ends its connection after the answer instead of waiting for the rest of a body
        /// nobody will read.
        @Test(arguments: [413, 401])
        func anAnswerGivenBeforeTheBodyEndsTheConnection(status: Int) async throws {
            let verifier = status == 401 ? try await AccessTokenVerifier(hs256Secret: AccessControlTests.secret) : nil
            let limits = ConnectionLimits(idleTimeout: .seconds(30), headerTimeout: .seconds(30))
            try await Self.withServer(
                limits, configure: { $0.maximumBodySize = 1024 }, security: FHIRSecurity(verifier: verifier)
            ) { port in
                let connection = try RawConnection(port: port)
                let started = Date()
                await connection.write(
                    "POST \(basePath)/Patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n"
                        + String(repeating: " ", count: 4000))
                let (text, closed) = await connection.read(for: 15)
                #expect(text.hasPrefix("HTTP/1.1 \(status)") && text.contains("OperationOutcome"))
                #expect(text.lowercased().contains("connection: close"))
                #expect(closed)
                // Well under the other timeout (30 s), loosely: the suite runs in parallel.
                #expect(Date().timeIntervalSince(started) < 20)
            }
        }

        /// The HTTP decoder's refusals (a malformed or oversized head) carry an OperationOutcome
        /// like every other 4xx.
        @Test func aMalformedOrOversizedHeadGetsAnOperationOutcome() async throws {
            try await Self.withServer(ConnectionLimits()) { port in
                for head in [
                    "GET \(basePath)/metadata HTTP/1.1\r\nHost localhost\r\n\r\n",
                    "GET \(basePath)/metadata HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "a", count: 1 << 20))\r\n\r\n",
                ] {
                    let connection = try RawConnection(port: port)
                    await connection.write(head)
                    let (text, closed) = await connection.read(for: 10)
                    #expect(text.hasPrefix("HTTP/1.1 400"))
                    #expect(text.contains(#""resourceType":"OperationOutcome""#))
                    #expect(closed)
                }
            }
        }

        @Test func keptAliveConnectionsServeRequestsAfterPausesShorterThanTheIdleTimeout() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(30), headerTimeout: .seconds(1))) { port in
                let connection = try RawConnection(port: port)
                for _ in 0..<2 {
                    #expect(await connection.write(Self.metadata))
                    let (text, closed) = await connection.read(for: 10, until: Self.isResponse)
                    #expect(text.hasPrefix("HTTP/1.1 200") && !closed)
                    // Longer than the header timeout: a pause between requests is not a slow head.
                    try await Task.sleep(for: .milliseconds(1500))
                }
            }
        }

        @Test func connectionsBeyondTheMaximumWaitUntilOneCloses() async throws {
            try await Self.withServer(ConnectionLimits(maximumConnections: 2)) { port in
                let other = try RawConnection(port: port)
                var first: RawConnection? = try RawConnection(port: port)
                await first?.write(Self.metadata)
                #expect(await first?.read(for: 10, until: Self.isResponse).text.hasPrefix("HTTP/1.1 200") == true)
                // the kernel completes the handshake; the server does not accept it yet
                let waiting = try RawConnection(port: port)
                await waiting.write(Self.metadata)
                #expect(await waiting.read(for: 1, until: Self.isResponse).text.isEmpty)
                first = nil
                #expect(await waiting.read(for: 10, until: Self.isResponse).text.hasPrefix("HTTP/1.1 200"))
                await other.write(Self.metadata)
                #expect(await other.read(for: 10, until: Self.isResponse).text.hasPrefix("HTTP/1.1 200"))
            }
        }

        /// Stores a Binary of `megabytes` (as base64 text) and returns the request that reads it
        /// back and the length of that whole response, read by a fast client.
        static func largeResponse(port: Int, megabytes: Int) async throws -> (request: String, length: Int) {
            let data = String(repeating: "AAAA", count: megabytes << 18)
            let body =
                #"{"resourceType":"Binary","id":"big","contentType":"application/octet-stream","data":"\#(data)"}"#
            let writer = try RawConnection(port: port)
            await writer.write(
                "PUT \(basePath)/Binary/big HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                    + body)
            #expect(await writer.read(for: 30, until: { $0.contains("\r\n\r\n") }).text.hasPrefix("HTTP/1.1 201"))
            let request =
                "GET \(basePath)/Binary/big HTTP/1.1\r\nHost: localhost\r\nAccept: application/fhir+json\r\nConnection: close\r\n\r\n"
            let reader = try RawConnection(port: port)
            await reader.write(request)
            let whole = await reader.read(for: 30)
            #expect(whole.closed && whole.text.utf8.count > megabytes << 20)
            return (request, whole.text.utf8.count)
        }

        /// A client that stops reading its response is closed after the idle timeout, its
        /// response unfinished.
        /// The timeout is 2 s, so that the fast reader of `largeResponse`, not scheduled for a
        /// moment on a loaded machine, is not taken for one that stopped; the staller waits 6 s
        /// more than that for the server's check to run.
        @Test func aClientThatStopsReadingIsClosedAfterTheIdleTimeout() async throws {
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(2), headerTimeout: .seconds(30))) { port in
                let (request, length) = try await Self.largeResponse(port: port, megabytes: 4)
                let staller = try RawConnection(port: port, receiveBuffer: 4096)
                await staller.write(request)
                try await Task.sleep(for: .seconds(8))  // reads nothing: the buffers fill, then the timeout runs
                let stalled = await staller.read(for: 30)
                #expect(stalled.closed)
                #expect(stalled.text.utf8.count < length)
            }
        }

        /// A slow client that keeps reading is not idle, however long its response takes (the
        /// idle timeout once ran from the moment the response was handed over, and cut it off).
        @Test func aSlowClientThatKeepsReadingGetsTheWholeResponse() async throws {
            // The kernel lets the server write again only when half its send buffer (about
            // 1.5 MB here) has drained: at the rate read here, well within the timeout. The timeout
            // is 10 s so that this reader, not scheduled for seconds on a loaded machine, is not
            // taken for one that stopped.
            try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(10), headerTimeout: .seconds(30))) {
                port in
                let (request, length) = try await Self.largeResponse(port: port, megabytes: 12)
                let slow = try RawConnection(port: port, receiveBuffer: 4096)
                await slow.write(request)
                var received = 0
                var closed = false
                let started = Date()
                // The guard only ends a hung test: with a 4 KiB receive buffer a read takes a few KB,
                // so the response takes 25-45 s quiet, and once took over 60 s on a loaded machine.
                while !closed, Date().timeIntervalSince(started) < 180 {
                    let chunk = await slow.readOnce(upTo: 16 << 10)  // at most 1 MB/s
                    received += chunk.count
                    closed = chunk.closed
                    try await Task.sleep(for: .milliseconds(15))
                }
                #expect(received == length)
                #expect(Date().timeIntervalSince(started) > 10)  // longer than the idle timeout
            }
        }

        /// Absolute URLs come from `--public-url` or an allowed Host, never from any Host a client sends.
        @Test func absoluteURLsFollowOnlyAllowedHosts() async throws {
            let limits = ConnectionLimits()
            try await Self.withServer(
                limits,
                configure: {
                    $0.allowedHosts = ["fhir.example.org"]
                    $0.fallbackOrigin = "http://fallback.test:9080"
                }
            ) { (port: Int) async throws in
                func selfLink(host: String) async throws -> String {
                    let connection = try RawConnection(port: port)
                    await connection.write(
                        "GET \(basePath)/Patient HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
                    let text = await connection.read(for: 10).text
                    let body = String(text[(text.range(of: "\r\n\r\n")?.upperBound ?? text.endIndex)...])
                    return (try? JSONParser.parse(body))?["link"]?.arrayValue?.first?["url"]?.stringValue
                        ?? "no link in: \(text)"
                }
                #expect(
                    try await selfLink(host: "evil.example").hasPrefix("http://fallback.test:9080\(basePath)/Patient"))
                #expect(
                    try await selfLink(host: "127.0.0.1.evil.example").hasPrefix(
                        "http://fallback.test:9080\(basePath)/"))
                #expect(
                    try await selfLink(host: "127.0.0.1:\(port)").hasPrefix(
                        "http://127.0.0.1:\(port)\(basePath)/Patient"))
                #expect(
                    try await selfLink(host: "FHIR.example.org:8443").hasPrefix(
                        "http://FHIR.example.org:8443\(basePath)/Patient"))
            }
            try await Self.withServer(limits, configure: { $0.publicURL = "https://fhir.example.org" }) { port in
                let connection = try RawConnection(port: port)
                await connection.write(
                    "GET \(basePath)/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                #expect(await connection.read(for: 10).text.contains("\"https://fhir.example.org\(basePath)/Patient"))
            }
        }
    }
#endif
