import FHIR
import FHIRStore
import Hummingbird

/// The only way route code reaches the stores: each request's store comes wrapped in the
/// request's grant (``AuthorizedStore``), and the raw provider is private to this file.
struct AuthorizedStores: Sendable {
    private let stores: any FHIRStoreProvider
    let parser: SearchQueryParser

    init(_ stores: any FHIRStoreProvider, parser: SearchQueryParser) {
        self.stores = stores
        self.parser = parser
    }

    /// The request's tenant's store, seen through the request's grant.
    func store(for request: Request, context: FHIRRequestContext) async throws -> AuthorizedStore {
        AuthorizedStore(store: try await stores.store(for: request), grant: context.access, parser: parser)
    }
}

/// One request's access-checked door to its store: every interaction a request makes (REST,
/// Bundle entries, includes, chains, `_has`, `$everything`, history, vread, export) goes
/// through it, and it checks the SMART scopes and the patient restriction (``AccessGuard``)
/// before it touches data. What the token may not see answers as what does not exist.
struct AuthorizedStore: Sendable {
    /// Unreachable outside this file, and so is the memberwise initialiser.
    fileprivate let store: any FHIRStore
    /// `nil` when access control is off.
    let grant: AccessGrant?
    let parser: SearchQueryParser

    /// Runs `body` on a connection for reading, through the door.
    func reading<T: Sendable>(_ body: @escaping @Sendable (AuthorizedTransaction) async throws -> T) async throws -> T {
        let (grant, parser) = (grant, parser)
        return try await store.reading { try await body(AuthorizedTransaction(raw: $0, grant: grant, parser: parser)) }
    }

    /// Runs `body` in one database transaction, through the door.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (AuthorizedTransaction) async throws -> T) async throws
        -> T
    {
        let (grant, parser) = (grant, parser)
        return try await store.transaction {
            try await body(AuthorizedTransaction(raw: $0, grant: grant, parser: parser))
        }
    }

    /// Refuses (403) criteria on `type` before anything runs (see ``AuthorizedTransaction/requireCriteria(on:)``).
    func requireCriteria(on type: String) throws {
        try AccessGuard.refuseConditional(type, try grant.require(.search, type))
    }

    func read(type: String, id: String) async throws -> StoredResource {
        guard case .unrestricted = try grant.require(.read, type) else {
            return try await reading { try await $0.read(type: type, id: id) }
        }
        return try await store.read(type: type, id: id)
    }

    /// One version: the resource must be visible now, and so must the version.
    func vread(type: String, id: String, version: Int) async throws -> StoredResource {
        let access = try grant.require(.read, type)
        if case .patient = access { _ = try await reading { try await $0.read(type: type, id: id) } }
        let stored = try await AccessGuard.hidingGone(access, type: type, id: id) {
            try await store.vread(type: type, id: id, version: version)
        }
        try AccessGuard.check(stored, access)
        return stored
    }

    /// History at instance (`type` and `id`), type (`type`) or system level; a patient
    /// restriction reaches only the instance history of a visible resource, and only its
    /// visible versions.
    func history(type: String?, id: String?, since: Int64?, count: Int, offset: Int) async throws -> SearchPage {
        var access = AccessGrant.Access.unrestricted
        if let type {
            access = try grant.require(.read, type)
            if case .patient = access {
                guard let id else {
                    throw FHIRError(
                        status: 403, code: "forbidden", "History of every \(type) needs a user/ or system/ scope")
                }
                _ = try await reading { try await $0.read(type: type, id: id) }
            }
        } else {
            try grant.requireAllTypes(.read, "history of every type")
        }
        var result = try await store.history(type: type, id: id, since: since, count: count, offset: offset)
        if case .patient = access {
            let before = result.resources.count
            result.resources = result.resources.filter { $0.deleted || (try? AccessGuard.check($0, access)) != nil }
            result.total = result.total.map { $0 - (before - result.resources.count) }
        }
        return result
    }

    func search(_ query: SearchQuery) async throws -> SearchPage {
        guard grant != nil else { return try await store.search(query) }
        return try await reading { try await $0.search(query) }
    }

    func create(_ resource: JSONValue, type: String) async throws -> StoredResource {
        let access = try grant.require(.create, type)
        try AccessGuard.checkWrite(resource, type: type, id: resource["id"]?.stringValue, access)
        return try await store.create(resource, type: type)
    }

    /// An update; under a patient restriction only of a resource the patient sees now (an
    /// update cannot create one: that would tell a hidden id from a free one).
    func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        guard case .unrestricted = try grant.require(.update, type) else {
            return try await transaction { try await $0.update(resource, type: type, id: id, ifMatch: ifMatch) }
        }
        return try await store.update(resource, type: type, id: id, ifMatch: ifMatch)
    }

    /// A delete; 404 for a resource that never existed or that the token may not see.
    func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource {
        guard case .unrestricted = try grant.require(.delete, type) else {
            return try await transaction { transaction in
                guard let deleted = try await transaction.delete(type: type, id: id, ifMatch: ifMatch) else {
                    throw AccessGuard.notFound(type, id)
                }
                return deleted
            }
        }
        guard let deleted = try await store.delete(type: type, id: id, ifMatch: ifMatch) else {
            throw AccessGuard.notFound(type, id)
        }
        return deleted
    }

    /// The store itself, for a Bulk Data export: only for a grant that reads every type
    /// without restriction, which the export reaches.
    /// The PostgreSQL database of this store, for what the server keeps there between
    /// requests (``SharedStoredSearches``), never for resources; `nil` on SQLite.
    var serverStateDatabase: (any SQLDatabase)? { SharedExportJobs.database(of: store) }

    func exportSource() throws -> any FHIRStore {
        try grant.requireAllTypes(.read, "Bulk Data export")
        return store
    }
}

/// ``AuthorizedStore`` inside one database transaction (a Bundle, a conditional interaction).
struct AuthorizedTransaction: Sendable {
    /// Unreachable outside this file, and so is the memberwise initialiser.
    fileprivate let raw: any FHIRTransaction
    let grant: AccessGrant?
    let parser: SearchQueryParser

    /// The current version of a resource the token may read; under a patient restriction
    /// what it may not see, what is gone and what never was all answer the same 404.
    func read(type: String, id: String) async throws -> StoredResource {
        try await visible(type: type, id: id, try grant.require(.read, type))
    }

    private func visible(type: String, id: String, _ access: AccessGrant.Access) async throws -> StoredResource {
        let stored = try await AccessGuard.hidingGone(access, type: type, id: id) {
            try await raw.read(type: type, id: id)
        }
        try AccessGuard.check(stored, access)
        return stored
    }

    /// A search limited, in SQL, to what the token may see (``SearchRestriction``); included
    /// resources it may not see are left out and, with `:iterate`, not walked through. Under
    /// a patient restriction each match is checked again on its body: the SQL limit reads
    /// the search index, which does not hold the references of contained resources or of
    /// elements outside search parameters, so a match naming another patient there is left
    /// out of the page and out of the total (which then counts only what this page found
    /// hidden: other pages' may still be in it).
    func search(_ query: SearchQuery) async throws -> SearchPage {
        guard let grant else { return try await raw.search(query) }
        var limited = query
        try SearchRestriction(grant: grant).restrict(&limited)
        var page = try await raw.search(limited, includingOnly: { AccessGuard.visible($0, access: grant) })
        guard grant.patient != nil else { return page }
        let shown = page.resources.filter { AccessGuard.visible($0, access: grant) }
        if shown.count < page.resources.count {
            page.total = page.total.map { max(shown.count, $0 - (page.resources.count - shown.count)) }
            page.resources = shown
        }
        return page
    }

    func create(_ resource: JSONValue, type: String, id: String?) async throws -> StoredResource {
        let access = try grant.require(.create, type)
        try AccessGuard.checkWrite(resource, type: type, id: id, access)
        return try await raw.create(resource, type: type, id: id)
    }

    /// ``create(_:type:id:)`` in two steps (``FHIRTransaction/prepareCreate(_:type:id:)``):
    /// the access checks come with the preparation, which is the only way to a ``PreparedCreate``.
    func prepareCreate(_ resource: JSONValue, type: String, id: String) throws -> PreparedCreate {
        let access = try grant.require(.create, type)
        try AccessGuard.checkWrite(resource, type: type, id: id, access)
        return try raw.prepareCreate(resource, type: type, id: id)
    }

    func commit(_ prepared: PreparedCreate) async throws -> StoredResource {
        try await raw.commit(prepared)
    }

    /// Several prepared creates in order, in as few statements as the store can.
    func commit(_ prepared: [PreparedCreate]) async throws -> [StoredResource] {
        try await raw.commit(prepared)
    }

    func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        let access = try grant.require(.update, type)
        try AccessGuard.checkWrite(resource, type: type, id: id, access)
        if case .patient = access { _ = try await visible(type: type, id: id, access) }
        return try await raw.update(resource, type: type, id: id, ifMatch: ifMatch)
    }

    /// A delete; `nil` when the resource never existed. Under a patient restriction only of
    /// a resource the patient sees now: anything else is the same 404.
    func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource? {
        let access = try grant.require(.delete, type)
        if case .patient = access { _ = try await visible(type: type, id: id, access) }
        return try await raw.delete(type: type, id: id, ifMatch: ifMatch)
    }

    /// `PATCH`: ``PatchInteraction`` reads, checks and writes under the update access and
    /// the read access (SMART `u` and `r`): applying a patch reveals the current content (the
    /// answer, and `test` operations that fail or not), so an update-only scope may not patch.
    func patch(_ patch: JSONValue, type: String, id: String, ifMatch: Int?, validator: ResourceValidator) async throws
        -> StoredResource
    {
        let update = try grant.require(.update, type)
        let read = try grant.require(.read, type)
        // The narrower of the two: a patient restriction on either holds for the patch.
        let access = update == .unrestricted ? read : update
        return try await PatchInteraction.apply(
            patch, type: type, id: id, ifMatch: ifMatch, validator: validator, access: access, in: raw)
    }

    // MARK: Conditional interactions

    /// Criteria are a search: they need the search permission on `type`, and a scope not
    /// limited to one patient (the search would reach outside the compartment).
    func requireCriteria(on type: String) throws {
        try AccessGuard.refuseConditional(type, try grant.require(.search, type))
    }

    /// What conditional criteria (`If-None-Exist`, a conditional update's or reference's) match.
    func matches(type: String, criteria: String) async throws -> [StoredResource] {
        try requireCriteria(on: type)
        return try await ConditionalInteractions(parser: parser).matches(type: type, criteria: criteria, in: raw)
    }

    /// The one resource an `If-None-Exist` names, `nil` when none; needs create and search.
    /// Holds `names` until the transaction ends (``FHIRTransaction/lock(names:)``).
    func lock(names: [String]) async throws {
        try await raw.lock(names: names)
    }

    func existing(type: String, criteria: String) async throws -> StoredResource? {
        _ = try grant.require(.create, type)
        try requireCriteria(on: type)
        return try await ConditionalInteractions(parser: parser).existing(type: type, criteria: criteria, in: raw)
    }

    func conditionalCreate(_ resource: JSONValue, type: String, ifNoneExist criteria: String) async throws
        -> ConditionalInteractions.CreateOutcome
    {
        let access = try grant.require(.create, type)
        try AccessGuard.checkWrite(resource, type: type, id: resource["id"]?.stringValue, access)
        if let found = try await existing(type: type, criteria: criteria) { return .existing(found) }
        return .created(try await raw.create(resource, type: type, id: nil))
    }

    /// The id a conditional update writes to (see ``ConditionalInteractions/updateTarget``).
    func updateTarget(_ resource: JSONValue, type: String, criteria: String) async throws -> String? {
        _ = try grant.require(.update, type)
        try requireCriteria(on: type)
        return try await ConditionalInteractions(parser: parser).updateTarget(
            resource, type: type, criteria: criteria, in: raw)
    }

    func conditionalUpdate(_ resource: JSONValue, type: String, criteria: String, ifMatch: Int?) async throws
        -> UpdateOutcome
    {
        try AccessGuard.checkWrite(
            resource, type: type, id: resource["id"]?.stringValue, try grant.require(.update, type))
        guard let id = try await updateTarget(resource, type: type, criteria: criteria) else {
            return UpdateOutcome(resource: try await raw.create(resource, type: type, id: nil), created: true)
        }
        return try await raw.update(resource, type: type, id: id, ifMatch: ifMatch)
    }

    func conditionalDelete(type: String, criteria: String) async throws -> StoredResource? {
        _ = try grant.require(.delete, type)
        try requireCriteria(on: type)
        return try await ConditionalInteractions(parser: parser).delete(type: type, criteria: criteria, in: raw)
    }

    // MARK: Operations

    /// `Patient/[id]/$everything`: the entries the token may see, in answer order, before
    /// their bodies are read; 404 for a patient it may not see.
    func everythingEntries(patientId: String, filters: EverythingOperation.Filters) async throws -> [EverythingOperation
        .Entry]
    {
        let access = try grant.require(.read, "Patient")
        if case .patient(let patient) = access, patient != patientId {
            throw AccessGuard.notFound("Patient", patientId)
        }
        return try await EverythingOperation.entries(
            patientId: patientId, filters: filters, parser: parser,
            visible: try await visibleKeys(excluding: filters.omittedTypes), in: raw)
    }

    /// The resources of a page of ``everythingEntries(patientId:filters:)``, each checked
    /// again, on its body, as it is read.
    func everythingPage(_ entries: ArraySlice<EverythingOperation.Entry>) async throws -> [StoredResource] {
        let resources = try await EverythingOperation.resources(of: entries, in: raw)
        guard let grant else { return resources }
        return resources.filter { AccessGuard.visible($0, access: grant) }
    }

    /// The patients `Patient/$everything` covers, in id order after `after`: every Patient
    /// with a user/ or system/ scope, only the token's own with a patient/ one.
    func everythingPatients(after: String?, limit: Int) async throws -> [String] {
        switch try grant.require(.read, "Patient") {
        case .patient(let patient):
            return after.map { patient > $0 } ?? true ? [patient] : []
        case .unrestricted:
            return try await raw.resources(ofType: "Patient", since: nil, after: after, limit: limit).map(\.id)
        }
    }

    /// Which resources the token may see returned alongside others, told from keys alone (so
    /// that `$everything` counts and pages only what it shows): by the type's scopes, and
    /// under a patient/ scope by the index rule searches use (``SearchRestriction/visibleIds(patient:excluding:in:)``).
    /// The `excluding` types are not looked up (the answer has none of them).
    private func visibleKeys(excluding: Set<String>) async throws -> @Sendable (ResourceKey) -> Bool {
        guard let grant else { return { _ in true } }
        var ids: [String: Set<String>] = [:]
        if let patient = grant.patient {
            ids = try await SearchRestriction.visibleIds(patient: patient, excluding: excluding, in: raw).mapValues {
                Set($0)
            }
        }
        let known = ids
        return { key in
            switch Optional(grant).visibility(key.type) {
            case nil: return false
            case .unrestricted: return true
            case .patient(let patient):
                return key.type == "Patient" ? key.id == patient : known[key.type]?.contains(key.id) ?? false
            }
        }
    }
}
