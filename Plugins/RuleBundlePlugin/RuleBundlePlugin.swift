import Foundation
import PackagePlugin

/// Copies the shipped rule files (`rules/*.yaml` at the top of the package, tests aside)
/// into the resources of the target using the plugin, so `caduceus detect` carries its
/// built-in rules wherever the binary goes (`Bundle.module`).
@main
struct RuleBundlePlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let rules = context.package.directoryURL.appending(path: "rules")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: rules.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") && !$0.hasSuffix(".test.yaml") }.sorted().map { name in
            let source = rules.appending(path: name)
            let output = context.pluginWorkDirectoryURL.appending(path: name)
            return .buildCommand(
                displayName: "Bundling rule file \(name)",
                executable: URL(fileURLWithPath: "/bin/cp"),
                arguments: [source.path, output.path],
                inputFiles: [source],
                outputFiles: [output]
            )
        }
    }
}
