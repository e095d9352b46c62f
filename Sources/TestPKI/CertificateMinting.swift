import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// Key algorithms the sandbox mints: RSA-2048 as IGC-Santé issues, or P-256 (fast, for tests).
public enum KeyAlgorithm: String, Sendable, CaseIterable, Codable {
    case rsa2048 = "rsa"
    case p256 = "p256"

    func generate() throws -> Certificate.PrivateKey {
        switch self {
        case .rsa2048: return Certificate.PrivateKey(try RSAKeyPool.key())
        case .p256: return Certificate.PrivateKey(P256.Signing.PrivateKey())
        }
    }
}

/// A certificate with its private key, and the PEM texts the sandbox writes.
public struct IssuedCertificate: Sendable {
    public var certificate: Certificate
    public var privateKey: Certificate.PrivateKey
    /// CA certificates the holder presents after its own (an intermediate the sandbox does not know).
    public var chain: [Certificate] = []

    public init(certificate: Certificate, privateKey: Certificate.PrivateKey, chain: [Certificate] = []) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.chain = chain
    }

    /// PEM with a final newline (swift-certificates' PEM has none, and `cat cert key` would then break).
    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString + "\n" } }
    /// The certificate then its `chain`: what `curl --cert` and TLS clients present.
    public var chainPEM: String {
        get throws { try ([certificate] + chain).map { try $0.serializeAsPEM().pemString + "\n" }.joined() }
    }
    public var privateKeyPEM: String { get throws { try privateKey.serializeAsPEM().pemString + "\n" } }

    /// Lower-case hex serial, the form `certs revoke` takes and the journal stores.
    public var serialHex: String { SerialText.hex(certificate.serialNumber) }
}

/// The negative certificates publishers need to see refused.
public enum NegativeKind: String, Sendable, CaseIterable, Codable {
    case expired
    case notYetValid = "not-yet-valid"
    case selfSigned = "self-signed"
    case untrustedCA = "untrusted-ca"
    case serverEKU = "server-eku"
    case revoked
    /// `key.pem` does not belong to `cert.pem`: the client's own TLS stack refuses to use the pair.
    case mismatchedKey = "mismatched-key"
    /// Issued by a certificate that is not a CA (basic constraints `cA: false`), presented in `cert.pem`.
    case intermediateNotCA = "intermediate-not-ca"
    /// Issued by a sub-CA of the issuing CA, whose path length (0, as IGC-Santé's) allows none.
    case pathLengthExceeded = "path-length-exceeded"
    /// Carries a critical extension no verifier knows (an OID of RFC 5612's documentation arc).
    case unknownCriticalExtension = "unknown-critical-extension"
    /// Names `client.outside.sandbox.invalid` while its CA may only issue under `permitted.sandbox.invalid`.
    case nameConstraints = "name-constraints"
    /// Its key usage is keyEncipherment only: it may not sign, and TLS client authentication signs.
    case wrongKeyUsage = "wrong-key-usage"
}

/// Builders for each certificate shape; pure functions of their inputs (no files).
public enum CertificateMinter {
    /// A CA (root when `issuer` is nil). IGC-Santé's issuing CAs have pathlen 0; roots have none.
    public static func authority(
        subject: DistinguishedName,
        algorithm: KeyAlgorithm,
        issuer: IssuedCertificate?,
        validity: DateInterval,
        nameConstraints: NameConstraints? = nil
    ) throws -> IssuedCertificate {
        let key = try algorithm.generate()
        let signer = issuer?.privateKey ?? key
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: key.publicKey,
            notValidBefore: validity.start,
            notValidAfter: validity.end,
            issuer: issuer?.certificate.subject ?? subject,
            subject: subject,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: issuer == nil ? nil : 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
                if let issuer {
                    AuthorityKeyIdentifier(
                        keyIdentifier: try issuer.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                    )
                }
                if let nameConstraints { Critical(nameConstraints) }
            },
            issuerPrivateKey: signer
        )
        return IssuedCertificate(certificate: certificate, privateKey: key)
    }

    /// A TLS server leaf (`AUTH_SERV`-like) for `localhost` and `127.0.0.1` plus extra names.
    public static func server(
        subject: DistinguishedName,
        dnsNames: [String],
        ipAddresses: [[UInt8]],
        algorithm: KeyAlgorithm,
        issuer: IssuedCertificate,
        validity: DateInterval
    ) throws -> IssuedCertificate {
        let key = try algorithm.generate()
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        names += ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: key.publicKey,
            notValidBefore: validity.start,
            notValidAfter: validity.end,
            issuer: issuer.certificate.subject,
            subject: subject,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: key.publicKey)
                AuthorityKeyIdentifier(
                    keyIdentifier: try issuer.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                )
            },
            issuerPrivateKey: issuer.privateKey
        )
        return IssuedCertificate(certificate: certificate, privateKey: key)
    }

    /// A client leaf (`ORG AUTH_CLI`-like). `selfSigned` signs it with its own key under its own DN.
    public static func client(
        subject: DistinguishedName,
        algorithm: KeyAlgorithm,
        issuer: IssuedCertificate?,
        validity: DateInterval,
        extendedKeyUsage: [ExtendedKeyUsage.Usage] = [.clientAuth],
        keyUsage: KeyUsage = KeyUsage(digitalSignature: true, keyEncipherment: true),
        dnsNames: [String] = [],
        extraExtensions: [Certificate.Extension] = [],
        key existingKey: Certificate.PrivateKey? = nil
    ) throws -> IssuedCertificate {
        let key = try existingKey ?? algorithm.generate()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: key.publicKey,
            notValidBefore: validity.start,
            notValidAfter: validity.end,
            issuer: issuer?.certificate.subject ?? subject,
            subject: subject,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(keyUsage)
                try ExtendedKeyUsage(extendedKeyUsage)
                SubjectKeyIdentifier(hash: key.publicKey)
                if let issuer {
                    AuthorityKeyIdentifier(
                        keyIdentifier: try issuer.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                    )
                }
                if !dnsNames.isEmpty { SubjectAlternativeNames(dnsNames.map { .dnsName($0) }) }
                for extraExtension in extraExtensions { extraExtension }
            },
            issuerPrivateKey: issuer?.privateKey ?? key
        )
        return IssuedCertificate(certificate: certificate, privateKey: key)
    }
}

/// Serial numbers as the sandbox writes them: lower-case hex, no separators, no DER sign-padding zero byte.
public enum SerialText {
    public static func hex(_ serial: Certificate.SerialNumber) -> String {
        var bytes = ArraySlice(serial.bytes)
        while bytes.count > 1, bytes.first == 0 { bytes = bytes.dropFirst() }
        return Hex.encode(bytes)
    }
}

/// Lower-case hex without `String(format:)` (which goes through Foundation's formatter: slow on hot paths).
public enum Hex {
    @usableFromInline static let digits = Array("0123456789abcdef".utf8)

    /// Inlinable, so each caller gets it specialised (generic across modules, it walked the bytes through witness
    /// tables: a fifth of building a journal row, which hex-encodes the caller's key digest).
    @inlinable
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
