import Access
import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

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
            subjectDN: identity?.subjectDN,
            subjectDNForms: identity.map {
                .init(rfc4514: $0.subjectDN, openssl: $0.subject.openSSLOneLine, slash: $0.subject.slashForm)
            },
            subjectAttributes: identity?.subject.attributes,
            issuerDN: identity?.issuerDN,
            serialNumber: identity?.serialNumber,
            spkiSHA256: identity?.spkiSHA256.hex,
            spkiSHA256Base64: identity?.spkiSHA256.base64,
            notBefore: identity?.notBefore,
            notAfter: identity?.notAfter,
            extendedKeyUsages: identity?.extendedKeyUsages,
            chainVerified: identity?.chainVerified ?? false,
            chainFailure: identity?.chainFailure?.rawValue
                ?? (identity == nil ? ChainFailure.noCertificate.rawValue : nil),
            whitelisted: whitelisted,
            reasons: reasons
        )
    }

    static func response(
        identity: ClientIdentity?,
        environment: String,
        whitelist: Whitelist,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        // The body only changes with the certificate and the whitelist: encode it once per (identity, revision).
        let key =
            "\(environment)|\(whitelist.revision)|\(identity?.spkiSHA256.hex ?? "-")|\(identity?.subjectMatchKey ?? "-")|\(identity?.chainFailure?.rawValue ?? "")"
        let bytes: ByteBuffer
        if let cached = cache.withLockedValue({ $0[key] }) {
            bytes = cached
        } else {
            let data =
                (try? SandboxJSON.encoder.encode(
                    body(identity: identity, environment: environment, whitelist: whitelist)
                )) ?? Data()
            bytes = ByteBuffer(bytes: data)
            cache.withLockedValue { cache in
                if cache.count >= 512 { cache.removeAll(keepingCapacity: true) }
                cache[key] = bytes
            }
        }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: bytes))
    }

    private static let cache = NIOLockedValueBox<[String: ByteBuffer]>([:])
}
