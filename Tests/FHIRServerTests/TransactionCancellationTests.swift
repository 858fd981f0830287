import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A transaction Bundle's creates are prepared ahead of the writer (TransactionCreates.swift).
/// On PostgreSQL the Bundle runs in the request's own task, so a cancelled request reaches the
/// preparing child tasks: they once stopped quietly and handed the writer a short chunk, whose
/// missing entries then trapped the server (found by an attacker's read). The request must
/// fail or succeed as a whole: all 300 entries or none, and the server stays up.
@Suite struct TransactionCancellationTests {
    static func patient(_ index: Int, tag: String) -> String {
        #"{"fullUrl":"urn:uuid:00000000-0000-4000-8000-\#(String(format: "%012d", index))","resource":{"resourceType":"Patient","#
            + #""identifier":[{"system":"urn:attack","value":"\#(tag)"}],"name":[{"family":"F\#(index)"}]},"#
            + #""request":{"method":"POST","url":"Patient"}}"#
    }

    @Test(arguments: TestDatabases.backends)
    func aCancelledTransactionIsAllOrNothing(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            for (round, delay) in [5, 15, 30, 60, 120].enumerated() {
                let tag = "CANCEL-\(round)"
                let bundle =
                    #"{"resourceType":"Bundle","type":"transaction","entry":["#
                    + (0..<300).map { Self.patient($0, tag: tag) }.joined(separator: ",") + "]}"
                let request = Task { try await client.fhir(.post, "", body: bundle) }
                try await Task.sleep(for: .milliseconds(delay))
                request.cancel()
                let status = try? await request.value.status
                let found = try #require(
                    try await client.fhir(.get, "Patient?identifier=urn:attack%7C\(tag)&_summary=count").json)
                guard case .number(let text)? = found["total"] else { Issue.record("no total"); continue }
                let total = Int(text) ?? -1
                // All or nothing, and an OK answer only when all were written.
                #expect(
                    total == 0 || total == 300,
                    "round \(round): \(total) of 300 written (status \(String(describing: status)))")
                if status == .ok { #expect(total == 300) }
            }
        }
    }
}
