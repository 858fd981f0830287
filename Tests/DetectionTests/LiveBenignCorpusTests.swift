import Detection
import Foundation
import KernelTestSupport
import Lab
import LabSupport
import Testing

extension LiveDetectionSuites {
    /// The no-noise tests: the benign corpus (Scripts/benchmarks/benign-corpus.sh: process and package
    /// listings, log rotation, health checks, backups, an operator reading logs over `docker
    /// exec` with and without a terminal) runs in a toolbox container beside the FHIR server,
    /// which starts, serves a clinical workload and stops, all under live detection. Needs root,
    /// BPF, Docker, the testbox image and the image `caduceus images` builds; with CI=true a
    /// missing one fails the test.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveBenignCorpusTests {
        static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        static let script = package.appendingPathComponent("Scripts/benchmarks/benign-corpus.sh").path
        static let falcoStableFile = package.appendingPathComponent("../shared/falco/falco_rules.yaml")
            .standardizedFileURL.path

        /// What one live run of the corpus saw.
        struct Run {
            /// Alerts in the server's and the toolbox's containers.
            var alerts: [Alert]
            /// The corpus script's output ("benign: <step>" lines, then the step count).
            var output: String
            var serverEvents: Int
            var toolboxEvents: Int
            var lost: UInt64
            /// The rules the engine ran.
            var rules: Int
        }

        /// Starts detection with `ruleSet`, then the server (its data on a fresh volume) and the
        /// toolbox (the volume read-only); runs the workload and the corpus side by side; stops
        /// the server under detection.
        static func run(ruleSet: RuleSet) async throws -> Run {
            try SensorTestEnvironment.require()
            let image = LiveQuietTests.image
            guard (try? SensorTestEnvironment.run(["docker", "image", "inspect", image])) != nil else {
                throw FixtureError("the image \(image) is needed: run caduceus images")
            }
            let volume = "caduceus-benign-\(UInt32.random(in: 0...UInt32.max))"
            _ = try SensorTestEnvironment.run(["docker", "volume", "create", volume])
            defer { _ = try? SensorTestEnvironment.run(["docker", "volume", "rm", "-f", volume]) }
            let live = try LiveDetection(ruleSet: ruleSet)
            var containers: [String] = []
            defer { LiveDetection.removeContainers(containers) }
            let port = Int.random(in: 20000..<30000)
            let server = try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", "-v", "\(volume):/data", image,
                "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite",
            ])
            containers.append(server)
            let toolbox = try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", "-v", "\(volume):/data:ro", SensorTestEnvironment.image,
                "sleep", "600",
            ])
            containers.append(toolbox)
            let base = "http://127.0.0.1:\(port)/fhir-server/api/v4"
            #expect(try await LiveDetection.waitUntilServing(base), "the FHIR server answered /metadata")
            let corpus = Task.detached { ProcessRunner.run([Self.script, toolbox, base]) }
            let report = try await ClinicalWorkload(baseURL: base, rounds: 10, concurrency: 2).run()
            #expect(report.succeeded, "\(report)")
            let (status, output) = await corpus.value
            #expect(status == 0, "the corpus ran to its end: \(output)")
            _ = try SensorTestEnvironment.run(["docker", "stop", "-t", "10", server])
            _ = try SensorTestEnvironment.run(["docker", "rm", "-f", toolbox])
            let (alerts, lost) = try live.stop()
            return Run(
                alerts: alerts.filter { $0.container.id == server || $0.container.id == toolbox }, output: output,
                serverEvents: live.eventCount(container: server), toolboxEvents: live.eventCount(container: toolbox),
                lost: lost,
                rules: live.engine.rules.count)
        }

        @Test func theBuiltinRulesRaiseNothingOnTheBenignCorpus() async throws {
            let run = try await Self.run(ruleSet: BuiltinRuleTests.ruleSet())
            #expect(run.lost == 0)
            #expect(run.output.contains("benign-corpus: ") && run.output.contains("steps ran"), "\(run.output)")
            #expect(run.serverEvents > 1000, "the engine watched the server's start, workload and stop")
            #expect(run.toolboxEvents > 1000, "the engine watched the corpus")
            #expect(
                run.alerts.isEmpty, "alerts on the benign corpus: \(run.alerts.map { "\($0.ruleId): \($0.output)" })")
        }

        /// Falco's stable file on the same corpus, unmodified: the rules it raises are printed (one
        /// line each, `<rule>: <count>`) and must be the ones README lists between its
        /// `benign-corpus-falco` markers, so that list is this test's output, not typed by hand.
        @Test func falcosStableFileRaisesWhatREADMEListsOnTheBenignCorpus() async throws {
            let ruleSet = try RuleFiles.load(includeBuiltin: false, paths: [Self.falcoStableFile])
            let run = try await Self.run(ruleSet: ruleSet)
            #expect(run.lost == 0)
            #expect(run.toolboxEvents > 1000, "the engine watched the corpus")
            var counts: [String: Int] = [:]
            for alert in run.alerts { counts[alert.rule, default: 0] += 1 }
            let lines = counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            #expect(run.rules >= 20, "Falco's stable rules ran: \(run.rules)")
            print(
                "Falco stable rules (\(run.rules) loaded; \(run.serverEvents) events from the server, \(run.toolboxEvents) from the toolbox) "
                    + "raised on the benign corpus (README, benign-corpus-falco): "
                    + (lines.isEmpty ? "none" : "\n" + lines.map { "  " + $0 }.joined(separator: "\n")))
            for alert in run.alerts.prefix(50) { print("  \(alert.rule) | \(alert.output)") }
            let listed = try Self.readmeFalcoRules()
            #expect(Set(counts.keys) == listed, "README lists \(listed.sorted()); the corpus raised \(lines)")
        }

        /// The rule names README lists between `<!-- benign-corpus-falco -->` and
        /// `<!-- /benign-corpus-falco -->`, one per `- ` line, its name before the first " (".
        static func readmeFalcoRules() throws -> Set<String> {
            let readme = try String(contentsOf: package.appendingPathComponent("README.md"), encoding: .utf8)
            guard let start = readme.range(of: "<!-- benign-corpus-falco -->"),
                let end = readme.range(of: "<!-- /benign-corpus-falco -->")
            else {
                throw FixtureError("README.md has no benign-corpus-falco section")
            }
            let section = readme[start.upperBound..<end.lowerBound]
            return Set(
                section.split(separator: "\n").compactMap { line -> String? in
                    guard line.hasPrefix("- ") else { return nil }
                    let item = line.dropFirst(2)
                    let name = item.range(of: " (").map { item[..<$0.lowerBound] } ?? item
                    return name.trimmingCharacters(in: CharacterSet(charactersIn: "` "))
                })
        }
    }
}
