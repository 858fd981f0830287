import ArgumentParser
struct FHIRBenchCommand: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "fhir"); func run() async throws {} }
