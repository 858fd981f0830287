import FHIR
import Foundation

/// Picks the store of a request's tenant.
public protocol FHIRStoreProvider: Sendable {
    /// The store of `tenant`; `nil` is the default tenant.
    func store(tenant: String?) async throws -> any FHIRStore
}

/// One store per tenant, fully separated: each tenant has a database of its own (a SQLite
/// file beside the default one, or a PostgreSQL database beside the default one), opened
/// on first use and kept open.
public actor TenantStores: FHIRStoreProvider {
    /// The tenant that means the default store (IBM FHIR Server's name for it).
    public static let defaultTenant = "default"

    private let defaultStore: any FHIRStore
    private let makeStore: (@Sendable (String) async throws -> any FHIRStore)?
    private var stores: [String: any FHIRStore] = [:]

    /// Tenants get stores from `makeStore`; without it, only the default tenant exists.
    public init(defaultStore: any FHIRStore, makeStore: (@Sendable (String) async throws -> any FHIRStore)? = nil) {
        self.defaultStore = defaultStore
        self.makeStore = makeStore
    }

    /// Tenants for the store at `url` (as `SQLFHIRStore.open(url:)` takes it).
    public static func forDatabase(url: String) async throws -> TenantStores {
        let store = try await SQLFHIRStore.open(url: url)
        return TenantStores(defaultStore: store) { tenant in
            try await SQLFHIRStore.open(url: tenantURL(url, tenant: tenant), creatingPostgresDatabase: true)
        }
    }

    /// The database of `tenant` beside the one at `url`.
    public static func tenantURL(_ url: String, tenant: String) throws -> String {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard var components = URLComponents(string: url) else { throw StoreError.configuration("Not a URL: \(url)") }
            let database = components.path.split(separator: "/").first.map(String.init) ?? "caduceus"
            components.path = "/\(database)_tenant_\(tenant)"
            return components.string!
        }
        let path = url.hasPrefix("sqlite:") ? String(url.dropFirst("sqlite:".count)) : url
        guard path != ":memory:" else { return path }
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[slash...]
        let dot = name.lastIndex(of: ".") ?? name.endIndex
        let suffix = dot == name.endIndex ? ".sqlite" : String(name[dot...])
        return String(path[..<slash]) + name[..<dot] + ".tenant-\(tenant)" + suffix
    }

    /// Tenant ids: letters, digits and `_`, up to 32, compared case-insensitively, so that
    /// each maps to a database or file name safely.
    public static func normalize(_ tenant: String) throws -> String {
        let lower = tenant.lowercased()
        guard !lower.isEmpty, lower.count <= 32, lower.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F })
        else {
            throw FHIRError.badRequest("X-FHIR-TENANT-ID '\(tenant)' is not a tenant id (letters, digits and _, up to 32)")
        }
        return lower
    }

    public func store(tenant: String?) async throws -> any FHIRStore {
        guard let tenant, try Self.normalize(tenant) != Self.defaultTenant else { return defaultStore }
        let key = try Self.normalize(tenant)
        if let store = stores[key] { return store }
        guard let makeStore else {
            throw FHIRError.badRequest("This server has no tenants besides the default one")
        }
        let store = try await makeStore(key)
        if let raced = stores[key] {  // another request opened it while this one waited
            try? await store.close()
            return raced
        }
        stores[key] = store
        return store
    }

    /// Closes every tenant's store and the default one.
    public func close() async throws {
        for store in stores.values { try await store.close() }
        stores = [:]
        try await defaultStore.close()
    }
}
