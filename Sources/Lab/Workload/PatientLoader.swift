import FHIR
import Foundation
import LabSupport

/// One patient's transaction Bundle to load, and what to call it in a report (a file name).
public struct PatientBundle: Sendable {
    public var name: String
    public var text: String

    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }
}

/// Loads patients' transaction Bundles into a FHIR server (one POST to the base URL each,
/// `concurrency` at a time) and learns from each answer how to find the patient again.
public struct PatientLoader: Sendable {
    public var baseURL: String
    public var concurrency: Int
    public var timeoutSeconds: Int64

    public init(baseURL: String, concurrency: Int = 1, timeoutSeconds: Int64 = 120) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.concurrency = concurrency
        self.timeoutSeconds = timeoutSeconds
    }

    /// The `*.json` files of a Synthea output directory, by name, the first `limit` if given.
    public static func syntheaBundles(directory: String, limit: Int? = nil) throws -> [PatientBundle] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WorkloadFailure(description: "Synthea directory '\(directory)' does not exist or is not a directory")
        }
        var files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }
            .sorted()
        guard !files.isEmpty else { throw WorkloadFailure(description: "no *.json Synthea bundles in '\(directory)'") }
        if let limit { files = Array(files.prefix(limit)) }
        return try files.map { file in
            let path = (directory as NSString).appendingPathComponent(file)
            return PatientBundle(name: file, text: try String(contentsOfFile: path, encoding: .utf8))
        }
    }

    /// Posts every bundle; one the server refuses is a failure in the report (with the
    /// OperationOutcome's diagnostics), not an error. `progress` hears (loaded, total) after each.
    public func load(_ bundles: [PatientBundle], progress: (@Sendable (Int, Int) -> Void)? = nil) async throws
        -> PatientLoadReport
    {
        try ClinicalWorkload.checkBaseURL(baseURL)
        let start = ContinuousClock.now
        let results = LockedArray<Result<(KnownPatient, Int), WorkloadFailure>>(count: bundles.count)
        let next = LockedCounter()
        let done = LockedCounter()
        try await ClinicalWorkload.withClient(concurrency: concurrency) { client in
            let session = FHIRHTTPSession(
                client: client, baseURL: baseURL, recorder: InteractionRecorder(), timeoutSeconds: timeoutSeconds)
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<max(1, concurrency) {
                    group.addTask {
                        while true {
                            let index = next.next()
                            guard index < bundles.count else { return }
                            do {
                                results.set(index, .success(try await post(bundles[index], session)))
                            } catch let failure as WorkloadFailure {
                                results.set(index, .failure(failure))
                            } catch {
                                results.set(index, .failure(WorkloadFailure(description: "\(error)")))
                            }
                            progress?(done.next() + 1, bundles.count)
                        }
                    }
                }
            }
        }
        var report = PatientLoadReport(
            bundles: bundles.count, elapsedSeconds: FHIRHTTPSession.milliseconds(since: start) / 1000)
        for (bundle, result) in zip(bundles, results.values) {
            switch result {
            case .success(let (patient, resources)):
                report.patients.append(patient)
                report.resources += resources
            case .failure(let failure):
                report.failures.append("\(bundle.name): \(failure)")
            }
        }
        return report
    }

    /// One transaction: the patient it created and how many resources the server stored.
    func post(_ bundle: PatientBundle, _ session: FHIRHTTPSession) async throws -> (KnownPatient, Int) {
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(bundle.text)
        } catch {
            throw WorkloadFailure(description: "not JSON: \(error)")
        }
        guard parsed["resourceType"] == "Bundle", parsed["type"] == "transaction" else {
            throw WorkloadFailure(description: "not a transaction Bundle")
        }
        let reply = try await session.send(.transaction, .POST, "", body: bundle.text, expect: [200])
        guard let response = reply.body, response["type"] == "transaction-response" else {
            throw WorkloadFailure(description: "the server did not answer with a transaction-response Bundle")
        }
        let stored = BundleReading.entries(response).filter {
            let status = $0["response"]?["status"]?.stringValue ?? ""
            return status.hasPrefix("200") || status.hasPrefix("201")
        }.count
        guard let patient = KnownPatient(bundle: parsed, response: response) else {
            throw WorkloadFailure(description: "the transaction created no Patient")
        }
        return (patient, stored)
    }
}

/// What loading did: patients and resources stored, bundles refused and why.
public struct PatientLoadReport: Sendable, CustomStringConvertible {
    public var bundles: Int
    public var patients: [KnownPatient] = []
    /// Resources the server stored, over every bundle it accepted.
    public var resources = 0
    /// `name: reason` for each bundle refused.
    public var failures: [String] = []
    public var elapsedSeconds: Double

    /// Some bundles were given and none was accepted.
    public var allFailed: Bool { bundles > 0 && failures.count == bundles }

    public var description: String {
        var lines = [
            String(
                format: "%d of %d bundles loaded: %d patients, %d resources in %.2f s (%.0f resources/s), %d refused",
                bundles - failures.count, bundles, patients.count, resources, elapsedSeconds,
                Double(resources) / max(elapsedSeconds, 1e-9), failures.count)
        ]
        lines += failures.map { "  refused \($0)" }
        return lines.joined(separator: "\n")
    }

    public var json: JSONValue {
        [
            "bundles": .number(String(bundles)), "patients": .number(String(patients.count)),
            "resources": .number(String(resources)), "elapsedSeconds": WorkloadReport.number(elapsedSeconds),
            "failures": .array(failures.map { .string($0) }),
        ]
    }
}
