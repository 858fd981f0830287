import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Tenants chosen by `X-FHIR-TENANT-ID` see only their own data (issue 3); only the tenants
/// the operator declared exist (issue 13).
@Suite struct TenantTests {
    static let backends = TestDatabases.backends

    @Test(arguments: backends)
    func tenantsAreSeparated(backend: TestBackend) async throws {
        let stores = try TenantStores(
            defaultStore: try await TestDatabases.makeStore(backend), tenants: ["clinic_a", "clinic_b"]
        ) { _ in
            try await TestDatabases.makeStore(backend)
        }
        let app = Application(router: FHIRApplication.buildRouter(stores: stores))
        try await app.test(.router) { client in
            let created = try await client.fhir(
                .post, "Patient", body: #"{"resourceType":"Patient","gender":"female"}"#,
                headers: ["X-FHIR-TENANT-ID": "clinic_a"])
            #expect(created.status == .created)
            let location = try #require(created.header("Location"))
            let path = pathOf(location)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "clinic_a"]).status == .ok)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "CLINIC_A"]).status == .ok)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "clinic_b"]).status == .notFound)
            #expect(try await client.fhir(.get, path).status == .notFound)
            #expect(try await client.fhir(.get, path, headers: ["X-FHIR-TENANT-ID": "default"]).status == .notFound)
            #expect(
                try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "clinic_b"]).json?["total"] == 0)
            #expect(
                try await client.fhir(.get, "_history", headers: ["X-FHIR-TENANT-ID": "clinic_a"]).json?["total"] == 1)
            // An export belongs to its tenant: others cannot see its status.
            let kickOff = try await client.fhir(
                .get, "$export", headers: ["X-FHIR-TENANT-ID": "clinic_a", "Prefer": "respond-async"])
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

    /// The tenants whose stores were opened, in order.
    actor OpenedTenants {
        var names: [String] = []
        func add(_ name: String) { names.append(name) }
    }

    /// Fresh tenant ids once made a database each and kept it open, until the file handles
    /// ran out (about 3,300 requests) and every tenant got 500. Now they are refused before
    /// anything opens: with a token (400 with an OperationOutcome) and without one (401);
    /// the AuditEvents of the refusals still land, in the default store.
    @Test(arguments: backends)
    func undeclaredTenantsAreRefusedWithoutOpeningAnything(backend: TestBackend) async throws {
        let opened = OpenedTenants()
        let store = try await TestDatabases.makeStore(backend)
        let stores = try TenantStores(defaultStore: store, tenants: ["Clinic_A"]) { tenant in
            await opened.add(tenant)
            return try await TestDatabases.makeStore(backend)
        }
        #expect(stores.tenants == ["clinic_a"])
        let secret = AccessControlTests.secret
        let trail = AuditTrail(stores: stores, maximumWait: .seconds(120))
        let security = FHIRSecurity(verifier: try await AccessTokenVerifier(hs256Secret: secret), audit: trail)
        let issuer = await AccessTokenIssuer.hs256(secret: secret)
        // Tokens are bound to a tenant: each asks for the tenant its token names.
        @Sendable func token(tenant: String) async throws -> String {
            try await issuer.sign(
                SMARTAccessClaims(
                    subject: "alice", expires: Date().addingTimeInterval(300), scope: "system/*.*",
                    clientId: "test-app", patient: nil, tenant: tenant))
        }
        let app = Application(router: FHIRApplication.buildRouter(stores: stores, security: security))
        try await app.test(.router) { client in
            for index in 0..<40 {
                let tenant = ["X-FHIR-TENANT-ID": "fresh_\(index)"]
                #expect(try await client.fhir(.get, "Patient", headers: tenant).status == .unauthorized)
                let bearer = "Bearer \(try await token(tenant: "fresh_\(index)"))"
                let refused = try await client.fhir(
                    .get, "Patient", headers: tenant.merging(["Authorization": bearer]) { $1 })
                #expect(refused.status == .badRequest)
                #expect(refused.json?["resourceType"] == "OperationOutcome")
            }
            let declared = [
                "X-FHIR-TENANT-ID": "clinic_a", "Authorization": "Bearer \(try await token(tenant: "clinic_a"))",
            ]
            #expect(try await client.fhir(.get, "Patient", headers: declared).status == .ok)
        }
        await trail.flush()
        #expect(await opened.names == ["clinic_a"])
        #expect(await trail.failures == 0)
        #expect(await trail.written >= 81)
        // The refused requests' events sit in the default store, naming the tenant asked for.
        let events = try await store.reading {
            try await $0.resources(ofType: "AuditEvent", since: nil, after: nil, limit: 1000)
        }
        let sites = events.compactMap { try? JSONParser.parse($0.body ?? "{}")["source"]?["site"]?.stringValue }
        #expect(sites.filter { $0.hasPrefix("fresh_") }.count == 80)
        await trail.close()
        try await stores.close()
    }

    @Test func tenantsFileDeclaresOneTenantALine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-tenants-\(UUID().uuidString)")
        try "# clinics\nclinic_a\n\n  Clinic_B  # the second\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try TenantStores.tenants(inFile: file.path) == ["clinic_a", "clinic_b"])
        try "clinic/../a\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: FHIRError.self) { try TenantStores.tenants(inFile: file.path) }
    }

    @Test func tenantDatabasesSitBesideTheDefaultOne() throws {
        #expect(
            try TenantStores.tenantURL("./data/caduceus.sqlite", tenant: "a1") == "./data/caduceus.tenant-a1.sqlite")
        #expect(
            try TenantStores.tenantURL("postgres://u@127.0.0.1:5432/fhir", tenant: "a1")
                == "postgres://u@127.0.0.1:5432/fhir_tenant_a1")
    }

    @Test func withoutTenantsConfiguredOtherTenantsAreRefused() async throws {
        try await withFHIRApp(.sqlite) { (client: any TestClientProtocol) async throws in
            #expect(
                try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "other"]).status == .badRequest)
            #expect(try await client.fhir(.get, "Patient", headers: ["X-FHIR-TENANT-ID": "default"]).status == .ok)
            let kickOff = try await client.fhir(.get, "$export", headers: ["Prefer": "respond-async"])
            let status = pathOf(try #require(kickOff.header("Content-Location")))
            #expect(try await client.fhir(.get, status, headers: ["X-FHIR-TENANT-ID": "default"]).status != .notFound)
        }
    }
}
