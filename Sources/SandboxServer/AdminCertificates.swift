import Access
import Foundation
import Hummingbird
import TestPKI

/// `POST /admin/certificates`: the certificate workshop — mints a client certificate (or a negative one) in an
/// environment's PKI and returns its PEMs. Nothing is whitelisted: that is what onboarding is for.
enum AdminCertificates {
    struct Order: Decodable {
        var subjectDN: String
        var environment: String?
        var negative: String?
        /// `rsa` (RSA-2048, as IGC-Santé) or `p256`; default the server's `--key-type`.
        var keyType: String?
    }

    struct Minted: Codable {
        var environment: String
        var subjectDN: String
        var issuerDN: String
        var serialNumber: String
        var spkiSHA256: String
        var notValidBefore: Date
        var notValidAfter: Date
        var negative: String?
        var certificatePEM: String
        var privateKeyPEM: String
        /// Certificate then key (`curl --cert bundle.pem`).
        var bundlePEM: String
    }

    static func add(to admin: RouterGroup<AdminRequestContext>, workshop: CertificateWorkshop) {
        admin.post("certificates") { request, _ in
            switch await AdminAPI.decodeBody(request, as: Order.self, "certificate order") {
            case .refusal(let response): return response
            case .value(let order):
                do {
                    return SandboxJSON.response(try workshop.mint(order), status: .created)
                } catch let error as CertificateOrderError {
                    return SandboxJSON.error(.badRequest, error.description)
                }
            }
        }
    }

    struct CertificateOrderError: Error, CustomStringConvertible { var description: String }
}

/// Mints client certificates (valid or negative) in the PKI of one of the served environments.
struct CertificateWorkshop: Sendable {
    let listeners: [EnvironmentListener]
    /// The environment of an order that names none (`--environment`).
    let defaultEnvironment: String
    /// The key type of an order that names none (`--key-type`).
    let keyAlgorithm: KeyAlgorithm

    var environments: [String] { listeners.map(\.name) }

    typealias Order = AdminCertificates.Order
    typealias Minted = AdminCertificates.Minted
    typealias CertificateOrderError = AdminCertificates.CertificateOrderError

    /// Mints what the order asks for; every mistake is a named `CertificateOrderError`.
    func mint(_ order: Order) throws -> Minted {
        let dn: SubjectDN
        do { dn = try SubjectDN(parsing: order.subjectDN) } catch {
            throw CertificateOrderError(description: "subjectDN: \(error)")
        }
        let environment = order.environment ?? defaultEnvironment
        guard let listener = listeners.first(where: { $0.name == environment }) else {
            throw CertificateOrderError(
                description:
                    "environment: '\(environment)' is not served here (environments: \(environments.joined(separator: ", ")))"
            )
        }
        var negative: NegativeKind?
        if let text = order.negative, !text.isEmpty {
            guard let kind = NegativeKind(rawValue: text) else {
                throw CertificateOrderError(
                    description:
                        "negative: '\(text)' is not one of \(NegativeKind.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            negative = kind
        }
        var algorithm = keyAlgorithm
        if let text = order.keyType {
            guard let value = KeyAlgorithm(rawValue: text) else {
                throw CertificateOrderError(
                    description:
                        "keyType: '\(text)' is not one of \(KeyAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            algorithm = value
        }
        do {
            let issued = try listener.pki.issueClient(
                subject: try dn.distinguishedName(),
                algorithm: algorithm,
                negative: negative
            )
            if negative == .revoked { listener.trustStore.setRevokedSerials(try listener.pki.revokedSerials()) }
            // With the intermediate a chain-shape negative certificate must be presented with.
            let certificate = try issued.chainPEM
            let key = try issued.privateKeyPEM
            return Minted(
                environment: environment,
                subjectDN: SubjectDN(issued.certificate.subject).rfc4514,
                issuerDN: SubjectDN(issued.certificate.issuer).rfc4514,
                serialNumber: issued.serialHex,
                spkiSHA256: try SPKIDigest(publicKey: issued.certificate.publicKey).hex,
                notValidBefore: issued.certificate.notValidBefore,
                notValidAfter: issued.certificate.notValidAfter,
                negative: negative?.rawValue,
                certificatePEM: certificate,
                privateKeyPEM: key,
                bundlePEM: certificate + key
            )
        } catch let error as CertificateOrderError {
            throw error
        } catch {
            throw CertificateOrderError(description: "could not mint: \(error)")
        }
    }
}
