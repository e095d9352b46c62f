import Foundation
import NIOConcurrencyHelpers
import TestPKI
import X509

/// Why a presented client certificate chain is refused. The raw value is what the journal stores in `reason`.
public enum ChainFailure: String, Sendable, Hashable, Codable, CaseIterable {
    case noCertificate = "no-client-certificate"
    case selfSigned = "self-signed"
    case unknownIssuer = "unknown-ca"
    case expired = "expired"
    case notYetValid = "not-yet-valid"
    case wrongExtendedKeyUsage = "wrong-eku"
    case revoked = "revoked"
    case badSignature = "bad-signature"
    case unparsable = "unparsable-certificate"
    /// Issued by the PKI of another environment of this sandbox (a TEST certificate presented to production).
    case otherEnvironment = "other-environment-ca"

    /// One sentence for a human, quoted in 403 bodies.
    public var explanation: String {
        switch self {
        case .noCertificate: "no client certificate was presented"
        case .selfSigned: "the client certificate is self-signed (no chain to a trusted CA)"
        case .unknownIssuer: "the client certificate was not issued by a trusted CA"
        case .expired: "the client certificate has expired"
        case .notYetValid: "the client certificate is not yet valid"
        case .wrongExtendedKeyUsage: "the client certificate lacks the clientAuth extended key usage"
        case .revoked: "the client certificate is revoked (listed on the sandbox CRL)"
        case .badSignature: "a signature in the client certificate chain does not verify"
        case .unparsable: "the client certificate could not be parsed"
        case .otherEnvironment:
            "the client certificate was issued by the CA of another environment (TEST and production have separate PKIs: "
                + "a TEST certificate is refused in production)"
        }
    }
}

public enum ChainVerdict: Sendable, Hashable {
    case trusted
    case refused(ChainFailure)
}

/// The CAs a listener trusts for client certificates and the serials revoked under them.
///
/// Verification is done here rather than by BoringSSL so the sandbox can name the exact reason (expired vs unknown CA
/// vs revoked…) in the journal and, in `--reject-mode http`, in the 403 body. It follows RFC 5280 path building
/// for the shallow IGC-Santé shape (root → issuing CA → leaf): signatures, CA flags, validity, EKU, revocation.
public final class TrustStore: Sendable {
    /// Self-signed CA certificates: the trust anchors.
    public let anchors: [Certificate]
    /// Non-self-signed CA certificates from the trust files, usable to complete a chain the client sent partly.
    public let intermediates: [Certificate]
    private let revoked = NIOLockedValueBox<Set<String>>([])

    /// CAs of the sandbox's other environments: recognised only to name the refusal.
    let otherEnvironmentCAs: [Certificate]

    public init(certificates: [Certificate], otherEnvironmentCAs: [Certificate] = []) {
        self.anchors = certificates.filter { Self.isSelfIssued($0) }
        self.intermediates = certificates.filter { !Self.isSelfIssued($0) }
        self.otherEnvironmentCAs = otherEnvironmentCAs
    }

    /// Lower-case hex serials (see ``ClientIdentity/serialNumber``) that are refused as revoked.
    public func setRevokedSerials(_ serials: Set<String>) {
        revoked.withLockedValue { $0 = serials }
    }

    public var revokedSerials: Set<String> { revoked.withLockedValue { $0 } }

    /// Verifies `chain` (leaf first, as presented) at `now`.
    public func verify(chain: [Certificate], now: Date = Date()) -> ChainVerdict {
        guard let leaf = chain.first else { return .refused(.noCertificate) }
        // A self-signed leaf is refused as such even when its DN equals a whitelisted one.
        if Self.isSelfIssued(leaf), leaf.publicKey.isValidSignature(leaf.signature, for: leaf),
            !anchors.contains(leaf)
        {
            return .refused(.selfSigned)
        }
        // Build the path: walk issuers through the presented intermediates and ours, up to an anchor.
        let pool = Array(chain.dropFirst()) + intermediates
        var path = [leaf]
        var current = leaf
        var anchored = false
        for _ in 0..<8 {
            if let anchor = anchors.first(where: {
                $0.subject == current.issuer && $0.publicKey.isValidSignature(current.signature, for: current)
            }) {
                path.append(anchor)
                anchored = true
                break
            }
            guard
                let next = pool.first(where: {
                    $0.subject == current.issuer && Self.isCA($0) && !path.contains($0)
                        && $0.publicKey.isValidSignature(current.signature, for: current)
                })
            else { break }
            path.append(next)
            current = next
        }
        guard anchored else {
            if otherEnvironmentCAs.contains(where: {
                $0.subject == current.issuer && $0.publicKey.isValidSignature(current.signature, for: current)
            }) {
                return .refused(.otherEnvironment)
            }
            if anchors.contains(where: { $0.subject == current.issuer })
                || pool.contains(where: { $0.subject == current.issuer })
            {
                return .refused(.badSignature)
            }
            return .refused(.unknownIssuer)
        }
        for certificate in path {
            if now > certificate.notValidAfter { return .refused(.expired) }
            if now < certificate.notValidBefore { return .refused(.notYetValid) }
        }
        if let eku = try? leaf.extensions.extendedKeyUsage,
            !eku.contains(.clientAuth), !eku.contains(.any)
        {
            return .refused(.wrongExtendedKeyUsage)
        }
        let serial = SerialText.hex(leaf.serialNumber)
        if revoked.withLockedValue({ $0.contains(serial) }) { return .refused(.revoked) }
        return .trusted
    }

    static func isSelfIssued(_ certificate: Certificate) -> Bool {
        certificate.subject == certificate.issuer
    }

    static func isCA(_ certificate: Certificate) -> Bool {
        guard let constraints = try? certificate.extensions.basicConstraints else { return false }
        if case .isCertificateAuthority = constraints { return true }
        return false
    }
}
