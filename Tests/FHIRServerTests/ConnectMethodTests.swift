import FHIRServer
import Foundation
import Testing

/// `bench hostile` found CONNECT answered without a body or its length (NIO writes neither in
/// any answer to CONNECT), so a client waited for the connection to close: 10 s per request.
///
/// The close is awaited up to 100 s, with an idle timeout of 300 s: only the server's own close
/// after its answer can end the connection in time, while a machine loaded by the full parallel
/// test run may be late. There, three runs in three sessions saw the connection still open after
/// 20 s (in one the test's server took a minute to start); the idle timeout, the only other way
/// to the end, is then far away.
@Suite struct ConnectMethodTests {
    @Test func connectIsRefusedAndTheConnectionClosed() async throws {
        try await ConnectionBudgetTests.withServer(ConnectionLimits(idleTimeout: .seconds(300))) { port in
            let connection = try ConnectionBudgetTests.RawConnection(port: port)
            let started = Date()
            #expect(await connection.write("CONNECT \(basePath)/Patient HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            let (text, closed) = await connection.read(for: 100)
            let waited = Date().timeIntervalSince(started)
            #expect(text.hasPrefix("HTTP/1.1 405"), "\(text)")
            #expect(text.lowercased().contains("connection: close"), "\(text)")
            // A connection still open names its peer: the server's port if the server kept it.
            #expect(
                closed,
                "open after \(waited) s; its peer's port now \(connection.peerPort.map(String.init) ?? "none"), the server's \(port); this end's TCP state \(connection.tcpState)"
            )
            if waited > 10 { print("ConnectMethodTests: the server closed the connection after \(waited) s") }
        }
    }
}
