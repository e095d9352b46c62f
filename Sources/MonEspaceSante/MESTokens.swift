import Access
import Foundation
import GRDB
import HTTPCommon
import JWTKit
import NIOConcurrencyHelpers

/// The access token Mon espace santé gives a paired service: who (the service), for whom (the idPe), bound to the
/// certificate that obtained it (RFC 8705 `cnf.x5t#S256`).
public struct MESAccessToken: JWTPayload, Sendable {
    public struct Confirmation: Codable, Sendable {
        public var thumbprint: String
        enum CodingKeys: String, CodingKey { case thumbprint = "x5t#S256" }
    }

    public var iss: IssuerClaim
    public var sub: SubjectClaim
    public var aud: AudienceClaim
    public var clientId: String
    public var idpe: String
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    public var jti: IDClaim
    public var scope: String
    public var typ: String
    public var cnf: Confirmation?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, idpe, exp, iat, jti, scope, typ, cnf
        case clientId = "client_id"
    }

    public func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}

/// The OpenID Connect id_token of a pairing: the patient's idPe for this service (`sub` and `idpe`), never the INS.
public struct MESIDToken: JWTPayload, Sendable {
    public var iss: IssuerClaim
    public var sub: SubjectClaim
    public var aud: AudienceClaim
    public var idpe: String
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    public var authTime: Date
    public var nonce: String?
    public var typ: String

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, idpe, exp, iat, nonce, typ
        case authTime = "auth_time"
    }

    public func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}

/// What the token endpoint answers (RFC 6749 §5.1, with OpenID Connect's `id_token`).
public struct MESTokenResponse: Codable, Sendable {
    public var accessToken: String
    public var tokenType = "Bearer"
    public var expiresIn: Int
    public var refreshToken: String
    public var idToken: String
    public var scope: String

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case refreshToken = "refresh_token"
        case idToken = "id_token"
        case scope
    }
}

/// Issues, verifies and revokes the tokens of Mon espace santé pairings. Tokens are ES256 JWTs signed by a sandbox
/// key kept in the PKI folder (`mes-signing-key.pem`, served as a JWKS), so they survive restarts; each access token
/// and refresh token has a row (`mes_token`) so that revocation, consent and the certificate binding are checked
/// on every call.
public final class MESTokens: Sendable {
    public static let accessLifetime: TimeInterval = 3600
    public static let idTokenLifetime: TimeInterval = 3600
    public static let refreshLifetime: TimeInterval = 30 * 24 * 3600
    static let keyID = "esante-sandbox-mes"

    let directory: MESDirectory
    private let signingKey: ES256PrivateKey
    private let collection = JWTKeyCollection()
    private let keyAdded = NIOLockedValueBox(false)

    public init(keyFile: URL, directory: MESDirectory) throws {
        signingKey = try SigningKeyFile.loadOrCreate(keyFile)
        self.directory = directory
    }

    private func keys() async -> JWTKeyCollection {
        if !keyAdded.withLockedValue({ $0 }) {
            await collection.add(ecdsa: signingKey, kid: JWKIdentifier(string: Self.keyID))
            keyAdded.withLockedValue { $0 = true }
        }
        return collection
    }

    /// The public signing key as a JSON Web Key Set (RFC 7517), for services that check id_tokens themselves.
    public var jwks: [String: Any] {
        let parameters = signingKey.publicKey.parameters
        return [
            "keys": [
                [
                    "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": Self.keyID,
                    "x": parameters?.x ?? "", "y": parameters?.y ?? "",
                ]
            ]
        ]
    }

    // MARK: Issuing

    /// A new grant for a pairing: access token (bound to `certificateThumbprint` when given, otherwise to the first
    /// certificate that uses it), id_token and refresh token; `code` is the authorization code it came from.
    func issue(
        pairing: MESPairing,
        scope: String,
        nonce: String?,
        certificateThumbprint: String?,
        code: String?,
        issuer: String
    ) async throws -> MESTokenResponse {
        let now = Date()
        let jti = UUID().uuidString.lowercased()
        let access = MESAccessToken(
            iss: .init(value: issuer),
            sub: .init(value: pairing.idPe),
            aud: .init(value: [pairing.clientId]),
            clientId: pairing.clientId,
            idpe: pairing.idPe,
            exp: .init(value: now.addingTimeInterval(Self.accessLifetime)),
            iat: .init(value: now),
            jti: .init(value: jti),
            scope: scope,
            typ: "Bearer",
            cnf: certificateThumbprint.map { .init(thumbprint: $0) }
        )
        let id = MESIDToken(
            iss: .init(value: issuer),
            sub: .init(value: pairing.idPe),
            aud: .init(value: [pairing.clientId]),
            idpe: pairing.idPe,
            exp: .init(value: now.addingTimeInterval(Self.idTokenLifetime)),
            iat: .init(value: now),
            authTime: now,
            nonce: nonce,
            typ: "ID"
        )
        let keys = await keys()
        let accessToken = try await keys.sign(access, kid: JWKIdentifier(string: Self.keyID))
        let idToken = try await keys.sign(id, kid: JWKIdentifier(string: Self.keyID))
        let refreshToken = MESDirectory.randomToken()
        try await directory.store.writer.write { db in
            let insert = """
                INSERT INTO mes_token (id, kind, pairing_id, client_id, code, certificate_sha256, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """
            try db.execute(
                sql: insert,
                arguments: [
                    jti, "access", pairing.id, pairing.clientId, code, certificateThumbprint,
                    now.addingTimeInterval(Self.accessLifetime).timeIntervalSince1970,
                ]
            )
            try db.execute(
                sql: insert,
                arguments: [
                    MESDirectory.digest(refreshToken), "refresh", pairing.id, pairing.clientId, code,
                    certificateThumbprint,
                    now.addingTimeInterval(Self.refreshLifetime).timeIntervalSince1970,
                ]
            )
            try db.execute(
                sql: "UPDATE mes_pairing SET tokens_issued = tokens_issued + 1 WHERE id = ?",
                arguments: [pairing.id]
            )
        }
        return MESTokenResponse(
            accessToken: accessToken,
            expiresIn: Int(Self.accessLifetime),
            refreshToken: refreshToken,
            idToken: idToken,
            scope: scope
        )
    }

    // MARK: Verifying

    /// Why a business call is refused before it reaches the data.
    public enum Refusal: Error, Sendable {
        /// 401 `invalid_token` (RFC 6750), with the reason.
        case invalidToken(String)
        /// 400: the id_token is not a valid JWT of this sandbox.
        case invalidIDToken(String)
        /// 403 "Consent not given".
        case consentNotGiven
    }

    /// The pairing behind a business call: the access token verified (signature, expiry, revocation, the service of
    /// the presented certificate, the certificate it is bound to), the optional id_token consistent with it, and the
    /// patient's consent.
    func verify(
        authorization: String?,
        idToken: String?,
        identity: ClientIdentity?
    ) async throws(Refusal) -> (
        MESPairing, MESServiceRecord
    ) {
        guard let authorization, authorization.lowercased().hasPrefix("bearer "),
            case let token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces), !token.isEmpty
        else { throw .invalidToken("An access token is required (Authorization: Bearer)") }
        let payload: MESAccessToken
        do {
            payload = try await keys().verify(token, as: MESAccessToken.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw .invalidToken("The access token has expired")
        } catch {
            throw .invalidToken("The access token is not valid (signature or format)")
        }
        guard let identity else { throw .invalidToken("No client certificate was presented") }
        let found: (Row, MESServiceRecord, MESPairing)?
        do {
            found = try await directory.store.writer.read { db in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: "SELECT * FROM mes_token WHERE id = ? AND kind = 'access'",
                        arguments: [payload.jti.value]
                    ),
                    let service = try Row.fetchOne(
                        db,
                        sql: "SELECT * FROM mes_service WHERE client_id = ?",
                        arguments: [payload.clientId]
                    ).map(MESDirectory.service),
                    let pairing = try MESDirectory.pairing(id: row["pairing_id"], in: db)
                else { return nil }
                return (row, service, pairing)
            }
        } catch {
            throw .invalidToken("The access token could not be checked: \(error)")
        }
        guard let (row, service, pairing) = found else {
            throw .invalidToken("The access token is unknown to this service")
        }
        guard !(row["revoked"] as Bool), pairing.state == .active else {
            throw .invalidToken("The access token was revoked")
        }
        guard (try? SubjectDN(parsing: service.subjectDN).matchKey) == identity.subjectMatchKey else {
            throw .invalidToken("The access token was issued to another service than this certificate's")
        }
        let bound = payload.cnf?.thumbprint ?? (row["certificate_sha256"] as String?)
        if let bound {
            guard bound == identity.certificateThumbprint else {
                throw .invalidToken("The access token is bound to another certificate (cnf.x5t#S256)")
            }
        } else {
            // Issued outside a TLS exchange (the admin API's pairing): bound to the first certificate that uses it.
            _ = try? await directory.store.writer.write { db in
                try db.execute(
                    sql: "UPDATE mes_token SET certificate_sha256 = ? WHERE id = ? AND certificate_sha256 IS NULL",
                    arguments: [identity.certificateThumbprint, payload.jti.value]
                )
            }
        }
        if let idToken {
            let id: MESIDToken
            do {
                id = try await keys().verify(idToken, as: MESIDToken.self)
            } catch let error as JWTError where error.errorType == .claimVerificationFailure {
                throw .invalidToken("The id_token has expired")
            } catch {
                throw .invalidIDToken("invalid ID_TOKEN JWT (signature or format)")
            }
            guard id.aud.value.contains(service.clientId), id.idpe == pairing.idPe else {
                throw .invalidToken("The id_token was issued for another service or patient")
            }
        }
        guard pairing.consent else { throw .consentNotGiven }
        directory.touched(pairingID: pairing.id)
        return (pairing, service)
    }

    // MARK: Refresh and revocation

    /// The grant behind a refresh token of `clientId`, spent (refresh tokens rotate): nil when unknown, expired,
    /// revoked, another client's, or its pairing is no longer active with consent.
    func redeem(refreshToken: String, clientId: String) throws -> (MESPairing, certificate: String?)? {
        try directory.store.writer.write { db -> (MESPairing, String?)? in
            let id = MESDirectory.digest(refreshToken)
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT * FROM mes_token WHERE id = ? AND kind = 'refresh'",
                    arguments: [id]
                ),
                row["client_id"] as String == clientId, !(row["revoked"] as Bool),
                (row["expires_at"] as Double) > Date().timeIntervalSince1970,
                let pairing = try MESDirectory.pairing(id: row["pairing_id"], in: db),
                pairing.state == .active, pairing.consent
            else { return nil }
            try db.execute(sql: "UPDATE mes_token SET revoked = 1 WHERE id = ?", arguments: [id])
            return (pairing, row["certificate_sha256"])
        }
    }

    /// RFC 7009: revokes an access token (by its `jti`) or a refresh token of `clientId`; a refresh token takes the
    /// access tokens of its pairing with it. Unknown tokens are ignored (the answer is 200 either way).
    func revoke(token: String, clientId: String) async {
        var candidates = [MESDirectory.digest(token)]
        if let payload = try? await keys().verify(token, as: MESAccessToken.self) {
            candidates.append(payload.jti.value)
        }
        let ids = candidates
        _ = try? await directory.store.writer.write { db in
            for id in ids {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM mes_token WHERE id = ?", arguments: [id]),
                    row["client_id"] as String == clientId
                else { continue }
                try db.execute(sql: "UPDATE mes_token SET revoked = 1 WHERE id = ?", arguments: [id])
                if row["kind"] as String == "refresh" {
                    try db.execute(
                        sql: "UPDATE mes_token SET revoked = 1 WHERE pairing_id = ? AND kind = 'access'",
                        arguments: [row["pairing_id"] as Int64]
                    )
                }
            }
        }
    }

    /// A code used a second time: every token issued from it is revoked (RFC 6749 §4.1.2).
    func revokeIssued(fromCode code: String) {
        _ = try? directory.store.writer.write { db in
            try db.execute(sql: "UPDATE mes_token SET revoked = 1 WHERE code = ?", arguments: [code])
        }
    }
}
