import Access
import ArgumentParser
import Foundation
import Recette
import SandboxServer
import Store

extension RecetteError: UserFacingError {}

/// `esante-sandbox recette …`: runs of a scenario pack against a client's calls, in the data folder a running
/// server uses. Exit status: 0 every required step passed, 1 a rule failed, 2 incomplete or timed out (or still
/// running), 3 bad usage or setup.
struct RecetteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recette",
        abstract:
            "Check a client against a scenario pack and write the acceptance report (rehearsal, not homologation).",
        subcommands: [Packs.self, Start.self, Status.self, Close.self, Report.self, Run.self]
    )

    /// Exit status of bad usage or setup (an unknown pack, a client that is no DN, no database…).
    static let usageExit: Int32 = 3

    struct SeedsOption: ParsableArguments {
        @Option(help: "Seeds folder holding recette/*.json (default: the seeds built into the binary).")
        var seeds: String?

        func packs() throws -> RecettePacks {
            let folder = try SeedsFolder.resolve(seeds)
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("recette").path) else {
                throw UsageFailure("no scenario packs in \(folder.path)/recette: pass --seeds")
            }
            return try RecettePacks.load(from: folder)
        }
    }

    struct RunOptions: ParsableArguments {
        @Option(help: "Pack id (see 'recette packs').") var pack: String
        @Option(help: "The client: its certificate's subject DN, or its public key's SHA-256 (64 hex digits).")
        var client: String
        @Option(help: "How long the run stays open, in minutes.") var minutes: Double = 60
        @Option(help: "Product name written in the report.") var productName: String?
        @Option(help: "Product version written in the report.") var productVersion: String?
    }

    static func runs(_ data: DataOptions, packs: RecettePacks = RecettePacks(packs: [])) throws -> RecetteRuns {
        let store = try data.openStore()
        return RecetteRuns(store: store, journal: Journal(store: store), packs: packs)
    }

    /// Runs `body`; a user error is printed and exits 3, a verdict exits with its code.
    static func guarded(_ body: () async throws -> Int32) async throws {
        let code: Int32
        do {
            code = try await body()
        } catch let error as any UserFacingError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(usageExit)
        }
        if code != 0 { throw ExitCode(code) }
    }

    /// The run judged now, or closed; closing first has the server write the journal rows it still holds.
    static func judged(
        _ runs: RecetteRuns,
        _ id: Int64,
        close: Bool
    ) async throws -> (
        RecetteRun, RunResult, [RecordedCall]
    ) {
        if close, try runs.run(id)?.closedAt == nil {
            if try await !runs.waitForServerJournal(id) {
                FileHandle.standardError.write(
                    Data("no running server answered within 5 s: judging the journal as it is\n".utf8)
                )
            }
        }
        guard let judged = try close ? runs.close(id) : runs.status(id) else {
            throw UsageFailure("no recette run \(id)")
        }
        return judged
    }

    /// The steps as lines: status, id, title, then the message.
    static func printSummary(_ run: RecetteRun, _ result: RunResult) {
        print("run \(run.id): \(run.pack.id) \(run.pack.version) for \(run.client.value) — \(result.verdict.rawValue)")
        for scenario in result.scenarios {
            print("  \(scenario.id) — \(scenario.title)")
            for step in scenario.steps {
                print("    [\(step.status.rawValue)] \(step.id) \(step.title)")
                if step.status != .pass { print("        \(step.message)") }
            }
        }
    }

    struct Packs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the scenario packs.")
        @OptionGroup var seeds: SeedsOption
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            try await RecetteCommand.guarded {
                let packs = try seeds.packs().packs
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(packs), as: UTF8.self))
                } else {
                    for pack in packs {
                        let steps = pack.scenarios.reduce(0) { $0 + $1.steps.count }
                        print(
                            "\(pack.id) \(pack.version): \(pack.title) (\(pack.scenarios.count) scenarios, \(steps) steps)"
                        )
                    }
                }
                return 0
            }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a run for a client (a running server injects its answers within a second)."
        )
        @OptionGroup var data: DataOptions
        @OptionGroup var seeds: SeedsOption
        @OptionGroup var options: RunOptions

        func run() async throws {
            try await RecetteCommand.guarded {
                let run = try RecetteCommand.runs(data, packs: try seeds.packs()).start(
                    pack: options.pack,
                    client: options.client,
                    minutes: options.minutes,
                    productName: options.productName,
                    productVersion: options.productVersion
                )
                print(run.id)
                FileHandle.standardError.write(
                    Data(
                        "run \(run.id) open until \(ISO8601DateFormatter().string(from: run.endsAt)): \(run.pack.id) for \(run.client.value)\n"
                            .utf8
                    )
                )
                return 0
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each step of a run now (exit status: the verdict).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Run id.") var run: Int64
        @Flag(help: "The JSON report instead of lines.") var json = false

        func run() async throws {
            try await RecetteCommand.guarded {
                let (run, result, calls) = try await RecetteCommand.judged(
                    try RecetteCommand.runs(data),
                    self.run,
                    close: false
                )
                if json {
                    let report = RecetteReport(run: run, result: result, calls: calls, sandboxVersion: Sandbox.version)
                    print(String(decoding: try report.json(), as: UTF8.self))
                } else {
                    RecetteCommand.printSummary(run, result)
                }
                return result.verdict.exitCode
            }
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close a run: what was not seen is missing.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Run id.") var run: Int64

        func run() async throws {
            try await RecetteCommand.guarded {
                let (run, result, _) = try await RecetteCommand.judged(
                    try RecetteCommand.runs(data),
                    self.run,
                    close: true
                )
                RecetteCommand.printSummary(run, result)
                return result.verdict.exitCode
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a run's report (exit status: the verdict).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Run id.") var run: Int64
        @Option(help: "json, junit, html or zip.") var format: String = "json"
        @Option(help: "File to write (default: standard output; a zip needs a file).") var output: String?
        @Flag(help: "Close the run first.") var close = false

        func run() async throws {
            try await RecetteCommand.guarded {
                guard let format = RecetteReport.Format(rawValue: format) else {
                    throw UsageFailure("--format must be json, junit, html or zip, not '\(format)'")
                }
                if format == .zip, output == nil { throw UsageFailure("--format zip needs --output FILE") }
                let (run, result, calls) = try await RecetteCommand.judged(
                    try RecetteCommand.runs(data),
                    self.run,
                    close: close
                )
                let bytes = try RecetteReport(run: run, result: result, calls: calls, sandboxVersion: Sandbox.version)
                    .render(format)
                if let output {
                    try bytes.write(to: URL(fileURLWithPath: output))
                } else {
                    FileHandle.standardOutput.write(bytes)
                }
                return result.verdict.exitCode
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a run, execute the client's own command, close the run and write the reports.",
            discussion: "esante-sandbox recette run --pack ror-feeder --client 'CN=…' -- ./my-client-tests.sh"
        )
        @OptionGroup var data: DataOptions
        @OptionGroup var seeds: SeedsOption
        @OptionGroup var options: RunOptions
        @Option(help: "Report formats to write (repeatable; default junit and html).") var format: [String] = []
        @Option(help: "Folder the reports go to.") var outputDir: String = "."
        @Argument(parsing: .postTerminator, help: "The client's command, after --.") var command: [String] = []

        func run() async throws {
            try await RecetteCommand.guarded {
                guard let executable = command.first else { throw UsageFailure("give the client's command after --") }
                let formats = try (format.isEmpty ? ["junit", "html"] : format).map { name in
                    guard let format = RecetteReport.Format(rawValue: name) else {
                        throw UsageFailure("--format must be json, junit, html or zip, not '\(name)'")
                    }
                    return format
                }
                let runs = try RecetteCommand.runs(data, packs: try seeds.packs())
                let run = try runs.start(
                    pack: options.pack,
                    client: options.client,
                    minutes: options.minutes,
                    productName: options.productName,
                    productVersion: options.productVersion
                )
                // The server takes the run's injections within a second.
                try await Task.sleep(for: .milliseconds(1200))
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [executable] + command.dropFirst()
                var environment = ProcessInfo.processInfo.environment
                environment["ESANTE_SANDBOX_RECETTE_RUN"] = String(run.id)
                process.environment = environment
                do {
                    try process.run()
                } catch {
                    throw UsageFailure("cannot run \(executable): \(error)")
                }
                process.waitUntilExit()
                let (closed, result, calls) = try await RecetteCommand.judged(runs, run.id, close: true)
                let report = RecetteReport(run: closed, result: result, calls: calls, sandboxVersion: Sandbox.version)
                for format in formats {
                    let file = URL(fileURLWithPath: outputDir)
                        .appendingPathComponent("recette-\(run.id)-\(run.pack.id).\(format.fileExtension)")
                    try report.render(format).write(to: file)
                    FileHandle.standardError.write(Data("wrote \(file.path)\n".utf8))
                }
                RecetteCommand.printSummary(closed, result)
                if process.terminationStatus != 0 {
                    FileHandle.standardError.write(
                        Data("the client's command exited with status \(process.terminationStatus)\n".utf8)
                    )
                }
                return result.verdict.exitCode
            }
        }
    }
}
