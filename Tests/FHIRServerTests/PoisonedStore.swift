import FHIR
import FHIRStore

/// A store that refuses to create any resource holding `poison`, as a database refuses a value
/// it cannot take (the rest of a transaction holding one rolls back with it), and, with
/// `failsReads`, fails every read with an internal error that names SQL and a file path; with
/// `delay`, each transaction waits first; during an `outage`, every transaction fails as a
/// database that cannot be reached does (``SQLDatabaseUnavailable``).
struct PoisonedStore: FHIRStore {
    struct Refused: Error {}

    /// Whether the database is unreachable, switched by the test.
    actor Outage {
        private(set) var isOn: Bool
        /// Transactions refused so far.
        private(set) var refused = 0
        init(isOn: Bool = true) { self.isOn = isOn }
        func start() { isOn = true }
        func end() { isOn = false }
        func refuse() -> Bool {
            if isOn { refused += 1 }
            return isOn
        }
    }

    struct Transaction: FHIRTransaction {
        let base: any FHIRTransaction
        let poison: String

        func create(_ resource: JSONValue, type: String, id: String?) async throws -> StoredResource {
            if String(decoding: JSONWriter(pretty: false).bytes(resource), as: UTF8.self).contains(poison) {
                throw Refused()
            }
            return try await base.create(resource, type: type, id: id)
        }
        func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
            try await base.update(resource, type: type, id: id, ifMatch: ifMatch)
        }
        func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource? {
            try await base.delete(type: type, id: id, ifMatch: ifMatch)
        }
        func read(type: String, id: String) async throws -> StoredResource { try await base.read(type: type, id: id) }
        func search(_ query: SearchQuery) async throws -> SearchPage { try await base.search(query) }
        func search(_ query: SearchQuery, includingOnly visible: @escaping @Sendable (StoredResource) -> Bool)
            async throws -> SearchPage
        {
            try await base.search(query, includingOnly: visible)
        }
        func referrers(to type: String, id: String, excludingTypes: Set<String>) async throws -> [ReferenceLink] {
            try await base.referrers(to: type, id: id, excludingTypes: excludingTypes)
        }
        func referenceTargets(of resources: [StoredResource]) async throws -> [ResourceKey] {
            try await base.referenceTargets(of: resources)
        }
        func resources(_ keys: [ResourceKey]) async throws -> [StoredResource] { try await base.resources(keys) }
        func resources(ofType type: String, since: Int64?, after: String?, limit: Int) async throws -> [StoredResource]
        {
            try await base.resources(ofType: type, since: since, after: after, limit: limit)
        }
    }

    /// What a failed read throws instead of reading, when set: an internal error, as a database's would be.
    struct InternalFailure: Error, CustomStringConvertible {
        var description: String { "SQLITE_ERROR near SELECT * FROM resources in /var/lib/caduceus/fhir.sqlite" }
    }

    let base: any FHIRStore
    let poison: String
    var failsReads = false
    /// How long each transaction takes at least: a slow disk.
    var delay = Duration.zero
    var outage: Outage?
    /// While on, a transaction is committed and then fails as a connection lost after the
    /// commit does (``SQLDatabaseUnavailable``, its outcome unknown); the outage ends after one.
    var lostAfterCommit: Outage?

    func reading<T: Sendable>(_ body: @escaping @Sendable (any FHIRTransaction) async throws -> T) async throws -> T {
        if failsReads { throw InternalFailure() }
        return try await base.reading(body)
    }
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any FHIRTransaction) async throws -> T) async throws -> T
    {
        let poison = poison
        try await Task.sleep(for: delay)
        if let outage, await outage.refuse() {
            throw SQLDatabaseUnavailable(
                outcomeUnknown: false, detail: "The database gave this server no connection", server: "test")
        }
        if let lostAfterCommit, await lostAfterCommit.isOn {
            _ = try await base.transaction { try await body(Transaction(base: $0, poison: poison)) }
            _ = await lostAfterCommit.refuse()
            await lostAfterCommit.end()
            throw SQLDatabaseUnavailable(outcomeUnknown: true, detail: "The connection was lost", server: "test")
        }
        return try await base.transaction { try await body(Transaction(base: $0, poison: poison)) }
    }
    func create(_ resource: JSONValue, type: String) async throws -> StoredResource {
        try await transaction { try await $0.create(resource, type: type, id: nil) }
    }
    func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        try await base.update(resource, type: type, id: id, ifMatch: ifMatch)
    }
    func read(type: String, id: String) async throws -> StoredResource { try await base.read(type: type, id: id) }
    func vread(type: String, id: String, version: Int) async throws -> StoredResource {
        try await base.vread(type: type, id: id, version: version)
    }
    func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource? {
        try await base.delete(type: type, id: id, ifMatch: ifMatch)
    }
    func history(type: String?, id: String?, since: Int64?, count: Int, offset: Int) async throws -> SearchPage {
        try await base.history(type: type, id: id, since: since, count: count, offset: offset)
    }
    func search(_ query: SearchQuery) async throws -> SearchPage { try await base.search(query) }
    func close() async throws { try await base.close() }
}
