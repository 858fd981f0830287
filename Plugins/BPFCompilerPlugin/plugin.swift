import Foundation
import PackagePlugin

/// Compiles the `*.bpf.c` programs of the `SensorBPF` dependency with the toolchain's
/// clang for the BPF target (CO-RE, with BTF); each object becomes a resource of the
/// target using the plugin (`Bundle.module`).
@main
struct BPFCompilerPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let module = target as? SourceModuleTarget else { return [] }
        let sourceTargets = module.dependencies.compactMap { dependency -> Target? in
            if case .target(let target) = dependency, target.name == "SensorBPF" { return target }
            return nil
        }
        guard let bpfTarget = sourceTargets.first else { return [] }
        let clang = try context.tool(named: "clang")
        let directory = bpfTarget.directoryURL
        let include = directory.appending(path: "include")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let headers =
            (try FileManager.default.contentsOfDirectory(atPath: include.path))
            .filter { $0.hasSuffix(".h") }.map { include.appending(path: $0) }
            + files.filter { $0.hasSuffix(".h") }.map { directory.appending(path: $0) }
        return files.filter { $0.hasSuffix(".bpf.c") }.sorted().map { name in
            let source = directory.appending(path: name)
            let output = context.pluginWorkDirectoryURL.appending(path: String(name.dropLast(2)) + ".o")
            return .buildCommand(
                displayName: "Compiling BPF program \(name)",
                executable: clang.url,
                arguments: [
                    "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                    "-Wall", "-Wno-unused-function",
                    "-I", include.path,
                    // asm/types.h lives in the multiarch directory on Debian.
                    "-idirafter", "/usr/include/x86_64-linux-gnu",
                    "-c", source.path, "-o", output.path,
                ],
                inputFiles: [source] + headers,
                outputFiles: [output]
            )
        }
    }
}
