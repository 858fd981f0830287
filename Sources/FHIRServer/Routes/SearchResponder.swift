import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// Search at type or system level, answered as a searchset Bundle.
struct SearchResponder {
    let store: any FHIRStore
    let configuration: FHIRServerConfiguration
    let parser: SearchQueryParser

    func search(type: String?, path: String, request: Request, context: FHIRRequestContext) async throws -> Response {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try await exchange.searchParameters(context: context)
        let query = try parser.parse(resourceType: type, parameters: parameters, strict: exchange.strict)
        let page = try await store.search(query)
        let writer = BundleWriter(baseURL: exchange.baseURL)
        let links = writer.pagingLinks(
            path: path, parameters: query.appliedParameters, count: query.countOnly ? 0 : query.count, page: query.page,
            total: page.total, pageSize: page.resources.count)
        let outcome: JSONValue? = query.ignored.isEmpty ? nil : OperationOutcome.make(query.ignored.map {
            FHIRError.Issue(severity: "warning", code: "not-supported", diagnostics: $0)
        })
        let bundle = writer.searchset(
            total: page.total, links: links, resources: page.resources, included: page.included, outcome: outcome,
            summary: query.summary)
        return exchange.json(bundle, status: .ok)
    }
}
