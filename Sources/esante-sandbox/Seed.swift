import ArgumentParser
import Foundation
import RORFHIR
import SandboxSeeds

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seed datasets.",
        subcommands: [Export.self, Generate.self, Prebuild.self]
    )

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the seeds built into the binary to a folder, to edit them and serve with --seeds.",
            discussion: """
                Writes every built-in seed file (ROR dataset, INSi test base, DMP and Mon espace santé records, \
                terminology and profile rules, demo clients, default whitelist, demo story, recette packs) under OUT. \
                Refuses to replace an existing file unless --force.
                """
        )

        @Option(help: "Output seeds folder.") var out: String
        @Flag(help: "Replace files that already exist.") var force = false

        func run() async throws {
            try await reportingErrors {
                let folder = URL(fileURLWithPath: out)
                let conflicts: [String]
                do { conflicts = try EmbeddedSeeds.export(to: folder, overwrite: force) } catch {
                    throw UsageFailure("could not write to \(folder.path): \(error)")
                }
                guard conflicts.isEmpty else {
                    throw UsageFailure(
                        "\(folder.path) already holds \(conflicts.count) of the seed files (\(conflicts.prefix(3).joined(separator: ", "))…): pass --force to replace them"
                    )
                }
                print("wrote \(EmbeddedSeeds.paths.count) seed files to \(folder.path)")
                print("serve them with: esante-sandbox serve --seeds \(folder.path)")
            }
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a synthetic ROR dataset into OUT/ror (deterministic for a given seed).",
            discussion: """
                Writes OUT/ror/dataset.json (≤ 100 establishments) or dataset-NNNN.json parts, then OUT/ror/dataset.sqlite, \
                the same data stored and indexed, which a new data folder starts from (see `seed prebuild`). \
                Then: esante-sandbox serve --seeds OUT. The built-in seeds' other folders (pki, access, insi, \
                terminology, demo, dmp, mes, recette) are written beside it unless OUT already has them.
                """
        )

        @Option(help: "Number of establishments (each: EJ, EG, internal organisation, 1–3 places, 4–6 offers).")
        var establishments = 12
        @Option(help: "Random seed.") var seed: UInt64 = 2026
        @Option(help: "Output seeds folder.") var out: String
        @Flag(
            inversion: .prefixedNo,
            help: "Also write ror/dataset.sqlite (a national dataset then starts in seconds)."
        )
        var prebuild = true

        func run() async throws {
            try await reportingErrors {
                guard establishments > 0, establishments <= 200_000 else {
                    throw UsageFailure("--establishments must be between 1 and 200000")
                }
                let outURL = URL(fileURLWithPath: out)
                let folder = outURL.appendingPathComponent("ror")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let started = Date()
                let progress = ProgressReport("generating", total: establishments, unit: "establishments")
                let written = try RORDatasetGenerator.write(establishments: establishments, seed: seed, to: folder) {
                    progress.update($0)
                }
                progress.finish()
                let builtIn = try SeedsFolder.resolve(nil)
                for part in ["pki", "access", "insi", "terminology", "demo", "dmp", "mes", "recette"] {
                    let source = builtIn.appendingPathComponent(part)
                    let target = outURL.appendingPathComponent(part)
                    if FileManager.default.fileExists(atPath: source.path),
                        source.standardizedFileURL != target.standardizedFileURL,
                        !FileManager.default.fileExists(atPath: target.path)
                    {
                        try FileManager.default.copyItem(at: source, to: target)
                    }
                }
                print(
                    "wrote \(written) resources to \(folder.path) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
                )
                if prebuild { try Prebuild.prebuild(RORSeedDataset(seeds: outURL)) }
            }
        }
    }

    struct Prebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store and index SEEDS/ror/*.json once into SEEDS/ror/dataset.sqlite.",
            discussion: """
                A data folder created by `serve --seeds SEEDS` then starts as a copy of it instead of loading the JSON. \
                It is used only while the JSON files keep their names and sizes and the sandbox indexes as when it was \
                built; otherwise serve loads the JSON and says why. Run again after editing the JSON.
                """
        )

        @Option(help: "Seeds folder (holding ror/*.json), e.g. one written by `seed generate` or `seed export`.")
        var seeds: String

        func run() async throws {
            try await reportingErrors { try Self.prebuild(RORSeedDataset(seeds: URL(fileURLWithPath: seeds))) }
        }

        static func prebuild(_ dataset: RORSeedDataset) throws {
            let started = Date()
            let count: Int
            var progress: ProgressReport?
            do {
                count = try dataset.prebuild(registry: RORSearchParameters.registry) { done, files in
                    if progress == nil { progress = ProgressReport("storing", total: files, unit: "seed files") }
                    progress?.update(done)
                    if done == files {
                        progress?.finish()
                        print("indexing…")
                    }
                }
            } catch {
                progress?.finish()
                throw UsageFailure("\(error)")
            }
            let size =
                (try? FileManager.default.attributesOfItem(atPath: dataset.prebuiltFile.path)[.size] as? NSNumber)?
                .int64Value ?? 0
            print(
                "prebuilt \(count) resources into \(dataset.prebuiltFile.path) (\(size >> 20) MiB) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
            )
        }
    }
}
