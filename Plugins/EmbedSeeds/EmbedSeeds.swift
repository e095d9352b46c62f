import Foundation
import PackagePlugin

/// Makes the top-level `Seeds/` folder part of the binary: `seed-embedder` turns every seed file into a Swift raw
/// string literal of the target it is applied to, rebuilt whenever a seed file changes.
@main
struct EmbedSeeds: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let seeds = context.package.directoryURL.appending(path: "Seeds")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSeedFiles.swift")
        var inputs: [URL] = []
        if let walker = FileManager.default.enumerator(at: seeds, includingPropertiesForKeys: [.isRegularFileKey]) {
            for case let file as URL in walker
            where (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                inputs.append(file)
            }
        }
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) seed files",
                executable: try context.tool(named: "seed-embedder").url,
                arguments: [seeds.path, output.path],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
