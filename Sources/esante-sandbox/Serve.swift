import Access
import ArgumentParser
import Foundation
import GRDB
import INSi
import Logging
import RORFHIR
import SandboxServer
import Store
import TestPKI

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the sandbox: mutual-TLS listener (services) and admin listener (plain HTTP)."
    )

    @OptionGroup var data: DataOptions

    @Option(
        help:
            "JSON file of settings, keys named like the flags in camel case ({\"adminPort\": 9080}); flags and ESANTE_SANDBOX_* environment variables win over it. Also ESANTE_SANDBOX_CONFIG."
    )
    var config: String?

    @Flag(
        help:
            "Print every setting's effective value and where it came from (flag, environment, file, default), then exit."
    )
    var printConfig = false

    @Flag(inversion: .prefixedNo, help: "Keep the database in memory (nothing but the PKI is written). Default: no.")
    var inMemory: Bool?

    @Option(help: "Seed datasets folder (default: the seeds built into the binary; see `seed export`).")
    var seeds: String?

    @Option(help: "Address of the mutual-TLS listener (default: 127.0.0.1).")
    var host: String?

    @Option(help: "Port of the mutual-TLS listener (0: a free port; default: 8443).")
    var port: Int?

    @Option(help: "Address of the admin listener (default: same as --host; non-loopback needs --admin-token).")
    var adminHost: String?

    @Option(help: "Port of the admin listener (0: a free port; default: 8080).")
    var adminPort: Int?

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
            "How a client certificate that does not verify is refused: tls (handshake alert) or http (403 naming the reason). Default: tls."
    )
    var rejectMode: RejectMode?

    @Option(help: "Token required on the admin API (Authorization: Bearer <token>).")
    var adminToken: String?

    @Option(help: "Keep at most this many journal rows, oldest pruned (default: 100000).")
    var journalMaxRows: Int?

    @Option(
        help:
            "About how many bytes of request and response bodies the journal keeps in all; older rows are pruned beyond (default: 536870912, 512 MiB)."
    )
    var journalMaxBytes: Int?

    @Option(help: "Bytes of each request and response body kept in the journal (default: 1048576).")
    var journalBodyLimit: Int?

    @Option(
        help: "Key algorithm of the certificates minted at first start: rsa (RSA-2048, as IGC-Santé; default) or p256."
    )
    var keyType: KeyAlgorithm?

    @Option(
        help:
            "RSA keys kept minted ahead in the per-user cache, so a new data folder starts without generating any (each key is used once; 0: none; default: 12)."
    )
    var keyPoolDepth: Int?

    @Option(
        help:
            "How a new data folder takes the seeds' prebuilt ROR database: overlay (default; instant, over the prebuilt file left read-only, keeping the folder's own pages apart) or copy (a standalone SQLite file for the sqlite3 shell)."
    )
    var prebuilt: SandboxStore.InstallMode?

    @Option(
        help:
            "TLS versions and suites of the mutual-TLS listeners: intermediate (default; Mozilla's: TLS 1.3, TLS 1.2 ECDHE + AEAD), modern (TLS 1.3 only) or legacy (TLS 1.2 with static RSA and CBC too)."
    )
    var tlsProfile: TLSProfile?

    @Option(
        help:
            "Seconds a connection may take to deliver a whole request (from opening, or the previous response); a slower one is closed (default: 30)."
    )
    var requestTimeout: Double?

    @Option(help: "How the ROR realm signs access tokens: RS256 (Keycloak's default; default) or ES256.")
    var tokenAlg: RealmKeys.Algorithm?

    @Option(help: "Largest FHIR write body in bytes, 413 above (default: 10485760).")
    var maxBody: Int?

    @Option(
        help:
            "INSi answer for nobody found: strict (CR 01, as production; default) or realistic (insi_101 fault, as the editor test environment)."
    )
    var insiMode: INSiMode?

    @Option(
        help:
            "OID of INS-NIR answers (default 1.2.250.1.213.1.4.8, what the INSi test environment returns; .10 = INS-NIR de test)."
    )
    var insiNirOid: String?

    @Option(
        help:
            "Environments, comma-separated (e.g. bac-a-sable,production): one mutual-TLS listener each on --port, --port+1…, each with its own PKI (<pki-dir>-NAME) and whitelist."
    )
    var environments: String?

    @Option(
        help:
            "Onboarding: the ANS delay between tests done and the whitelist, on the sandbox clock (0, 45s, 30m, 2h, 5d; default: 0)."
    )
    var whitelistDelay: String?

    @Option(help: "Sandbox clock speed: 1 = real time, 3600 = an hour passes per second (kept in the data folder).")
    var clockSpeed: Double?

    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical; default: warning).")
    var logLevel: String?

    func run() async throws {
        try await reportingErrors {
            var settings = try await ServeSettings(configFile: config)
            var configuration = SandboxConfiguration()
            configuration.dataDirectory = URL(
                fileURLWithPath: try settings.value("data-dir", data.dataDir, default: DataOptions.defaultDataDir)
            )
            configuration.pkiDirectory = try settings.optional("pki-dir", data.pkiDir).map { URL(fileURLWithPath: $0) }
            configuration.inMemory = try settings.value("in-memory", inMemory, default: false)
            configuration.seedsDirectory = try settings.optional("seeds", seeds, defaultText: "(built in)").map {
                URL(fileURLWithPath: $0)
            }
            configuration.host = try settings.value("host", host, default: configuration.host)
            configuration.port = try settings.value("port", port, default: configuration.port)
            configuration.adminHost = try settings.optional("admin-host", adminHost, defaultText: "(--host)")
            configuration.adminPort = try settings.value("admin-port", adminPort, default: configuration.adminPort)
            configuration.readyFile = try settings.optional("ready-file", readyFile).map { URL(fileURLWithPath: $0) }
            configuration.trustCAFiles = try settings.list("trust-ca", trustCA).map { URL(fileURLWithPath: $0) }
            configuration.serverCertificate = try settings.optional("server-cert", serverCert).map {
                URL(fileURLWithPath: $0)
            }
            configuration.serverKey = try settings.optional("server-key", serverKey).map { URL(fileURLWithPath: $0) }
            configuration.rejectMode = try settings.value("reject-mode", rejectMode, default: configuration.rejectMode)
            configuration.adminToken = try settings.optional("admin-token", adminToken, secret: true)
            configuration.journalMaxRows = try settings.value(
                "journal-max-rows",
                journalMaxRows,
                default: configuration.journalMaxRows
            )
            configuration.journalMaxBytes = try settings.value(
                "journal-max-bytes",
                journalMaxBytes,
                default: configuration.journalMaxBytes
            )
            configuration.journalBodyLimit = try settings.value(
                "journal-body-limit",
                journalBodyLimit,
                default: configuration.journalBodyLimit
            )
            configuration.keyAlgorithm = try settings.value("key-type", keyType, default: configuration.keyAlgorithm)
            let keyPoolDepth = try settings.value("key-pool-depth", keyPoolDepth, default: 12)
            guard keyPoolDepth >= 0, keyPoolDepth <= 1000 else {
                throw UsageFailure("--key-pool-depth must be between 0 and 1000")
            }
            configuration.keyPoolDepth = keyPoolDepth
            configuration.tokenAlgorithm = try settings.value(
                "token-alg",
                tokenAlg,
                default: configuration.tokenAlgorithm
            )
            configuration.tlsProfile = try settings.value("tls-profile", tlsProfile, default: configuration.tlsProfile)
            configuration.prebuiltMode = try settings.value(
                "prebuilt",
                prebuilt,
                default: configuration.prebuiltMode
            )
            configuration.requestTimeout = try settings.value(
                "request-timeout",
                requestTimeout,
                default: configuration.requestTimeout
            )
            guard configuration.requestTimeout > 0 else { throw UsageFailure("--request-timeout must be positive") }
            configuration.maxBody = try settings.value("max-body", maxBody, default: configuration.maxBody)
            configuration.insiMode = try settings.value("insi-mode", insiMode, default: configuration.insiMode)
            configuration.insiNIROID = try settings.value("insi-nir-oid", insiNirOid, default: configuration.insiNIROID)
            configuration.whitelistDelay = try WhitelistDelay(
                parsing: try settings.value("whitelist-delay", whitelistDelay, default: "0")
            )
            configuration.clockSpeed = try settings.optional("clock-speed", clockSpeed, defaultText: "(kept)")
            configuration.environments = try settings.optional(
                "environments",
                environments,
                defaultText: configuration.environment
            ).map {
                $0.split(separator: ",", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
            }
            let logLevel = try settings.value("log-level", logLevel, default: "warning")
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw UsageFailure("unknown log level '\(logLevel)'")
            }
            if printConfig {
                print(settings.report)
                return
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
