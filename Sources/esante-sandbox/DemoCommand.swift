import Access
import ArgumentParser
import Foundation
import GuidedDemo
import Logging
import SandboxServer
import TestPKI

extension GuidedDemo.Failure: UserFacingError {}

/// `esante-sandbox demo`: the guided whitelisting demo, against a running sandbox (`--ready-file`) or one it starts.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Replay the seeds' story step by step, for real: refused, onboarding, ANS delay on the fast clock, accepted, bed availability fed and read.",
        discussion:
            "Exits with status 1 at the first step that does not behave as announced (so it doubles as an end-to-end test)."
    )

    @Option(
        help: "Ready file of a running sandbox (serve --ready-file); without it the demo starts its own, in memory."
    )
    var readyFile: String?

    @Option(help: "Seeds folder (the story is demo/story.json; default: the seeds built into the binary).")
    var seeds: String?

    @Flag(help: "Wait for Enter between steps (for a live audience).")
    var pause = false

    @Option(help: "Self-started sandbox: the ANS delay to show (0, 45s, 30m, 2h, 5d).")
    var whitelistDelay = "5d"

    @Option(help: "Self-started sandbox: key algorithm of its fresh PKI (p256 starts faster; rsa as IGC-Santé).")
    var keyType: KeyAlgorithm = .p256

    func run() async throws {
        let seedsURL: URL
        do { seedsURL = try SeedsFolder.resolve(seeds) } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let say: @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        var started: Sandbox?
        var runTask: Task<Void, any Error>?
        var exit: (status: Int32, message: String)?
        let target: ReadyInfo
        do {
            if let readyFile {
                guard let data = FileManager.default.contents(atPath: readyFile) else {
                    throw UsageFailure("cannot read the ready file \(readyFile)")
                }
                do { target = try SandboxJSON.decoder.decode(ReadyInfo.self, from: data) } catch {
                    throw UsageFailure("\(readyFile) is not a sandbox ready file: \(error)")
                }
                say("Demo against the sandbox at \(target.tls) (admin \(target.admin)).")
            } else {
                var configuration = SandboxConfiguration()
                configuration.inMemory = true
                configuration.dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "esante-sandbox-demo-\(UUID().uuidString)"
                )
                configuration.seedsDirectory = seedsURL
                configuration.port = 0
                configuration.adminPort = 0
                configuration.printBanner = false
                configuration.keyAlgorithm = keyType
                do { configuration.whitelistDelay = try WhitelistDelay(parsing: whitelistDelay) } catch let error
                    as ClockError
                {
                    throw UsageFailure("--whitelist-delay: \(error.description)")
                }
                var logger = Logger(label: "esante-sandbox-demo")
                logger.logLevel = .error
                let sandbox = try Sandbox(configuration: configuration, logger: logger)
                started = sandbox
                runTask = Task { try await sandbox.run(handleSignals: false) }
                target = await sandbox.waitUntilReady()
                say(
                    "Demo against a sandbox started for it at \(target.tls) (in memory; ANS delay \(configuration.whitelistDelay))."
                )
            }
            let story = try GuidedDemo.Story.load(seeds: seedsURL)
            try await GuidedDemo(target: target, story: story, pause: pause, say: say).run()
        } catch let failure as GuidedDemo.Failure {
            exit = (1, "demo failed: \(failure.description)")
        } catch let error as any UserFacingError {
            exit = (2, "error: \(error.description)")
        } catch {
            exit = (1, "demo failed: \(error)")
        }
        // The self-started sandbox stops whatever happened.
        await stop(started, runTask)
        if let exit {
            FileHandle.standardError.write(Data((exit.message + "\n").utf8))
            throw ExitCode(exit.status)
        }
    }

    func stop(_ sandbox: Sandbox?, _ task: Task<Void, any Error>?) async {
        guard let sandbox else { return }
        await sandbox.shutdown()
        _ = try? await task?.value
        try? FileManager.default.removeItem(at: sandbox.configuration.dataDirectory)
    }
}
