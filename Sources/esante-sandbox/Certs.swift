import Access
import ArgumentParser
import Foundation
import SandboxSeeds
import TestPKI
import X509

struct Certs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "The local test PKI: mint CAs and certificates (including the negative ones), revoke, inspect.",
        subcommands: [Init.self, Issue.self, Revoke.self, Show.self, FillKeyPool.self]
    )

    struct FillKeyPool: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fill-key-pool",
            abstract: "Mint RSA-2048 keys into the per-user key pool until it holds --depth.",
            discussion: """
                New data folders take their RSA keys from this pool (each key once) instead of generating them: \
                `serve` runs this command in the background after it is ready. The pool is \
                <cache>/key-pool/rsa2048, the cache being $ESANTE_SANDBOX_CACHE, $XDG_CACHE_HOME/esante-sandbox or \
                ~/.cache/esante-sandbox. Only one filler runs at a time; another exits at once.
                """
        )
        @Option(help: "Keys the pool should hold.") var depth = 12
        @Flag(help: "Run at the lowest CPU priority and print nothing (how serve starts it).") var background = false

        func run() async throws {
            try await reportingErrors {
                guard depth > 0, depth <= 1000 else { throw UsageFailure("--depth must be between 1 and 1000") }
                if background {
                    #if os(Linux)
                    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
                    #else
                    _ = setpriority(PRIO_PROCESS, 0, 19)
                    #endif
                }
                let pool = RSAKeyPool(
                    directory: SandboxCache.directory().appendingPathComponent("key-pool/rsa2048"),
                    depth: depth
                )
                let before = pool.count
                let filled = try pool.refill()
                if !background {
                    print(
                        filled
                            ? "key pool \(pool.directory.path): \(pool.count) keys (\(pool.count - before) minted)"
                            : "key pool \(pool.directory.path): another process is filling it (\(pool.count) keys now)"
                    )
                }
            }
        }

        /// Starts `certs fill-key-pool --background` as a process of its own group, which outlives the server.
        static func spawn(depth: Int, cache: URL) {
            let executable =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
            let arguments = [executable, "certs", "fill-key-pool", "--depth", "\(depth)", "--background"]
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
            posix_spawnattr_setpgroup(&attributes, 0)
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            for descriptor: Int32 in [0, 1, 2] {
                posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_RDWR, 0)
            }
            var environment = ProcessInfo.processInfo.environment
            environment["ESANTE_SANDBOX_CACHE"] = cache.path
            let argv = arguments.map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { (argv + envp).forEach { free($0) } }
            // The child must not inherit the listening sockets (NIO's are not close-on-exec): it would keep the port
            // bound after the server stops, and the next server on that port would never be reached.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                if let descriptor = Int32(name), descriptor > 2 { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
            }
            var child = pid_t()
            guard posix_spawn(&child, executable, &actions, &attributes, argv, envp) == 0 else { return }
            // Reaped when it ends, so a long-running server leaves no zombie behind.
            let filler = child
            Thread {
                var status: Int32 = 0
                _ = waitpid(filler, &status, 0)
            }.start()
        }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint the root, issuing CA and server certificate if absent."
        )
        @OptionGroup var data: DataOptions
        @Option(
            help: "Environment whose PKI to use (bac-a-sable: <pki-dir>; another: <pki-dir>-NAME, e.g. production)."
        )
        var environment = SandboxPKI.defaultEnvironment
        @Option(help: "rsa (RSA-2048) or p256.") var keyType: KeyAlgorithm = .rsa2048

        func run() async throws {
            try await reportingErrors {
                let (pki, created) = try SandboxPKI.loadOrCreate(
                    directory: data.pkiDirectory(environment),
                    algorithm: keyType,
                    environment: environment
                )
                print(
                    created
                        ? "minted the test PKI in \(pki.directory.path)"
                        : "the test PKI in \(pki.directory.path) already exists"
                )
                print("CA bundle (curl --cacert): \(pki.caBundleURL.path)")
                print("root:       \(SubjectDN(pki.root.certificate.subject).rfc4514)")
                print("issuing CA: \(SubjectDN(pki.issuingCA.certificate.subject).rfc4514)")
            }
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint a client certificate into --out: cert.pem, key.pem, bundle.pem (cert + key).",
            discussion: """
                The subject DN may be written in RFC 4514 (CN=…,OU=…,C=FR), OpenSSL one-line (C = FR, …) or slash \
                (/C=FR/…) form. At most one negative kind may be given.
                """
        )
        @OptionGroup var data: DataOptions
        @Option(
            help: "Environment whose PKI to use (bac-a-sable: <pki-dir>; another: <pki-dir>-NAME, e.g. production)."
        )
        var environment = SandboxPKI.defaultEnvironment
        @Option(help: "Subject DN, e.g. 'CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR'.")
        var subject: String
        @Option(help: "Output folder.") var out: String
        @Option(help: "rsa (RSA-2048, as IGC-Santé) or p256.") var keyType: KeyAlgorithm = .rsa2048
        @Option(help: "Validity in days.") var days: Double = 3 * 365
        @Flag(help: "Already expired.") var expired = false
        @Flag(help: "Valid only from 30 days from now.") var notYetValid = false
        @Flag(help: "Self-signed: same DN, no chain to the sandbox CA.") var selfSigned = false
        @Flag(help: "Issued by another root the sandbox does not trust.") var untrustedCA = false
        @Flag(help: "Extended key usage serverAuth only (clientAuth missing).") var serverEKU = false
        @Flag(help: "Listed on the sandbox CRL at once.") var revoked = false
        @Flag(help: "key.pem does not match cert.pem (the client's own TLS stack refuses the pair).")
        var mismatchedKey = false
        @Flag(help: "Issued by a certificate that is not a CA (cert.pem carries it after the leaf).")
        var intermediateNotCa = false
        @Flag(help: "Issued by a sub-CA the issuing CA's path length (0) does not allow (cert.pem carries it).")
        var pathLengthExceeded = false
        @Flag(help: "Carries a critical extension no verifier knows.") var unknownCriticalExtension = false
        @Flag(help: "Names a DNS name outside its CA's name constraints (cert.pem carries the CA).")
        var nameConstraints = false
        @Flag(help: "Key usage keyEncipherment only: it may not sign, as TLS client authentication does.")
        var wrongKeyUsage = false
        @Option(
            help:
                "Re-use this PEM private key (a renewal: same public key, so a CSD key whitelist entry still matches)."
        )
        var reuseKey: String?

        func run() async throws {
            try await reportingErrors {
                let kinds: [(Bool, NegativeKind)] = [
                    (expired, .expired), (notYetValid, .notYetValid), (selfSigned, .selfSigned),
                    (untrustedCA, .untrustedCA), (serverEKU, .serverEKU), (revoked, .revoked),
                    (mismatchedKey, .mismatchedKey), (intermediateNotCa, .intermediateNotCA),
                    (pathLengthExceeded, .pathLengthExceeded), (unknownCriticalExtension, .unknownCriticalExtension),
                    (nameConstraints, .nameConstraints), (wrongKeyUsage, .wrongKeyUsage),
                ]
                let chosen = kinds.filter(\.0).map(\.1)
                guard chosen.count <= 1 else {
                    throw UsageFailure(
                        "choose at most one negative kind (got \(chosen.map { "--\($0.rawValue)" }.joined(separator: ", ")))"
                    )
                }
                guard days > 0 else { throw UsageFailure("--days must be positive") }
                let dn = try SubjectDN(parsing: subject)
                var key: Certificate.PrivateKey?
                if let reuseKey {
                    guard let pem = try? String(contentsOfFile: reuseKey, encoding: .utf8),
                        let parsed = try? Certificate.PrivateKey(pemEncoded: pem)
                    else {
                        throw UsageFailure("--reuse-key \(reuseKey): not a readable PEM private key")
                    }
                    key = parsed
                }
                let (pki, _) = try SandboxPKI.loadOrCreate(
                    directory: data.pkiDirectory(environment),
                    algorithm: keyType,
                    environment: environment
                )
                let issued = try pki.issueClient(
                    subject: try dn.distinguishedName(),
                    algorithm: keyType,
                    negative: chosen.first,
                    validityDays: days,
                    reusing: key
                )
                let outURL = URL(fileURLWithPath: out)
                try pki.write(issued, to: outURL)
                let spki = try SPKIDigest(publicKey: issued.certificate.publicKey)
                print("wrote \(outURL.appendingPathComponent("cert.pem").path), key.pem, bundle.pem")
                print("subject DN (RFC 4514): \(SubjectDN(issued.certificate.subject).rfc4514)")
                print("issuer DN:             \(SubjectDN(issued.certificate.issuer).rfc4514)")
                print("serial:                \(issued.serialHex)")
                print("SPKI SHA-256 (hex):    \(spki.hex)")
                print("SPKI SHA-256 (base64): \(spki.base64)")
                if let kind = chosen.first { print("negative kind:         \(kind.rawValue)") }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a serial on the sandbox CRL (a running server picks it up within a second)."
        )
        @OptionGroup var data: DataOptions
        @Option(
            help: "Environment whose PKI to use (bac-a-sable: <pki-dir>; another: <pki-dir>-NAME, e.g. production)."
        )
        var environment = SandboxPKI.defaultEnvironment
        @Argument(help: "Serial number in hex (as 'certs issue' prints it; ':' separators allowed).") var serial: String

        func run() async throws {
            try await reportingErrors {
                let (pki, _) = try SandboxPKI.loadOrCreate(
                    directory: data.pkiDirectory(environment),
                    environment: environment
                )
                let normalised = try pki.revoke(serial: serial)
                print("revoked \(normalised) (\(pki.revocationURL.path))")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a certificate's DN in every form and its SPKI SHA-256 (what to send the ANS)."
        )
        @Argument(help: "PEM certificate file.") var file: String

        func run() async throws {
            try await reportingErrors {
                let certificates: [Certificate]
                do { certificates = try PEMFile.certificates(at: URL(fileURLWithPath: file)) } catch {
                    throw UsageFailure("\(error)")
                }
                let certificate = certificates[0]
                let subject = SubjectDN(certificate.subject)
                let spki = try SPKIDigest(publicKey: certificate.publicKey)
                print("subject (RFC 4514):    \(subject.rfc4514)")
                print("subject (OpenSSL):     \(subject.openSSLOneLine)")
                print("subject (slash):       \(subject.slashForm)")
                print("issuer (RFC 4514):     \(SubjectDN(certificate.issuer).rfc4514)")
                print("serial:                \(SerialText.hex(certificate.serialNumber))")
                print("valid:                 \(certificate.notValidBefore) → \(certificate.notValidAfter)")
                print("SPKI SHA-256 (hex):    \(spki.hex)")
                print("SPKI SHA-256 (base64): \(spki.base64)")
            }
        }
    }
}
