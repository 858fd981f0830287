import FHIR
import FHIRStore
import Foundation

/// Writes searchset and history Bundles straight to JSON text, embedding each stored
/// resource's text as it is: no parse and re-serialise per entry on the hot path.
struct BundleWriter {
    let baseURL: String

    struct Link {
        var relation: String
        var url: String
    }

    /// A searchset: matches, then included resources, then an outcome entry for warnings.
    /// `summary` cuts each resource down (`_summary`, `_elements`); `.full` embeds the stored
    /// text as it is.
    func searchset(
        total: Int?, links: [Link], resources: [StoredResource], included: [StoredResource] = [], outcome: JSONValue?,
        summary: SearchSummary = .full
    ) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256 + resources.reduce(0) { $0 + ($1.body?.utf8.count ?? 0) + 128 })
        header(type: "searchset", into: &out)
        if let total {
            out.append(contentsOf: ",\"total\":\(total)".utf8)
        }
        write(links, into: &out)
        var entries: [(StoredResource?, String, JSONValue?)] =
            resources.map { ($0, "match", nil) } + included.map { ($0, "include", nil) }
        if let outcome { entries.append((nil, "outcome", outcome)) }
        if !entries.isEmpty {
            out.append(contentsOf: ",\"entry\":[".utf8)
            for (index, entry) in entries.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                if let resource = entry.0 {
                    out.append(contentsOf: "{\"fullUrl\":".utf8)
                    JSONWriter.writeString("\(baseURL)/\(resource.type)/\(resource.id)", into: &out)
                    out.append(contentsOf: ",\"resource\":".utf8)
                    if case .full = summary {
                        out.append(contentsOf: (resource.body ?? "{}").utf8)
                    } else if let body = resource.body, let parsed = try? JSONParser.parse(body) {
                        JSONWriter().write(ResourceSubsetter.r4.apply(summary, to: parsed), into: &out)
                    } else {
                        out.append(contentsOf: "{}".utf8)
                    }
                    out.append(contentsOf: ",\"search\":{\"mode\":\"\(entry.1)\"}}".utf8)
                } else if let outcome = entry.2 {
                    out.append(contentsOf: "{\"resource\":".utf8)
                    JSONWriter().write(outcome, into: &out)
                    out.append(contentsOf: ",\"search\":{\"mode\":\"outcome\"}}".utf8)
                }
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    func history(total: Int, links: [Link], versions: [StoredResource]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256 + versions.reduce(0) { $0 + ($1.body?.utf8.count ?? 0) + 256 })
        header(type: "history", into: &out)
        out.append(contentsOf: ",\"total\":\(total)".utf8)
        write(links, into: &out)
        if !versions.isEmpty {
            out.append(contentsOf: ",\"entry\":[".utf8)
            for (index, version) in versions.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: "{\"fullUrl\":".utf8)
                JSONWriter.writeString("\(baseURL)/\(version.type)/\(version.id)", into: &out)
                if let body = version.body {
                    out.append(contentsOf: ",\"resource\":".utf8)
                    out.append(contentsOf: body.utf8)
                }
                let method = version.deleted ? "DELETE" : (version.versionId == 1 ? "POST" : "PUT")
                let url = method == "POST" ? version.type : "\(version.type)/\(version.id)"
                let status = version.deleted ? "204" : (version.versionId == 1 ? "201" : "200")
                out.append(contentsOf: ",\"request\":{\"method\":\"\(method)\",\"url\":".utf8)
                JSONWriter.writeString(url, into: &out)
                out.append(
                    contentsOf: "},\"response\":{\"status\":\"\(status)\",\"etag\":\"W/\\\"\(version.versionId)\\\"\""
                        .utf8)
                out.append(contentsOf: ",\"lastModified\":\"\(version.lastUpdatedInstant)\"}}".utf8)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private func header(type: String, into out: inout [UInt8]) {
        let now = FHIRDateRange.instantString(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        out.append(contentsOf: "{\"resourceType\":\"Bundle\",\"id\":\"\(UUID().uuidString.lowercased())\"".utf8)
        out.append(contentsOf: ",\"meta\":{\"lastUpdated\":\"\(now)\"},\"type\":\"\(type)\"".utf8)
    }

    private func write(_ links: [Link], into out: inout [UInt8]) {
        guard !links.isEmpty else { return }
        out.append(contentsOf: ",\"link\":[".utf8)
        for (index, link) in links.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: "{\"relation\":\"\(link.relation)\",\"url\":".utf8)
            JSONWriter.writeString(link.url, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }

    /// `self`, `first`, `previous`, `next` and `last` for a page of `count` at `page` of `total`.
    /// The searchset answering `query` with `page`: paging links under `path`, and an outcome
    /// entry naming the parameters that lenient handling ignored.
    /// `linkParameters` replaces the query's criteria in the links (a stored search's key).
    func searchset(
        answering query: SearchQuery, with page: SearchPage, path: String,
        linkParameters: [(name: String, value: String)]? = nil
    ) -> String {
        let links = pagingLinks(
            path: path, parameters: linkParameters ?? query.appliedParameters, count: query.countOnly ? 0 : query.count,
            page: query.page,
            total: page.totalIsExact ? page.total : nil, pageSize: page.resources.count,
            nextCursor: page.nextCursor?.text)
        let issues =
            query.ignored.map { FHIRError.Issue(severity: "warning", code: "not-supported", diagnostics: $0) }
            + page.warnings.map { FHIRError.Issue(severity: "warning", code: "incomplete", diagnostics: $0) }
        let outcome: JSONValue? = issues.isEmpty ? nil : OperationOutcome.make(issues)
        return searchset(
            total: page.total, links: links, resources: page.resources, included: page.included, outcome: outcome,
            summary: query.summary)
    }

    /// Without a total (`_total=none`, or an estimate) there is no `last`, and `next` follows
    /// a full page.
    /// `nextCursor` goes in the `next` link: the keyset its page starts after (the others page by offset).
    func pagingLinks(
        path: String, parameters: [(name: String, value: String)], count: Int, page: Int, total: Int?,
        pageSize: Int? = nil,
        nextCursor: String? = nil
    ) -> [Link] {
        func url(_ page: Int, cursor: String? = nil) -> String {
            var pairs: [(name: String, value: String)] =
                parameters + [("_count", String(count)), ("_page", String(page))]
            if let cursor { pairs.append(("_cursor", cursor)) }
            return "\(baseURL)\(path)?\(FHIRQueryString.encode(pairs))"
        }
        var links = [Link(relation: "self", url: url(page))]
        guard count > 0 else { return links }
        links.append(Link(relation: "first", url: url(1)))
        guard let total else {
            if page > 1 { links.append(Link(relation: "previous", url: url(page - 1))) }
            if (pageSize ?? 0) >= count { links.append(Link(relation: "next", url: url(page + 1, cursor: nextCursor))) }
            return links
        }
        let lastPage = max(1, (total + count - 1) / count)
        if page > 1 { links.append(Link(relation: "previous", url: url(min(page - 1, lastPage)))) }
        if page < lastPage { links.append(Link(relation: "next", url: url(page + 1, cursor: nextCursor))) }
        links.append(Link(relation: "last", url: url(lastPage)))
        return links
    }
}

extension StoredResource: StoredResourceHeaders {}
