import Crypto
import Foundation
import SwiftASN1
import TestPKI
import X509

/// What the sandbox knows about the caller of one TLS connection: read once from the presented certificate at
/// handshake time, then shared by every request on that connection.
public struct ClientIdentity: Sendable, Hashable {
    public let subject: SubjectDN
    public let issuer: SubjectDN
    /// `subject.rfc4514`, `issuer.rfc4514` and `subject.matchKey`, computed once per connection (they are read on
    /// every request by the whitelist and the journal).
    public let subjectDN: String
    public let issuerDN: String
    public let subjectMatchKey: String
    public let subjectUnorderedMatchKey: String
    /// SHA-256 of the DER certificate, base64url without padding: RFC 8705 `x5t#S256`, what a certificate-bound
    /// access token carries in `cnf`.
    public let certificateThumbprint: String
    /// Serial number, lower-case hex without separators (as `openssl x509 -serial`, lower-cased).
    public var serialNumber: String
    public var notBefore: Date
    public var notAfter: Date
    /// Extended key usages, by name when known (`clientAuth`, `serverAuth`, …) else dotted OID; empty if absent.
    public var extendedKeyUsages: [String]
    /// SHA-256 of the DER SubjectPublicKeyInfo: what the ANS whitelists for CSD ("clé publique").
    public var spkiSHA256: SPKIDigest
    /// The chain verified against the sandbox trust store (always true when the TLS layer refuses bad chains).
    public var chainVerified: Bool
    /// Why the chain did not verify, when it did not.
    public var chainFailure: ChainFailure?

    /// `der` is the certificate's encoding when the caller has it (the TLS layer does): saves re-serialising it.
    public init(certificate: Certificate, der: [UInt8]? = nil, verdict: ChainVerdict) throws {
        self.subject = SubjectDN(certificate.subject)
        self.issuer = SubjectDN(certificate.issuer)
        self.subjectDN = subject.rfc4514
        self.issuerDN = issuer.rfc4514
        let normalised = subject.normalisedRDNs()
        self.subjectMatchKey = SubjectDN.matchKey(normalised)
        self.subjectUnorderedMatchKey = SubjectDN.unorderedMatchKey(normalised)
        self.serialNumber = SerialText.hex(certificate.serialNumber)
        self.notBefore = certificate.notValidBefore
        self.notAfter = certificate.notValidAfter
        self.extendedKeyUsages = Self.extendedKeyUsages(of: certificate)
        self.spkiSHA256 = try SPKIDigest(publicKey: certificate.publicKey)
        let encoded: [UInt8]
        if let der {
            encoded = der
        } else {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            encoded = serializer.serializedBytes
        }
        self.certificateThumbprint = Base64URL.encode(Array(SHA256.hash(data: encoded)))
        switch verdict {
        case .trusted:
            self.chainVerified = true
            self.chainFailure = nil
        case .refused(let failure):
            self.chainVerified = false
            self.chainFailure = failure
        }
    }

    static func extendedKeyUsages(of certificate: Certificate) -> [String] {
        guard let eku = try? certificate.extensions.extendedKeyUsage else { return [] }
        return eku.map { usage in
            switch usage {
            case .clientAuth: return "clientAuth"
            case .serverAuth: return "serverAuth"
            case .emailProtection: return "emailProtection"
            case .codeSigning: return "codeSigning"
            case .any: return "anyExtendedKeyUsage"
            default: return String(describing: usage)
            }
        }
    }
}

/// SHA-256 of a DER-encoded SubjectPublicKeyInfo. Equal to
/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256`.
public struct SPKIDigest: Hashable, Sendable, CustomStringConvertible, Codable {
    public let bytes: [UInt8]

    public init(publicKey: Certificate.PublicKey) throws {
        var serializer = DER.Serializer()
        try serializer.serialize(publicKey)
        self.bytes = Array(SHA256.hash(data: serializer.serializedBytes))
    }

    public init(derSPKI: [UInt8]) {
        self.bytes = Array(SHA256.hash(data: derSPKI))
    }

    /// Accepts lower/upper-case hex, with or without `:` separators, or base64 (as `openssl … | base64` prints it).
    public init?(text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let hex = trimmed.replacingOccurrences(of: ":", with: "")
        if hex.count == 64, let bytes = DNTextParser.hexBytes(hex) {
            self.bytes = bytes
        } else if let data = Data(base64Encoded: trimmed), data.count == 32 {
            self.bytes = Array(data)
        } else {
            return nil
        }
    }

    public var hex: String { Hex.encode(bytes) }
    public var base64: String { Data(bytes).base64EncodedString() }
    public var description: String { hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let digest = SPKIDigest(text: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a SHA-256 digest")
            )
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// base64url without padding (RFC 4648 §5), as JOSE uses it.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/",
            with: "_"
        )
        .replacingOccurrences(of: "=", with: "")
    }
}
