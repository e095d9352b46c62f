import Foundation
import SandboxSeeds
import SandboxServer
import TestPKI
import Testing
import X509

@testable import SandboxTestSupport

/// The binary carries its seeds and starts a new data folder from pre-minted keys, whatever folder it runs from.
@Suite("Anywhere")
struct AnywhereTests {
    /// Runs the built binary with `folder` as its working directory and a cache of its own.
    static func run(in folder: URL, cache: URL, _ arguments: [String]) async throws -> Shell.Output {
        let quoted = ([Shell.executable.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try await Shell.run("cd '\(folder.path)' && ESANTE_SANDBOX_CACHE='\(cache.path)' \(quoted)")
    }

    @Test func theDemoPassesFromAnEmptyFolder() async throws {
        let folder = try CommandLineTests.folder()
        let output = try await Self.run(in: folder, cache: folder.appendingPathComponent("cache"), ["demo"])
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("Done: every step behaved as announced."))
    }

    @Test func serveFromAnEmptyFolderHasTheDemoClientsAndSaysWhichSeeds() async throws {
        let folder = try CommandLineTests.folder()
        let cache = folder.appendingPathComponent("cache")
        let ready = folder.appendingPathComponent("ready.json")
        let process = try Self.serve(
            in: folder,
            cache: cache,
            ready: ready,
            ["--key-type", "p256", "--key-pool-depth", "0"]
        )
        defer { process.terminate() }
        let info = try await Self.waitForReadyFile(ready)
        #expect(
            Set(info.clientCertificates.keys).isSuperset(of: [
                "ror-consumer", "ror-feeder", "csd-consumer", "insi-lps", "mes-service", "not-whitelisted",
            ])
        )
        #expect(info.seeds?.hasPrefix("built in (\(EmbeddedSeeds.paths.count) files") == true, "\(info.seeds ?? "-")")
        // The data folder is the default one, under the working folder; the seeds' ROR dataset was loaded.
        #expect(
            FileManager.default.fileExists(atPath: folder.appendingPathComponent(".esante-sandbox/sandbox.sqlite").path)
        )
        let story = try await Self.run(in: folder, cache: cache, ["demo", "--ready-file", ready.path])
        #expect(story.status == 0, "\(story.stdout)\n\(story.stderr)")
    }

    /// `serve` on free ports from the built binary, with `folder` as its working directory and a cache of its own.
    static func serve(in folder: URL, cache: URL, ready: URL, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = Shell.executable
        process.arguments = ["serve", "--port", "0", "--admin-port", "0", "--ready-file", ready.path] + arguments
        process.currentDirectoryURL = folder
        process.environment = ProcessInfo.processInfo.environment.merging(["ESANTE_SANDBOX_CACHE": cache.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func waitForReadyFile(_ ready: URL) async throws -> ReadyInfo {
        for _ in 0..<600 {
            if let data = FileManager.default.contents(atPath: ready.path), !data.isEmpty {
                return try SandboxJSON.decoder.decode(ReadyInfo.self, from: data)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CancellationError()
    }

    @Test func seedExportWritesTheRepositorySeedsAndRefusesToOverwrite() async throws {
        let folder = try CommandLineTests.folder()
        let out = folder.appendingPathComponent("my-seeds")
        let first = try await Shell.sandbox(["seed", "export", "--out", out.path])
        #expect(first.status == 0, "\(first.stderr)")
        let repository = SharedPKI.repositorySeeds
        let walker = try #require(FileManager.default.enumerator(at: repository, includingPropertiesForKeys: nil))
        var compared = 0
        for case let file as URL in walker where !file.hasDirectoryPath && !file.lastPathComponent.contains(".sqlite") {
            let relative = String(
                file.standardizedFileURL.path.dropFirst(repository.standardizedFileURL.path.count + 1)
            )
            guard !relative.hasPrefix("."), (try? file.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) != true
            else { continue }
            let exported = FileManager.default.contents(atPath: out.appendingPathComponent(relative).path)
            #expect(exported == FileManager.default.contents(atPath: file.path), "\(relative)")
            compared += 1
        }
        #expect(compared == EmbeddedSeeds.paths.count)
        let again = try await Shell.sandbox(["seed", "export", "--out", out.path])
        #expect(again.status == 2)
        #expect(again.stderr.contains("pass --force"), "\(again.stderr)")
        #expect(try await Shell.sandbox(["seed", "export", "--out", out.path, "--force"]).status == 0)
    }

    @Test func theEmbeddedSeedsAreWrittenOnceToTheCacheUnderTheirDigest() throws {
        let cache = try CommandLineTests.folder()
        let folder = try EmbeddedSeeds.materialized(in: cache)
        #expect(folder.lastPathComponent == String(EmbeddedSeeds.digest.prefix(16)))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("ror/dataset.json").path))
        let written =
            try FileManager.default.attributesOfItem(
                atPath: folder.appendingPathComponent("ror/dataset.json").path
            )[.modificationDate] as? Date
        #expect(try EmbeddedSeeds.materialized(in: cache).path == folder.path)
        let again =
            try FileManager.default.attributesOfItem(
                atPath: folder.appendingPathComponent("ror/dataset.json").path
            )[.modificationDate] as? Date
        #expect(written == again)
        // No staging folder is left behind.
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("seeds").path)
        #expect(entries == [folder.lastPathComponent])
    }

    @Test func aNewDataFolderTakesItsRSAKeysFromThePoolEachOnlyOnce() async throws {
        let folder = try CommandLineTests.folder()
        let cache = folder.appendingPathComponent("cache")
        let pool = RSAKeyPool(directory: cache.appendingPathComponent("key-pool/rsa2048"), depth: 12)
        // RSA generation off Swift's cooperative pool, which the other suites' sandboxes share.
        #expect(try await Shell.offPool { try pool.refill() })
        #expect(pool.count == 12)
        let pooled = try Set(Self.pooledKeys(pool).map(Self.publicKey))
        let ready = folder.appendingPathComponent("ready.json")
        let data = folder.appendingPathComponent("data")
        let process = try Self.serve(
            in: folder,
            cache: cache,
            ready: ready,
            ["--data-dir", data.path, "--key-pool-depth", "12"]
        )
        defer { process.terminate() }
        _ = try await Self.waitForReadyFile(ready)
        // The root, issuing CA and server keys and every demo client's are pool keys, none of them twice.
        var used: [ArraySlice<UInt8>] = []
        for file in ["root-ca-key.pem", "org-ca-key.pem", "server-key.pem"] {
            used.append(try Self.publicKey(data.appendingPathComponent("pki/\(file)")))
        }
        let clients = data.appendingPathComponent("pki/clients")
        for name in try FileManager.default.contentsOfDirectory(atPath: clients.path) {
            used.append(try Self.publicKey(clients.appendingPathComponent("\(name)/key.pem")))
        }
        #expect(used.count == 9)
        #expect(Set(used).count == used.count)
        #expect(Set(used).isSubset(of: pooled))
        // What was taken is gone from the pool (the filler `serve` started mints new ones, never the same).
        // A key file the filler is still writing is not yet `.pem`; one taken meanwhile is skipped.
        let remaining = try Self.pooledKeys(pool).compactMap { try? Self.publicKey($0) }
        #expect(Set(remaining).isDisjoint(with: used))
    }

    static func pooledKeys(_ pool: RSAKeyPool) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(atPath: pool.directory.path).filter { $0.hasSuffix(".pem") }.map {
            pool.directory.appendingPathComponent($0)
        }
    }

    static func publicKey(_ file: URL) throws -> ArraySlice<UInt8> {
        try Certificate.PrivateKey(pemEncoded: String(contentsOf: file, encoding: .utf8)).publicKey
            .subjectPublicKeyInfoBytes
    }

    @Test func twoProcessesTakingFromOnePoolNeverGetTheSameKey() async throws {
        let folder = try CommandLineTests.folder()
        let pool = RSAKeyPool(directory: folder, depth: 6)
        // RSA generation off Swift's cooperative pool, which the other suites' sandboxes share.
        #expect(try await Shell.offPool { try pool.refill() })
        let taken = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<3 {
                group.addTask {
                    var keys: [String] = []
                    while let key = pool.take() { keys.append(key.publicKey.pemRepresentation) }
                    return keys
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(taken.count == 6)
        #expect(Set(taken).count == 6)
        #expect(pool.take() == nil)
        #expect(pool.count == 0)
    }
}
