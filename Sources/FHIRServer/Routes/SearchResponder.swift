import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// Search at type or system level, answered as a searchset Bundle.
struct SearchResponder {
    let store: AuthorizedStore
    let configuration: FHIRServerConfiguration
    let parser: SearchQueryParser

    /// The parameter of paging links that names criteria the server keeps (``StoredSearches``).
    static let storedSearchParameter = "_getpages"
    /// What may come with it: the page, and how the answer is written.
    static let storedSearchCompanions: Set<String> = ["_page", "_count", "_cursor", "_format", "_pretty"]

    /// `refine` adds what the route itself asks (a compartment) to the client's criteria.
    func search(
        type: String?, path: String, request: Request, context: FHIRRequestContext,
        refine: ((inout SearchQuery) throws -> Void)? = nil
    ) async throws -> Response {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        var parameters = try await exchange.searchParameters(context: context)
        // A `next` link's keyset (``SearchCursor``), which only the server writes.
        let cursorText = parameters.last { $0.name == "_cursor" }?.value
        parameters.removeAll { $0.name == "_cursor" }
        // The criteria of a POST are kept server-side and its links name them by key; a GET's
        // links repeat its URL's criteria as before.
        var linkParameters: [(name: String, value: String)]?
        let owner = (request.headers[.authorization] ?? "") + "\n" + (request.headers[.tenant] ?? "")
        if let key = parameters.first(where: { $0.name == Self.storedSearchParameter })?.value {
            let companions = parameters.filter { $0.name != Self.storedSearchParameter }
            guard companions.allSatisfy({ Self.storedSearchCompanions.contains($0.name) }) else {
                throw FHIRError.badRequest(
                    "\(Self.storedSearchParameter) takes only _page and _count: the criteria are the stored search's")
            }
            guard let stored = try await storedParameters(key: key, path: path, owner: owner) else {
                throw FHIRError.gone(
                    "No stored search '\(key.prefix(64))' for this client here: it expired (kept \(Int(configuration.storedSearches.lifetime)) s) or was never made;"
                        + " run the search again")
            }
            context.auditNote.form = FHIRQueryString.encode(stored)
            if context.protectsAuditEvents {
                context.auditNote.patients += AuditRecord.patients(
                    searchedIn: stored, limit: Interaction.recordedPatientLimit)
            }
            parameters = stored + companions
            linkParameters = [(Self.storedSearchParameter, key)]
        }
        // Kept only once the search has been parsed, authorized and answered: a refused one
        // took a key that could push out other clients' (attacker finding A3).
        let criteriaToKeep =
            linkParameters == nil && request.method == .post ? parameters.filter { $0.name != "_page" } : nil
        var query = try parser.parse(resourceType: type, parameters: parameters, strict: exchange.strict)
        try refine?(&query)
        if let cursorText {
            guard let cursor = SearchCursor(text: cursorText) else {
                throw FHIRError.badRequest("_cursor is not one this server gave in a next link")
            }
            query.cursor = cursor
        }
        let page = try await configuration.searchGate.run { try await store.search(query) }
        if let criteria = criteriaToKeep {  // `_cursor` is out already
            linkParameters = [(Self.storedSearchParameter, try await storeCriteria(criteria, path: path, owner: owner))]
        }
        context.noteReturnedPatients(page.resources)
        context.noteReturnedPatients(page.included)
        let bundle = BundleWriter(baseURL: exchange.baseURL).searchset(
            answering: query, with: page, path: path, linkParameters: linkParameters)
        return exchange.json(bundle, status: .ok)
    }

    /// The stored searches of this request's tenant: in its PostgreSQL database, where every
    /// replica finds them, else in this server's memory.
    var sharedSearches: SharedStoredSearches? {
        store.serverStateDatabase.map { SharedStoredSearches(database: $0, limits: configuration.storedSearches) }
    }

    func storeCriteria(_ criteria: [(name: String, value: String)], path: String, owner: String) async throws -> String
    {
        guard let sharedSearches else { return configuration.storedSearches.store(criteria, path: path, owner: owner) }
        return try await sharedSearches.store(criteria, path: path, owner: owner)
    }

    func storedParameters(key: String, path: String, owner: String) async throws -> [(name: String, value: String)]? {
        guard let sharedSearches else {
            return configuration.storedSearches.parameters(key: key, path: path, owner: owner)
        }
        return try await sharedSearches.parameters(key: key, path: path, owner: owner)
    }
}
