import Access
import ArgumentParser
import Foundation
import GRDB
import INSi
import Logging
import RORFHIR
import SandboxServer
import TestPKI

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the sandbox: mutual-TLS listener (services) and admin listener (plain HTTP)."
    )

    @OptionGroup var data: DataOptions

    @Flag(help: "Keep the database in memory (nothing but the PKI is written).")
    var inMemory = false

    @Option(help: "Seed datasets folder (default: the seeds built into the binary; see `seed export`).")
    var seeds: String?

    @Option(help: "Address of the mutual-TLS listener.")
    var host = "127.0.0.1"

    @Option(help: "Port of the mutual-TLS listener (0: a free port).")
    var port = 8443

    @Option(help: "Address of the admin listener (default: same as --host; non-loopback needs --admin-token).")
    var adminHost: String?

    @Option(help: "Port of the admin listener (0: a free port).")
    var adminPort = 8080

    @Option(help: "Write the listeners' URLs, CA and demo certificates as JSON to this file once listening.")
    var readyFile: String?

    @Option(help: "Also trust the CA certificates of this PEM file for client certificates (repeatable).")
    var trustCA: [String] = []

    @Option(help: "Server certificate chain (PEM) instead of the generated one.")
    var serverCert: String?

    @Option(help: "Private key (PEM) of --server-cert.")
    var serverKey: String?

    @Option(
        help:
            "How a client certificate that does not verify is refused: tls (handshake alert) or http (403 naming the reason)."
    )
    var rejectMode: RejectMode = .tls

    @Option(help: "Token required on the admin API (Authorization: Bearer <token>).")
    var adminToken: String?

    @Option(help: "Keep at most this many journal rows (oldest pruned).")
    var journalMaxRows = 100_000

    @Option(help: "Bytes of each request and response body kept in the journal.")
    var journalBodyLimit = 1024 * 1024

    @Option(help: "Key algorithm of the certificates minted at first start: rsa (RSA-2048, as IGC-Santé) or p256.")
    var keyType: KeyAlgorithm = .rsa2048

    @Option(
        help:
            "RSA keys kept minted ahead in the per-user cache, so a new data folder starts without generating any (each key is used once; 0: none)."
    )
    var keyPoolDepth = 12

    @Option(
        help:
            "TLS versions and suites of the mutual-TLS listeners: intermediate (Mozilla's: TLS 1.3, TLS 1.2 ECDHE + AEAD), modern (TLS 1.3 only) or legacy (TLS 1.2 with static RSA and CBC too)."
    )
    var tlsProfile: TLSProfile = .intermediate

    @Option(
        help:
            "Seconds a connection may take to deliver a whole request (from opening, or the previous response); a slower one is closed."
    )
    var requestTimeout: Double = 30

    @Option(help: "How the ROR realm signs access tokens: RS256 (Keycloak's default) or ES256.")
    var tokenAlg: RealmKeys.Algorithm = .rs256

    @Option(help: "Largest FHIR write body in bytes (413 above).")
    var maxBody = 10 << 20

    @Option(
        help:
            "INSi answer for nobody found: strict (CR 01, as production) or realistic (insi_101 fault, as the editor test environment)."
    )
    var insiMode: INSiMode = .strict

    @Option(
        help:
            "OID of INS-NIR answers (default 1.2.250.1.213.1.4.8, what the INSi test environment returns; .10 = INS-NIR de test)."
    )
    var insiNirOid = "1.2.250.1.213.1.4.8"

    @Option(
        help:
            "Environments, comma-separated (e.g. bac-a-sable,production): one mutual-TLS listener each on --port, --port+1…, each with its own PKI (<pki-dir>-NAME) and whitelist."
    )
    var environments: String?

    @Option(
        help:
            "Onboarding: the ANS delay between tests done and the whitelist, on the sandbox clock (0, 45s, 30m, 2h, 5d)."
    )
    var whitelistDelay = "0"

    @Option(help: "Sandbox clock speed: 1 = real time, 3600 = an hour passes per second (kept in the data folder).")
    var clockSpeed: Double?

    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).")
    var logLevel = "warning"

    func run() async throws {
        try await reportingErrors {
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw UsageFailure("unknown log level '\(logLevel)'")
            }
            var configuration = SandboxConfiguration()
            configuration.dataDirectory = data.dataDirectory
            configuration.pkiDirectory = data.pkiDir.map { URL(fileURLWithPath: $0) }
            configuration.inMemory = inMemory
            configuration.seedsDirectory = seeds.map { URL(fileURLWithPath: $0) }
            configuration.host = host
            configuration.port = port
            configuration.adminHost = adminHost
            configuration.adminPort = adminPort
            configuration.readyFile = readyFile.map { URL(fileURLWithPath: $0) }
            configuration.trustCAFiles = trustCA.map { URL(fileURLWithPath: $0) }
            configuration.serverCertificate = serverCert.map { URL(fileURLWithPath: $0) }
            configuration.serverKey = serverKey.map { URL(fileURLWithPath: $0) }
            configuration.rejectMode = rejectMode
            configuration.adminToken = adminToken
            configuration.journalMaxRows = journalMaxRows
            configuration.journalBodyLimit = journalBodyLimit
            configuration.keyAlgorithm = keyType
            guard keyPoolDepth >= 0, keyPoolDepth <= 1000 else {
                throw UsageFailure("--key-pool-depth must be between 0 and 1000")
            }
            configuration.keyPoolDepth = keyPoolDepth
            configuration.tokenAlgorithm = tokenAlg
            configuration.tlsProfile = tlsProfile
            guard requestTimeout > 0 else { throw UsageFailure("--request-timeout must be positive") }
            configuration.requestTimeout = requestTimeout
            configuration.maxBody = maxBody
            configuration.insiMode = insiMode
            configuration.insiNIROID = insiNirOid
            configuration.whitelistDelay = try WhitelistDelay(parsing: whitelistDelay)
            configuration.clockSpeed = clockSpeed
            configuration.environments = environments.map {
                $0.split(separator: ",", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
            }
            if let seedsDirectory = configuration.seedsDirectory,
                !FileManager.default.fileExists(atPath: seedsDirectory.path)
            {
                throw UsageFailure("--seeds \(seedsDirectory.path): no such folder")
            }
            var logger = Logger(label: "esante-sandbox")
            logger.logLevel = level
            let sandbox: Sandbox
            do {
                sandbox = try Sandbox(configuration: configuration, logger: logger)
            } catch let error as DatabaseError {
                // A database that opened but cannot be written (locked, read-only, full) fails in the first write.
                throw SandboxError.database(
                    path: configuration.dataDirectory.appendingPathComponent("sandbox.sqlite").path,
                    error
                )
            }
            if let pool = configuration.keyPool {
                // What this start took from the pool is minted again for the next new data folder, by a process
                // that outlives this one (a suite may stop the server a second after it is ready).
                Task {
                    _ = await sandbox.waitUntilReady()
                    if pool.count < pool.depth {
                        Certs.FillKeyPool.spawn(
                            depth: pool.depth,
                            cache: pool.directory.deletingLastPathComponent().deletingLastPathComponent()
                        )
                    }
                }
            }
            do {
                try await sandbox.run()
            } catch {
                throw UsageFailure("could not serve: \(error)")
            }
        }
    }
}
