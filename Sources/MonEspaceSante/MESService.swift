import Access
import Crypto
import FHIRCore
import Foundation
import GRDB
import HTTPCommon
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import Store

/// Mon espace santé as a referenced service meets it (facts and assumptions: `docs/services/mon-espace-sante.md`):
/// - pairing ("appariement", OAuth2 authorization code): the patient's page (`authorize`, on the admin listener: a
///   browser has no client certificate), then `POST /mes/oauth/token`, `/mes/oauth/revoke`, `GET /mes/oauth/jwks`
///   over mutual TLS;
/// - health measures (API "Mesures de santé"): `POST /mes/fhir` with a transaction Bundle (one Observation, an
///   optional Device), `GET /mes/fhir/Observation?subject.identifier=…`, reads by id.
public final class MESService: Sendable {
    public static let basePath = SandboxService.Path.mes
    public static let tokenPath = basePath + "/oauth/token"
    public static let authorizePath = basePath + "/oauth/authorize"
    /// How long an authorization code may wait for its exchange (RFC 6749 §4.1.2 advises at most 10 minutes).
    public static let codeLifetime: TimeInterval = 300
    /// Largest transaction Bundle accepted (a measure and its device are a few kilobytes).
    public static let maximumBody = 256 << 10
    public static let maximumCount = 100

    public let directory: MESDirectory
    public let tokens: MESTokens
    public let rules: MESMeasureRules
    public let repository: ResourceRepository
    /// The admin listener's base URL (`http://host:port`), where the patient's pairing page is: set once it listens,
    /// so that discovery names an absolute authorization endpoint.
    public let pairingPageBase = NIOLockedValueBox<String?>(nil)

    public static let registry = SearchParameterRegistry([
        "Observation": [
            SearchParameterDefinition("subject-identifier", .token, paths: ["subject.identifier"]),
            SearchParameterDefinition("code", .token, paths: ["code.coding"]),
            SearchParameterDefinition("date", .date, paths: ["effective*"]),
            SearchParameterDefinition("device", .reference, paths: ["device"], targets: ["Device"]),
        ],
        "Device": [SearchParameterDefinition("identifier", .token, paths: ["identifier"])],
    ])

    public init(store: SandboxStore, whitelist: Whitelist, keyFile: URL, rules: MESMeasureRules) throws {
        directory = MESDirectory(store: store, whitelist: whitelist)
        tokens = try MESTokens(keyFile: keyFile, directory: directory)
        self.rules = rules
        repository = ResourceRepository(store: store, registry: Self.registry)
    }

    // MARK: Routes over mutual TLS

    public func addRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        router.post(RouterPath(Self.tokenPath)) { request, context in
            try await self.token(request, identity: context.identity)
        }
        router.post(RouterPath(Self.basePath + "/oauth/revoke")) { request, context in
            let form = try await Self.form(request)
            let service = try self.authenticateClient(form, request: request, identity: context.identity)
            guard let token = form["token"], !token.isEmpty else {
                throw OAuthError(
                    status: .badRequest,
                    error: "invalid_request",
                    description: "token is required",
                    realm: "mes"
                )
            }
            await self.tokens.revoke(token: token, clientId: service.clientId)
            return Response(status: .ok, headers: [.cacheControl: "no-store"])
        }
        router.get(RouterPath(Self.basePath + "/oauth/jwks")) { _, _ in
            Self.json(self.tokens.jwks)
        }
        router.get(RouterPath(Self.basePath + "/.well-known/openid-configuration")) { request, _ in
            let base = "https://\(request.head.authority ?? "localhost")\(Self.basePath)"
            return Self.json([
                "issuer": base, "token_endpoint": base + "/oauth/token", "revocation_endpoint": base + "/oauth/revoke",
                "jwks_uri": base + "/oauth/jwks",
                "authorization_endpoint": (self.pairingPageBase.withLockedValue { $0 } ?? "") + Self.authorizePath,
                "response_types_supported": ["code"], "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "tls_client_certificate_bound_access_tokens": true, "scopes_supported": Self.scopes.sorted(),
            ])
        }
        let fhir = router.group(RouterPath(Self.basePath + "/fhir"))
        fhir.post { request, context in try await self.transaction(request, identity: context.identity) }
        fhir.get("Observation") { request, context in try await self.search(request, identity: context.identity) }
        fhir.get("Observation/:id") { request, context in
            try await self.read("Observation", context.parameters.get("id") ?? "", request, identity: context.identity)
        }
        fhir.get("Device/:id") { request, context in
            try await self.read("Device", context.parameters.get("id") ?? "", request, identity: context.identity)
        }
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    // MARK: Token endpoint

    static let scopes: Set<String> = ["openid", "mesures"]

    static func form(_ request: Request) async throws -> [String: String] {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            throw OAuthError(
                status: .badRequest,
                error: "invalid_request",
                description: "Content-Type must be application/x-www-form-urlencoded",
                realm: "mes"
            )
        }
        var request = request
        guard let body = try? await request.collectBody(upTo: 64 << 10) else {
            throw OAuthError(
                status: .badRequest,
                error: "invalid_request",
                description: "the form is over 64 KiB",
                realm: "mes"
            )
        }
        return Dictionary(FormEncoding.items(String(buffer: body)), uniquingKeysWith: { first, _ in first })
    }

    /// RFC 6749 §2.3: the client's id and secret in the form or in HTTP Basic (not both), and here also the
    /// certificate the service registered (the call comes over mutual TLS).
    func authenticateClient(
        _ form: [String: String],
        request: Request,
        identity: ClientIdentity?
    ) throws -> MESServiceRecord {
        var clientId = form["client_id"]
        var secret = form["client_secret"]
        if let basic = request.headers[.authorization], basic.lowercased().hasPrefix("basic ") {
            guard secret == nil else {
                throw OAuthError(
                    status: .badRequest,
                    error: "invalid_request",
                    description: "client credentials in both the form and the Authorization header",
                    realm: "mes"
                )
            }
            guard
                let decoded = Data(base64Encoded: String(basic.dropFirst(6))).map({
                    String(decoding: $0, as: UTF8.self)
                }),
                let colon = decoded.firstIndex(of: ":")
            else {
                throw OAuthError(
                    status: .unauthorized,
                    error: "invalid_client",
                    description: "malformed HTTP Basic credentials",
                    realm: "mes"
                )
            }
            let basicId = FormEncoding.decode(decoded[..<colon])
            guard clientId == nil || clientId == basicId else {
                throw OAuthError(
                    status: .badRequest,
                    error: "invalid_request",
                    description: "client_id differs from the Basic one",
                    realm: "mes"
                )
            }
            clientId = basicId
            secret = FormEncoding.decode(decoded[decoded.index(after: colon)...])
        }
        guard let clientId, !clientId.isEmpty, let secret, !secret.isEmpty else {
            throw OAuthError(
                status: .unauthorized,
                error: "invalid_client",
                description: "client authentication is required (client_id and client_secret)",
                realm: "mes"
            )
        }
        guard let service = try directory.service(clientId: clientId), service.clientSecret == secret else {
            throw OAuthError(
                status: .unauthorized,
                error: "invalid_client",
                description: "unknown client or wrong secret",
                realm: "mes"
            )
        }
        guard let identity, (try? SubjectDN(parsing: service.subjectDN).matchKey) == identity.subjectMatchKey else {
            throw OAuthError(
                status: .unauthorized,
                error: "invalid_client",
                description: "the presented certificate is not the one registered for \(clientId)",
                realm: "mes"
            )
        }
        return service
    }

    func token(_ request: Request, identity: ClientIdentity?) async throws -> Response {
        let form = try await Self.form(request)
        let service = try authenticateClient(form, request: request, identity: identity)
        let issuer = "https://\(request.head.authority ?? "localhost")\(Self.basePath)"
        let response: MESTokenResponse
        switch form["grant_type"] {
        case "authorization_code":
            guard let code = form["code"], !code.isEmpty else { throw Self.invalidRequest("code is required") }
            guard let redirectURI = form["redirect_uri"], !redirectURI.isEmpty else {
                throw Self.invalidRequest("redirect_uri is required (the one sent to the authorization endpoint)")
            }
            let grant = try redeem(
                code: code,
                clientId: service.clientId,
                redirectURI: redirectURI,
                verifier: form["code_verifier"]
            )
            response = try await tokens.issue(
                pairing: grant.pairing,
                scope: grant.scope,
                nonce: grant.nonce,
                certificateThumbprint: identity?.certificateThumbprint,
                code: code,
                issuer: issuer
            )
        case "refresh_token":
            guard let refresh = form["refresh_token"], !refresh.isEmpty else {
                throw Self.invalidRequest("refresh_token is required")
            }
            guard let (pairing, certificate) = try tokens.redeem(refreshToken: refresh, clientId: service.clientId)
            else {
                throw Self.invalidGrant("the refresh token is unknown, expired, revoked, or its pairing has no consent")
            }
            guard certificate == nil || certificate == identity?.certificateThumbprint else {
                throw Self.invalidGrant("the refresh token is bound to another certificate")
            }
            response = try await tokens.issue(
                pairing: pairing,
                scope: "openid mesures",
                nonce: nil,
                certificateThumbprint: identity?.certificateThumbprint,
                code: nil,
                issuer: issuer
            )
        case nil:
            throw Self.invalidRequest("grant_type is required")
        case let other?:
            throw OAuthError(
                status: .badRequest,
                error: "unsupported_grant_type",
                description: "grant_type '\(other)' is not supported (authorization_code, refresh_token)",
                realm: "mes"
            )
        }
        let data = try JSONEncoder().encode(response)
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/json", .cacheControl: "no-store", HTTPField.Name("Pragma")!: "no-cache",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    static func invalidRequest(_ description: String) -> OAuthError {
        OAuthError(status: .badRequest, error: "invalid_request", description: description, realm: "mes")
    }

    static func invalidGrant(_ description: String) -> OAuthError {
        OAuthError(status: .badRequest, error: "invalid_grant", description: description, realm: "mes")
    }

    struct Grant {
        var pairing: MESPairing
        var scope: String
        var nonce: String?
    }

    /// Spends an authorization code: it must be this client's, unused, unexpired, for this redirect URI, and match
    /// its PKCE challenge. A code presented twice revokes what it gave the first time.
    func redeem(code: String, clientId: String, redirectURI: String, verifier: String?) throws -> Grant {
        enum Outcome {
            case grant(Grant)
            case reused
            case refused(String)
        }
        let outcome = try directory.store.writer.write { db -> Outcome in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT * FROM mes_authorization_code WHERE code = ?",
                    arguments: [code]
                ),
                row["client_id"] as String == clientId
            else { return .refused("unknown authorization code") }
            if row["used"] as Bool { return .reused }
            try db.execute(sql: "UPDATE mes_authorization_code SET used = 1 WHERE code = ?", arguments: [code])
            guard (row["expires_at"] as Double) > Date().timeIntervalSince1970 else {
                return .refused("the authorization code has expired")
            }
            guard row["redirect_uri"] as String == redirectURI else {
                return .refused("redirect_uri differs from the one of the authorization request")
            }
            if let challenge = row["code_challenge"] as String? {
                guard let verifier, !verifier.isEmpty else { return .refused("code_verifier is required (PKCE)") }
                let method = row["code_challenge_method"] as String? ?? "plain"
                let computed = method == "S256" ? PKCE.s256(verifier) : verifier
                guard computed == challenge else { return .refused("code_verifier does not match the code_challenge") }
            }
            guard
                let pairing = try MESDirectory.pairing(id: row["pairing_id"], in: db),
                pairing.state == .active, pairing.consent
            else { return .refused("the pairing is no longer active with the patient's consent") }
            return .grant(Grant(pairing: pairing, scope: row["scope"], nonce: row["nonce"]))
        }
        switch outcome {
        case .grant(let grant): return grant
        case .reused:
            tokens.revokeIssued(fromCode: code)
            throw Self.invalidGrant("the authorization code was already used (the tokens it gave are revoked)")
        case .refused(let reason): throw Self.invalidGrant(reason)
        }
    }

    /// Issues an authorization code for a pairing (the patient consented on the authorization page).
    func issueCode(pairing: MESPairing, request: AuthorizationRequest) throws -> String {
        let code = MESDirectory.randomToken()
        try directory.store.writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO mes_authorization_code (code, client_id, pairing_id, redirect_uri, scope, nonce,
                        code_challenge, code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    code, request.service.clientId, pairing.id, request.redirectURI, request.scope, request.nonce,
                    request.codeChallenge, request.codeChallengeMethod,
                    Date().addingTimeInterval(Self.codeLifetime).timeIntervalSince1970,
                ]
            )
        }
        return code
    }

    /// Tokens for a pairing made through the admin API (no browser): bound to the first certificate that uses them.
    public func pairWithoutBrowser(
        clientId: String,
        ins: String,
        consent: Bool,
        issuer: String
    ) async throws -> (
        MESPairing, MESTokenResponse?
    ) {
        let pairing = try directory.pair(clientId: clientId, ins: ins, consent: consent)
        guard consent else { return (pairing, nil) }
        return (
            pairing,
            try await tokens.issue(
                pairing: pairing,
                scope: "openid mesures",
                nonce: nil,
                certificateThumbprint: nil,
                code: nil,
                issuer: issuer
            )
        )
    }

    // MARK: Business calls

    /// The pairing a call acts for, or the refusal in FHIR form (401 with `WWW-Authenticate`, 400, 403).
    func caller(_ request: Request, identity: ClientIdentity?) async throws -> (MESPairing, MESServiceRecord) {
        do {
            return try await tokens.verify(
                authorization: request.headers[.authorization],
                idToken: request.headers[Self.idTokenHeader],
                identity: identity
            )
        } catch {
            switch error {
            case .invalidToken(let reason):
                var refusal = FHIRError(.unauthorized, code: "login", reason, expression: ["Authorization"])
                refusal.headers[.wwwAuthenticate] =
                    "Bearer realm=\"mes\", error=\"invalid_token\", error_description=\"\(reason.replacingOccurrences(of: "\"", with: "'"))\""
                throw refusal
            case .invalidIDToken(let reason):
                throw FHIRError(.badRequest, code: "invalid", reason, expression: [Self.idTokenHeader.rawName])
            case .consentNotGiven:
                throw FHIRError(.forbidden, code: "forbidden", "Consent not given", expression: nil)
            }
        }
    }

    /// Where a call may carry the pairing's id_token (the sandbox's choice: the public material says business calls
    /// carry it without saying how).
    public static let idTokenHeader = HTTPField.Name("X-Id-Token")!

    /// `system|value` of the patient a service writes or reads, checked against the pairing's idPe and OID.
    static func checkSubject(system: String?, value: String?, pairing: MESPairing, service: MESServiceRecord) throws {
        let oid = system.map { $0.hasPrefix("urn:oid:") ? String($0.dropFirst(8)) : $0 }
        guard oid == service.pairingOID, value == pairing.idPe else {
            throw FHIRError(
                .forbidden,
                code: "forbidden",
                "idPe requested do not match authorized idPe",
                expression: nil
            )
        }
    }

    func read(_ type: String, _ id: String, _ request: Request, identity: ClientIdentity?) async throws -> Response {
        let (pairing, service) = try await caller(request, identity: identity)
        guard let stored = try await repository.read(type: type, id: id) else {
            throw FHIRError(.notFound, code: "not-found", "\(type)/\(id) is not known", expression: nil)
        }
        let object = try Self.object(stored.json)
        let visible =
            type == "Observation"
            ? object["subject"]?["identifier"]?["value"]?.string == pairing.idPe
            : object["meta"]?["source"]?.string == "urn:oid:" + service.pairingOID
        guard visible else {
            throw FHIRError(.notFound, code: "not-found", "\(type)/\(id) is not known", expression: nil)
        }
        return FHIRResponse.json(
            .ok,
            stored.json,
            headers: [.eTag: "W/\"\(stored.version)\"", .lastModified: HTTPDate.string(iso: stored.lastUpdated) ?? ""]
        )
    }

    static func object(_ data: Data) throws -> JSONObject {
        guard case .object(let object) = try JSON(parsing: data) else {
            throw ResourceError("stored JSON is not an object")
        }
        return object
    }
}

/// PKCE (RFC 7636).
enum PKCE {
    static func s256(_ verifier: String) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
