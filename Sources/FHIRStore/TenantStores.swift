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
///
/// Tenants exist because the operator declared them (`caduceus serve --tenant`): a request
/// naming any other tenant is refused before anything is created or opened, so that a
/// client cannot make the server open one database per made-up tenant id until it runs
/// out of file handles.
public actor TenantStores: FHIRStoreProvider {
    /// The tenant that means the default store (IBM FHIR Server's name for it).
    public static let defaultTenant = "default"

    private let defaultStore: any FHIRStore
    private let makeStore: (@Sendable (String) async throws -> any FHIRStore)?
    /// The declared tenants besides the default one, normalized.
    public nonisolated let tenants: Set<String>
    private var stores: [String: any FHIRStore] = [:]

    /// Only the default tenant.
    public init(defaultStore: any FHIRStore) {
        self.defaultStore = defaultStore
        self.makeStore = nil
        self.tenants = []
    }

    /// The default tenant and the declared `tenants` (ids as ``normalize(_:)`` accepts them),
    /// whose stores `makeStore` opens on first use.
    public init(
        defaultStore: any FHIRStore, tenants: some Sequence<String>,
        makeStore: @escaping @Sendable (String) async throws -> any FHIRStore
    ) throws {
        self.defaultStore = defaultStore
        self.makeStore = makeStore
        self.tenants = Set(try tenants.map(Self.normalize)).subtracting([Self.defaultTenant])
    }

    /// The declared `tenants` of the store at `url` (as `SQLFHIRStore.open(url:)` takes it).
    /// The tenant ids are checked before the default store opens.
    public static func forDatabase(url: String, tenants: [String] = []) async throws -> TenantStores {
        let declared = try tenants.map(normalize)
        let store = try await SQLFHIRStore.open(url: url)
        return try TenantStores(defaultStore: store, tenants: declared) { tenant in
            try await SQLFHIRStore.open(url: tenantURL(url, tenant: tenant), creatingPostgresDatabase: true)
        }
    }

    /// The tenant ids in a tenants file: one a line; blank lines and `#` comments are skipped.
    public static func tenants(inFile path: String) throws -> [String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw StoreError.configuration("Cannot read the tenants file '\(path)'")
        }
        return try text.split(whereSeparator: \.isNewline).compactMap { line in
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let tenant = content.trimmingCharacters(in: .whitespaces)
            return tenant.isEmpty ? nil : try normalize(tenant)
        }
    }

    /// The database of `tenant` beside the one at `url`.
    public static func tenantURL(_ url: String, tenant: String) throws -> String {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let parsed = PostgresURL(url) else { throw StoreError.configuration("Not a URL: \(url)") }
            return parsed.with(database: "\(parsed.database ?? "caduceus")_tenant_\(tenant)").description
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
        guard !lower.isEmpty, lower.count <= 32,
            lower.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F })
        else {
            throw FHIRError.badRequest(
                "X-FHIR-TENANT-ID '\(tenant)' is not a tenant id (letters, digits and _, up to 32)")
        }
        return lower
    }

    public func store(tenant: String?) async throws -> any FHIRStore {
        guard let tenant else { return defaultStore }
        let key = try Self.normalize(tenant)
        if key == Self.defaultTenant { return defaultStore }
        if let store = stores[key] { return store }
        guard let makeStore, tenants.contains(key) else {
            throw FHIRError.badRequest("X-FHIR-TENANT-ID '\(key)' is not a tenant of this server")
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
