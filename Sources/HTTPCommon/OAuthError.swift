import Foundation
import HTTPTypes
import Hummingbird

/// Why a token request or a token is refused, in OAuth2 / RFC 6750 terms.
public struct OAuthError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    /// `invalid_request`, `invalid_client`, `unauthorized_client`, `invalid_grant`, `unsupported_grant_type`.
    public var error: String
    public var description: String
    /// The realm a 401 names in `WWW-Authenticate` (client authentication failed).
    public var realm: String

    public init(status: HTTPResponse.Status, error: String, description: String, realm: String = "ror") {
        self.status = status
        self.error = error
        self.description = description
        self.realm = realm
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONSerialization.data(
            withJSONObject: ["error": error, "error_description": description],
            options: [.sortedKeys]
        )
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Basic realm=\"\(realm)\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
