import Foundation
import Hummingbird
import RORFHIR

/// `POST /admin/ror/token-keys/rotate[?environment=E]`: a new signing key for the ROR realm; the previous one stays in
/// the JWKS, and its tokens valid, until they expire.
enum AdminRealmKeys {
    struct Rotation: Encodable {
        var environment: String
        var kid: String
        var retiredKid: String
        var retiredPublishedUntil: Date
    }

    static func add(to admin: RouterGroup<AdminRequestContext>, tokens: RORTokenService) {
        admin.post("ror/token-keys/rotate") { request, _ in
            let environments = tokens.environments
            let environment =
                request.uri.queryParameters["environment"].map(String.init) ?? environments.first ?? ""
            guard let keys = tokens.keys(environment: environment) else {
                return SandboxJSON.error(
                    .badRequest,
                    "no environment '\(environment)' (environments: \(environments.joined(separator: ", ")))"
                )
            }
            let rotated = try keys.rotate()
            return SandboxJSON.response(
                Rotation(
                    environment: environment,
                    kid: rotated.kid,
                    retiredKid: rotated.retired,
                    retiredPublishedUntil: rotated.publishedUntil
                )
            )
        }
    }
}
