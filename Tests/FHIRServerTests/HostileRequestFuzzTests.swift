import FHIR
import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import HTTPTypes
import HostileRequests
import Hummingbird
import HummingbirdTesting
import Testing

/// The fuzz target of issue 13: hostile requests from a seeded generator (request lines,
/// parameter names and values, headers, bodies, Bundles, JSON Patches, and mutations of valid
/// requests) through the real router on SQLite. Every answer must come within the time limit,
/// never be a 5xx, and be an OperationOutcome whenever it is an error.
///
/// `CADUCEUS_FUZZ_SECONDS` runs for that long (CI=true: 60 s by default); otherwise a fixed
/// count of `CADUCEUS_FUZZ_COUNT` requests (400) keeps a local run quick. `CADUCEUS_FUZZ_SEED`
/// fixes the seed (printed with every failure); `CADUCEUS_FUZZ_INDEX` sends only that request
/// of the seed, which is how a failure is made again.
@Suite struct HostileRequestFuzzTests {
    struct Budget {
        var seed: UInt64
        var seconds: Double?
        var count: Int?
        var only: Int?
        var requestSeconds: Double

        static var fromEnvironment: Budget {
            let environment = ProcessInfo.processInfo.environment
            let seconds = environment["CADUCEUS_FUZZ_SECONDS"].flatMap(Double.init) ?? (TestDatabases.isCI ? 60 : nil)
            let seed =
                environment["CADUCEUS_FUZZ_SEED"].flatMap { UInt64($0) }
                // A time-boxed run explores a new part of the space each time; a count run repeats.
                ?? (seconds == nil ? 13 : UInt64.random(in: 1...UInt64(UInt32.max)))
            return Budget(
                seed: seed, seconds: seconds,
                count: seconds == nil ? environment["CADUCEUS_FUZZ_COUNT"].flatMap(Int.init) ?? 400 : nil,
                only: environment["CADUCEUS_FUZZ_INDEX"].flatMap(Int.init),
                // 5 s alone; in the whole suite the fuzz shares two cores with every other test
                // (a 400-entry Bundle took 9.8 s there in a debug build), so the bound is 20 s.
                requestSeconds: environment["CADUCEUS_FUZZ_REQUEST_SECONDS"].flatMap(Double.init)
                    ?? (TestDatabases.isCI ? 20 : 5))
        }
    }

    /// One failure class: how often, and the first request that showed it.
    struct Finding {
        var count: Int
        var example: String
    }

    @Test func hostileRequestsAnswerWithOperationOutcomesInTime() async throws {
        let store = try await TestDatabases.makeStore(.sqlite)
        try await Self.fuzzAndReport(
            FHIRApplication.buildRouter(store: store), store: store,
            test: "hostileRequestsAnswerWithOperationOutcomesInTime")
    }

    /// The same through access control and the audit trail: a request without its own
    /// (hostile) Authorization header carries a valid token of one of four kinds, so that the
    /// scope checks, the patient compartment and the AuditEvents see hostile requests too.
    @Test func hostileRequestsWithTokensAndAuditAnswerWithOperationOutcomesInTime() async throws {
        let secret = Array("caduceus-hostile-fuzz-secret-of-32-bytes-or-more".utf8)
        let issuer = await AccessTokenIssuer.hs256(secret: secret)
        var signed: [String] = []
        for (scope, patient) in [
            ("user/*.cruds", nil), ("patient/*.read", "p1"), ("system/*.*", nil), ("user/Patient.c", nil),
        ] {
            signed.append(
                try await issuer.sign(
                    SMARTAccessClaims(
                        subject: "fuzz", expires: Date().addingTimeInterval(3600), scope: scope, patient: patient)))
        }
        let tokens = signed
        let store = try await TestDatabases.makeStore(.sqlite)
        let trail = AuditTrail(store: store, maximumWait: .seconds(120))
        let router = FHIRApplication.buildRouter(
            store: store,
            security: FHIRSecurity(verifier: try await AccessTokenVerifier(hs256Secret: secret), audit: trail))
        try await Self.fuzzAndReport(
            router, store: store, test: "hostileRequestsWithTokensAndAuditAnswerWithOperationOutcomesInTime",
            seedToken: tokens[2]
        ) {
            request in
            var request = request
            if !request.headers.contains(where: { $0.name == "Authorization" }) {
                request.headers.append(HostileHeader("Authorization", "Bearer \(tokens[request.index % tokens.count])"))
            }
            return request
        } closing: {
            await trail.close()
        }
    }

    /// Seeds the store through `router`, sends the budget's requests (each through `prepare`),
    /// and records one issue per failure class.
    static func fuzzAndReport(
        _ router: Router<FHIRRequestContext>, store: SQLFHIRStore, test: String, seedToken: String? = nil,
        prepare: @escaping @Sendable (HostileRequest) -> HostileRequest = { $0 }, closing: () async -> Void = {}
    ) async throws {
        let budget = Budget.fromEnvironment
        let generator = HostileRequestGenerator(seed: budget.seed, basePath: basePath)
        let run = try await Application(router: router).test(.router) { client in
            for seed in HostileRequestGenerator.seedResources {
                let response = try await client.fhir(
                    .put, seed.target, body: seed.body,
                    headers: seedToken.map { ["Authorization": "Bearer \($0)"] } ?? [:])
                try #require(response.status.code < 300, "seeding \(seed.target): \(response.status) \(response.text)")
            }
            return await Self.fuzz(client, generator: generator, budget: budget, test: test, prepare: prepare)
        }
        // A request still running after a hang holds the store; leave it to the process's end.
        if !run.hung {
            await closing()
            try await store.close()
        }

        let mode =
            budget.only.map { "request \($0) only" } ?? budget.seconds.map { "\($0) s" }
            ?? "\(budget.count ?? 0) requests"
        print(
            "HostileRequestFuzzTests.\(test): seed \(budget.seed), \(mode): \(run.sent) sent, "
                + "\(run.findings.values.map(\.count).reduce(0, +)) failed in \(run.findings.count) classes; answers "
                + run.statusClasses.sorted { $0.key < $1.key }.map { "\($0.key)xx \($0.value)" }.joined(separator: ", ")
                + String(format: "; slowest %.2f s (request ", run.slowest.seconds) + run.slowest.request + ")")
        #expect(run.sent > 0)
        for (failureClass, finding) in run.findings.sorted(by: { $0.key < $1.key }) {
            Issue.record(
                """
                \(failureClass) (\(finding.count) requests)
                \(finding.example)
                """)
        }
    }

    struct Run: Sendable {
        var sent = 0
        var hung = false
        var findings: [String: Finding] = [:]
        var statusClasses: [Int: Int] = [:]
        var slowest = (seconds: 0.0, request: "")
    }

    static func fuzz(
        _ client: some TestClientProtocol, generator: HostileRequestGenerator, budget: Budget, test: String,
        prepare: (HostileRequest) -> HostileRequest
    ) async -> Run {
        var run = Run()
        let deadline = budget.seconds.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        var index = budget.only ?? 0
        while true {
            if let only = budget.only, index > only { break }
            if let count = budget.count, budget.only == nil, index >= count { break }
            if let deadline, ContinuousClock.now >= deadline { break }
            let request = prepare(generator.request(index))
            index += 1
            run.sent += 1
            let reproduce =
                "reproduce: CADUCEUS_FUZZ_SEED=\(generator.seed) CADUCEUS_FUZZ_INDEX=\(request.index) swift test --filter HostileRequestFuzzTests/\(test)"
            let started = ContinuousClock.now
            // Waits longer than the limit, so that a slow answer is seen with its status.
            switch await answer(request, from: client, waitingAtMost: budget.requestSeconds * 6) {
            case .answered(let status, let body):
                let elapsed = started.duration(to: .now)
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                run.statusClasses[status / 100, default: 0] += 1
                if seconds > run.slowest.seconds { run.slowest = (seconds, "\(request.index) \(request.kind)") }
                let problems = HostileResponseCheck.problems(
                    method: request.method, status: status, body: body, seconds: seconds,
                    timeLimit: budget.requestSeconds)
                guard !problems.isEmpty else { continue }
                let failureClass = HostileResponseCheck.failureClass(status: status, problems: problems, body: body)
                run.findings[
                    failureClass,
                    default: Finding(
                        count: 0,
                        example: """
                            answer \(status) in \(String(format: "%.2f", seconds)) s to a \(request.kind) request: \(HostileResponseCheck.excerpt(body))
                            \(reproduce)
                            \(request.rendered())
                            """)
                ].count += 1
            case .failed(let error):
                run.findings[
                    "test client error: \(error)",
                    default: Finding(count: 0, example: "\(reproduce)\n\(request.rendered())")
                ].count += 1
            case .hung:
                // The store is busy with it; later answers would only measure the queue.
                run.findings[
                    "hang: no answer in \(budget.requestSeconds * 6) s | \(request.kind)",
                    default: Finding(count: 0, example: "\(reproduce)\n\(request.rendered())")
                ].count += 1
                run.hung = true
                return run
            }
        }
        return run
    }

    enum Answer: Sendable {
        case answered(status: Int, body: [UInt8])
        case failed(String)
        case hung
    }

    /// The router's answer to `request`, or `.hung` when none comes within `seconds` (the
    /// request keeps running; nothing can cancel a query inside the store).
    static func answer(_ request: HostileRequest, from client: some TestClientProtocol, waitingAtMost seconds: Double)
        async -> Answer
    {
        var headers = HTTPFields()
        for header in request.headers {
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        let method = HTTPRequest.Method(request.method) ?? .get
        let body = request.body.map { ByteBuffer(bytes: $0) }
        let once = FirstAnswer()
        return await withCheckedContinuation { continuation in
            once.continuation = continuation
            Task {
                do {
                    let answer = try await client.execute(
                        uri: request.target, method: method, headers: headers, body: body
                    ) { response in
                        Answer.answered(status: Int(response.status.code), body: Array(response.body.readableBytesView))
                    }
                    once.resume(answer)
                } catch {
                    once.resume(.failed("\(error)"))
                }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                once.resume(.hung)
            }
        }
    }

    /// Resumes its continuation with whichever answer comes first.
    final class FirstAnswer: @unchecked Sendable {
        let lock = NSLock()
        var continuation: CheckedContinuation<Answer, Never>?

        func resume(_ answer: Answer) {
            lock.lock()
            let waiting = continuation
            continuation = nil
            lock.unlock()
            waiting?.resume(returning: answer)
        }
    }

    @Test func theGeneratorIsDeterministicAndReachesEveryPartOfTheAPI() {
        let generator = HostileRequestGenerator(seed: 42)
        let first = (0..<2000).map(generator.request)
        func same(_ a: HostileRequest, _ b: HostileRequest) -> Bool {
            a.method == b.method && a.target == b.target && a.headers == b.headers && a.body == b.body
                && a.kind == b.kind
        }
        let again = (0..<2000).reversed().map(generator.request).reversed()
        #expect(zip(first, again).allSatisfy(same), "a request depends on the ones made before it")
        #expect(
            (0..<20).contains { !same(HostileRequestGenerator(seed: 43).request($0), first[$0]) },
            "the seed changes nothing")
        let families = Set(first.map { String($0.kind.split(separator: ".")[0]) })
        #expect(families.isSuperset(of: ["search", "form", "line", "create", "update", "bundle", "patch", "mutated"]))
        let kinds = Set(first.map(\.kind))
        for attack in [
            "search.chain", "search.has", "search.odd-name", "search.or-values", "create.deep", "create.bom",
            "create.duplicate-keys", "create.number", "patch.copy-bomb", "patch.depth-bomb", "bundle.ifNoneExist",
        ] {
            #expect(kinds.contains(attack), "no \(attack) in 2,000 requests")
        }
        let headers = Set(first.flatMap { $0.headers.map(\.name) })
        #expect(
            headers.isSuperset(of: [
                "Prefer", "If-Match", "If-None-Exist", "Content-Type", "X-FHIR-TENANT-ID", "Authorization", "Expect",
            ]))
        // `bench hostile` sends these with their body at once: the server's 100 comes first.
        #expect(first.filter { $0.headers.contains { $0.name == "Expect" } }.allSatisfy { $0.body != nil })
        #expect(
            first.allSatisfy { $0.target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F } },
            "a target that cannot go on a request line")
    }
}
