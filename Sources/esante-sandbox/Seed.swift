import ArgumentParser
import Foundation
import RORFHIR

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Seed datasets.", subcommands: [Generate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a synthetic ROR dataset into OUT/ror/dataset.json (deterministic for a given seed).",
            discussion: "Then: esante-sandbox serve --seeds OUT. Seeds/pki, access, insi and terminology are copied when present.")

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
                // Small datasets: one readable file. National ones: compact files of 250 establishments each, so
                // loading parses one at a time.
                let started = Date()
                let chunk = establishments <= 100 ? establishments : 250
                var written = 0
                for (index, first) in stride(from: 0, to: establishments, by: chunk).enumerated() {
                    let generator = RORDatasetGenerator(establishments: establishments, seed: seed, range: first..<min(first + chunk, establishments))
                    let bundle = generator.bundle()
                    let options: JSONSerialization.WritingOptions = chunk == establishments
                        ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.withoutEscapingSlashes]
                    let data = try JSONSerialization.data(withJSONObject: bundle, options: options)
                    let name = chunk == establishments ? "dataset.json" : String(format: "dataset-%04d.json", index + 1)
                    try data.write(to: folder.appendingPathComponent(name), options: .atomic)
                    written += (bundle["entry"] as? [Any])?.count ?? 0
                    if isatty(STDOUT_FILENO) != 0 {
                        // Progress on a TTY only (unbuffered write: no flush needed).
                        FileHandle.standardOutput.write(Data("\r\(min(first + chunk, establishments))/\(establishments) establishments".utf8))
                    }
                }
                if isatty(STDOUT_FILENO) != 0 { print("") }
                for part in ["pki", "access", "insi", "terminology"] {
                    let source = URL(fileURLWithPath: "Seeds").appendingPathComponent(part)
                    let target = outURL.appendingPathComponent(part)
                    if FileManager.default.fileExists(atPath: source.path), source.standardizedFileURL != target.standardizedFileURL,
                       !FileManager.default.fileExists(atPath: target.path) {
                        try FileManager.default.copyItem(at: source, to: target)
                    }
                }
                print("wrote \(written) resources to \(folder.path) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
            }
        }
    }
}
