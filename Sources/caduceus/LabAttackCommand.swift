import ArgumentParser
import Detection
import Foundation
import Lab

/// `caduceus lab attack`: attack scenarios played inside the FHIR server's container under
/// live detection, and the detection matrix.
struct LabAttackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attack",
        abstract: "Play attack scenarios inside the FHIR container under detection and print the detection matrix.",
        discussion: """
            Needs root, BPF and Docker (Scripts/docker.sh start, testbox and fhir-image). Without --container,
            a fresh caduceus-fhir:latest container is started on 127.0.0.1 and removed afterwards.
              caduceus lab attack                                   # every scenario
              caduceus lab attack --scenario reverse-shell --scenario shadow
              caduceus lab attack --list
            """)

    @Option(help: "The FHIR server's running container (name or id).")
    var container: String?

    @Option(name: .customLong("scenario"), help: "Only this scenario (repeatable; see --list).")
    var scenarios: [String] = []

    @Flag(help: "List the scenarios and exit.")
    var list = false

    @OptionGroup var rules: RuleOptions

    func run() throws {
        if list {
            for s in AttackScenario.all {
                print("\(s.id.padding(toLength: 22, withPad: " ", startingAt: 0)) \(s.tactic.padding(toLength: 21, withPad: " ", startingAt: 0)) \(s.technique.padding(toLength: 10, withPad: " ", startingAt: 0)) \(s.name)")
            }
            return
        }
        let chosen = try scenarios.isEmpty ? AttackScenario.all : scenarios.map { id in
            guard let scenario = AttackScenario.all.first(where: { $0.id == id }) else {
                throw ValidationError("no scenario '\(id)' (see --list)")
            }
            return scenario
        }
        let ruleSet = try rules.load()
        var started: String?
        let target: String
        if let container {
            target = container
        } else {
            let port = Int.random(in: 20000..<30000)
            target = try AttackLab.docker([
                "run", "-d", "--network", "host", "caduceus-fhir:latest",
                "serve", "--host", "127.0.0.1", "--port", String(port), "--database", "/data/fhir.sqlite",
            ])
            started = target
        }
        defer { if let started { _ = try? AttackLab.docker(["rm", "-f", started]) } }
        let listener = try LoopbackListener()
        let detector = try LiveDetector(ruleSet: ruleSet)
        let lab = AttackLab(container: target)
        writeStandardError("caduceus lab: installing the toolkit in \(target.prefix(12)) and playing \(chosen.count) scenarios")
        try lab.installToolkit()
        defer { lab.cleanUp() }
        let outcomes = try lab.run(chosen, detector: detector, listenPort: Int(listener.port))
        let (_, lost) = try detector.stop()
        withExtendedLifetime(listener) {}
        print(AttackLab.matrix(outcomes))
        if lost > 0 { writeStandardError("caduceus lab: \(lost) events lost in the kernel: alerts may be missing") }
        for outcome in outcomes where outcome.scenario.note != nil {
            writeStandardError("note: \(outcome.scenario.id): \(outcome.scenario.note!)")
        }
    }
}
