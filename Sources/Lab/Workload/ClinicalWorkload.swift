import AsyncHTTPClient
import FHIR
import Foundation
import LabSupport

/// The traffic a hospital's apps send a FHIR server, as a benign baseline for the lab and a load
/// to measure it under.
///
/// With a `rounds` limit each round is one admission, start to finish (`AdmissionScript`): the
/// attending practitioner and the patient registered (conditionally, as apps that may repeat
/// themselves do), an inpatient encounter with vital signs (LOINC), a diagnosis (SNOMED CT) and a
/// prescription (RxNorm); the chart read back; the searches a chart view makes (by name and
/// identifier, by code, by date range, paged by following `next` links, with `_include` and
/// `_revinclude`); the discharge as a `PUT` with `If-Match`, and a stale second edit refused with
/// 412; the version history; a follow-up visit posted as a transaction Bundle;
/// `Patient/$everything` when the server offers it; and a prescription entered in error deleted.
/// Every status and the content that matters is checked; the first failing step ends its round.
///
/// With an `interactions` or `seconds` limit the workers run the clinical mix instead
/// (`ClinicalMix`): one interaction at a time against `patients` (those loaded beforehand, or
/// found on the server), mostly reads and searches, some creates and updates. A failed
/// interaction is counted and the worker goes on.
///
/// `concurrency` workers share the limit; each worker is one ward's app.
public struct ClinicalWorkload: Sendable {
    /// When a run stops.
    public enum Limit: Sendable, Equatable, CustomStringConvertible {
        /// This many admission rounds (about 33 interactions each), each run to its end.
        case rounds(Int)
        /// Exactly this many interactions of the clinical mix, the CapabilityStatement read included.
        case interactions(Int)
        /// The clinical mix until this many seconds have passed; interactions in flight then finish.
        case seconds(Double)

        public var description: String {
            switch self {
            case .rounds(let rounds): return "\(rounds) admission rounds"
            case .interactions(let count): return "\(count) interactions"
            case .seconds(let seconds): return String(format: "%g s", seconds)
            }
        }
    }

    public var baseURL: String
    public var limit: Limit
    public var concurrency: Int
    public var timeoutSeconds: Int64
    /// The patients the clinical mix looks up and writes for; when empty, the first 100 the
    /// server lists. Admission rounds register their own.
    public var patients: [KnownPatient]
    /// Seeds each worker's choice of steps and patients, so that runs can be repeated.
    public var seed: UInt64
    /// Called about every `progressInterval` while the run goes on, and once (`finished`) at its end.
    public var progress: (@Sendable (WorkloadProgress) -> Void)?
    public var progressInterval: Duration = .seconds(1)

    /// The admission rounds in `limit`, 0 for the clinical mix.
    public var rounds: Int {
        if case .rounds(let rounds) = limit { return rounds }
        return 0
    }

    /// `rounds` admissions. `baseURL` is the FHIR base, such as `http://127.0.0.1:9080/fhir-server/api/v4`.
    public init(baseURL: String, rounds: Int = 10, concurrency: Int = 1, timeoutSeconds: Int64 = 30) {
        self.init(baseURL: baseURL, limit: .rounds(rounds), concurrency: concurrency, timeoutSeconds: timeoutSeconds)
    }

    /// A run to `limit`; `patients` and `seed` matter to the clinical mix only.
    public init(
        baseURL: String, limit: Limit, patients: [KnownPatient] = [], concurrency: Int = 1,
        timeoutSeconds: Int64 = 30, seed: UInt64 = 1
    ) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.limit = limit
        self.patients = patients
        self.concurrency = concurrency
        self.timeoutSeconds = timeoutSeconds
        self.seed = seed
    }

    /// Fails with a message unless `text` is an http(s) URL with a host.
    public static func checkBaseURL(_ text: String) throws {
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host?.isEmpty == false
        else {
            throw WorkloadFailure(
                description: "'\(text)' is not an http(s) URL such as http://127.0.0.1:9080/fhir-server/api/v4")
        }
    }

    public func run() async throws -> WorkloadReport {
        try Self.checkBaseURL(baseURL)
        switch limit {
        case .rounds(let rounds) where rounds < 0, .interactions(let rounds) where rounds < 1:
            throw WorkloadFailure(description: "the limit must be 0 or more rounds, or 1 or more interactions")
        case .seconds(let seconds) where !(seconds > 0):
            throw WorkloadFailure(description: "the duration must be more than 0 seconds")
        default:
            guard concurrency >= 1 else { throw WorkloadFailure(description: "concurrency must be 1 or more") }
        }
        return try await Self.withClient(concurrency: concurrency) { client in
            let recorder = InteractionRecorder()
            let session = FHIRHTTPSession(
                client: client, baseURL: baseURL, recorder: recorder, timeoutSeconds: timeoutSeconds)
            let start = ContinuousClock.now
            let budget = InteractionBudget(limit, start: start)
            let everything = budget.take() ? await offersEverything(session) : false
            let ticker = progress.map { callback in
                Task { [progressInterval] in
                    while (try? await Task.sleep(for: progressInterval)) != nil {
                        callback(recorder.progress(since: start, finished: false))
                    }
                }
            }
            defer { ticker?.cancel() }
            var patients = self.patients
            switch limit {
            case .rounds(let rounds):
                await runRounds(rounds, session: session, everything: everything)
            case .interactions, .seconds:
                if patients.isEmpty && budget.take() { patients = try await discoverPatients(session) }
                await runMix(patients: patients, budget: budget, session: session, everything: everything)
            }
            ticker?.cancel()
            progress?(recorder.progress(since: start, finished: true))
            return recorder.report(
                baseURL: baseURL, limit: limit, patients: patients.count, concurrency: concurrency,
                elapsedSeconds: FHIRHTTPSession.milliseconds(since: start) / 1000, everythingSupported: everything)
        }
    }

    /// Admissions taken from a shared counter, each worker with its own attending practitioner.
    func runRounds(_ rounds: Int, session: FHIRHTTPSession, everything: Bool) async {
        // Identifiers unique to this run, so that runs against the same database do not meet.
        let runToken = String(UUID().uuidString.lowercased().prefix(8))
        let nextRound = LockedCounter()
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var script = AdmissionScript(
                        session: session, runToken: runToken, npi: "\(runToken)-ward\(worker)", everything: everything)
                    while true {
                        let round = nextRound.next()
                        guard round < rounds else { return }
                        do {
                            try await script.run(round: round)
                            session.recorder.completeRound()
                        } catch is WorkloadFailure {
                            // Already counted against the interaction that failed.
                        } catch {
                            session.recorder.abort("round \(round)", error)
                        }
                    }
                }
            }
        }
    }

    /// One interaction of the mix per unit of the budget, until it is spent.
    func runMix(patients: [KnownPatient], budget: InteractionBudget, session: FHIRHTTPSession, everything: Bool)
        async
    {
        guard !patients.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                // Seeds far apart, so that the workers do not walk the same patients in step.
                let random = SeededRandom(seed: seed &+ UInt64(worker) &* 0x9E37_79B9_7F4A_7C15)
                group.addTask {
                    var mix = ClinicalMix(session: session, patients: patients, everything: everything, random: random)
                    while budget.take() {
                        do {
                            try await mix.step()
                        } catch is WorkloadFailure {
                            // Already counted against the interaction that failed; the worker goes on.
                        } catch {
                            session.recorder.abort("worker \(worker)", error)
                        }
                    }
                }
            }
        }
    }

    /// Reads the CapabilityStatement, as a client does first, and says whether it lists
    /// `$everything` on Patient.
    func offersEverything(_ session: FHIRHTTPSession) async -> Bool {
        guard let reply = try? await session.send(.capabilities, .GET, "metadata", expect: [200]),
            let statement = reply.body, statement["resourceType"] == "CapabilityStatement"
        else { return false }
        let resources = statement["rest"]?.arrayValue?.first?["resource"]?.arrayValue ?? []
        let patient = resources.first { $0["type"]?.stringValue == "Patient" }
        return patient?["operation"]?.arrayValue?.contains { $0["name"]?.stringValue == "everything" } ?? false
    }

    /// The patients already on the server (one search), for a mix run with none loaded.
    func discoverPatients(_ session: FHIRHTTPSession) async throws -> [KnownPatient] {
        let reply = try await session.send(.search, .GET, "Patient?_count=100", expect: [200])
        let found = BundleReading.entries(reply.body).compactMap {
            $0["resource"].flatMap(KnownPatient.init(resource:))
        }
        guard !found.isEmpty else {
            throw WorkloadFailure(
                description: "\(baseURL) holds no Patient for the clinical mix: load some first (--synthea, --generate)"
            )
        }
        return found
    }

    /// An HTTP client pooled for `concurrency` workers, shut down after `body` however it ends.
    static func withClient<T>(concurrency: Int, _ body: (HTTPClient) async throws -> T) async throws -> T {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, concurrency))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let result: T
        do {
            result = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }
}

/// How far a run has got, for a progress line.
public struct WorkloadProgress: Sendable {
    public var elapsedSeconds: Double
    public var interactions: Int
    public var failures: Int
    /// The last report of a run.
    public var finished: Bool

    public var perSecond: Double { Double(interactions) / max(elapsedSeconds, 1e-9) }
}

/// What the workers may still send: every interaction takes one unit of a count, or the time
/// left before a deadline. Admission rounds are limited by their own counter instead.
final class InteractionBudget: @unchecked Sendable {
    private let lock = NSLock()
    private var remaining: Int?
    private let deadline: ContinuousClock.Instant?

    init(_ limit: ClinicalWorkload.Limit, start: ContinuousClock.Instant) {
        switch limit {
        case .rounds:
            remaining = nil
            deadline = nil
        case .interactions(let count):
            remaining = count
            deadline = nil
        case .seconds(let seconds):
            remaining = nil
            deadline = start + .milliseconds(Int64(seconds * 1000))
        }
    }

    /// Whether one more interaction may be sent; taken from the count if there is one.
    func take() -> Bool {
        if let deadline { return ContinuousClock.now < deadline }
        lock.lock()
        defer { lock.unlock() }
        guard let left = remaining else { return true }
        guard left > 0 else { return false }
        remaining = left - 1
        return true
    }
}
