import ArgumentParser
import FHIR
import Foundation
import Lab

/// `caduceus workload`: patients loaded (Synthea bundles, generated ones or both), then a
/// hospital's clinical mix against them for a time or a number of interactions, with a
/// progress line on standard error and the report on standard output. Exits non-zero if any
/// interaction of the mix failed.
struct WorkloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "Load patients into a FHIR server and drive a clinical mix of reads, searches and writes against it.",
        discussion: """
            Without --synthea or --generate the mix uses the patients already on the server (the first 100).
            Example: caduceus workload --base-url http://127.0.0.1:9080/fhir-server/api/v4 \\
              --synthea ../shared/fhir/synthea --patients 5 --generate 50 --duration 60 --concurrency 8
            """)

    @Option(help: "The FHIR base URL, such as http://127.0.0.1:9080/fhir-server/api/v4.")
    var baseURL: String

    @Option(help: "Load the Synthea transaction bundles of this directory first (such as ../shared/fhir/synthea).")
    var synthea: String?

    @Option(help: "Load only the first N Synthea bundles (by file name).")
    var patients: Int?

    @Option(help: "Generate and load N synthetic patients, each with encounters, vital signs and conditions.")
    var generate = 0

    @Option(help: "Seed of the generated patients and of the mix's choices.")
    var seed: UInt64 = 1

    @Option(help: "Run the mix for this many seconds (the default is 30 unless --count is given).")
    var duration: Double?

    @Option(help: "Run exactly this many interactions of the mix instead of a duration.")
    var count: Int?

    @Option(help: "Interactions in flight at once (and bundles loaded at once).")
    var concurrency = 4

    @Option(help: "Seconds to wait for each answer (at least 120 for a bundle being loaded).")
    var timeout: Int64 = 30

    @Option(help: "Also write the load and workload reports to this file as JSON.")
    var json: String?

    func validate() throws {
        do {
            try ClinicalWorkload.checkBaseURL(baseURL)
        } catch {
            throw ValidationError("--base-url: \(error)")
        }
        if duration != nil && count != nil { throw ValidationError("give --duration or --count, not both") }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be more than 0 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be 1 or more") }
        if let patients, patients < 1 { throw ValidationError("--patients must be 1 or more") }
        if patients != nil && synthea == nil {
            throw ValidationError("--patients limits --synthea: give --synthea DIR")
        }
        if let synthea {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: synthea, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw ValidationError("--synthea: '\(synthea)' is not a directory")
            }
        }
        guard generate >= 0 else { throw ValidationError("--generate must be 0 or more") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be 1 or more") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be 1 or more") }
    }

    func run() async throws {
        let line = ProgressLine()
        // A bundle of a few hundred resources can take long on a loaded server.
        let loader = PatientLoader(baseURL: baseURL, concurrency: concurrency, timeoutSeconds: max(timeout, 120))
        var loaded: [KnownPatient] = []
        var loads: [(String, PatientLoadReport)] = []
        if let synthea {
            let bundles = try PatientLoader.syntheaBundles(directory: synthea, limit: patients)
            loads.append(("Synthea", try await load(bundles, "Synthea", loader, line)))
        }
        if generate > 0 {
            let bundles = PatientGenerator(seed: seed).bundles(count: generate)
            loads.append(("generated", try await load(bundles, "generated", loader, line)))
        }
        for (_, report) in loads { loaded += report.patients }

        var workload = ClinicalWorkload(
            baseURL: baseURL, limit: count.map { .interactions($0) } ?? .seconds(duration ?? 30), patients: loaded,
            concurrency: concurrency, timeoutSeconds: timeout, seed: seed)
        workload.progressInterval = line.interval
        workload.progress = { progress in
            line.show(
                String(
                    format: "workload %6.1f s  %d interactions  %.0f/s  %d failed", progress.elapsedSeconds,
                    progress.interactions, progress.perSecond, progress.failures), final: progress.finished)
        }
        let report = try await workload.run()
        print(report)

        if let json {
            var document: JSONObject = JSONObject()
            document.set(
                "load", .object(JSONObject(loads.map { (key: $0.0, value: $0.1.json) })), after: [])
            document.set("workload", report.json, after: ["load"])
            var bytes = JSONWriter(pretty: true).bytes(.object(document))
            bytes.append(UInt8(ascii: "\n"))
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: json))
            } catch {
                throw ValidationError("--json: cannot write '\(json)': \(error.localizedDescription)")
            }
        }
        if report.failureCount > 0 { throw ExitCode.failure }
    }

    /// Loads `bundles` and prints what happened; fails only when every bundle was refused.
    func load(_ bundles: [PatientBundle], _ what: String, _ loader: PatientLoader, _ line: ProgressLine)
        async throws -> PatientLoadReport
    {
        let report = try await loader.load(bundles) { done, total in
            line.show("loading \(what) patients: \(done)/\(total) bundles", final: done == total)
        }
        print("\(what): \(report)")
        if report.allFailed {
            throw ValidationError("the server refused every \(what) bundle; the first: \(report.failures.first ?? "")")
        }
        return report
    }
}

/// A progress line on standard error: rewritten in place on a terminal, otherwise a line at
/// most every five seconds, so that logs stay short.
final class ProgressLine: @unchecked Sendable {
    let terminal = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var lastLine = ContinuousClock.now - .seconds(60)

    /// How often a running workload should report.
    var interval: Duration { terminal ? .milliseconds(500) : .seconds(5) }

    func show(_ text: String, final: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if terminal {
            // Erase to the end of the line: the new text may be shorter than the old.
            FileHandle.standardError.write(Data(("\r" + text + "\u{1B}[K" + (final ? "\n" : "")).utf8))
        } else if final || ContinuousClock.now - lastLine >= .seconds(5) {
            lastLine = ContinuousClock.now
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}
