import Foundation
import NIOConcurrencyHelpers
import SwiftASN1
import TestPKI
@_spi(DisableValidityCheck) import X509

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
    /// A certificate of the chain between the leaf and the root is not a CA (basic constraints).
    case notACA = "not-a-ca"
    /// More CAs below an issuer than its basic constraints' path length allows (IGC-Santé's issuing CAs: 0).
    case pathLengthExceeded = "path-length-exceeded"
    /// A critical extension the sandbox does not know: RFC 5280 requires refusing the certificate.
    case unknownCriticalExtension = "unknown-critical-extension"
    /// A name of the leaf outside what an issuer's name constraints permit.
    case nameConstraints = "name-constraints"
    /// The leaf's key usage does not allow signing (TLS client authentication signs), or an issuer's does not allow
    /// signing certificates.
    case wrongKeyUsage = "wrong-key-usage"

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
        case .notACA: "a certificate between the client certificate and the root is not a CA (basic constraints)"
        case .pathLengthExceeded:
            "the chain has more CAs below an issuer than its path length constraint allows"
        case .unknownCriticalExtension:
            "a certificate of the chain has a critical extension the sandbox does not know (RFC 5280 requires refusing it)"
        case .nameConstraints: "a name of the client certificate is outside an issuer's name constraints"
        case .wrongKeyUsage:
            "a key usage of the chain does not fit: the client certificate must allow digitalSignature, its issuers "
                + "keyCertSign"
        }
    }
}

public enum ChainVerdict: Sendable, Hashable {
    case trusted
    case refused(ChainFailure)
}

/// The CAs a listener trusts for client certificates and the serials revoked under them.
///
/// The chain is built and checked by swift-certificates' `Verifier`: RFC 5280 (basic constraints and path length,
/// name constraints, critical extensions) and the sandbox's own policies below, each refusing with one
/// ``ChainFailure`` — so the journal and `--reject-mode http` name the exact reason rather than BoringSSL's alert.
public final class TrustStore: Sendable {
    /// Self-signed CA certificates: the trust anchors.
    public let anchors: [Certificate]
    /// Non-self-signed CA certificates from the trust files, usable to complete a chain the client sent partly.
    public let intermediates: [Certificate]
    private let revoked = NIOLockedValueBox<Set<String>>([])
    private let roots: CertificateStore

    /// CAs of the sandbox's other environments: recognised only to name the refusal.
    let otherEnvironmentCAs: [Certificate]

    public init(certificates: [Certificate], otherEnvironmentCAs: [Certificate] = []) {
        self.anchors = certificates.filter { Self.isSelfIssued($0) }
        self.intermediates = certificates.filter { !Self.isSelfIssued($0) }
        self.otherEnvironmentCAs = otherEnvironmentCAs
        self.roots = CertificateStore(anchors)
    }

    /// Lower-case hex serials (see ``ClientIdentity/serialNumber``) that are refused as revoked.
    public func setRevokedSerials(_ serials: Set<String>) {
        revoked.withLockedValue { $0 = serials }
    }

    public var revokedSerials: Set<String> { revoked.withLockedValue { $0 } }

    /// Verifies `chain` (leaf first, as presented) at `now`.
    public func verify(chain: [Certificate], now: Date = Date()) async -> ChainVerdict {
        guard let leaf = chain.first else { return .refused(.noCertificate) }
        // A self-signed leaf is refused as such even when its DN equals a whitelisted one.
        if Self.isSelfIssued(leaf), leaf.publicKey.isValidSignature(leaf.signature, for: leaf),
            !anchors.contains(leaf)
        {
            return .refused(.selfSigned)
        }
        let revoked = revokedSerials
        var verifier = Verifier(rootCertificates: roots) {
            ValidityPolicy(now: now)
            RFC5280Policy.withValidityCheckDisabled()
            KeyUsagePolicy()
            ClientAuthPolicy()
            RevocationPolicy(revoked: revoked)
        }
        let presented = Array(chain.dropFirst())
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(presented + intermediates)) {
        case .validCertificate:
            return .trusted
        case .couldNotValidate(let failures):
            if let first = failures.first { return .refused(Self.failure(first.policyFailureReason.description)) }
            return .refused(diagnoseUnbuiltChain(leaf: leaf, presented: presented, handled: verifier.policy))
        }
    }

    /// Why no chain could even be built: an unknown critical extension (the verifier skips such certificates), a CA
    /// of another environment, a known issuer whose signature does not verify, or no known issuer at all.
    private func diagnoseUnbuiltChain(
        leaf: Certificate,
        presented: [Certificate],
        handled: some VerifierPolicy
    ) -> ChainFailure {
        let known = Set(handled.verifyingCriticalExtensions)
        if ([leaf] + presented).contains(where: { certificate in
            certificate.extensions.contains { $0.critical && !known.contains($0.oid) }
        }) {
            return .unknownCriticalExtension
        }
        let pool = presented + intermediates
        var current = leaf
        // The presented path as far as it goes, to name the issuer the chain stops at; bounded, since two presented
        // certificates may sign each other.
        for _ in 0..<8 {
            guard
                let next = pool.first(where: {
                    $0.subject == current.issuer && $0 != current
                        && $0.publicKey.isValidSignature(current.signature, for: current)
                }), next != leaf
            else { break }
            current = next
        }
        if otherEnvironmentCAs.contains(where: {
            $0.subject == current.issuer && $0.publicKey.isValidSignature(current.signature, for: current)
        }) {
            return .otherEnvironment
        }
        if anchors.contains(where: { $0.subject == current.issuer })
            || pool.contains(where: { $0.subject == current.issuer })
        {
            return .badSignature
        }
        return .unknownIssuer
    }

    /// A policy failure as the sandbox names it: its own policies say their reason; RFC 5280's are read from its text.
    static func failure(_ description: String) -> ChainFailure {
        if description.hasPrefix(SandboxPolicyReason.prefix),
            let failure = ChainFailure(rawValue: String(description.dropFirst(SandboxPolicyReason.prefix.count)))
        {
            return failure
        }
        if description.contains("is not marked as a CA") { return .notACA }
        if description.contains("maximum path length") { return .pathLengthExceeded }
        if description.contains("subtree") || description.contains("name constraints") { return .nameConstraints }
        return .unparsable
    }

    static func isSelfIssued(_ certificate: Certificate) -> Bool {
        certificate.subject == certificate.issuer
    }
}

/// How the sandbox's policies word their refusals, so ``TrustStore`` reads back the exact ``ChainFailure``.
enum SandboxPolicyReason {
    static let prefix = "esante-sandbox:"

    static func refuse(_ failure: ChainFailure) -> PolicyEvaluationResult {
        .failsToMeetPolicy(reason: prefix + failure.rawValue)
    }
}

/// Every certificate of the chain within its validity at `now` (a fixed time, so tests can move it).
struct ValidityPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = []
    let now: Date

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        for certificate in chain {
            if now > certificate.notValidAfter { return SandboxPolicyReason.refuse(.expired) }
            if now < certificate.notValidBefore { return SandboxPolicyReason.refuse(.notYetValid) }
        }
        return .meetsPolicy
    }
}

/// Key usage as RFC 5280 §4.2.1.3 asks (swift-certificates' RFC 5280 policy declares it handled but leaves it to
/// the caller): a leaf that says its usages must allow signing, an issuer that says them must allow keyCertSign.
struct KeyUsagePolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.keyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        for (index, certificate) in chain.enumerated() {
            guard let usage = try? certificate.extensions.keyUsage else { continue }
            if index == 0 ? !usage.digitalSignature : !usage.keyCertSign {
                return SandboxPolicyReason.refuse(.wrongKeyUsage)
            }
        }
        return .meetsPolicy
    }
}

/// The leaf must be for TLS client authentication (an `AUTH_SERV` server certificate is refused).
struct ClientAuthPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.extendedKeyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        if let usage = try? chain.leaf.extensions.extendedKeyUsage, !usage.contains(.clientAuth), !usage.contains(.any)
        {
            return SandboxPolicyReason.refuse(.wrongExtendedKeyUsage)
        }
        return .meetsPolicy
    }
}

/// The sandbox CRL: the leaf's serial must not be on it.
struct RevocationPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = []
    let revoked: Set<String>

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        revoked.contains(SerialText.hex(chain.leaf.serialNumber)) ? SandboxPolicyReason.refuse(.revoked) : .meetsPolicy
    }
}
