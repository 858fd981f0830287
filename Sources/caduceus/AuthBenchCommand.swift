import ArgumentParser
import FHIR
import FHIRServer
import FHIRStore
import Foundation
import Hummingbird
import Logging

/// `caduceus bench auth`: FHIR throughput with access control and audit on, as a ratio to
/// the same server with both off, measured side by side in alternating rounds.
struct AuthBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "FHIR throughput with SMART bearer tokens and an AuditEvent per request, as a ratio to both off (in-process router, SQLite).")

    @Option(help: "Alternating rounds (each configuration runs once per round).")
    var rounds = 5

    @Option(help: "Seconds each configuration runs in a round.")
    var seconds = 3.0

    @Option(help: "Concurrent in-process clients.")
    var concurrency = 4

    @Option(help: "Seeded patients (3 Observations each).")
    var patients = 50

    struct Setup {
        var name: String
        var store: SQLFHIRStore
        var responder: any HTTPResponder<FHIRRequestContext>
        var trail: AuditTrail?
        var token: String?
        var requests = 0
        var errors = 0
        var elapsed = 0.0
        var firstError: String?
    }

    func run() async throws {
        var logger = Logger(label: "caduceus.bench.auth")
        logger.logLevel = .error
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-bench-auth-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = Array("caduceus-bench-auth-secret-of-32-bytes-or-more".utf8)
        let hs256 = await AccessTokenIssuer.hs256(secret: secret)
        let claims = { SMARTAccessClaims(subject: "bench", expires: Date().addingTimeInterval(3000), scope: "user/*.cruds", clientId: "bench") }
        var rsa: (issuer: AccessTokenIssuer, publicPEM: String)?
        if let keys = AccessTokenIssuer.makeRSAKeyPair(in: directory) { rsa = (try await AccessTokenIssuer.rs256(privateKeyPEM: keys.0), keys.1) }

        var setups: [Setup] = []
        func make(_ name: String, verifier: AccessTokenVerifier?, audit: Bool, token: String?) async throws {
            let store = try await SQLFHIRStore.open(url: directory.appendingPathComponent("\(setups.count).sqlite").path)
            let trail = audit ? AuditTrail(store: store, logger: logger) : nil
            let router = FHIRApplication.buildRouter(store: store, security: FHIRSecurity(verifier: verifier, audit: trail))
            setups.append(Setup(name: name, store: store, responder: router.buildResponder(), trail: trail, token: token))
        }
        try await make("off", verifier: nil, audit: false, token: nil)
        try await make("audit only", verifier: nil, audit: true, token: nil)
        try await make("HS256 only", verifier: try await AccessTokenVerifier(hs256Secret: secret), audit: false, token: try await hs256.sign(claims()))
        try await make("HS256 + audit", verifier: try await AccessTokenVerifier(hs256Secret: secret), audit: true, token: try await hs256.sign(claims()))
        if let rsa {
            try await make(
                "RS256 + audit", verifier: try await AccessTokenVerifier(rs256PublicKeyPEM: rsa.publicPEM), audit: true,
                token: try await rsa.issuer.sign(claims()))
        } else {
            print("(RS256 skipped: openssl not found)")
        }
        // The same patients in every store (client ids), seeded with auth and audit off.
        for setup in setups {
            let seeder = FHIRApplication.buildRouter(store: setup.store).buildResponder()
            for index in 0..<patients {
                let patient = #"{"resourceType":"Patient","id":"bench-\#(index)","name":[{"family":"Bench\#(index % 20)","given":["Load\#(index)"]}],"gender":"female"}"#
                _ = try await Self.send(seeder, .put, "Patient/bench-\(index)", body: patient, token: nil, logger: logger)
                for value in [72, 118, 37] {
                    _ = try await Self.send(seeder, .post, "Observation", body: Self.observation(patient: "bench-\(index)", value: value), token: nil, logger: logger)
                }
            }
        }

        for _ in 0..<rounds {
            for index in setups.indices {
                try await measure(&setups[index], logger: logger)
            }
        }
        for setup in setups { try await setup.store.close() }

        print("\(rounds) alternating rounds x \(seconds) s per configuration, \(concurrency) in-process clients, SQLite, \(patients) patients")
        print("mix: 40% Patient reads, 20% Patient searches by name, 30% Observation searches by patient and code, 10% Observation creates")
        print("configuration     requests/s   errors   ratio to off")
        let base = Double(setups[0].requests) / setups[0].elapsed
        for setup in setups {
            let rate = Double(setup.requests) / setup.elapsed
            print(
                setup.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + String(format: "%-13.0f%-9d%.3f", rate, setup.errors, rate / base))
            if let firstError = setup.firstError { print("  first error: \(firstError)") }
        }
    }

    /// One timed run of `setup`; the audit trail is flushed inside the timed window, so that
    /// the AuditEvent writes are paid for by the configuration that makes them.
    func measure(_ setup: inout Setup, logger: Logger) async throws {
        let responder = setup.responder
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
                            case 1, 5: (.get, "Patient?family=Bench\(Int.random(in: 0..<20, using: &random))&_count=10", nil, 200)
                            case 2, 4, 7: (.get, "Observation?subject=Patient/\(patient)&code=http://loinc.org|8867-4", nil, 200)
                            default: (.post, "Observation", Self.observation(patient: patient, value: Int.random(in: 50..<120, using: &random)), 201)
                            }
                        step += 1
                        let status = try await Self.send(responder, method, path, body: body, token: token, logger: logger)
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
        setup.elapsed += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        setup.requests += results.map(\.0).reduce(0, +)
        setup.errors += results.map(\.1).reduce(0, +)
        if setup.firstError == nil { setup.firstError = results.compactMap(\.2).first }
    }

    static func observation(patient: String, value: Int) -> String {
        #"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/\#(patient)"},"effectiveDateTime":"2026-11-29T10:00:00Z","valueQuantity":{"value":\#(value),"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}"#
    }

    /// One request through the router's responder; the response status.
    static func send(
        _ responder: any HTTPResponder<FHIRRequestContext>, _ method: HTTPRequest.Method, _ path: String, body: String?, token: String?,
        logger: Logger
    ) async throws -> Int {
        var fields = HTTPFields()
        fields[.accept] = "application/fhir+json"
        if let token { fields[.authorization] = "Bearer \(token)" }
        if body != nil { fields[.contentType] = "application/fhir+json" }
        let encoded = path.replacingOccurrences(of: "|", with: "%7C")
        let head = HTTPRequest(method: method, scheme: "http", authority: "localhost", path: "/fhir-server/api/v4/\(encoded)", headerFields: fields)
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer(string: body ?? "")))
        let response = try await responder.respond(to: request, context: FHIRRequestContext(logger: logger, remoteAddress: "127.0.0.1"))
        return Int(response.status.code)
    }
}
