import Access
import Foundation
import Hummingbird

/// `GET /_sandbox/whoami`: what the sandbox read from the caller's certificate and, for each service, whether that
/// identity is whitelisted and why not — the first question a publisher asks.
enum WhoAmI {
    static let path = "/_sandbox/whoami"

    struct Body: Encodable {
        struct Forms: Encodable {
            var rfc4514: String
            var openssl: String
            var slash: String
        }

        var environment: String
        var subjectDN: String?
        var subjectDNForms: Forms?
        var subjectAttributes: [SubjectDN.Attribute]?
        var issuerDN: String?
        var serialNumber: String?
        var spkiSHA256: String?
        var spkiSHA256Base64: String?
        var notBefore: Date?
        var notAfter: Date?
        var extendedKeyUsages: [String]?
        var chainVerified: Bool
        var chainFailure: String?
        var whitelisted: [String: Bool]
        var reasons: [String: String]
    }

    static func body(identity: ClientIdentity?, environment: String, whitelist: Whitelist) -> Body {
        var whitelisted: [String: Bool] = [:]
        var reasons: [String: String] = [:]
        for service in SandboxService.allCases {
            let decision = whitelist.decide(identity: identity, service: service, environment: environment)
            whitelisted[service.rawValue] = decision.allowed
            reasons[service.rawValue] = decision.message
        }
        return Body(
            environment: environment,
            subjectDN: identity?.subject.rfc4514,
            subjectDNForms: identity.map {
                .init(rfc4514: $0.subject.rfc4514, openssl: $0.subject.openSSLOneLine, slash: $0.subject.slashForm)
            },
            subjectAttributes: identity?.subject.attributes,
            issuerDN: identity?.issuer.rfc4514,
            serialNumber: identity?.serialNumber,
            spkiSHA256: identity?.spkiSHA256.hex,
            spkiSHA256Base64: identity?.spkiSHA256.base64,
            notBefore: identity?.notBefore,
            notAfter: identity?.notAfter,
            extendedKeyUsages: identity?.extendedKeyUsages,
            chainVerified: identity?.chainVerified ?? false,
            chainFailure: identity?.chainFailure?.rawValue ?? (identity == nil ? ChainFailure.noCertificate.rawValue : nil),
            whitelisted: whitelisted,
            reasons: reasons)
    }

    static func response(identity: ClientIdentity?, environment: String, whitelist: Whitelist, status: HTTPResponse.Status = .ok) -> Response {
        SandboxJSON.response(body(identity: identity, environment: environment, whitelist: whitelist), status: status)
    }
}
