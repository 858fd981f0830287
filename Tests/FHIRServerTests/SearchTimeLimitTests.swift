import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Issue 13: a search that runs past the statement time limit answers 503 with an
/// OperationOutcome (`too-costly`), carries no SQL, and leaves the server answering.
@Suite struct SearchTimeLimitTests {
    static let backends = TestDatabases.backends

    /// `count` Patients with three names each, in one transaction Bundle.
    static func loadPatients(_ client: any TestClientProtocol, count: Int) async throws {
        let entries = (0..<count).map { n in
            #"{"resource":{"resourceType":"Patient","name":[{"family":"family\#(n)","given":["given\#(n)","middle\#(n)"]}]},"request":{"method":"POST","url":"Patient"}}"#
        }
        let bundle = #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#
        let response = try await client.fhir(.post, "", body: bundle)
        #expect(response.status == .ok, "\(response.text.prefix(300))")
    }

    typealias TestApplication = Application<RouterResponder<FHIRRequestContext>>

    /// Two routers on one fresh store: `standard` with the default limit (to load data and
    /// check the connections afterwards), `limited` with a statement time limit of 2 ms.
    static func withLimitedRouter(
        _ backend: TestBackend, _ body: (_ standard: TestApplication, _ limited: TestApplication) async throws -> Void
    ) async throws {
        var configuration = FHIRServerConfiguration()
        configuration.statementTimeLimit = .milliseconds(2)
        let store = try await TestDatabases.makeStore(backend)
        do {
            try await body(
                Application(router: FHIRApplication.buildRouter(store: store)),
                Application(router: FHIRApplication.buildRouter(store: store, configuration: configuration)))
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    @Test(arguments: backends)
    func aSlowSearchAnswers503AndTheServerRecovers(backend: TestBackend) async throws {
        try await Self.withLimitedRouter(backend) { standard, limited in
            try await standard.test(.router) { client in try await Self.loadPatients(client, count: 1500) }
            try await limited.test(.router) { client in
                // `:contains` cannot use an index: 100 patterns against every name of every Patient.
                let patterns = (0..<100).map { "zz\($0)q" }.joined(separator: ",")
                let slow = try await client.fhir(.get, "Patient?name:contains=\(patterns)&_sort=-family,given")
                #expect(slow.status == .serviceUnavailable, "\(slow.status) \(slow.text.prefix(300))")
                #expect(slow.json?["resourceType"] == "OperationOutcome")
                #expect(slow.json?["issue"]?.arrayValue?.first?["code"] == "too-costly")
                let diagnostics = slow.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue ?? ""
                #expect(diagnostics.contains("took longer than"), "\(diagnostics)")
                for leak in ["SELECT", "idx_", "SQLite", "PSQL", "statement timeout", "canceling", "Error("] {
                    #expect(!slow.text.contains(leak), "\(leak) in \(slow.text)")
                }
            }
            // Every connection answers again, under the default limit.
            try await standard.test(.router) { client in
                for _ in 0..<10 {
                    let search = try await client.fhir(.get, "Patient?name:contains=ily149&_count=0")
                    #expect(search.status == .ok && search.json?["total"] == 11, "\(search.text.prefix(300))")
                }
            }
        }
    }

    @Test(arguments: backends)
    func theDefaultLimitLetsTheSameSearchFinish(backend: TestBackend) async throws {
        try await withFHIRApp(backend) { client in
            try await Self.loadPatients(client, count: 200)
            let patterns = (0..<99).map { "zz\($0)q" }.joined(separator: ",") + ",ily19"
            let search = try await client.fhir(.get, "Patient?name:contains=\(patterns)&_sort=-family,given&_count=100")
            #expect(search.status == .ok, "\(search.text.prefix(300))")
            // family19 and family190...family199.
            #expect(search.json?["total"] == 11)
        }
    }
}
