import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import Testing

@testable import RORFHIR
@testable import SandboxServer
@testable import SandboxTestSupport

/// The ROR realm as OAuth libraries meet it: discovery by issuer, the JWKS verifying tokens (with an independent
/// JWT library's key collection), the realm summary, introspection, revocation and key rotation.
@Suite("ROR realm: discovery, keys, introspection")
struct RORRealmTests {
    static let realm = "/auth/realms/ror"
    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    static func json(_ response: TestClient.Response) throws -> [String: Any] {
        #expect(response.status == .ok, "\(response.text)")
        return try response.json()
    }

    /// A JWT's header or payload.
    static func part(_ token: String, _ index: Int) throws -> [String: Any] {
        var text = String(token.split(separator: ".")[index]).replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        let data = try #require(Data(base64Encoded: text))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The JWKS read over mTLS, as a key collection of JWTKit's own (not the sandbox's).
    static func verifier(_ running: RunningSandbox, _ client: ClientFiles) async throws -> JWTKeyCollection {
        let jwks = try await running.request(realm + "/protocol/openid-connect/certs", client: client)
        #expect(jwks.status == .ok)
        return try await JWTKeyCollection().add(jwksJSON: jwks.text)
    }

    static func introspect(
        _ running: RunningSandbox,
        _ client: ClientFiles,
        _ token: String,
        id: String
    ) async throws
        -> [String: Any]
    {
        try json(
            try await running.request(
                realm + "/protocol/openid-connect/token/introspect",
                method: .post,
                client: client,
                headers: form,
                body: "token=\(token)&client_id=\(id)"
            )
        )
    }

    @Test func discoveryByIssuerLeadsToTokensTheJWKSVerifies() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let discovery = try Self.json(
                try await running.request(Self.realm + "/.well-known/openid-configuration", client: consumer)
            )
            let issuer = try #require(discovery["issuer"] as? String)
            #expect(issuer.hasSuffix("/auth/realms/ror"))
            #expect(discovery["token_endpoint"] as? String == issuer + "/protocol/openid-connect/token")
            #expect(discovery["jwks_uri"] as? String == issuer + "/protocol/openid-connect/certs")
            #expect(discovery["tls_client_certificate_bound_access_tokens"] as? Bool == true)
            #expect(discovery["id_token_signing_alg_values_supported"] as? [String] == ["RS256"])
            #expect(
                (discovery["token_endpoint_auth_methods_supported"] as? [String])?.contains("tls_client_auth") == true
            )
            // The RFC 8414 form says the same.
            let metadata = try Self.json(
                try await running.request(Self.realm + "/.well-known/oauth-authorization-server", client: consumer)
            )
            #expect(metadata["issuer"] as? String == issuer)
            // The token endpoint it names, then the token verified with the published keys.
            let tokenEndpoint = try #require(discovery["token_endpoint"] as? String)
            let tokenPath = try #require(URLComponents(string: tokenEndpoint)?.path)
            let answer = try Self.json(
                try await running.request(
                    tokenPath,
                    method: .post,
                    client: consumer,
                    headers: Self.form,
                    body: "grant_type=client_credentials&client_id=esante-sandbox-consumer"
                )
            )
            let token = try #require(answer["access_token"] as? String)
            let header = try Self.part(token, 0)
            #expect(header["alg"] as? String == "RS256")
            let verified = try await Self.verifier(running, consumer).verify(token, as: RORAccessToken.self)
            #expect(verified.iss.value == issuer)
            #expect(verified.cnf?.thumbprint.isEmpty == false)
            // The realm summary, as Keycloak serves it.
            let summary = try Self.json(try await running.request(Self.realm, client: consumer))
            #expect(summary["realm"] as? String == "ror")
            #expect(summary["token-service"] as? String == issuer + "/protocol/openid-connect")
            #expect((summary["public_key"] as? String)?.hasPrefix("MII") == true)
            // Public metadata: any verified certificate reads it; the token endpoint stays whitelisted.
            let stranger = try SharedPKI.client("CN=INCONNU,O=EDITEUR SANDBOX,C=FR")
            #expect(
                try await running.request(Self.realm + "/protocol/openid-connect/certs", client: stranger).status == .ok
            )
            #expect(
                try await running.request(tokenPath, method: .post, client: stranger, headers: Self.form, body: "")
                    .status == .forbidden
            )
            // The authorization endpoint discovery must name answers an OAuth2 error: no browser login here.
            let authorize = try await running.request(Self.realm + "/protocol/openid-connect/auth", client: consumer)
            #expect(authorize.status == .badRequest)
            #expect(authorize.text.contains("unauthorized_client"))
        }
    }

    @Test func introspectionOfActiveExpiredRevokedAndForeignTokens() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let feeder = try RunningClients.feeder(running)
            let token = try await RORConsumer.accessToken(running, client: consumer)
            let active = try await Self.introspect(running, consumer, token, id: "esante-sandbox-consumer")
            #expect(active["active"] as? Bool == true)
            #expect(active["client_id"] as? String == "esante-sandbox-consumer")
            #expect((active["cnf"] as? [String: String])?["x5t#S256"] != nil)
            // Expired.
            let expired = try await running.sandbox.ror.tokens.sign(
                clientId: "esante-sandbox-consumer",
                profile: 1,
                lifetime: -60,
                identity: nil,
                issuer: "https://localhost/auth/realms/ror",
                environment: "bac-a-sable"
            )
            #expect(try await Self.introspect(running, consumer, expired, id: "esante-sandbox-consumer").count == 1)
            // Foreign: signed by a key that is not the realm's.
            let claims = try await Self.verifier(running, consumer).verify(token, as: RORAccessToken.self)
            let foreign = try await JWTKeyCollection().add(ecdsa: ES256PrivateKey(), kid: "autre").sign(claims)
            #expect(
                try await Self.introspect(running, consumer, foreign, id: "esante-sandbox-consumer")["active"] as? Bool
                    == false
            )
            // Another client may not revoke it; its owner may, and then it is refused everywhere.
            let byFeeder = try await running.request(
                Self.realm + "/protocol/openid-connect/revoke",
                method: .post,
                client: feeder,
                headers: Self.form,
                body: "token=\(token)&client_id=esante-sandbox-feeder"
            )
            #expect(byFeeder.status == .badRequest)
            #expect(byFeeder.text.contains("unauthorized_client"))
            let revoked = try await running.request(
                Self.realm + "/protocol/openid-connect/revoke",
                method: .post,
                client: consumer,
                headers: Self.form,
                body: "token=\(token)&client_id=esante-sandbox-consumer"
            )
            #expect(revoked.status == .ok)
            #expect(
                try await Self.introspect(running, consumer, token, id: "esante-sandbox-consumer")["active"] as? Bool
                    == false
            )
            let call = try await RORConsumer.get(
                running,
                "/ws-diffusion-fhir/Location?_count=1",
                client: consumer,
                token: token
            )
            #expect(call.status == .unauthorized)
            #expect(call.text.contains("revoked"))
            // Introspection needs an authenticated client.
            let anonymous = try await running.request(
                Self.realm + "/protocol/openid-connect/token/introspect",
                method: .post,
                client: consumer,
                headers: Self.form,
                body: "token=\(token)"
            )
            #expect(anonymous.status == .badRequest)
            #expect(anonymous.text.contains("client_id"))
        }
    }

    /// A rotated key stays published, and its tokens valid, until they expire; new tokens carry the new `kid`.
    @Test func rotationKeepsThePreviousKeyPublished() async throws {
        // A copy of the shared PKI (same CA and clients): rotation renames the key files other tests' sandboxes read.
        let copy = SharedPKI.directory.appendingPathComponent("pki-copy-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: SharedPKI.pki.directory, to: copy)
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds) { $0.pkiDirectory = copy }
        try await running.whileRunning {
            let consumer = try RunningClients.consumer(running)
            let before = try await RORConsumer.accessToken(running, client: consumer)
            let rotation = try Self.json(try await running.admin("/admin/ror/token-keys/rotate", method: .post))
            let kid = try #require(rotation["kid"] as? String)
            #expect(rotation["retiredKid"] as? String == (try Self.part(before, 0)["kid"] as? String))
            let keys =
                try Self.json(
                    try await running.request(Self.realm + "/protocol/openid-connect/certs", client: consumer)
                )["keys"] as? [[String: Any]]
            #expect(keys?.compactMap { $0["kid"] as? String } == [kid, rotation["retiredKid"] as? String ?? ""])
            #expect(
                try await RORConsumer.get(
                    running,
                    "/ws-diffusion-fhir/Location?_count=1",
                    client: consumer,
                    token: before
                )
                .status == .ok
            )
            let after = try await RORConsumer.accessToken(running, client: consumer)
            #expect(try Self.part(after, 0)["kid"] as? String == kid)
            _ = try await Self.verifier(running, consumer).verify(after, as: RORAccessToken.self)
            let unknown = try await running.admin("/admin/ror/token-keys/rotate?environment=lune", method: .post)
            #expect(unknown.status == .badRequest)
            #expect(unknown.text.contains("no environment 'lune'"))
        }
    }

    @Test func es256WhenConfigured() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds) { $0.tokenAlgorithm = .es256 }
        try await running.whileRunning {
            let consumer = try RunningClients.consumer(running)
            let discovery = try Self.json(
                try await running.request(Self.realm + "/.well-known/openid-configuration", client: consumer)
            )
            #expect(discovery["id_token_signing_alg_values_supported"] as? [String] == ["ES256"])
            let token = try await RORConsumer.accessToken(running, client: consumer)
            #expect(try Self.part(token, 0)["alg"] as? String == "ES256")
            _ = try await Self.verifier(running, consumer).verify(token, as: RORAccessToken.self)
        }
    }

    /// A revocation is stored: a restart does not bring the token back.
    @Test func aRevocationOutlivesARestart() async throws {
        let folder = SharedPKI.directory.appendingPathComponent("realm-\(UUID().uuidString)")
        func start() async throws -> RunningSandbox {
            try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds) {
                $0.inMemory = false
                $0.dataDirectory = folder
            }
        }
        let first = try await start()
        let token = try await first.whileRunning {
            let consumer = try RunningClients.consumer(first)
            let token = try await RORConsumer.accessToken(first, client: consumer)
            _ = try await first.request(
                Self.realm + "/protocol/openid-connect/revoke",
                method: .post,
                client: consumer,
                headers: Self.form,
                body: "token=\(token)&client_id=esante-sandbox-consumer"
            )
            return token
        }
        let second = try await start()
        try await second.whileRunning {
            let consumer = try RunningClients.consumer(second)
            let answer = try await Self.introspect(second, consumer, token, id: "esante-sandbox-consumer")
            #expect(answer["active"] as? Bool == false)
        }
    }
}

/// The demo clients' files of a running sandbox.
enum RunningClients {
    static func files(_ running: RunningSandbox, _ name: String) throws -> ClientFiles {
        let files = try #require(running.info.clientCertificates[name])
        return ClientFiles(folder: files.certificate.deletingLastPathComponent(), issued: try SharedPKI.issued(files))
    }

    static func consumer(_ running: RunningSandbox) throws -> ClientFiles { try files(running, "ror-consumer") }
    static func feeder(_ running: RunningSandbox) throws -> ClientFiles { try files(running, "ror-feeder") }
}
