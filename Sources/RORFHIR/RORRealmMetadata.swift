import Access
import Foundation
import GRDB
import HTTPCommon
import HTTPTypes
import Hummingbird
import JWTKit
import NIOConcurrencyHelpers
import Store

/// What OAuth libraries read of the ROR's Keycloak realm before and around their first call, as Keycloak serves it:
/// the discovery document (OpenID Connect Discovery and RFC 8414), the JWKS, the realm summary, token introspection
/// (RFC 7662) and revocation (RFC 7009). Clients configured by issuer then find the token endpoint themselves and
/// verify tokens with the published keys.
extension RORTokenService {
    static let realm = SandboxService.Path.rorRealm
    static let openIDConnect = realm + "/protocol/openid-connect"
    /// Paths any chain-verified certificate may read (Keycloak serves them to anyone): discovery, JWKS, realm summary.
    public static let publicMetadataPaths: Set<String> = [
        realm, realm + "/.well-known/openid-configuration", realm + "/.well-known/oauth-authorization-server",
        openIDConnect + "/certs",
    ]

    func addMetadataRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
            router.get(RouterPath(Self.realm + path)) { request, context in
                try Self.json(try self.discovery(issuer: Self.issuer(request), environment: context.environment))
            }
        }
        router.get(RouterPath(Self.openIDConnect + "/certs")) { _, context in
            try Self.json(["keys": try self.realmKeys(context.environment).jwks()])
        }
        router.get(RouterPath(Self.realm)) { request, context in
            let issuer = Self.issuer(request)
            return try Self.json([
                "realm": "ror", "public_key": try self.realmKeys(context.environment).publicKeyBase64,
                "token-service": issuer + "/protocol/openid-connect", "account-service": issuer + "/account",
                "tokens-not-before": 0,
            ])
        }
        router.get(RouterPath(Self.openIDConnect + "/auth")) { _, _ -> Response in
            // Published because OpenID Connect Discovery requires the member; the realm's clients use client
            // credentials only, as the ROR's do.
            throw OAuthError(
                status: .badRequest,
                error: "unauthorized_client",
                description: "The ROR realm's clients use the client_credentials grant; there is no browser login"
            )
        }
        router.post(RouterPath(Self.openIDConnect + "/token/introspect")) { request, context in
            let (form, client) = try await self.authenticatedForm(request, context)
            _ = client
            return try Self.json(await self.introspect(form["token"] ?? "", environment: context.environment))
        }
        router.post(RouterPath(Self.openIDConnect + "/revoke")) { request, context in
            let (form, client) = try await self.authenticatedForm(request, context)
            guard let token = form["token"], !token.isEmpty else {
                throw OAuthError(status: .badRequest, error: "invalid_request", description: "Missing parameter: token")
            }
            // RFC 7009 §2.2: an invalid or unknown token is answered 200 all the same.
            if let payload = try? await self.realmKeys(context.environment).collection().verify(
                token,
                as: RORAccessToken.self
            ) {
                guard payload.azp == client else {
                    throw OAuthError(
                        status: .badRequest,
                        error: "unauthorized_client",
                        description: "The token was issued to another client"
                    )
                }
                try self.revocations.revoke(jti: payload.jti.value, expires: payload.exp.value)
            }
            return Response(status: .ok, headers: [.cacheControl: "no-store"])
        }
    }

    /// The form of an introspection or revocation request, and the client it authenticated (Keycloak requires one).
    func authenticatedForm<Context: RequestContext & CallerContext>(
        _ request: Request,
        _ context: Context
    ) async throws
        -> ([String: String], String)
    {
        var request = request
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            throw OAuthError(
                status: .badRequest,
                error: "invalid_request",
                description: "Content-Type must be application/x-www-form-urlencoded"
            )
        }
        let body = try await request.collectBody(upTo: 64 * 1024)
        let form = Dictionary(FormEncoding.items(String(buffer: body)), uniquingKeysWith: { first, _ in first })
        let (client, _) = try authenticateClient(
            form: form,
            authorization: request.headers[.authorization],
            identity: context.identity,
            environment: context.environment
        )
        return (form, client)
    }

    /// RFC 7662: the token's claims with `active: true`, or only `active: false` (foreign, forged, expired, revoked).
    func introspect(_ token: String, environment: String) async throws -> [String: Any] {
        guard
            let payload = try? await realmKeys(environment).collection().verify(token, as: RORAccessToken.self),
            !revocations.isRevoked(payload.jti.value)
        else { return ["active": false] }
        var claims: [String: Any] = [
            "active": true, "iss": payload.iss.value, "sub": payload.sub.value, "azp": payload.azp,
            "client_id": payload.clientId, "clientId": payload.clientId, "profil": payload.profil,
            "exp": Int(payload.exp.value.timeIntervalSince1970), "iat": Int(payload.iat.value.timeIntervalSince1970),
            "jti": payload.jti.value, "typ": payload.typ, "token_type": "Bearer", "scope": payload.scope,
        ]
        if let cnf = payload.cnf { claims["cnf"] = ["x5t#S256": cnf.thumbprint] }
        return claims
    }

    /// The discovery document, with the members Keycloak publishes for what this realm supports.
    func discovery(issuer: String, environment: String) throws -> [String: Any] {
        let algorithm = try realmKeys(environment).algorithm.rawValue
        let endpoints = [
            "token_endpoint": issuer + "/protocol/openid-connect/token",
            "introspection_endpoint": issuer + "/protocol/openid-connect/token/introspect",
            "revocation_endpoint": issuer + "/protocol/openid-connect/revoke",
        ]
        let authMethods = ["tls_client_auth", "client_secret_post", "client_secret_basic"]
        var document: [String: Any] = endpoints
        document.merge([
            "issuer": issuer, "authorization_endpoint": issuer + "/protocol/openid-connect/auth",
            "jwks_uri": issuer + "/protocol/openid-connect/certs", "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["none"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [algorithm],
            "token_endpoint_auth_methods_supported": authMethods,
            "introspection_endpoint_auth_methods_supported": authMethods,
            "revocation_endpoint_auth_methods_supported": authMethods,
            "tls_client_certificate_bound_access_tokens": true,
            // Every endpoint is already on the mutual-TLS listener: the aliases are the endpoints themselves.
            "mtls_endpoint_aliases": endpoints, "scopes_supported": ["profile", "email"],
            "claims_supported": ["iss", "sub", "azp", "clientId", "profil", "exp", "iat", "jti", "scope", "cnf"],
        ]) { first, _ in first }
        return document
    }

    static func json(_ object: Any) throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(
                byteBuffer: ByteBuffer(
                    bytes: try JSONSerialization.data(
                        withJSONObject: object,
                        options: [.sortedKeys, .withoutEscapingSlashes]
                    )
                )
            )
        )
    }
}

/// Access tokens revoked before they expire (RFC 7009), by `jti`: kept in SQLite (a restart does not bring a revoked
/// token back) and in memory (checked on every FHIR call), forgotten once expired.
public final class RORTokenRevocations: Sendable {
    private let store: SandboxStore
    private let revoked: NIOLockedValueBox<[String: Date]>

    public init(store: SandboxStore, now: Date = Date()) throws {
        self.store = store
        let rows = try store.writer.write { db -> [String: Date] in
            try db.execute(sql: "DELETE FROM ror_revoked_token WHERE expires_at < ?", arguments: [now])
            return Dictionary(
                try Row.fetchAll(db, sql: "SELECT jti, expires_at FROM ror_revoked_token").map {
                    ($0["jti"] as String, $0["expires_at"] as Date)
                },
                uniquingKeysWith: { first, _ in first }
            )
        }
        revoked = NIOLockedValueBox(rows)
    }

    public func isRevoked(_ jti: String) -> Bool {
        revoked.withLockedValue { $0.isEmpty ? false : $0[jti] != nil }
    }

    func revoke(jti: String, expires: Date) throws {
        try store.writer.write { db in
            try db.execute(
                sql: "INSERT INTO ror_revoked_token (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
                arguments: [jti, expires]
            )
        }
        let now = Date()
        revoked.withLockedValue { revoked in
            revoked = revoked.filter { $0.value >= now }
            revoked[jti] = expires
        }
    }
}
