import ArgumentParser

/// `caduceus`: the healthcare data exchange that defends itself.
@main
struct Caduceus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caduceus",
        abstract: "A FHIR R4 server with container runtime security.",
        subcommands: [
            DemoCommand.self, UpCommand.self, DownCommand.self, ServeCommand.self, WorkloadCommand.self,
            LabCommand.self, TraceCommand.self,
            SummaryCommand.self, DetectCommand.self, ProfileCommand.self, RulesCommand.self, BenchCommand.self,
            ReportCommand.self, ImagesCommand.self,
        ]
    )
}
