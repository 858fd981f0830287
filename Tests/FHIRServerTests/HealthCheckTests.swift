import FHIRServer
import FHIRTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `GET /healthz`, the probe of HAProxy and of the Kubernetes manifests (deploy/kubernetes):
/// answered without a token and without an AuditEvent, on an audited server requiring tokens;
/// nothing else about it is open.
@Suite struct HealthCheckTests {
    @Test(arguments: TestDatabases.backends)
    func theProbeNeedsNoTokenAndLeavesNoAuditEvent(backend: TestBackend) async throws {
        try await AccessControlTests.withSecureApp(backend) { harness in
            await harness.trail.flush()
            let before = await harness.trail.written
            for _ in 0..<5 {
                let probe = try await harness.call(.get, "/healthz", token: nil)
                #expect(probe.status == .ok)
                #expect(probe.text == "ok\n")
                #expect(probe.header("Content-Type") == "text/plain; charset=utf-8")
                #expect(probe.header("Cache-Control") == "no-store")
            }
            // A body or a query changes nothing, and reveals nothing.
            let withBody = try await harness.call(
                .get, "/healthz?verbose=true", token: nil, body: #"{"resourceType":"Patient"}"#)
            #expect(withBody.status == .ok)
            #expect(withBody.text == "ok\n")
            await harness.trail.flush()
            #expect(await harness.trail.written == before, "probes leave no AuditEvent")

            // Only GET of exactly that path: the rest still needs a token and is audited.
            let post = try await harness.call(.post, "/healthz", token: nil, body: "{}")
            #expect(post.status == .unauthorized)
            #expect(try await harness.call(.get, "/healthz/x", token: nil).status == .unauthorized)
            #expect(
                try await harness.call(.get, "healthz", token: nil).status == .unauthorized,
                "not under the FHIR base path")
            await harness.trail.flush()
            #expect(await harness.trail.written == before + 3)
        }
    }

    @Test func theProbeAnswersWithoutSecurityToo() async throws {
        try await withFHIRApp(.sqlite) { client in
            let probe = try await client.fhir(.get, "/healthz")
            #expect(probe.status == .ok)
            #expect(probe.text == "ok\n")
        }
    }
}
