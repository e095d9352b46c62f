import Access
import FHIRCore
import Foundation
import HTTPCommon
import HTTPTypes
import Hummingbird
import JWTKit
import NIOConcurrencyHelpers

/// The access token a ROR client gets from the Keycloak realm `ror`: client id, access profile and the RFC 8705
/// certificate binding (`cnf.x5t#S256`).
public struct RORAccessToken: JWTPayload, Sendable {
    public struct Confirmation: Codable, Sendable {
        public var thumbprint: String
        enum CodingKeys: String, CodingKey { case thumbprint = "x5t#S256" }
    }

    public var iss: IssuerClaim
    public var sub: SubjectClaim
    public var azp: String
    public var clientId: String
    /// Access profile 0–5 ("profil d'accès").
    public var profil: Int
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    public var jti: IDClaim
    public var typ: String
    public var scope: String
    public var cnf: Confirmation?

    public func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}

/// `POST /auth/realms/ror/protocol/openid-connect/token` (client credentials grant), as the real Keycloak realm
/// `ror` answers it, and the verification of the resulting tokens on FHIR calls.
///
/// Profiles 1–5 authenticate with the TLS client certificate (RFC 8705 `tls_client_auth`): the presented DN must be
/// the one whitelisted with that client id. Profile 0 (public data) authenticates with `client_secret`. Tokens are
/// signed (RS256 as Keycloak by default, or ES256) by each environment's realm keys (``RealmKeys``), kept in its PKI
/// folder so they survive restarts. The realm's metadata (discovery, JWKS, introspection, revocation) is in
/// `RORRealmMetadata.swift`.
public final class RORTokenService: Sendable {
    public static let path = SandboxService.Path.rorRealm + "/protocol/openid-connect/token"
    public static let lifetime: TimeInterval = 300

    /// Each environment's keys: a listener signs and accepts only its own realm's tokens.
    let keys: [String: RealmKeys]
    /// Tokens whose signature was already verified, by environment and token (a client reuses its token for 300 s):
    /// the signature verification dominated a keep-alive `GET Location/{id}`. Expiry, revocation and certificate
    /// binding are still checked on every call.
    private let verified = NIOLockedValueBox<[String: [String: RORAccessToken]]>([:])
    let revocations: RORTokenRevocations
    let whitelist: Whitelist

    public init(keys: [String: RealmKeys], whitelist: Whitelist, revocations: RORTokenRevocations) {
        self.keys = keys
        self.whitelist = whitelist
        self.revocations = revocations
    }

    /// The environments with a realm, in a stable order.
    public var environments: [String] { keys.keys.sorted() }

    /// An environment's realm keys (rotation by the admin API).
    public func keys(environment: String) -> RealmKeys? { keys[environment] }

    /// The realm keys of the environment a request reached.
    func realmKeys(_ environment: String) throws -> RealmKeys {
        guard let keys = keys[environment] ?? (keys.count == 1 ? keys.values.first : nil) else {
            throw OAuthError(
                status: .badRequest,
                error: "invalid_request",
                description: "No realm for '\(environment)'"
            )
        }
        return keys
    }

    // MARK: Token endpoint

    public func addRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        router.post(RouterPath(Self.path)) { request, context in
            var request = request
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true
            else {
                throw OAuthError(
                    status: .badRequest,
                    error: "invalid_request",
                    description: "Content-Type must be application/x-www-form-urlencoded"
                )
            }
            let body = try await request.collectBody(upTo: 64 * 1024)
            let form = Dictionary(FormEncoding.items(String(buffer: body)), uniquingKeysWith: { first, _ in first })
            return try await self.token(
                form: form,
                authorization: request.headers[.authorization],
                identity: context.identity,
                environment: context.environment,
                issuer: Self.issuer(request)
            )
        }
        addMetadataRoutes(to: router)
    }

    /// The realm's issuer as the client reached it (`https://<host:port>/auth/realms/ror`): tokens' `iss`, discovery.
    static func issuer(_ request: Request) -> String {
        "https://\(request.head.authority ?? "localhost")\(SandboxService.Path.rorRealm)"
    }

    func token(
        form: [String: String],
        authorization: String?,
        identity: ClientIdentity?,
        environment: String,
        issuer: String
    ) async throws -> Response {
        guard let grant = form["grant_type"] else {
            throw OAuthError(
                status: .badRequest,
                error: "invalid_request",
                description: "Missing form parameter: grant_type"
            )
        }
        guard grant == "client_credentials" else {
            throw OAuthError(
                status: .badRequest,
                error: "unsupported_grant_type",
                description: "Unsupported grant_type '\(grant)' (use client_credentials)"
            )
        }
        let (clientId, profile) = try authenticateClient(
            form: form,
            authorization: authorization,
            identity: identity,
            environment: environment
        )
        let token = try await sign(
            clientId: clientId,
            profile: profile,
            lifetime: Self.lifetime,
            identity: identity,
            issuer: issuer,
            environment: environment
        )
        let body: [String: Any] = [
            "access_token": token, "expires_in": Int(Self.lifetime), "refresh_expires_in": 0, "token_type": "Bearer",
            "not-before-policy": 0, "scope": "profile email",
        ]
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        return Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// The calling client, authenticated as the token endpoint does: its certificate (`tls_client_auth`, profiles
    /// 1–5) or its secret (profile 0, form or HTTP Basic). Throws the OAuth2 error.
    func authenticateClient(
        form: [String: String],
        authorization: String?,
        identity: ClientIdentity?,
        environment: String
    ) throws -> (clientId: String, profile: Int) {
        var clientId = form["client_id"]
        var secret = form["client_secret"]
        if let authorization, Self.hasScheme("basic ", authorization),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).flatMap({
                String(data: $0, encoding: .utf8)
            }),
            let colon = decoded.firstIndex(of: ":")
        {
            clientId = clientId ?? String(decoded[..<colon]).removingPercentEncoding
            secret = secret ?? String(decoded[decoded.index(after: colon)...]).removingPercentEncoding
        }
        guard let clientId, !clientId.isEmpty else {
            throw OAuthError(status: .badRequest, error: "invalid_request", description: "Missing parameter: client_id")
        }
        guard let entry = whitelist.rorClient(clientId, environment: environment) else {
            throw OAuthError(
                status: .unauthorized,
                error: "invalid_client",
                description: "Invalid client or Invalid client credentials"
            )
        }
        let profile = entry.accessProfile ?? 1
        if profile == 0 {
            guard let expected = entry.clientSecret, let secret, Self.constantTimeEqual(expected, secret) else {
                throw OAuthError(
                    status: .unauthorized,
                    error: "invalid_client",
                    description: "Invalid client or Invalid client credentials"
                )
            }
        } else {
            // tls_client_auth: the certificate is the credential.
            guard let identity, identity.chainVerified else {
                throw OAuthError(
                    status: .unauthorized,
                    error: "invalid_client",
                    description: "Client certificate missing or not trusted"
                )
            }
            guard entry.subjectDNKey == identity.subjectMatchKey || entry.publicKeySHA256 == identity.spkiSHA256 else {
                throw OAuthError(
                    status: .unauthorized,
                    error: "invalid_client",
                    description:
                        "Client certificate '\(identity.subjectDN)' is not the one registered for client '\(clientId)'"
                )
            }
            if secret != nil, entry.clientSecret == nil {
                throw OAuthError(
                    status: .badRequest,
                    error: "unauthorized_client",
                    description:
                        "Client '\(clientId)' (profile \(profile)) authenticates with its certificate, not a secret"
                )
            }
        }
        return (clientId, profile)
    }

    /// A signed access token for `clientId`, bound to `identity`'s certificate when given.
    func sign(
        clientId: String,
        profile: Int,
        lifetime: TimeInterval,
        identity: ClientIdentity?,
        issuer: String,
        environment: String
    ) async throws -> String {
        // NumericDate in whole seconds.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let payload = RORAccessToken(
            iss: IssuerClaim(value: issuer),
            sub: SubjectClaim(value: clientId),
            azp: clientId,
            clientId: clientId,
            profil: profile,
            exp: ExpirationClaim(value: now.addingTimeInterval(lifetime)),
            iat: IssuedAtClaim(value: now),
            jti: IDClaim(value: UUID().uuidString.lowercased()),
            typ: "Bearer",
            scope: "profile email",
            cnf: identity.map { .init(thumbprint: $0.certificateThumbprint) }
        )
        let keys = try realmKeys(environment)
        return try await keys.collection().sign(payload, kid: JWKIdentifier(string: keys.currentKid))
    }

    /// `Bearer `/`Basic ` in any case, without lower-casing the whole (long) header value.
    static func hasScheme(_ scheme: String, _ value: String) -> Bool {
        let head = value.utf8.prefix(scheme.utf8.count)
        return head.count == scheme.utf8.count && zip(head, scheme.utf8).allSatisfy { a, b in a | 0x20 == b | 0x20 }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: Verifying bearer tokens

    /// The verified token of a FHIR call, bound to the presented certificate; throws a 401 `invalid_token`.
    public func verify(
        authorization: String?,
        identity: ClientIdentity?,
        environment: String
    ) async throws -> (RORAccessToken, WhitelistEntry) {
        let token = try Self.bearerToken(authorization)
        let payload: RORAccessToken
        if let cached = try alreadyVerified(token, environment: environment) {
            payload = cached
        } else {
            do {
                payload = try await realmKeys(environment).collection().verify(token, as: RORAccessToken.self)
            } catch let error as JWTError where error.errorType == .claimVerificationFailure {
                throw Self.invalidToken("The access token has expired")
            } catch {
                throw Self.invalidToken("The access token is not valid (signature or format)")
            }
            let fresh = payload
            verified.withLockedValue { caches in
                var cache = caches.removeValue(forKey: environment) ?? [:]
                if cache.count >= 4096 { cache = cache.filter { $0.value.exp.value > Date() } }
                if cache.count >= 4096 { cache.removeAll() }
                cache[token] = fresh
                caches[environment] = cache
            }
        }
        if revocations.isRevoked(payload.jti.value) { throw Self.invalidToken("The access token was revoked") }
        return (payload, try bound(payload, identity: identity, environment: environment))
    }

    /// ``verify(authorization:identity:environment:)`` without waiting: nil when the token's signature was not
    /// verified yet (a reader answering on the connection's thread then takes the usual path, which verifies it).
    public func verifyNow(
        authorization: String?,
        identity: ClientIdentity?,
        environment: String
    ) throws -> (RORAccessToken, WhitelistEntry)? {
        guard let payload = try alreadyVerified(Self.bearerToken(authorization), environment: environment) else {
            return nil
        }
        if revocations.isRevoked(payload.jti.value) { throw Self.invalidToken("The access token was revoked") }
        return (payload, try bound(payload, identity: identity, environment: environment))
    }

    static func bearerToken(_ authorization: String?) throws -> String {
        guard let authorization, Self.hasScheme("bearer ", authorization) else {
            throw Self.invalidToken("Authorization: Bearer <access token> is required (get one from \(Self.path))")
        }
        var rest = authorization.utf8.dropFirst(7)
        while rest.first == 0x20 { rest = rest.dropFirst() }
        while rest.last == 0x20 { rest = rest.dropLast() }
        return String(Substring(rest))
    }

    /// The claims of a token verified before, if still valid.
    private func alreadyVerified(_ token: String, environment: String) throws -> RORAccessToken? {
        guard let cached = verified.withLockedValue({ $0[environment]?[token] }) else { return nil }
        guard cached.exp.value > Date() else { throw Self.invalidToken("The access token has expired") }
        return cached
    }

    /// The client's whitelist entry, once the token is shown bound to the presented certificate.
    private func bound(
        _ payload: RORAccessToken,
        identity: ClientIdentity?,
        environment: String
    ) throws -> WhitelistEntry {
        if let bound = payload.cnf?.thumbprint, bound != identity?.certificateThumbprint {
            throw Self.invalidToken("The access token is bound to another certificate (cnf.x5t#S256)")
        }
        guard let entry = whitelist.rorClient(payload.clientId, environment: environment) else {
            throw Self.invalidToken("Client '\(payload.clientId)' is no longer registered")
        }
        return entry
    }

    static func invalidToken(_ message: String) -> FHIRError {
        var error = FHIRError(.unauthorized, code: "login", message, expression: nil)
        error.headers = [
            .wwwAuthenticate:
                "Bearer realm=\"ror\", error=\"invalid_token\", error_description=\"\(message.replacingOccurrences(of: "\"", with: "'"))\""
        ]
        return error
    }
}
