import FHIR

/// One version of a resource as stored.
public struct StoredResource: Sendable {
    public var type: String
    public var id: String
    public var versionId: Int
    /// Milliseconds since the epoch.
    public var lastUpdated: Int64
    /// True for the version a delete wrote; it has no body.
    public var deleted: Bool
    /// The resource JSON (with `id` and `meta` set), compact; `nil` for a deletion.
    public var body: String?

    public init(type: String, id: String, versionId: Int, lastUpdated: Int64, deleted: Bool, body: String?) {
        self.type = type
        self.id = id
        self.versionId = versionId
        self.lastUpdated = lastUpdated
        self.deleted = deleted
        self.body = body
    }

    public var lastUpdatedInstant: String { FHIRDateRange.instantString(milliseconds: lastUpdated) }
    public var etag: String { "W/\"\(versionId)\"" }
}

/// A page of matches, how many there are in all, and what `_include`/`_revinclude` added.
public struct SearchPage: Sendable {
    /// `nil` when the query asked for no total (`_total=none`), or when `_total=estimate` has
    /// none to give.
    public var total: Int?
    /// False when ``total`` is an estimate (PostgreSQL's planner's), not a count.
    public var totalIsExact: Bool
    public var resources: [StoredResource]
    public var included: [StoredResource]
    /// What the client should know about this page that it did not ask for (includes left
    /// out over the bound): one warning issue each in the Bundle's outcome entry.
    public var warnings: [String] = []
    /// Where the next page starts, when the page is full and the search has no `_sort`.
    public var nextCursor: SearchCursor?

    public init(total: Int?, resources: [StoredResource], included: [StoredResource] = [], totalIsExact: Bool = true) {
        self.total = total
        self.totalIsExact = totalIsExact
        self.resources = resources
        self.included = included
    }
}

/// The result of an update: the new version, and whether it created the resource.
public struct UpdateOutcome: Sendable {
    public var resource: StoredResource
    public var created: Bool

    public init(resource: StoredResource, created: Bool) {
        self.resource = resource
        self.created = created
    }
}

/// Operations that share one database transaction: all of their writes land, or none.
public protocol FHIRTransaction: Sendable {
    /// Stores a new resource under `id`, or under a server-assigned id when `nil`.
    func create(_ resource: JSONValue, type: String, id: String?) async throws -> StoredResource
    func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome
    func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource?
    func read(type: String, id: String) async throws -> StoredResource
    /// Sees the transaction's own writes.
    func search(_ query: SearchQuery) async throws -> SearchPage
    /// A search whose `_include`s and `_revinclude`s keep only the resources `visible`
    /// accepts, in every round: one it refuses is neither returned nor followed by
    /// `:iterate` (an access check must not be walked through).
    func search(_ query: SearchQuery, includingOnly visible: @escaping @Sendable (StoredResource) -> Bool) async throws
        -> SearchPage
    /// The resources that refer to `type/id`, each with the parameter it refers through,
    /// but those of `excludingTypes`, whose rows are not read at all (however many there are).
    func referrers(to type: String, id: String, excludingTypes: Set<String>) async throws -> [ReferenceLink]
    /// The resources these refer to (literal references to a type and id).
    func referenceTargets(of resources: [StoredResource]) async throws -> [ResourceKey]
    /// The current, non-deleted resources among `keys`.
    func resources(_ keys: [ResourceKey]) async throws -> [StoredResource]
    /// When each current, non-deleted resource among `keys` was last updated (milliseconds),
    /// without reading bodies: how `$everything` filters and pages before it reads a page.
    func lastUpdated(of keys: [ResourceKey]) async throws -> [ResourceKey: Int64]
    /// Up to `limit` current resources of `type` updated at or after `since`, in id order,
    /// starting after the id `after`: the way to walk a whole type in pages.
    func resources(ofType type: String, since: Int64?, after: String?, limit: Int) async throws -> [StoredResource]

    /// The part of ``create(_:type:id:)`` that needs neither the database nor the time (JSON
    /// text, index rows): many can run at once, on other tasks, ahead of the writes. Throws
    /// what `create` would before writing (422 for a body that is not an object or holds NUL).
    func prepareCreate(_ resource: JSONValue, type: String, id: String) throws -> PreparedCreate
    /// Writes what ``prepareCreate(_:type:id:)`` made, stamped now, in this transaction.
    func commit(_ prepared: PreparedCreate) async throws -> StoredResource
    /// Writes several prepared creates, in order, each stamped in its turn: what one
    /// ``commit(_:)`` after another writes, in as few statements as the store can.
    func commit(_ prepared: [PreparedCreate]) async throws -> [StoredResource]
    /// Holds locks named `names` until this transaction ends, seen by every server on the same
    /// database: a conditional create's search and insert then run one at a time for the same
    /// criteria, on whichever replica they arrive. Call it once with every name the
    /// transaction will need (later calls may only repeat them), so that two transactions
    /// cannot each hold what the other waits for. A store whose write transactions already
    /// run one at a time (SQLite) needs none.
    func lock(names: [String]) async throws
}

/// A create made ready by ``FHIRTransaction/prepareCreate(_:type:id:)``: nothing is written,
/// nor stamped, until ``FHIRTransaction/commit(_:)``.
public struct PreparedCreate: Sendable {
    enum Content: Sendable {
        /// Everything but the time stamp.
        case write(PreparedWrite)
        /// Left for ``FHIRTransaction/create(_:type:id:)`` (a store without the split).
        case planned(JSONValue, type: String, id: String)
    }

    let content: Content

    /// Made ready by the store itself (not left for `create`): only these are written together
    /// by `FHIRTransaction.commit(_:)` of several creates; a create left for `create` is
    /// committed alone, so that its failure names its own entry.
    public var isMadeReady: Bool {
        if case .write = content { return true }
        return false
    }
}

extension FHIRTransaction {
    /// No locks: the store's write transactions do not overlap.
    public func lock(names: [String]) async throws {}

    /// From the resources themselves, for a store without a cheaper way.
    public func lastUpdated(of keys: [ResourceKey]) async throws -> [ResourceKey: Int64] {
        var stamps: [ResourceKey: Int64] = [:]
        for resource in try await resources(keys) {
            stamps[ResourceKey(type: resource.type, id: resource.id)] = resource.lastUpdated
        }
        return stamps
    }

    /// A store without the split prepares nothing ahead: ``commit(_:)`` creates.
    public func prepareCreate(_ resource: JSONValue, type: String, id: String) throws -> PreparedCreate {
        PreparedCreate(content: .planned(resource, type: type, id: id))
    }

    /// One by one, for a store without a cheaper way.
    public func commit(_ prepared: [PreparedCreate]) async throws -> [StoredResource] {
        try await prepared.asyncMap { try await commit($0) }
    }

    public func commit(_ prepared: PreparedCreate) async throws -> StoredResource {
        switch prepared.content {
        case .planned(let resource, let type, let id): return try await create(resource, type: type, id: id)
        case .write(let write):
            throw StoreError.configuration("\(write.type)/\(write.id) was prepared by another store")
        }
    }
}

/// A resource by type and id.
public struct ResourceKey: Sendable, Hashable {
    public var type: String
    public var id: String

    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }
}

/// A resource that refers to another, and the reference parameter it does so through.
public struct ReferenceLink: Sendable, Hashable {
    public var type: String
    public var id: String
    public var parameter: String
}

/// Where FHIR resources live. Every write is one database transaction.
public protocol FHIRStore: Sendable {
    /// Runs `body` on a connection for reading, outside any write transaction.
    func reading<T: Sendable>(_ body: @escaping @Sendable (any FHIRTransaction) async throws -> T) async throws -> T
    /// Runs `body` in one database transaction, committed when it returns.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any FHIRTransaction) async throws -> T) async throws -> T
    /// Stores a new resource under a server-assigned id.
    func create(_ resource: JSONValue, type: String) async throws -> StoredResource
    /// Stores a new version, or creates the resource under the client's id. `ifMatch` is the
    /// version the client expects to replace (412 when it is stale).
    func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome
    /// The current version; 404 when unknown, 410 when deleted.
    func read(type: String, id: String) async throws -> StoredResource
    /// One version; 404 when unknown, 410 when that version is a deletion.
    func vread(type: String, id: String, version: Int) async throws -> StoredResource
    /// Deletes the resource (a new, empty version). Returns `nil` when it never existed.
    func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource?
    /// Versions newest first, at instance (`type` and `id`), type (`type`) or system level.
    func history(type: String?, id: String?, since: Int64?, count: Int, offset: Int) async throws -> SearchPage
    /// The current resources matching `query`.
    func search(_ query: SearchQuery) async throws -> SearchPage
    /// Releases connections.
    func close() async throws
}
