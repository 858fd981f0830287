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

    func search(type: String?, path: String, request: Request, context: FHIRRequestContext) async throws -> Response {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try await exchange.searchParameters(context: context)
        let query = try parser.parse(resourceType: type, parameters: parameters, strict: exchange.strict)
        let page = try await configuration.searchGate.run { try await store.search(query) }
        context.noteReturnedPatients(page.resources)
        context.noteReturnedPatients(page.included)
        let bundle = BundleWriter(baseURL: exchange.baseURL).searchset(answering: query, with: page, path: path)
        return exchange.json(bundle, status: .ok)
    }
}
