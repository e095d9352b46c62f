import Foundation
import SwiftASN1
import X509

/// The local test PKI, shaped like IGC-Santé (root → "ORGANISATIONS" issuing CA → leaves) with every name carrying
/// a visible `SANDBOX` marker, so a sandbox certificate can never pass for a real one.
///
/// Files in `directory`:
/// - `root-ca.pem`, `root-ca-key.pem`: the root ("AC RACINE")
/// - `org-ca.pem`, `org-ca-key.pem`: the issuing CA ("AC … ORGANISATIONS")
/// - `ca-bundle.pem`: root + issuing CA — what clients pass to `curl --cacert`
/// - `server.pem` (leaf + issuing CA), `server-key.pem`: the TLS server of the sandbox
/// - `untrusted-root.pem`, `untrusted-root-key.pem`: another root, for `--untrusted-ca` (created on demand)
/// - `revoked.txt`: the sandbox CRL as one lower-case hex serial per line
/// - `clients/NAME/{cert,key,bundle}.pem`: client certificates minted into the PKI
public struct SandboxPKI: Sendable {
    public let directory: URL
    public let root: IssuedCertificate
    public let issuingCA: IssuedCertificate
    public let server: IssuedCertificate

    /// Root and issuing CA names (certificate order) mirroring `TEST AC RACINE IGC-SANTE ELEMENTAIRE` and
    /// `TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS`.
    public static func caName(_ commonName: String) throws -> DistinguishedName {
        try DistinguishedName {
            CountryName("FR")
            OrganizationName("ESANTE-SANDBOX (NON OFFICIEL)")
            OrganizationalUnitName("0002 000000000")
            OrganizationalUnitName("IGC-SANTE SANDBOX")
            CommonName(commonName)
        }
    }

    public static let rootCommonName = "SANDBOX AC RACINE IGC-SANTE ELEMENTAIRE"
    public static let issuingCommonName = "SANDBOX AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"

    /// Each environment has its own PKI, as IGC-Santé has a TEST and a production hierarchy: `bac-a-sable` (the
    /// TEST-like one) in `base`, any other environment in `base-NAME` (e.g. `pki-production`).
    public static func directory(base: URL, environment: String) -> URL {
        environment == defaultEnvironment
            ? base
            : base.deletingLastPathComponent().appendingPathComponent(base.lastPathComponent + "-" + environment)
    }

    public static let defaultEnvironment = "bac-a-sable"

    /// `SANDBOX AC …` for bac-a-sable, `SANDBOX PROD AC …` for production, `SANDBOX NAME AC …` otherwise: the CA names
    /// say which environment a certificate belongs to.
    static func commonName(_ name: String, environment: String) -> String {
        switch environment {
        case defaultEnvironment: name
        case "production": name.replacingOccurrences(of: "SANDBOX ", with: "SANDBOX PROD ")
        default: name.replacingOccurrences(of: "SANDBOX ", with: "SANDBOX \(environment.uppercased()) ")
        }
    }
    public static let untrustedCommonName = "SANDBOX UNTRUSTED ROOT (NOT IN THE TRUST STORE)"

    // MARK: Files

    public var rootURL: URL { directory.appendingPathComponent("root-ca.pem") }
    public var issuingCAURL: URL { directory.appendingPathComponent("org-ca.pem") }
    public var caBundleURL: URL { directory.appendingPathComponent("ca-bundle.pem") }
    public var serverChainURL: URL { directory.appendingPathComponent("server.pem") }
    public var serverKeyURL: URL { directory.appendingPathComponent("server-key.pem") }
    public var revocationURL: URL { directory.appendingPathComponent("revoked.txt") }
    public var clientsURL: URL { directory.appendingPathComponent("clients") }

    /// Loads the PKI in `directory`, minting whatever is missing. `created` says whether anything was minted.
    public static func loadOrCreate(
        directory: URL,
        algorithm: KeyAlgorithm = .rsa2048,
        now: Date = Date(),
        environment: String = defaultEnvironment
    ) throws -> (pki: SandboxPKI, created: Bool) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var created = false
        let years = { (n: Double) in DateInterval(start: now.addingTimeInterval(-3600), duration: n * 365 * 86400) }
        let root = try loadOrMint(directory, "root-ca", created: &created) {
            try CertificateMinter.authority(
                subject: caName(commonName(rootCommonName, environment: environment)),
                algorithm: algorithm,
                issuer: nil,
                validity: years(20)
            )
        }
        let issuing = try loadOrMint(directory, "org-ca", created: &created) {
            try CertificateMinter.authority(
                subject: caName(commonName(issuingCommonName, environment: environment)),
                algorithm: algorithm,
                issuer: root,
                validity: years(10)
            )
        }
        let server = try loadOrMint(directory, "server", created: &created, chain: [issuing]) {
            try CertificateMinter.server(
                subject: try DistinguishedName {
                    CountryName("FR")
                    StateOrProvinceName("Paris (75)")
                    OrganizationName("ESANTE-SANDBOX (NON OFFICIEL)")
                    OrganizationalUnitName("SANDBOX AUTH_SERV")
                    CommonName("localhost")
                },
                dnsNames: ["localhost"],
                ipAddresses: [[127, 0, 0, 1]],
                algorithm: algorithm,
                issuer: issuing,
                validity: years(3)
            )
        }
        let pki = SandboxPKI(directory: directory, root: root, issuingCA: issuing, server: server)
        if created || !FileManager.default.fileExists(atPath: pki.caBundleURL.path) {
            try write(try root.certificatePEM + issuing.certificatePEM, to: pki.caBundleURL)
        }
        if !FileManager.default.fileExists(atPath: pki.revocationURL.path) {
            try write("", to: pki.revocationURL)
        }
        return (pki, created)
    }

    /// Reads `NAME.pem` and `NAME-key.pem`, or mints and writes them (`chain` certificates appended to the PEM).
    private static func loadOrMint(
        _ directory: URL,
        _ name: String,
        created: inout Bool,
        chain: [IssuedCertificate] = [],
        mint: () throws -> IssuedCertificate
    ) throws -> IssuedCertificate {
        let certURL = directory.appendingPathComponent("\(name).pem")
        let keyURL = directory.appendingPathComponent("\(name)-key.pem")
        if FileManager.default.fileExists(atPath: certURL.path), FileManager.default.fileExists(atPath: keyURL.path) {
            let certificates = try PEMFile.certificates(at: certURL)
            guard let first = certificates.first else { throw PKIError.unreadable(certURL.path, "no certificate") }
            let key = try Certificate.PrivateKey(pemEncoded: String(contentsOf: keyURL, encoding: .utf8))
            guard key.publicKey == first.publicKey else {
                throw PKIError.unreadable(keyURL.path, "the key does not belong to \(certURL.lastPathComponent)")
            }
            return IssuedCertificate(certificate: first, privateKey: key)
        }
        let issued = try mint()
        try write(try issued.certificatePEM + chain.map { try $0.certificatePEM }.joined(), to: certURL)
        try write(try issued.privateKeyPEM, to: keyURL, privateKey: true)
        created = true
        return issued
    }

    static func write(_ text: String, to url: URL, privateKey: Bool = false) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url, options: .atomic)
        if privateKey {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        }
    }

    // MARK: Issuing

    /// Mints a client certificate for `subject`, normal or one of the negative kinds.
    /// `revoked` also lists the serial on the sandbox CRL; `untrusted-ca` signs with another root.
    public func issueClient(
        subject: DistinguishedName,
        algorithm: KeyAlgorithm = .rsa2048,
        negative: NegativeKind? = nil,
        now: Date = Date(),
        validityDays: Double = 3 * 365,
        reusing key: Certificate.PrivateKey? = nil
    ) throws -> IssuedCertificate {
        let day: TimeInterval = 86400
        var validity = DateInterval(start: now.addingTimeInterval(-3600), duration: validityDays * day)
        var issuer: IssuedCertificate? = issuingCA
        var usages: [ExtendedKeyUsage.Usage] = [.clientAuth]
        var keyUsage = KeyUsage(digitalSignature: true, keyEncipherment: true)
        var dnsNames: [String] = []
        var extraExtensions: [Certificate.Extension] = []
        switch negative {
        case .expired:
            validity = DateInterval(start: now.addingTimeInterval(-400 * day), end: now.addingTimeInterval(-day))
        case .notYetValid: validity = DateInterval(start: now.addingTimeInterval(30 * day), duration: 365 * day)
        case .selfSigned: issuer = nil
        case .untrustedCA: issuer = try untrustedRoot(algorithm: algorithm)
        case .serverEKU: usages = [.serverAuth]
        case .revoked, .mismatchedKey, nil: break
        case .intermediateNotCA, .pathLengthExceeded, .nameConstraints:
            issuer = try negativeIssuer(negative!, algorithm: algorithm)
            if negative == .nameConstraints { dnsNames = ["client.outside.sandbox.invalid"] }
        case .unknownCriticalExtension:
            // Under IANA's enterprise number reserved for documentation (RFC 5612): no verifier knows it.
            let oid: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 32473, 1, 1]
            extraExtensions = [Certificate.Extension(oid: oid, critical: true, value: [0x05, 0x00])]
        case .wrongKeyUsage: keyUsage = KeyUsage(keyEncipherment: true)
        }
        var issued = try CertificateMinter.client(
            subject: subject,
            algorithm: algorithm,
            issuer: issuer,
            validity: validity,
            extendedKeyUsage: usages,
            keyUsage: keyUsage,
            dnsNames: dnsNames,
            extraExtensions: extraExtensions,
            key: key
        )
        if let issuer, issuer.certificate != issuingCA.certificate, negative != .untrustedCA {
            issued.chain = [issuer.certificate]
        }
        if negative == .revoked { try revoke(serial: issued.serialHex) }
        if negative == .mismatchedKey { issued.privateKey = try algorithm.generate() }
        return issued
    }

    /// The issuer a negative certificate of a chain-shape kind hangs from; minted once and kept in the PKI folder,
    /// presented by the client after its own certificate.
    func negativeIssuer(_ kind: NegativeKind, algorithm: KeyAlgorithm) throws -> IssuedCertificate {
        var created = false
        let validity = DateInterval(start: Date().addingTimeInterval(-3600), duration: 10 * 365 * 86400)
        return try Self.loadOrMint(directory, "negative-\(kind.rawValue)-issuer", created: &created) {
            switch kind {
            case .intermediateNotCA:
                // An ordinary leaf of the root, even allowed to sign certificates: only `cA: false` is wrong.
                try CertificateMinter.client(
                    subject: Self.caName("SANDBOX NEGATIVE NOT A CA"),
                    algorithm: algorithm,
                    issuer: root,
                    validity: validity,
                    keyUsage: KeyUsage(digitalSignature: true, keyCertSign: true)
                )
            case .pathLengthExceeded:
                try CertificateMinter.authority(
                    subject: Self.caName("SANDBOX NEGATIVE SOUS-AC (PATH LENGTH)"),
                    algorithm: algorithm,
                    issuer: issuingCA,
                    validity: validity
                )
            default:
                try CertificateMinter.authority(
                    subject: Self.caName("SANDBOX NEGATIVE AC CONTRAINTE (NAME CONSTRAINTS)"),
                    algorithm: algorithm,
                    issuer: root,
                    validity: validity,
                    nameConstraints: NameConstraints(permittedDNSDomains: ["permitted.sandbox.invalid"])
                )
            }
        }
    }

    /// The "other root" negative certificates chain to; created once and kept (never trusted by the sandbox).
    func untrustedRoot(algorithm: KeyAlgorithm) throws -> IssuedCertificate {
        var created = false
        return try Self.loadOrMint(directory, "untrusted-root", created: &created) {
            try CertificateMinter.authority(
                subject: Self.caName(Self.untrustedCommonName),
                algorithm: algorithm,
                issuer: nil,
                validity: DateInterval(start: Date().addingTimeInterval(-3600), duration: 20 * 365 * 86400)
            )
        }
    }

    /// Writes `cert.pem` (the certificate, then any intermediate it must present), `key.pem` and `bundle.pem`
    /// (cert + key, for `curl --cert` / `ab -E`) into `directory`.
    public func write(_ issued: IssuedCertificate, to directory: URL) throws {
        let cert = try issued.chainPEM
        let key = try issued.privateKeyPEM
        try Self.write(cert, to: directory.appendingPathComponent("cert.pem"))
        try Self.write(key, to: directory.appendingPathComponent("key.pem"), privateKey: true)
        try Self.write(cert + key, to: directory.appendingPathComponent("bundle.pem"), privateKey: true)
    }

    // MARK: Revocation

    /// Adds a serial (hex, any case, `:` allowed) to the sandbox CRL. Idempotent.
    @discardableResult
    public func revoke(serial: String) throws -> String {
        let normalised = try Self.normaliseSerial(serial)
        var serials = try revokedSerials()
        guard serials.insert(normalised).inserted else { return normalised }
        try Self.write(serials.sorted().joined(separator: "\n") + "\n", to: revocationURL)
        return normalised
    }

    public func revokedSerials() throws -> Set<String> {
        try Self.revokedSerials(at: revocationURL)
    }

    public static func revokedSerials(at url: URL) throws -> Set<String> {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text = try String(contentsOf: url, encoding: .utf8)
        return Set(
            text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        )
    }

    /// Empties the CRL (used by `reset?scope=all`).
    public func clearRevocations() throws {
        try Self.write("", to: revocationURL)
    }

    /// Serials are compared as lower-case hex without separators or leading zero bytes' padding differences.
    public static func normaliseSerial(_ serial: String) throws -> String {
        var hex = serial.lowercased().replacingOccurrences(of: ":", with: "")
        if hex.hasPrefix("0x") { hex.removeFirst(2) }
        guard !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { throw PKIError.badSerial(serial) }
        if hex.count % 2 == 1 { hex = "0" + hex }
        while hex.count > 2, hex.hasPrefix("00") { hex.removeFirst(2) }  // DER sign padding is not part of the number
        return hex
    }
}

public enum PKIError: Error, CustomStringConvertible, Sendable {
    case unreadable(String, String)
    case unwritable(String, String)
    case badSerial(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let why): "cannot read \(path): \(why)"
        case .unwritable(let path, let why): "cannot write \(path): \(why)"
        case .badSerial(let serial): "'\(serial)' is not a serial number (expected hex, e.g. 5a:3f:01 or 5a3f01)"
        }
    }
}

/// Reading PEM bundles (several certificates in one file).
public enum PEMFile {
    public static func certificates(at url: URL) throws -> [Certificate] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw PKIError.unreadable(url.path, "file not found or not UTF-8")
        }
        return try certificates(in: text, source: url.path)
    }

    public static func certificates(in text: String, source: String = "PEM") throws -> [Certificate] {
        let documents: [PEMDocument]
        do { documents = try PEMDocument.parseMultiple(pemString: text) } catch {
            throw PKIError.unreadable(source, "not PEM (\(error))")
        }
        let certificates = documents.filter { $0.discriminator == "CERTIFICATE" }
        guard !certificates.isEmpty else { throw PKIError.unreadable(source, "no CERTIFICATE block") }
        return try certificates.map { document in
            do { return try Certificate(pemDocument: document) } catch {
                throw PKIError.unreadable(source, "invalid certificate (\(error))")
            }
        }
    }
}
