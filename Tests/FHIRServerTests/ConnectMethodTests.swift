import FHIRServer
import Foundation
import Testing

/// `bench hostile` found CONNECT answered without a body or its length (NIO writes neither in
/// any answer to CONNECT), so a client waited for the connection to close: 10 s per request.
@Suite struct ConnectMethodTests {
    @Test func connectIsRefusedAndTheConnectionClosed() async throws {
        try await ConnectionBudgetTests.withServer(ConnectionLimits(idleTimeout: .seconds(30))) { port in
            let connection = try ConnectionBudgetTests.RawConnection(port: port)
            let started = Date()
            #expect(await connection.write("CONNECT \(basePath)/Patient HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            let (text, closed) = await connection.read(for: 20)
            #expect(text.hasPrefix("HTTP/1.1 405"), "\(text)")
            #expect(text.lowercased().contains("connection: close"), "\(text)")
            // A connection still open names its peer: the server's port if the server kept it.
            #expect(
                closed,
                "open after 20 s; its peer's port now \(connection.peerPort.map(String.init) ?? "none"), the server's \(port); this end's TCP state \(connection.tcpState)"
            )
            #expect(Date().timeIntervalSince(started) < 10)
        }
    }
}
