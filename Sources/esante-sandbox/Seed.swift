import ArgumentParser
import Foundation
import RORFHIR

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seed datasets.", subcommands: [Generate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a synthetic ROR dataset into OUT/ror/dataset.json (deterministic for a given seed).",
            discussion: "Then: esante-sandbox serve --seeds OUT. Seeds/pki and Seeds/access are copied when present.")

        @Option(help: "Number of establishments (each: EJ, EG, internal organisation, 1–3 places, 4–6 offers).")
        var establishments = 12
        @Option(help: "Random seed.") var seed: UInt64 = 2026
        @Option(help: "Output seeds folder.") var out: String

        func run() async throws {
            try await reportingErrors {
                guard establishments > 0, establishments <= 200_000 else {
                    throw UsageFailure("--establishments must be between 1 and 200000")
                }
                let outURL = URL(fileURLWithPath: out)
                let folder = outURL.appendingPathComponent("ror")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let generator = RORDatasetGenerator(establishments: establishments, seed: seed)
                let started = Date()
                let bundle = generator.bundle()
                let data = try JSONSerialization.data(withJSONObject: bundle, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
                try data.write(to: folder.appendingPathComponent("dataset.json"), options: .atomic)
                for part in ["pki", "access"] {
                    let source = URL(fileURLWithPath: "Seeds").appendingPathComponent(part)
                    let target = outURL.appendingPathComponent(part)
                    if FileManager.default.fileExists(atPath: source.path), source.standardizedFileURL != target.standardizedFileURL,
                       !FileManager.default.fileExists(atPath: target.path) {
                        try FileManager.default.copyItem(at: source, to: target)
                    }
                }
                let entries = (bundle["entry"] as? [Any])?.count ?? 0
                print("wrote \(entries) resources to \(folder.appendingPathComponent("dataset.json").path) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
            }
        }
    }
}
