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

    func searchset(total: Int?, links: [Link], resources: [StoredResource], outcome: JSONValue?) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256 + resources.reduce(0) { $0 + ($1.body?.utf8.count ?? 0) + 128 })
        header(type: "searchset", into: &out)
        if let total {
            out.append(contentsOf: ",\"total\":\(total)".utf8)
        }
        write(links, into: &out)
        var entries: [(StoredResource?, JSONValue?)] = resources.map { ($0, nil) }
        if let outcome { entries.append((nil, outcome)) }
        if !entries.isEmpty {
            out.append(contentsOf: ",\"entry\":[".utf8)
            for (index, entry) in entries.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                if let resource = entry.0 {
                    out.append(contentsOf: "{\"fullUrl\":".utf8)
                    JSONWriter.writeString("\(baseURL)/\(resource.type)/\(resource.id)", into: &out)
                    out.append(contentsOf: ",\"resource\":".utf8)
                    out.append(contentsOf: (resource.body ?? "{}").utf8)
                    out.append(contentsOf: ",\"search\":{\"mode\":\"match\"}}".utf8)
                } else if let outcome = entry.1 {
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
                out.append(contentsOf: "},\"response\":{\"status\":\"\(status)\",\"etag\":\"W/\\\"\(version.versionId)\\\"\"".utf8)
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
    func pagingLinks(path: String, parameters: [(name: String, value: String)], count: Int, page: Int, total: Int) -> [Link] {
        func url(_ page: Int) -> String {
            let query = FHIRQueryString.encode(parameters + [("_count", String(count)), ("_page", String(page))])
            return "\(baseURL)\(path)?\(query)"
        }
        var links = [Link(relation: "self", url: url(page))]
        guard count > 0 else { return links }
        let lastPage = max(1, (total + count - 1) / count)
        links.append(Link(relation: "first", url: url(1)))
        if page > 1 { links.append(Link(relation: "previous", url: url(min(page - 1, lastPage)))) }
        if page < lastPage { links.append(Link(relation: "next", url: url(page + 1))) }
        links.append(Link(relation: "last", url: url(lastPage)))
        return links
    }
}

extension StoredResource: StoredResourceHeaders {}
