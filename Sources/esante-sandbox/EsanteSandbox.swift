import Access
import ArgumentParser
import Foundation
import INSi
import Logging
import RORFHIR
import SandboxSeeds
import SandboxServer
import Store
import TestPKI

@main
struct EsanteSandbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esante-sandbox",
        abstract: "An offline stand-in for the French national e-health services (ROR, INSi, DMP, Mon espace santé).",
        subcommands: [
            Serve.self, Certs.self, WhitelistCommand.self, JournalCommand.self, INSiCommand.self,
            OnboardingCommand.self, DemoCommand.self, Seed.self, MESCommand.self, RecetteCommand.self,
            ResetCommand.self, ValidateCommand.self, ExplainCommand.self, SQLCommand.self,
        ],
        defaultSubcommand: Serve.self
    )

    /// As ArgumentParser's, except that a command line `recette` cannot parse exits 3 (its "bad usage" status)
    /// rather than 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if CommandLine.arguments.dropFirst().first == "recette", exitCode(for: error).rawValue == 64 {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(RecetteCommand.usageExit)
            }
            exit(withError: error)
        }
    }
}

/// A user error: printed as `error: …` on standard error, exit status 2.
struct UsageFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Errors whose text is a message for the user (bad DN, bad flag, unreadable file…), not a crash.
protocol UserFacingError: Error, CustomStringConvertible {}
extension UsageFailure: UserFacingError {}
extension DNParseError: UserFacingError {}
extension SandboxError: UserFacingError {}
extension PKIError: UserFacingError {}
extension WhitelistError: UserFacingError {}

extension AsyncParsableCommand {
    /// Runs `body`, turning user errors into `error: …` on standard error and exit status 2.
    func reportingErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as any UserFacingError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// The seeds a command reads: `--seeds DIR`, or those built into the binary (written once to the user's cache).
enum SeedsFolder {
    static func resolve(_ option: String?) throws -> URL {
        if let option {
            let folder = URL(fileURLWithPath: option)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else {
                throw UsageFailure("--seeds \(option): no such folder")
            }
            return folder
        }
        let cache = SandboxCache.directory()
        do { return try EmbeddedSeeds.materialized(in: cache) } catch {
            throw UsageFailure("could not write the built-in seeds to \(cache.path): \(error)")
        }
    }
}

/// Options naming the data folder, shared by every command that reads it.
struct DataOptions: ParsableArguments {
    static let defaultDataDir = ".esante-sandbox"

    @Option(help: "Data folder (SQLite database, generated PKI; default: .esante-sandbox, or ESANTE_SANDBOX_DATA_DIR).")
    var dataDir: String?

    @Option(help: "Test PKI folder (default: <data-dir>/pki, or ESANTE_SANDBOX_PKI_DIR).")
    var pkiDir: String?

    /// The flag, else the environment variable `serve` reads too (a container sets it once for every command).
    var dataDirectory: URL {
        URL(fileURLWithPath: dataDir ?? ServeSettings.environmentValue("data-dir") ?? Self.defaultDataDir)
    }
    var pkiDirectory: URL {
        (pkiDir ?? ServeSettings.environmentValue("pki-dir")).map { URL(fileURLWithPath: $0) }
            ?? dataDirectory.appendingPathComponent("pki")
    }

    /// The PKI folder of an environment (`--environments`): `pki` for bac-a-sable, `pki-NAME` otherwise.
    func pkiDirectory(_ environment: String) -> URL {
        SandboxPKI.directory(base: pkiDirectory, environment: environment)
    }

    /// Opens the database of a data folder (which may be in use by a running server: SQLite WAL allows it).
    func openStore() throws -> SandboxStore {
        try SandboxStore.open(path: try databasePath())
    }

    /// The data folder's database file, which must exist.
    func databasePath() throws -> String {
        let path = dataDirectory.appendingPathComponent("sandbox.sqlite").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw UsageFailure("no sandbox database at \(path): run 'esante-sandbox serve' once, or pass --data-dir")
        }
        return path
    }
}

extension KeyAlgorithm: ExpressibleByArgument {}
extension RealmKeys.Algorithm: ExpressibleByArgument {}
extension TLSProfile: ExpressibleByArgument {}
extension SandboxStore.InstallMode: ExpressibleByArgument {}
extension RejectMode: ExpressibleByArgument {}
extension INSiMode: ExpressibleByArgument {}
