import FHIR
import FHIRStore
import Hummingbird

/// Compartment search: `GET [base]/Patient/123/Observation?params` is the search
/// `Observation?params` limited to the Observations in the compartment of Patient/123 (by
/// the R4 CompartmentDefinitions: Patient, Encounter, RelatedPerson, Practitioner, Device);
/// `Patient/123/*` searches every member type at once. The search is authorized exactly as the
/// equivalent search: the member type's search scope (for `*`, each member type the token may
/// search), and a `patient/` scope limits it to what that patient may see.
extension ResourceRoutes {
    @Sendable func compartmentSearch(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let owner = try resourceType(context)
        let id = try resourceId(context)
        let member = try context.parameters.require("compartmentType")
        guard let compartment = Compartment.named(owner) else {
            throw FHIRError.notFound(
                "\(owner) has no compartment (compartments: \(Compartment.all.keys.sorted().joined(separator: ", ")))")
        }
        if owner == "Patient" { context.auditNote.patients.append(id) }
        let links = compartment.members
        let clause = SearchClause.compartment(owner: owner, id: id, links: links)
        let responder = SearchResponder(store: store, configuration: configuration, parser: parser)
        let path = "/\(owner)/\(id)/\(member)"
        guard member == "*" else {
            guard FHIRResourceType.isKnown(member) else {
                throw FHIRError.notFound("Unknown resource type '\(member)'")
            }
            guard compartment.hasMember(type: member) else {
                throw FHIRError.badRequest("\(member) is not in the \(owner) compartment")
            }
            return try await responder.search(type: member, path: path, request: request, context: context) { query in
                query.clauses.append(clause)
            }
        }
        // Without `_type`: every member type the token may search (all of them without access
        // control). With it: its types in the compartment, each needing the search scope as in
        // the equivalent search; a `_type` naming none of them matches nothing.
        let access = context.access
        let types = Set(links.keys).union([owner])
        let searchable = types.filter { access == nil || access?.access(.search, type: $0) != nil }
        return try await responder.search(type: nil, path: path, request: request, context: context) { query in
            if query.types.isEmpty {
                guard !searchable.isEmpty else {
                    throw AccessGrant.forbidden(.search, type: "any type of the \(owner) compartment")
                }
                query.types = searchable.sorted()
            } else if query.types.contains(where: { types.contains($0) }) {
                query.types = query.types.filter { types.contains($0) }
            } else {
                query.clauses.append(.id(in: []))
                return
            }
            query.clauses.append(clause)
        }
    }
}
