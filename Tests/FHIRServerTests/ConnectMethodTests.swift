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
            #expect(closed)
            #expect(Date().timeIntervalSince(started) < 10)
        }
    }
}
