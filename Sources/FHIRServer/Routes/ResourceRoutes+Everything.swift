import FHIR
import FHIRStore
import Hummingbird

/// `Patient/[id]/$everything` and `Patient/$everything`, paged.
///
/// Parameters: `_since` (last updated at or after), `_type`, `start` and `end` (care dates,
/// see ``EverythingOperation/Filters``), `_count` (entries a page, at most the search
/// maximum, which is also the default). One patient's answer pages by `_page` with a total;
/// the type level walks the patients the token may see in id order and pages by a `_cursor`
/// (an entry offset within a patient) that its `next` link carries, without a total.
extension ResourceRoutes {
    /// What a `$everything` request asks for.
    struct EverythingParameters: Sendable {
        var filters = EverythingOperation.Filters()
        var count: Int
        var page = 1
        /// Type level: where the page starts.
        var cursor: (offset: Int, patient: String)?
        /// The filters as the request gave them, for the links.
        var applied: [(name: String, value: String)] = []
    }

    /// The most patients one type-level page looks at (with `_type` or `_since`, many may add nothing).
    static let everythingPatientsPerPage = 100
    /// The highest entry offset a `_cursor` may name: far above any one patient's record.
    static let everythingMaximumOffset = 10_000_000

    /// A client's text, cut for a message (hostile values can be long).
    static func shortened(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(77)) + "..."
    }

    func everythingParameters(_ exchange: FHIRExchange, typeLevel: Bool) throws -> EverythingParameters {
        var result = EverythingParameters(count: parser.maximumCount)
        for (name, value) in exchange.query {
            switch name {
            case "_since":
                guard let range = FHIRDateRange(parsing: value) else {
                    throw FHIRError.badRequest("_since must be an instant")
                }
                result.filters.since = range.low
            case "_type":
                let names = value.split(separator: ",").map(String.init)
                guard !names.isEmpty, names.allSatisfy(FHIRResourceType.isKnown) else {
                    throw FHIRError.badRequest("Unknown type in _type=\(value)")
                }
                result.filters.types = Set(names)
            case "start", "end":
                guard FHIRDateRange(parsing: value) != nil else {
                    throw FHIRError.badRequest(
                        "\(name) must be a date such as 2020, 2020-03 or 2020-03-31, not '\(Self.shortened(value))'")
                }
                if name == "start" { result.filters.start = value } else { result.filters.end = value }
            case "_count":
                result.count = try parser.pageSize(value)
                continue
            case "_page" where !typeLevel:
                result.page = try SearchQueryParser.page(value)
                continue
            case "_cursor" where typeLevel:
                let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, let offset = Int(parts[0]), (0...Self.everythingMaximumOffset).contains(offset),
                    FHIRResourceType.isValidId(parts[1])
                else { throw FHIRError.badRequest("_cursor is not one this server gave in a next link") }
                result.cursor = (offset, parts[1])
                continue
            case "_format", "_pretty":
                continue
            default:
                if exchange.strict { throw FHIRError.badRequest("$everything does not take '\(Self.shortened(name))'") }
                continue
            }
            result.applied.append((name, value))
        }
        return result
    }

    /// `Patient/[id]/$everything`.
    @Sendable func everything(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let type = try resourceType(context)
        guard type == "Patient" else {
            throw FHIRError(status: 405, code: "not-supported", "$everything is supported on Patient")
        }
        let id = try resourceId(context)
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        context.auditNote.patients.append(id)
        let parameters = try everythingParameters(exchange, typeLevel: false)
        let (filters, count, page) = (parameters.filters, parameters.count, parameters.page)
        let (total, resources) = try await store.reading { transaction -> (Int, [StoredResource]) in
            let entries = try await transaction.everythingEntries(patientId: id, filters: filters)
            let offset = min(entries.count, (page - 1) * count)
            return (
                entries.count,
                try await transaction.everythingPage(entries[offset..<min(entries.count, offset + count)])
            )
        }
        context.noteReturnedPatients(ids: [id])
        let writer = BundleWriter(baseURL: exchange.baseURL)
        let links = writer.pagingLinks(
            path: "/Patient/\(id)/$everything", parameters: parameters.applied, count: count, page: page, total: total)
        return exchange.json(
            writer.searchset(total: total, links: links, resources: resources, outcome: nil), status: .ok)
    }

    /// `Patient/$everything`: every patient the token may see, one after another, paged by entries.
    @Sendable func everythingOfAll(request: Request, context: FHIRRequestContext) async throws -> Response {
        let store = try await stores.store(for: request, context: context)
        let type = try resourceType(context)
        guard type == "Patient" else {
            throw FHIRError(status: 405, code: "not-supported", "$everything is supported on Patient")
        }
        let exchange = try FHIRExchange(request: request, configuration: configuration)
        let parameters = try everythingParameters(exchange, typeLevel: true)
        let (filters, count, cursor) = (parameters.filters, parameters.count, parameters.cursor)
        let limit = Self.everythingPatientsPerPage
        let (resources, next, patients) = try await store.reading {
            transaction -> ([StoredResource], (offset: Int, patient: String)?, [String]) in
            var resources: [StoredResource] = []
            var patients: [String] = []
            guard count > 0 else { return ([], nil, []) }
            var current = cursor?.patient
            if current == nil { current = try await transaction.everythingPatients(after: nil, limit: 1).first }
            var offset = cursor?.offset ?? 0
            var examined = 0
            while let patient = current {
                if examined == limit || resources.count == count { return (resources, (0, patient), patients) }
                examined += 1
                let entries: [EverythingOperation.Entry]
                do {
                    entries = try await transaction.everythingEntries(patientId: patient, filters: filters)
                } catch let error as FHIRError where error.status == 404 || error.status == 410 {
                    entries = []  // gone since the cursor was given, or not the token's: the next one
                }
                let end = min(entries.count, offset + count - resources.count)
                if offset < end {
                    resources += try await transaction.everythingPage(entries[offset..<end])
                    patients.append(patient)
                }
                if end < entries.count { return (resources, (end, patient), patients) }
                offset = 0
                current = try await transaction.everythingPatients(after: patient, limit: 1).first
            }
            return (resources, nil, patients)
        }
        context.auditNote.patients += patients
        context.noteReturnedPatients(ids: patients)
        func url(_ cursor: (offset: Int, patient: String)?) -> String {
            var query: [(name: String, value: String)] = parameters.applied
            query.append(("_count", String(count)))
            if let cursor { query.append(("_cursor", "\(cursor.offset):\(cursor.patient)")) }
            return "\(exchange.baseURL)/Patient/$everything?\(FHIRQueryString.encode(query))"
        }
        var links = [
            BundleWriter.Link(relation: "self", url: url(cursor)), BundleWriter.Link(relation: "first", url: url(nil)),
        ]
        if let next { links.append(BundleWriter.Link(relation: "next", url: url(next))) }
        let writer = BundleWriter(baseURL: exchange.baseURL)
        return exchange.json(
            writer.searchset(total: nil, links: links, resources: resources, outcome: nil), status: .ok)
    }
}
