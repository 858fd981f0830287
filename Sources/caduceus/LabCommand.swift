import ArgumentParser
import Lab

/// `caduceus lab`: the attack lab's pieces, starting with the benign traffic attacks hide in.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Drive a FHIR server the way the lab needs it.",
        subcommands: [LabAttackCommand.self, LabWorkloadCommand.self], defaultSubcommand: LabAttackCommand.self)
}

/// `caduceus lab workload`: a hospital's FHIR traffic against a running server, every answer
/// checked; exits non-zero if any interaction failed.
struct LabWorkloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract:
            "Send a hospital's clinical FHIR traffic to a server, check every answer and report counts and latency.")

    @Option(help: "The FHIR base URL, such as http://127.0.0.1:9080/fhir-server/api/v4.")
    var baseURL: String

    @Option(help: "Admissions to run (about 33 interactions each).")
    var rounds = 10

    @Option(help: "Admissions in flight at once.")
    var concurrency = 1

    @Option(help: "Seconds to wait for each answer.")
    var timeout: Int64 = 30

    func validate() throws {
        guard rounds >= 0 else { throw ValidationError("--rounds must be 0 or more") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be 1 or more") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be 1 or more") }
    }

    func run() async throws {
        let report = try await ClinicalWorkload(
            baseURL: baseURL, rounds: rounds, concurrency: concurrency, timeoutSeconds: timeout
        ).run()
        print(report)
        if !report.succeeded { throw ExitCode.failure }
    }
}
