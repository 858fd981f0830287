import FHIR
import FHIRServer
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird

/// Page 1 against a deep page of the same search, both ways a client can reach the deep
/// page: by the `next` links (a keyset cursor, ``SearchCursor``) and by `_page=N` (an OFFSET
/// the database skips row by row). `caduceus bench paging` prints the figures.
public struct PagingBenchmark: Sendable {
    /// Observations of the one patient the searches page through.
    public var resources: Int
    /// The deep page.
    public var page: Int
    /// Timed requests of each kind (the median is printed).
    public var repeats: Int

    public init(resources: Int = 2000, page: Int = 80, repeats: Int = 20) {
        self.resources = resources
        self.page = page
        self.repeats = repeats
    }

    /// One search's figures, in milliseconds.
    public struct Figure: Sendable {
        public var backend: String
        public var query: String
        public var firstPage: Double
        public var deepByCursor: Double
        public var deepByOffset: Double
    }

    /// The searches: without criteria (the type's resources in `lastUpdated` order) and by
    /// patient (on SQLite a walk of the reference index).
    static let queries = ["Observation?_count=10", "Observation?subject=Patient/bench&_count=10"]

    public func run(backend: String, store: any FHIRStore) async throws -> [Figure] {
        let client = InProcessFHIRClient(router: FHIRApplication.buildRouter(store: store))
        let (resources, page, repeats) = (resources, page, repeats)
        let base = FHIRServerConfiguration().basePath
        var headers = HTTPFields()
        headers[.contentType] = "application/fhir+json"
        var entries = [
            #"{"resource":{"resourceType":"Patient","id":"bench"},"request":{"method":"PUT","url":"Patient/bench"}}"#
        ]
        for index in 0..<resources {
            entries.append(
                #"{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/bench"},"valueQuantity":{"value":\#(index)}},"request":{"method":"POST","url":"Observation"}}"#
            )
        }
        for chunk in stride(from: 0, to: entries.count, by: 500) {
            let bundle =
                #"{"resourceType":"Bundle","type":"batch","entry":[\#(entries[chunk..<min(chunk + 500, entries.count)].joined(separator: ","))]}"#
            let response = try await client.execute(
                uri: base, method: .post, headers: headers, body: ByteBuffer(string: bundle))
            guard response.status == .ok else { throw BenchmarkError("the batch answered \(response.status)") }
        }
        func get(_ path: String) async throws -> (Double, JSONValue) {
            let started = ContinuousClock.now
            let response = try await client.execute(uri: path, method: .get)
            let took = ContinuousClock.now - started
            guard response.status == .ok, let json = try? JSONParser.parse(String(buffer: response.body)) else {
                throw BenchmarkError("\(path) answered \(response.status)")
            }
            return (Double(took.components.attoseconds) / 1e15 + Double(took.components.seconds) * 1000, json)
        }
        func path(of url: String) -> String {
            guard let components = URLComponents(string: url) else { return url }
            return components.percentEncodedPath + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var figures: [Figure] = []
        for query in Self.queries {
            // The deep page's next link: followed once to get there, then timed again and again.
            var deepLink = "\(base)/\(query)"
            for _ in 1..<page {
                let (_, json) = try await get(deepLink)
                guard
                    let next = json["link"]?.arrayValue?.first(where: { $0["relation"] == "next" })?["url"]?.stringValue
                else {
                    throw BenchmarkError("\(query) has fewer than \(page) pages")
                }
                deepLink = path(of: next)
            }
            var first: [Double] = []
            var byCursor: [Double] = []
            var byOffset: [Double] = []
            for _ in 0..<repeats {
                first.append(try await get("\(base)/\(query)").0)
                byCursor.append(try await get(deepLink).0)
                byOffset.append(try await get("\(base)/\(query)&_page=\(page)").0)
            }
            figures.append(
                Figure(
                    backend: backend, query: query, firstPage: median(first), deepByCursor: median(byCursor),
                    deepByOffset: median(byOffset)))
        }
        return figures
    }
}
