import Access
import Foundation
import GRDB
import INSi
import RORFHIR
import SandboxSeeds
import Store
import TestPKI

/// Everything `serve` can be told; the defaults are the README's first command.
public struct SandboxConfiguration: Sendable {
    /// Data folder: the SQLite file and, unless `pkiDirectory` is set, the generated PKI (`pki/`).
    public var dataDirectory = URL(fileURLWithPath: ".esante-sandbox")
    /// Keep the database in memory (tests): nothing is written but the PKI.
    public var inMemory = false
    /// Where the test PKI lives (minted there if absent). Default `<data-dir>/pki`.
    public var pkiDirectory: URL?
    /// Key algorithm of certificates minted at first start.
    public var keyAlgorithm: KeyAlgorithm = .rsa2048
    /// RSA keys kept minted ahead in the per-user cache (`RSAKeyPool`), so a new data folder starts without
    /// generating any; 0 = no pool (every key generated when needed).
    public var keyPoolDepth = 0
    /// Seconds a connection may take to deliver a whole request (from opening, or the previous response) before it
    /// is closed: slow or stalled clients hold no connection longer.
    public var requestTimeout: Double = 30
    /// How a new data folder takes the seeds' prebuilt ROR database (`seed prebuild`): over it as a page overlay
    /// (instant, the prebuilt file shared and never written) or as a copy (a standalone SQLite file).
    public var prebuiltMode: SandboxStore.InstallMode = .overlay
    /// Protocol versions and cipher suites of the mutual-TLS listeners.
    public var tlsProfile: TLSProfile = .intermediate
    /// How the ROR realm signs its access tokens: RS256, Keycloak's default, or ES256.
    public var tokenAlgorithm: RealmKeys.Algorithm = .rs256
    /// Seed datasets; nil = the ones built into the binary (`EmbeddedSeeds`), whatever the working folder.
    public var seedsDirectory: URL?
    /// The per-user cache (embedded seeds written out, pre-minted keys); nil = `SandboxCache.directory()`.
    public var cacheDirectory: URL?
    public var host = "127.0.0.1"
    /// mTLS port; 0 picks a free one.
    public var port = 8443
    /// Admin host; nil = the same as `host` (a non-loopback admin address requires an admin token).
    public var adminHost: String?
    /// Admin port; 0 picks a free one.
    public var adminPort = 8080
    public var readyFile: URL?
    /// Extra trusted CA files (PEM, several certificates each), e.g. the public IGC-Santé TEST chain.
    public var trustCAFiles: [URL] = []
    public var serverCertificate: URL?
    public var serverKey: URL?
    public var rejectMode: RejectMode = .tls
    public var adminToken: String?
    /// The first (default) environment: where the admin API's entries go unless told otherwise.
    public var environment = SandboxEnvironment.sandbox
    /// `--environments bac-a-sable,production`: one mutual-TLS listener each (ports `port`, `port + 1`…), each with its
    /// own PKI and whitelist. Nil = `[environment]`.
    public var environments: [String]? {
        didSet { if let first = environments?.first { environment = first } }
    }
    public var journalMaxRows = 100_000
    /// About this many bytes of request and response bodies kept in the journal (oldest rows pruned beyond).
    public var journalMaxBytes = 512 << 20
    /// Bytes of each request/response body kept in the journal.
    public var journalBodyLimit = 1024 * 1024
    /// Print the start-up banner (URLs and curl line) to standard output.
    public var printBanner = true
    /// Largest FHIR write body accepted (413 above).
    public var maxBody = 10 << 20
    /// INSi: CR 01 as production (`strict`) or the editor test environment's `insi_101` fault (`realistic`).
    public var insiMode = INSiMode.strict
    /// INSi: OID of INS-NIR answers (the editor test environment returns the production `.8`).
    public var insiNIROID = "1.2.250.1.213.1.4.8"
    /// Onboarding: the ANS delay between "tests done" and the whitelist (sandbox clock).
    public var whitelistDelay = WhitelistDelay(seconds: 0)
    /// Sandbox clock speed (1 = real time, 3600 = an hour per second); nil keeps the stored clock as it is.
    public var clockSpeed: Double?

    public init() {}

    var resolvedPKIDirectory: URL { pkiDirectory ?? dataDirectory.appendingPathComponent("pki") }

    var resolvedCacheDirectory: URL { cacheDirectory ?? SandboxCache.directory() }

    /// The RSA key pool new PKIs take from (nil when `keyPoolDepth` is 0).
    public var keyPool: RSAKeyPool? {
        keyPoolDepth > 0
            ? RSAKeyPool(
                directory: resolvedCacheDirectory.appendingPathComponent("key-pool/rsa2048"),
                depth: keyPoolDepth
            ) : nil
    }

    /// The seeds folder to read and how the banner names it.
    func resolveSeeds() throws -> (folder: URL, label: String) {
        if let seedsDirectory { return (seedsDirectory, seedsDirectory.path) }
        do {
            let folder = try EmbeddedSeeds.materialized(in: resolvedCacheDirectory)
            return (folder, "built in (\(EmbeddedSeeds.paths.count) files, \(EmbeddedSeeds.digest.prefix(12)))")
        } catch {
            throw SandboxError.seeds("could not write the built-in seeds to \(resolvedCacheDirectory.path): \(error)")
        }
    }

    var resolvedAdminHost: String { adminHost ?? host }

    public var resolvedEnvironments: [String] { environments ?? [environment] }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refuses an admin API reachable from the network without a token.
    func validate() throws {
        if !Self.isLoopback(resolvedAdminHost), (adminToken ?? "").isEmpty {
            throw SandboxError.configuration(
                "the admin API would listen on \(resolvedAdminHost), which is not a loopback address: set --admin-token"
            )
        }
        if (serverCertificate == nil) != (serverKey == nil) {
            throw SandboxError.configuration("--server-cert and --server-key go together")
        }
        if journalMaxRows < 1 { throw SandboxError.configuration("--journal-max-rows must be at least 1") }
        if journalMaxBytes < 1 << 20 {
            throw SandboxError.configuration("--journal-max-bytes must be at least 1048576 (1 MiB)")
        }
        if maxBody < 1024 { throw SandboxError.configuration("--max-body must be at least 1024 bytes") }
        if let environments {
            guard !environments.isEmpty else {
                throw SandboxError.configuration("--environments needs at least one name")
            }
            if let bad = environments.first(where: {
                $0.isEmpty || !$0.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" })
            }) {
                throw SandboxError.configuration(
                    "--environments: '\(bad)' is not a valid name (lower-case letters, digits, -)"
                )
            }
            if Set(environments).count != environments.count {
                throw SandboxError.configuration("--environments: a name appears twice")
            }
        }
        if let clockSpeed, !SandboxClock.speeds.contains(clockSpeed) {
            throw SandboxError.configuration("--clock-speed must be between 1 and 100000")
        }
        if port != 0, port + resolvedEnvironments.count - 1 > 65535 {
            throw SandboxError.configuration(
                "--port \(port): no room for \(resolvedEnvironments.count) environment listeners below 65536"
            )
        }
        if !(0...65535).contains(port) || !(0...65535).contains(adminPort) {
            throw SandboxError.configuration("ports must be between 0 and 65535")
        }
    }
}

public enum SandboxError: Error, CustomStringConvertible {
    case configuration(String)
    case seeds(String)

    /// The data folder's database cannot be opened for writing: said in words, with what to do.
    public static func database(path: String, _ error: DatabaseError) -> SandboxError {
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return .configuration(
                "the database \(path) is locked by another process (another 'serve' on this data folder?): stop it or use another --data-dir"
            )
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return .configuration(
                "the database \(path) cannot be opened for writing (\(error.message ?? "read-only")): check the data folder's permissions or use another --data-dir"
            )
        case .SQLITE_FULL:
            return .configuration("the disk holding \(path) is full: free some space or use another --data-dir")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return .configuration(
                "\(path) is not a usable sandbox database (\(error.message ?? "corrupt")): move it away to start afresh"
            )
        default:
            return .configuration("the database \(path) could not be opened: \(error)")
        }
    }

    public var description: String {
        switch self {
        case .configuration(let message): message
        case .seeds(let message): "seeds: \(message)"
        }
    }
}
