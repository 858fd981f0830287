import FHIR
import FHIRServer
import FHIRStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// FHIR throughput with access control and audit on, as a ratio to the same server with both
/// off, measured side by side in alternating rounds (`caduceus bench auth`): in-process router
/// (``InProcessFHIRClient``), SQLite, the same seeded patients in every configuration.
public struct AuthBenchmark: Sendable {
    /// Alternating rounds (each configuration runs once per round).
    public var rounds: Int
    /// Seconds each configuration runs in a round.
    public var seconds: Double
    /// Concurrent in-process clients.
    public var concurrency: Int
    /// Seeded patients (3 Observations each).
    public var patients: Int

    /// The request mix every configuration runs, in words.
    public static let mix =
        "40% Patient reads, 20% Patient searches by name, 30% Observation searches by patient and code, 10% Observation creates"

    /// A benchmark of `rounds` rounds of `seconds` per configuration; at least one of each.
    public init(rounds: Int = 5, seconds: Double = 3, concurrency: Int = 4, patients: Int = 50) {
        self.rounds = max(1, rounds)
        self.seconds = max(0.1, seconds)
        self.concurrency = max(1, concurrency)
        self.patients = max(1, patients)
    }

    /// What one configuration achieved over all its rounds.
    public struct Figure: Sendable {
        /// "off", "audit only", "HS256 only", "HS256 + audit", "RS256 + audit".
        public var name: String
        /// Requests answered, summed over the rounds.
        public var requests = 0
        /// Answers with another status than the one expected.
        public var errors = 0
        /// Seconds measured, summed over the rounds.
        public var elapsed = 0.0
        /// The first unexpected answer, "METHOD path: status".
        public var firstError: String?
        /// Requests a second over the rounds.
        public var requestsPerSecond: Double { elapsed > 0 ? Double(requests) / elapsed : 0 }
        /// Requests a second in each round, in order.
        public var rounds: [Double] = []

        /// The ratio of each round's rate to `base`'s in the same round: the lowest, the median
        /// and the highest.
        public func ratios(to base: Figure) -> (low: Double, median: Double, high: Double)? {
            let ratios = zip(rounds, base.rounds).compactMap { $1 > 0 ? $0 / $1 : nil }.sorted()
            guard let low = ratios.first, let high = ratios.last else { return nil }
            return (low, ratios[ratios.count / 2], high)
        }
    }

    struct Setup {
        var figure: Figure
        var store: SQLFHIRStore
        var client: InProcessFHIRClient
        var trail: AuditTrail?
        var token: String?
    }

    /// Runs every configuration, "off" first; `note` hears of a configuration left out (RS256
    /// without openssl).
    public func run(note: (String) -> Void = { _ in }) async throws -> [Figure] {
        var logger = Logger(label: "caduceus.bench.auth")
        logger.logLevel = .error
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "caduceus-bench-auth-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = Array("caduceus-bench-auth-secret-of-32-bytes-or-more".utf8)
        let hs256 = await AccessTokenIssuer.hs256(secret: secret)
        let claims = {
            SMARTAccessClaims(
                subject: "bench", expires: Date().addingTimeInterval(3000), scope: "user/*.cruds", clientId: "bench")
        }
        var rsa: (issuer: AccessTokenIssuer, publicPEM: String)?
        if let keys = AccessTokenIssuer.makeRSAKeyPair(in: directory) {
            rsa = (try await AccessTokenIssuer.rs256(privateKeyPEM: keys.0), keys.1)
        }

        var setups: [Setup] = []
        func make(_ name: String, verifier: AccessTokenVerifier?, audit: AuditCommit?, token: String?) async throws {
            let store = try await SQLFHIRStore.open(
                url: directory.appendingPathComponent("\(setups.count).sqlite").path)
            let trail = audit.map { AuditTrail(store: store, logger: logger, commit: $0) }
            let router = FHIRApplication.buildRouter(
                store: store, security: FHIRSecurity(verifier: verifier, audit: trail))
            let client = InProcessFHIRClient(router: router, remoteAddress: "127.0.0.1", logger: logger)
            setups.append(Setup(figure: Figure(name: name), store: store, client: client, trail: trail, token: token))
        }
        try await make("off", verifier: nil, audit: nil, token: nil)
        try await make("audit only", verifier: nil, audit: .beforeResponse, token: nil)
        try await make(
            "HS256 only", verifier: try await AccessTokenVerifier(hs256Secret: secret), audit: nil,
            token: try await hs256.sign(claims()))
        try await make(
            "HS256 + audit", verifier: try await AccessTokenVerifier(hs256Secret: secret), audit: .beforeResponse,
            token: try await hs256.sign(claims()))
        // The audit trail's other commit: answers before their AuditEvents are written.
        try await make(
            "HS256 + audit (write-behind)", verifier: try await AccessTokenVerifier(hs256Secret: secret),
            audit: .writeBehind, token: try await hs256.sign(claims()))
        if let rsa {
            try await make(
                "RS256 + audit", verifier: try await AccessTokenVerifier(rs256PublicKeyPEM: rsa.publicPEM),
                audit: .beforeResponse,
                token: try await rsa.issuer.sign(claims()))
        } else {
            note("RS256 skipped: openssl not found")
        }
        // The same patients in every store (client ids), seeded with auth and audit off.
        for setup in setups {
            let seeder = InProcessFHIRClient(
                router: FHIRApplication.buildRouter(store: setup.store), remoteAddress: "127.0.0.1", logger: logger)
            for index in 0..<patients {
                let patient =
                    #"{"resourceType":"Patient","id":"bench-\#(index)","name":[{"family":"Bench\#(index % 20)","given":["Load\#(index)"]}],"gender":"female"}"#
                _ = try await Self.send(seeder, .put, "Patient/bench-\(index)", body: patient, token: nil)
                for value in [72, 118, 37] {
                    _ = try await Self.send(
                        seeder, .post, "Observation", body: Self.observation(patient: "bench-\(index)", value: value),
                        token: nil)
                }
            }
        }

        for _ in 0..<rounds {
            for index in setups.indices {
                try await measure(&setups[index])
            }
        }
        for setup in setups { try await setup.store.close() }

        return setups.map(\.figure)
    }

    /// One timed run of `setup`; the audit trail is flushed inside the timed window, so that
    /// the AuditEvent writes are paid for by the configuration that makes them.
    func measure(_ setup: inout Setup) async throws {
        let client = setup.client
        let token = setup.token
        let patients = self.patients
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        let results = try await withThrowingTaskGroup(of: (Int, Int, String?).self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var random = SystemRandomNumberGenerator()
                    var (count, errors, firstError) = (0, 0, String?.none)
                    var step = worker
                    while ContinuousClock.now < deadline {
                        let patient = "bench-\(Int.random(in: 0..<patients, using: &random))"
                        let (method, path, body, expect): (HTTPRequest.Method, String, String?, Int) =
                            switch step % 10 {
                            case 0, 3, 6, 8: (.get, "Patient/\(patient)", nil, 200)
                            case 1, 5:
                                (
                                    .get, "Patient?family=Bench\(Int.random(in: 0..<20, using: &random))&_count=10",
                                    nil, 200
                                )
                            case 2, 4, 7:
                                (.get, "Observation?subject=Patient/\(patient)&code=http://loinc.org|8867-4", nil, 200)
                            default:
                                (
                                    .post, "Observation",
                                    Self.observation(patient: patient, value: Int.random(in: 50..<120, using: &random)),
                                    201
                                )
                            }
                        step += 1
                        let status = try await Self.send(client, method, path, body: body, token: token)
                        count += 1
                        if status != expect {
                            errors += 1
                            if firstError == nil { firstError = "\(method) \(path): \(status)" }
                        }
                    }
                    return (count, errors, firstError)
                }
            }
            var all: [(Int, Int, String?)] = []
            for try await result in group { all.append(result) }
            return all
        }
        await setup.trail?.flush()
        let elapsed = start.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        setup.figure.elapsed += seconds
        setup.figure.requests += results.map(\.0).reduce(0, +)
        setup.figure.rounds.append(seconds > 0 ? Double(results.map(\.0).reduce(0, +)) / seconds : 0)
        setup.figure.errors += results.map(\.1).reduce(0, +)
        if setup.figure.firstError == nil { setup.figure.firstError = results.compactMap(\.2).first }
    }

    static func observation(patient: String, value: Int) -> String {
        #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/\#(patient)"},"effectiveDateTime":"2026-11-29T10:00:00Z","valueQuantity":{"value":\#(value),"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}"#
    }

    /// One request through the router's responder; the response status.
    static func send(
        _ client: InProcessFHIRClient, _ method: HTTPRequest.Method, _ path: String, body: String?, token: String?
    ) async throws -> Int {
        var fields = HTTPFields()
        fields[.accept] = "application/fhir+json"
        if let token { fields[.authorization] = "Bearer \(token)" }
        if body != nil {
            fields[.contentType] = "application/fhir+json"
            // The empty answer of the figures in BENCHMARKS.md (the default then; the resource now).
            fields[HTTPField.Name("Prefer")!] = "return=minimal"
        }
        let encoded = path.replacingOccurrences(of: "|", with: "%7C")
        let response = try await client.execute(
            uri: "/fhir-server/api/v4/\(encoded)", method: method, headers: fields,
            body: body.map { ByteBuffer(string: $0) })
        return Int(response.status.code)
    }
}
