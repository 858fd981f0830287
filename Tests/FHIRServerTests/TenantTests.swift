import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Tenants chosen by `X-FHIR-TENANT-ID` see only their own data (issue 3).
@Suite struct TenantTests {
    static let backends = TestDatabases.backends

    @Test(arguments: backends)
    func tenantsAreSeparated(backend: TestBackend) async throws {
        let stores = TenantStores(defaultStore: try await TestDatabases.makeStore(backend)) { _ in
            try await TestDatabases.makeStore(backend)
        }
        let app = Application(router: FHIRApplication.buildRouter(stores: stores))
        try await app.test(.router) { client in
            let created = try await client.fhir(.post, "Patient", body: #"{"resourceType":"Patient","gender":"female"}"#, headers: ["X-FHIR-TENANT-ID": "clinic_a"])
            #expect(created.status == .created)
            let location = try #require(created.header("Location"))
            let path = pathOf(location)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "clinic_a"]).status == .ok)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "CLINIC_A"]).status == .ok)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "clinic_b"]).status == .notFound)
            #expect(try await client.fhir(.get, path).status == .notFound)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "default"]).status == .notFound)
            #expect(try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "clinic_b"]).json?["total"] == 0)
            #expect(try await client.fhir(.get, "_history", headers: ["X-FHIR-TENANT-ID": "clinic_a"]).json?["total"] == 1)
            // An export belongs to its tenant: others cannot see its status.
            let kickOff = try await client.fhir(.get, "$export", headers: ["X-FHIR-TENANT-ID": "clinic_a", "Prefer": "respond-async"])
            #expect(kickOff.status == .accepted)
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            #expect(try await client.fhir(.get, status).status == .notFound)
            #expect(try await client.fhir(.get, status, headers: ["X-FHIR-TENANT-ID": "clinic_b"]).status == .notFound)
            #expect(try await client.fhir(.get, status, headers: ["X-FHIR-TENANT-ID": "clinic_a"]).status != .notFound)
            let bad = try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "../etc"])
            #expect(bad.status == .badRequest)
            #expect(bad.json?["resourceType"] == "OperationOutcome")
        }
        try await stores.close()
    }

    @Test func tenantDatabasesSitBesideTheDefaultOne() throws {
        #expect(try TenantStores.tenantURL("./data/caduceus.sqlite", tenant: "a1") == "./data/caduceus.tenant-a1.sqlite")
        #expect(try TenantStores.tenantURL("postgres://u@127.0.0.1:5432/fhir", tenant: "a1") == "postgres://u@127.0.0.1:5432/fhir_tenant_a1")
    }

    @Test func withoutTenantsConfiguredOtherTenantsAreRefused() async throws {
        try await withFHIRApp(.sqlite) { (client: any TestClientProtocol) async throws in
            #expect(try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "other"]).status == .badRequest)
            #expect(try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "default"]).status == .ok)
            let kickOff = try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            #expect(try await client.fhir(.get, status, headers: ["X-FHIR-TENANT-ID": "default"]).status != .notFound)
        }
    }
}
