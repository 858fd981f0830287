import ArgumentParser

/// `caduceus bench`: benchmarks that print ratios measured side by side in one run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a benchmark.",
        subcommands: [
            FHIRBenchCommand.self, SyntheaBenchCommand.self, DetectBenchCommand.self, OverheadBenchCommand.self,
            LoadBenchCommand.self,
            KillBenchCommand.self, PreventBenchCommand.self, AuthBenchCommand.self, HostileBenchCommand.self,
            SoakBenchCommand.self,
            PagingBenchCommand.self,
        ])
}
