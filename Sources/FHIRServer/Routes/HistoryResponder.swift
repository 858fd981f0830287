import FHIR
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// History at instance, type or system level, answered as a history Bundle.
struct HistoryResponder {
    let store: AuthorizedStore
    let configuration: FHIRServerConfiguration
    let parser: SearchQueryParser

    func history(type: String?, id: String?, path: String, request: Request, context: FHIRRequestContext) async throws
        -> Response
    {
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        var count = parser.defaultCount
        var page = 1
        var since: Int64?
        var applied: [(name: String, value: String)] = []
        for (name, value) in exchange.query {
            switch name {
            case "_count":
                count = try parser.pageSize(value)
            case "_page":
                page = try SearchQueryParser.page(value)
            case "_since":
                guard let range = FHIRDateRange(parsing: value) else {
                    throw FHIRError.badRequest("_since must be an instant, not '\(value)'")
                }
                since = range.low
                applied.append((name, value))
            case "_format", "_pretty":
                break
            default:
                if exchange.strict { throw FHIRError.badRequest("The parameter '\(name)' is not supported on history") }
            }
        }
        let result = try await store.history(type: type, id: id, since: since, count: count, offset: (page - 1) * count)
        let total = result.total ?? 0
        if let type, let id, total == 0 {
            _ = try await store.read(type: type, id: id)  // 404 for an unknown resource
        }
        context.noteReturnedPatients(result.resources)
        let writer = BundleWriter(baseURL: exchange.baseURL)
        let links = writer.pagingLinks(path: path, parameters: applied, count: count, page: page, total: total)
        return exchange.json(writer.history(total: total, links: links, versions: result.resources), status: .ok)
    }
}
