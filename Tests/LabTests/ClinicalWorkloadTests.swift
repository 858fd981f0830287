import FHIRServer
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Lab
import Testing

/// The clinical workload against the FHIR application on a loopback socket, on a fresh SQLite store.
@Suite struct ClinicalWorkloadTests {
    /// One admission's interactions, by kind (the CapabilityStatement is read once per run).
    static let perRound: [InteractionKind: Int] = [
        .conditionalCreate: 2, .create: 8, .read: 7, .vread: 1, .search: 8, .searchPage: 1, .update: 2, .history: 1,
        .transaction: 1, .everything: 1, .delete: 1,
    ]

    @Test func twoAdmissionsSucceedWithTheExpectedMix() async throws {
        try await TestDatabases.withStore(.sqlite) { store in
            let app = Application(router: FHIRApplication.buildRouter(store: store))
            try await app.test(.live) { client in
                let port = try #require(client.port)
                // The live test server listens on "localhost"; the client resolves it the same way.
                let report = try await ClinicalWorkload(
                    baseURL: "http://localhost:\(port)/fhir-server/api/v4", rounds: 2, concurrency: 2
                ).run()
                #expect(report.succeeded, "\(report)")
                #expect(report.failureCount == 0)
                #expect(report.completedRounds == 2)
                #expect(report.everythingSupported)
                #expect(report.count(of: .capabilities) == 1)
                for (kind, count) in Self.perRound {
                    #expect(report.count(of: kind) == 2 * count, "\(kind.rawValue)")
                }
                #expect(report.interactions == 1 + 2 * Self.perRound.values.reduce(0, +))
            }
        }
    }

    @Test func anUnreachableServerIsReportedAsFailures() async throws {
        // Port 1 on loopback: nothing listens there, so every round fails at its first step.
        let report = try await ClinicalWorkload(
            baseURL: "http://127.0.0.1:1/fhir-server/api/v4", rounds: 2, timeoutSeconds: 1
        ).run()
        #expect(!report.succeeded)
        #expect(report.completedRounds == 0)
        #expect(report.failureCount == 3)  // the CapabilityStatement and each round's first step
        #expect(!report.everythingSupported)
    }
}
