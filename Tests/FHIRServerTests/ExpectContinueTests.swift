import FHIRServer
import Foundation
import Testing

/// curl asks `Expect: 100-continue` of every body over 1 MB and, unanswered, waits a second
/// before sending it: five of the 23 Synthea Bundles took 1.1 s each instead of about 0.1 s.
@Suite struct ExpectContinueTests {
    static let patient = #"{"resourceType":"Patient","name":[{"family":"Continue"}]}"#

    static func head(version: String = "HTTP/1.1", length: Int, expect: String = "100-continue") -> String {
        "POST \(basePath)/Patient \(version)\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\n"
            + "Content-Length: \(length)\r\nExpect: \(expect)\r\n\r\n"
    }

    @Test func aBodyAwaitingContinueIsAskedForAndStored() async throws {
        try await ConnectionBudgetTests.withServer(ConnectionLimits(idleTimeout: .seconds(30))) { port in
            let connection = try ConnectionBudgetTests.RawConnection(port: port)
            // The header's value is case-insensitive (RFC 9110, 10.1.1).
            #expect(await connection.write(Self.head(length: Self.patient.utf8.count, expect: "100-Continue")))
            // The body is held back until the 100 comes: without it, this read ends empty.
            let (interim, _) = await connection.read(for: 20) { $0.contains("\r\n\r\n") }
            #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n", "\(interim)")
            #expect(await connection.write(Self.patient))
            let (text, _) = await connection.read(for: 20, until: ConnectionBudgetTests.isResponse)
            #expect(text.hasPrefix("HTTP/1.1 201"), "\(text)")
            #expect(text.contains("Continue"))
        }
    }

    /// Refused from its length alone, before any byte of it: also a length past Int's range,
    /// which NIO's decoder takes (up to UInt64's).
    @Test func aBodyTooLargeIsRefusedWithoutContinue() async throws {
        try await ConnectionBudgetTests.withServer(
            ConnectionLimits(idleTimeout: .seconds(30)), configure: { $0.maximumBodySize = 1000 }
        ) { port in
            for length in ["5000", "18446744073709551615"] {
                let connection = try ConnectionBudgetTests.RawConnection(port: port)
                #expect(
                    await connection.write(
                        Self.head(length: 0).replacingOccurrences(
                            of: "Content-Length: 0", with: "Content-Length: \(length)")))
                let (text, _) = await connection.read(for: 20, until: ConnectionBudgetTests.isResponse)
                #expect(text.hasPrefix("HTTP/1.1 413"), "\(length): \(text)")
                #expect(!text.contains("100 Continue"))
            }
        }
    }

    /// Without a body there is nothing to continue to: the answer comes first.
    @Test func noContinueWithoutABody() async throws {
        try await ConnectionBudgetTests.withServer(ConnectionLimits(idleTimeout: .seconds(30))) { port in
            for request in [
                "GET \(basePath)/metadata HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n\r\n",
                Self.head(length: 0),
            ] {
                let connection = try ConnectionBudgetTests.RawConnection(port: port)
                #expect(await connection.write(request))
                let (text, _) = await connection.read(for: 20, until: ConnectionBudgetTests.isResponse)
                #expect(text.hasPrefix("HTTP/1.1 ") && !text.hasPrefix("HTTP/1.1 100"), "\(text.prefix(300))")
            }
        }
    }

    /// An HTTP/1.0 client knows no 1xx: it gets the final answer only. A request sent behind
    /// an unanswered one gets none either, since its 100 could land inside the first answer.
    @Test func noContinueForHTTP10NorBehindAnUnansweredRequest() async throws {
        try await ConnectionBudgetTests.withServer(ConnectionLimits(idleTimeout: .seconds(30))) { port in
            let old = try ConnectionBudgetTests.RawConnection(port: port)
            #expect(await old.write(Self.head(version: "HTTP/1.0", length: Self.patient.utf8.count) + Self.patient))
            let (answer, _) = await old.read(for: 20, until: ConnectionBudgetTests.isResponse)
            #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer)")

            let pipelined = try ConnectionBudgetTests.RawConnection(port: port)
            // Both heads in one write: the decoder reads the second while the first is at work.
            #expect(
                await pipelined.write(
                    "GET \(basePath)/metadata HTTP/1.1\r\nHost: localhost\r\n\r\n"
                        + Self.head(length: Self.patient.utf8.count)))
            let (first, _) = await pipelined.read(for: 20, until: ConnectionBudgetTests.isResponse)
            #expect(first.hasPrefix("HTTP/1.1 200"), "\(first)")
            #expect(!first.contains("100 Continue"), "\(first.prefix(300))")
            #expect(await pipelined.write(Self.patient))
            let (second, _) = await pipelined.read(for: 20, until: ConnectionBudgetTests.isResponse)
            #expect(second.hasPrefix("HTTP/1.1 201"), "\(second.prefix(300))")
        }
    }
}
