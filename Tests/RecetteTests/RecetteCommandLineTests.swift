import Foundation
import SOAPCore
import Testing
import ZIPFoundation

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

/// `esante-sandbox recette …` against a running sandbox sharing its data folder: `recette run` around a client
/// written apart from the sandbox (`scripts/dmp_client.py`), the reports it writes, and the exit statuses.
@Suite("Recette: the command line and the DMP pack")
struct RecetteCommandLineTests {
    static let repository = SharedPKI.repositorySeeds.deletingLastPathComponent()
    static let lpsDN = "CN=INSI-AUTO,OU=1690099990,O=CENTRE DE SANTE SANDBOX,ST=Rhône (69),C=FR"

    static let hasPythonRequests: Bool = {
        guard Reference.onPath("python3") else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import requests"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// A sandbox on a data folder of its own (the CLI opens the same database).
    static func start() async throws -> (RunningSandbox, URL) {
        let folder = SharedPKI.directory.appendingPathComponent("recette-\(UUID().uuidString)")
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds) { configuration in
            configuration.inMemory = false
            configuration.dataDirectory = folder
        }
        return (running, folder)
    }

    static func recette(_ folder: URL, _ arguments: [String]) async throws -> Shell.Output {
        try await Shell.sandbox(
            ["recette"] + [arguments[0], "--data-dir", folder.path] + arguments.dropFirst()
        )
    }

    /// `recette run` around the Python DMP client: `skipExistence` makes it the wrong client (no TD0.2).
    static func runDMPClient(skipExistence: Bool) async throws -> (Shell.Output, URL, RecetteRun?) {
        let (running, folder) = try await start()
        return try await running.whileRunning {
            let client = try #require(running.info.clientCertificates["insi-lps"])
            let output = try await recette(
                folder,
                [
                    "run", "--seeds", SharedPKI.repositorySeeds.path, "--pack", "dmp", "--client", lpsDN,
                    "--product-name", "Client Python", "--product-version", "2.0", "--output-dir", folder.path,
                    "--format", "junit", "--format", "zip", "--format", "html", "--",
                    "python3", repository.appendingPathComponent("scripts/dmp_client.py").path, running.info.tls,
                    running.info.caCertificateFile, client.certificate.path, client.key.path,
                ] + (skipExistence ? ["--skip-existence"] : [])
            )
            return (output, folder, try running.sandbox.recette.runs().first)
        }
    }

    @Test(.enabled(if: hasPythonRequests, "python3 with requests"))
    func aWellBehavedDMPClientPassesAndTheReportsAreWritten() async throws {
        let (output, folder, run) = try await Self.runDMPClient(skipExistence: false)
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("— passed"), "\(output.stdout)")
        let id = try #require(run?.id)
        // JUnit: one suite per scenario, no failure.
        let junit = try HardenedXMLParser().parse(
            Data(contentsOf: folder.appendingPathComponent("recette-\(id)-dmp.xml"))
        )
        #expect(junit.name == "testsuites")
        #expect(junit.attributes["failures"] == "0")
        #expect(junit.children("testsuite").count == 2)
        // ZIP: the reports and, per test code, the raw traces of its evidence.
        let archive = try Archive(
            data: Data(contentsOf: folder.appendingPathComponent("recette-\(id)-dmp.zip")),
            accessMode: .read
        )
        let paths = archive.map(\.path)
        #expect(paths.contains("recette-\(id)-dmp/report.json"))
        #expect(paths.contains("recette-\(id)-dmp/junit.xml"))
        let request = try #require(paths.first { $0.contains("/SBX-DMP-ALIM_D2/") && $0.hasSuffix("-request.http") })
        var bytes = Data()
        _ = try archive.extract(try #require(archive[request])) { bytes.append($0) }
        #expect(String(decoding: bytes, as: UTF8.self).contains("ProvideAndRegisterDocumentSetRequest"))
        let html = try String(contentsOf: folder.appendingPathComponent("recette-\(id)-dmp.html"), encoding: .utf8)
        #expect(html.contains("Client Python 2.0"))
        #expect(html.contains("pas une homologation"))
    }

    /// The README's recette example, run as printed (from the repository, as its relative paths expect).
    @Test(.enabled(if: hasPythonRequests, "python3 with requests"))
    func readmeExampleRunsAsPrinted() async throws {
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let block = try #require(
            readme.components(separatedBy: "<!-- recette-example -->\n```sh\n").dropFirst().first?.components(
                separatedBy: "\n```"
            ).first
        )
        let (running, folder) = try await Self.start()
        try await running.whileRunning {
            let script = folder.appendingPathComponent("recette-example.sh")
            try Data(block.utf8).write(to: script)
            let variables =
                "S='\(Shell.executable.path)' T='\(running.info.tls)' D='\(folder.path)' P='\(running.sandbox.pki.directory.path)'"
            let run = try await Shell.run("cd '\(Self.repository.path)' && \(variables) bash -e '\(script.path)'")
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            #expect(run.stdout.contains("— passed"), "\(run.stdout)")
            let written = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
                $0.hasPrefix("recette-")
            }
            #expect(
                Set(written.map { ($0 as NSString).pathExtension }).isSuperset(of: ["xml", "html", "zip"]),
                "\(written)"
            )
        }
    }

    @Test(.enabled(if: hasPythonRequests, "python3 with requests"))
    func aClientFeedingWithoutTheExistenceTestFails() async throws {
        let (output, _, _) = try await Self.runDMPClient(skipExistence: true)
        #expect(output.status == 1, "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("[fail] O2 Aucun ITI-41 avant le premier TD0.2"), "\(output.stdout)")
        #expect(output.stdout.contains("— failed"), "\(output.stdout)")
    }

    /// 3 for bad usage or setup, 2 for a run closed with required steps never seen, each with its message.
    @Test func exitStatusesAndMessages() async throws {
        let (running, folder) = try await Self.start()
        try await running.whileRunning {
            let seeds = ["--seeds", SharedPKI.repositorySeeds.path]
            let unknownPack = try await Self.recette(
                folder,
                ["start", "--pack", "nope", "--client", Self.lpsDN] + seeds
            )
            #expect(unknownPack.status == 3)
            #expect(unknownPack.stderr.contains("no pack 'nope' (packs: csd-consumer, dmp, insi, mes"))
            let badClient = try await Self.recette(folder, ["start", "--pack", "dmp", "--client", "pas un DN"] + seeds)
            #expect(badClient.status == 3)
            #expect(badClient.stderr.contains("is neither a subject DN"), "\(badClient.stderr)")
            let noRun = try await Self.recette(folder, ["status", "999"])
            #expect(noRun.status == 3)
            #expect(noRun.stderr.contains("no recette run 999"))
            let badFormat = try await Self.recette(folder, ["report", "1", "--format", "pdf"])
            #expect(badFormat.status == 3)
            let unparsable = try await Shell.sandbox(["recette", "start", "--data-dir", folder.path])
            #expect(unparsable.status == 3, "\(unparsable.stderr)")
            #expect(unparsable.stderr.contains("--pack"), "\(unparsable.stderr)")
            // Opened, nothing done, closed: incomplete.
            let started = try await Self.recette(folder, ["start", "--pack", "dmp", "--client", Self.lpsDN] + seeds)
            #expect(started.status == 0, "\(started.stderr)")
            let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let open = try await Self.recette(folder, ["status", id])
            #expect(open.status == 2)
            #expect(open.stdout.contains("[waiting] D1"), "\(open.stdout)")
            let closed = try await Self.recette(folder, ["close", id])
            #expect(closed.status == 2)
            #expect(closed.stdout.contains("— incomplete"), "\(closed.stdout)")
            #expect(closed.stdout.contains("The client made no such call"), "\(closed.stdout)")
        }
    }
}
