import Detection
import Foundation
import KernelTestSupport
import Lab
import Testing

extension LiveDetectionSuites {
    /// The noise test: the FHIR server's own container starts, serves a clinical workload and
    /// stops under every built-in rule, and no rule fires. Needs root, BPF, Docker and the
    /// image `caduceus images` builds; with CI=true a missing one fails the test.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveQuietTests {
        static let image = "caduceus-fhir:latest"

        @Test func theFHIRServerStartsServesAndStopsWithoutAlerts() async throws {
            try SensorTestEnvironment.require()
            guard (try? SensorTestEnvironment.run(["docker", "image", "inspect", Self.image])) != nil else {
                throw FixtureError("the image \(Self.image) is needed: run caduceus images")
            }
            let live = try LiveDetection(ruleSet: BuiltinRuleTests.ruleSet())
            let port = Int.random(in: 20000..<30000)
            let id = try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", Self.image,
                "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite",
            ])
            defer { LiveDetection.removeContainers([id]) }
            let base = "http://127.0.0.1:\(port)/fhir-server/api/v4"
            #expect(try await LiveDetection.waitUntilServing(base), "the FHIR server answered /metadata")
            let report = try await ClinicalWorkload(baseURL: base, rounds: 20, concurrency: 4).run()
            #expect(report.succeeded, "\(report)")
            _ = try SensorTestEnvironment.run(["docker", "stop", "-t", "10", id])
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            #expect(
                live.eventCount(container: id) > 1000, "the engine watched the container's start, workload and stop")
            let here = alerts.filter { $0.container.id == id }
            #expect(here.isEmpty, "alerts in the FHIR container: \(here.map { "\($0.ruleId): \($0.output)" })")
        }
    }
}
