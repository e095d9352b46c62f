import Foundation
import HTTPCommon
import HTTPTypes
import HummingbirdTesting
import JWTKit
import NIOCore
import Store
import Testing

@testable import MonEspaceSante
@testable import SandboxServer
@testable import SandboxTestSupport

/// What a referenced service does against Mon espace santé, end to end: the patient's pairing page, the code
/// exchange over mutual TLS, measures pushed and read back, and every refusal in its protocol's form.
@Suite("Mon espace santé")
struct MESTests {
    static let clientId = "esante-sandbox-balance"
    static let secret = "sandbox-balance-secret"
    static let redirect = "https://balance.example/callback"
    static let oid = "1.2.250.1.999.42.1"
    /// ADRUN ZOE: seeded, paired with the demo service and with weights already pushed.
    static let zoe = "275126322074974"
    static let serviceDN =
        "CN=APPLI_BALANCE_SANDBOX,OU=0002 449999999,O=EDITEUR SANDBOX MESURES,ST=Loire-Atlantique (44),C=FR"
    /// NESSI MICHELANGELO: seeded, not paired.
    static let nessi = "110086322083060"

    struct Context {
        var running: RunningSandbox
        /// The demo service's certificate (demo client `mes-service`).
        var service: ClientFiles
    }

    static func start() async throws -> Context {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        let files = try #require(running.info.clientCertificates["mes-service"])
        return Context(
            running: running,
            service: ClientFiles(
                folder: files.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(files)
            )
        )
    }

    static func form(_ items: [(String, String)]) -> String {
        items.map { "\($0.0)=\(FormEncoding.encodeForTest($0.1))" }.joined(separator: "&")
    }

    /// The patient's consent given on the page (as the browser posts it); the redirect's `Location`.
    static func consent(
        _ context: Context,
        ins: String,
        decision: String = "allow",
        extra: [(String, String)] = [],
        clientId: String = clientId,
        redirectURI: String = redirect
    ) async throws -> TestClient.Response {
        var items = [
            ("client_id", clientId), ("redirect_uri", redirectURI), ("response_type", "code"),
            ("scope", "openid mesures"),
            ("state", "s-42"),
        ]
        items += extra
        items += [("ins", ins), ("decision", decision)]
        return try await context.running.admin(
            MESService.authorizePath,
            method: .post,
            body: form(items),
            headers: [.contentType: "application/x-www-form-urlencoded"]
        )
    }

    static func query(_ location: String?) -> [String: String] {
        guard let location, let components = URLComponents(string: location) else { return [:] }
        return Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            uniquingKeysWith: { first, _ in first }
        )
    }

    static func token(
        _ context: Context,
        _ items: [(String, String)],
        client: ClientFiles? = nil
    ) async throws -> TestClient.Response {
        try await context.running.request(
            MESService.tokenPath,
            method: .post,
            client: client ?? context.service,
            headers: [.contentType: "application/x-www-form-urlencoded"],
            body: form(items)
        )
    }

    /// Pairs `ins` through the page and exchanges the code: the token answer.
    static func pair(_ context: Context, ins: String, client: ClientFiles? = nil) async throws -> [String: Any] {
        let page = try await consent(context, ins: ins)
        #expect(page.status == .seeOther)
        let code = try #require(query(page.headers[.location])["code"])
        let answer = try await token(
            context,
            [
                ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect),
                ("client_id", clientId),
                ("client_secret", secret),
            ],
            client: client
        )
        #expect(answer.status == .ok, "\(answer.text)")
        return try answer.json()
    }

    static func claims(_ jwt: String) throws -> [String: Any] {
        var payload = String(jwt.split(separator: ".")[1]).replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        payload += String(repeating: "=", count: (4 - payload.count % 4) % 4)
        let data = try #require(Data(base64Encoded: payload))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func weight(
        idPe: String,
        value: Double = 70.4,
        unit: String = "kg",
        code: String = "29463-7",
        date: String = "2026-12-01T08:00:00+01:00",
        oid: String = oid,
        device: Bool = false
    ) -> [String: Any] {
        var observation: [String: Any] = [
            "resourceType": "Observation", "status": "final",
            "code": ["coding": [["system": "http://loinc.org", "code": code]]],
            "subject": ["identifier": ["system": "urn:oid:\(oid)", "value": idPe]], "effectiveDateTime": date,
            "valueQuantity": ["value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit],
        ]
        var entries: [[String: Any]] = []
        if device {
            observation["device"] = ["reference": "urn:uuid:d36bfdb6-b1b1-4efd-9cb9-d217a8696575"]
            entries.append([
                "fullUrl": "urn:uuid:d36bfdb6-b1b1-4efd-9cb9-d217a8696575",
                "resource": [
                    "resourceType": "Device", "manufacturer": "OMRONHEALTHCARE",
                    "identifier": [
                        ["system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680", "value": "FE-ED-AB-AA-DE-AD-77-C5"]
                    ],
                ],
                "request": [
                    "method": "POST", "url": "Device",
                    "ifNoneExist": "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5",
                ],
            ])
        }
        entries.append([
            "fullUrl": "urn:uuid:5138af77-df7e-4b9d-ba17-07ba3ebb950a", "resource": observation,
            "request": ["method": "POST", "url": "Observation"],
        ])
        return ["resourceType": "Bundle", "type": "transaction", "entry": entries]
    }

    static func push(
        _ context: Context,
        _ bundle: Any,
        token: String,
        client: ClientFiles? = nil,
        contentType: String = "application/fhir+json",
        headers extra: HTTPFields = [:]
    ) async throws -> TestClient.Response {
        var headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: contentType]
        for field in extra { headers.append(field) }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: bundle), as: UTF8.self)
        return try await context.running.request(
            MESService.basePath + "/fhir",
            method: .post,
            client: client ?? context.service,
            headers: headers,
            body: body
        )
    }

    static func get(
        _ context: Context,
        _ path: String,
        token: String?,
        client: ClientFiles? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> TestClient.Response {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        for field in extra { headers.append(field) }
        return try await context.running.request(
            MESService.basePath + "/fhir/" + path,
            client: client ?? context.service,
            headers: headers
        )
    }

    static func observationCount(_ context: Context) async throws -> Int {
        try await context.running.sandbox.mes.repository.count(type: "Observation")
    }

    static func issueCodes(_ response: TestClient.Response) throws -> [String] {
        try (response.json()["issue"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String }
    }

    static func expressions(_ response: TestClient.Response) throws -> [String] {
        try (response.json()["issue"] as? [[String: Any]] ?? []).flatMap { $0["expression"] as? [String] ?? [] }
    }

    static func diagnostics(_ response: TestClient.Response) throws -> String {
        try ((response.json()["issue"] as? [[String: Any]])?.first?["diagnostics"] as? String) ?? ""
    }

    // MARK: The whole exchange

    @Test func pairingPushSearchLastValueAndInclude() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            // The page lists the patients (INSi identities) and the service asking.
            let page = try await context.running.admin(
                MESService.authorizePath
                    + "?response_type=code&client_id=\(Self.clientId)&redirect_uri=\(FormEncoding.encodeForTest(Self.redirect))&state=s-1&scope=openid%20mesures"
            )
            #expect(page.status == .ok)
            #expect(page.text.contains("Balance connectée du bac à sable"))
            #expect(page.text.contains("value=\"\(Self.nessi)\""))
            let tokens = try await Self.pair(context, ins: Self.nessi)
            let accessToken = try #require(tokens["access_token"] as? String)
            #expect(tokens["token_type"] as? String == "Bearer")
            #expect(tokens["refresh_token"] as? String != nil)
            let idToken = try Self.claims(try #require(tokens["id_token"] as? String))
            let idPe = try #require(idToken["idpe"] as? String)
            #expect(idToken["sub"] as? String == idPe)
            #expect((idToken["aud"] as? [String] ?? [idToken["aud"] as? String ?? ""]).contains(Self.clientId))
            #expect(!idPe.contains(Self.nessi.prefix(13)), "the idPe is never the INS")
            let access = try Self.claims(accessToken)
            #expect((access["cnf"] as? [String: String])?["x5t#S256"] != nil, "bound to the certificate (RFC 8705)")

            // A weight with its scale.
            let pushed = try await Self.push(context, Self.weight(idPe: idPe, device: true), token: accessToken)
            #expect(pushed.status == .ok, "\(pushed.text)")
            let responses = try #require(try pushed.json()["entry"] as? [[String: Any]]).compactMap {
                $0["response"] as? [String: Any]
            }
            #expect(try pushed.json()["type"] as? String == "transaction-response")
            #expect(responses.map { $0["status"] as? String } == ["201 Created", "201 Created"])
            #expect((responses[1]["location"] as? String)?.hasPrefix("Observation/") == true)
            // The same scale again: found by ifNoneExist, not created twice.
            let again = try await Self.push(
                context,
                Self.weight(idPe: idPe, value: 70.9, date: "2026-12-02T08:00:00+01:00", device: true),
                token: accessToken
            )
            let statuses = try (again.json()["entry"] as? [[String: Any]] ?? []).compactMap {
                ($0["response"] as? [String: Any])?["status"] as? String
            }
            #expect(statuses == ["200 OK", "201 Created"])
            #expect(try await context.running.sandbox.mes.repository.count(type: "Device") == 1)

            let subject = "subject.identifier=urn:oid:\(Self.oid)%7C\(idPe)"
            let all = try await Self.get(context, "Observation?\(subject)&code=29463-7", token: accessToken)
            #expect(all.status == .ok, "\(all.text)")
            #expect(try all.json()["total"] as? Int == 2)
            let last = try await Self.get(
                context,
                "Observation?\(subject)&code=29463-7&_sort=-date&_count=1&_include=Observation:device",
                token: accessToken
            )
            let entries = try #require(try last.json()["entry"] as? [[String: Any]])
            #expect(entries.count == 2, "the last value and its device")
            let newest = try #require(entries.first?["resource"] as? [String: Any])
            #expect((newest["valueQuantity"] as? [String: Any])?["value"] as? Double == 70.9)
            #expect((entries[1]["resource"] as? [String: Any])?["resourceType"] as? String == "Device")
            #expect((entries[1]["search"] as? [String: String])?["mode"] == "include")
            let links = try #require(try last.json()["link"] as? [[String: String]])
            #expect(links.contains { $0["relation"] == "next" && $0["url"]?.contains("_offset=1") == true })
            // Dates: only the first day.
            let first = try await Self.get(
                context,
                "Observation?\(subject)&date=le2026-12-01T23:00:00%2B01:00",
                token: accessToken
            )
            #expect(try first.json()["total"] as? Int == 1)
            // Read by id, with the id_token too.
            let id = try #require(newest["id"] as? String)
            let read = try await Self.get(
                context,
                "Observation/\(id)",
                token: accessToken,
                headers: [MESService.idTokenHeader: try #require(tokens["id_token"] as? String)]
            )
            #expect(read.status == .ok)
            #expect(read.headers[.eTag] == "W/\"1\"")

            // The pairing shows the tokens issued and the call.
            let pairing = try #require(try context.running.sandbox.mes.directory.pairings(ins: Self.nessi).first)
            #expect(pairing.tokensIssued == 1)
            #expect(pairing.lastCallAt != nil)
        }
    }

    /// Discovery names absolute endpoints (the pairing page on the admin listener) and the JWKS verifies the tokens
    /// with an independent key collection.
    @Test func discoveryNamesTheEndpointsAndTheJWKSVerifiesTokens() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let discovery = try await context.running.request(
                MESService.basePath + "/.well-known/openid-configuration",
                client: context.service
            ).json()
            let issuer = try #require(discovery["issuer"] as? String)
            #expect(
                discovery["authorization_endpoint"] as? String == context.running.info.admin + MESService.authorizePath
            )
            #expect(discovery["token_endpoint"] as? String == issuer + "/oauth/token")
            let tokens = try await Self.pair(context, ins: Self.nessi)
            let jwksURI = try #require(discovery["jwks_uri"] as? String)
            let jwks = try await context.running.request(
                try #require(URLComponents(string: jwksURI)?.path),
                client: context.service
            )
            let keys = try await JWTKeyCollection().add(jwksJSON: jwks.text)
            let access = try await keys.verify(try #require(tokens["access_token"] as? String), as: MESAccessToken.self)
            #expect(access.iss.value == issuer)
            let id = try await keys.verify(try #require(tokens["id_token"] as? String), as: MESIDToken.self)
            #expect(id.idpe == access.idpe)
        }
    }

    @Test func pkceRefreshRotationAndRevocation() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let verifier = String(repeating: "v", count: 50)
            let challenge = PKCE.s256(verifier)
            let pkce = [("code_challenge", challenge), ("code_challenge_method", "S256")]
            func code() async throws -> String {
                let page = try await Self.consent(context, ins: Self.nessi, extra: pkce)
                return try #require(Self.query(page.headers[.location])["code"])
            }
            let base = [
                ("grant_type", "authorization_code"), ("redirect_uri", Self.redirect), ("client_id", Self.clientId),
                ("client_secret", Self.secret),
            ]
            let missing = try await Self.token(context, base + [("code", try await code())])
            #expect(missing.status == .badRequest)
            #expect(try missing.json()["error"] as? String == "invalid_grant")
            let wrong = try await Self.token(
                context,
                base + [("code", try await code()), ("code_verifier", verifier + "x")]
            )
            #expect(try wrong.json()["error"] as? String == "invalid_grant")
            let good = try await Self.token(context, base + [("code", try await code()), ("code_verifier", verifier)])
            #expect(good.status == .ok, "\(good.text)")
            let refresh = try #require(try good.json()["refresh_token"] as? String)
            let access = try #require(try good.json()["access_token"] as? String)

            // Refresh: new tokens; the old refresh token is spent (rotation).
            let refreshForm = [
                ("grant_type", "refresh_token"), ("client_id", Self.clientId), ("client_secret", Self.secret),
            ]
            let renewed = try await Self.token(context, refreshForm + [("refresh_token", refresh)])
            #expect(renewed.status == .ok, "\(renewed.text)")
            let newRefresh = try #require(try renewed.json()["refresh_token"] as? String)
            let newAccess = try #require(try renewed.json()["access_token"] as? String)
            let replayed = try await Self.token(context, refreshForm + [("refresh_token", refresh)])
            #expect(try replayed.json()["error"] as? String == "invalid_grant")

            // Revocation (RFC 7009): the access token stops working; a refresh token takes its pairing's access tokens.
            let idPe = try #require(try Self.claims(newAccess)["idpe"] as? String)
            let query = "Observation?subject.identifier=urn:oid:\(Self.oid)%7C\(idPe)"
            #expect(try await Self.get(context, query, token: access).status == .ok)
            let revoke = try await context.running.request(
                MESService.basePath + "/oauth/revoke",
                method: .post,
                client: context.service,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: Self.form([("token", access), ("client_id", Self.clientId), ("client_secret", Self.secret)])
            )
            #expect(revoke.status == .ok)
            let revoked = try await Self.get(context, query, token: access)
            #expect(revoked.status == .unauthorized)
            #expect(revoked.headers[.wwwAuthenticate]?.contains("invalid_token") == true)
            #expect(try await Self.get(context, query, token: newAccess).status == .ok)
            _ = try await context.running.request(
                MESService.basePath + "/oauth/revoke",
                method: .post,
                client: context.service,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: Self.form([("token", newRefresh), ("client_id", Self.clientId), ("client_secret", Self.secret)])
            )
            #expect(try await Self.get(context, query, token: newAccess).status == .unauthorized)
            #expect(
                try await Self.token(context, refreshForm + [("refresh_token", newRefresh)]).json()["error"] as? String
                    == "invalid_grant"
            )
            // Unknown tokens are not an error (RFC 7009 §2.2).
            let unknown = try await context.running.request(
                MESService.basePath + "/oauth/revoke",
                method: .post,
                client: context.service,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: Self.form([("token", "nothing"), ("client_id", Self.clientId), ("client_secret", Self.secret)])
            )
            #expect(unknown.status == .ok)
            // The JWKS serves the signing key.
            let jwks = try await context.running.request(MESService.basePath + "/oauth/jwks", client: context.service)
            #expect(((try jwks.json()["keys"] as? [[String: Any]])?.first?["kty"] as? String) == "EC")
        }
    }

    // MARK: OAuth2 refusals

    @Test func authorizationPageRefusals() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            // An unknown client or a redirect URI not registered: an error page, never a redirect.
            for (clientId, uri) in [("nobody", Self.redirect), (Self.clientId, "https://evil.example/steal")] {
                let page = try await Self.consent(context, ins: Self.nessi, clientId: clientId, redirectURI: uri)
                #expect(page.status == .badRequest)
                #expect(page.headers[.location] == nil)
            }
            let get = try await context.running.admin(
                MESService.authorizePath + "?response_type=code&client_id=\(Self.clientId)"
            )
            #expect(get.status == .badRequest, "redirect_uri missing")
            // Other errors go back to the service with the state.
            let wrongType = try await context.running.admin(
                MESService.authorizePath
                    + "?response_type=token&client_id=\(Self.clientId)&redirect_uri=\(FormEncoding.encodeForTest(Self.redirect))&state=s-9"
            )
            #expect(wrongType.status == .seeOther)
            #expect(Self.query(wrongType.headers[.location])["error"] == "unsupported_response_type")
            #expect(Self.query(wrongType.headers[.location])["state"] == "s-9")
            let scope = try await context.running.admin(
                MESService.authorizePath
                    + "?response_type=code&client_id=\(Self.clientId)&redirect_uri=\(FormEncoding.encodeForTest(Self.redirect))&scope=admin"
            )
            #expect(Self.query(scope.headers[.location])["error"] == "invalid_scope")
            let pkce = try await context.running.admin(
                MESService.authorizePath
                    + "?response_type=code&client_id=\(Self.clientId)&redirect_uri=\(FormEncoding.encodeForTest(Self.redirect))&code_challenge=short"
            )
            #expect(Self.query(pkce.headers[.location])["error"] == "invalid_request")
            // The patient refuses.
            let denied = try await Self.consent(context, ins: Self.nessi, decision: "deny")
            #expect(Self.query(denied.headers[.location])["error"] == "access_denied")
            #expect(Self.query(denied.headers[.location])["state"] == "s-42")
            #expect(
                try context.running.sandbox.mes.directory.pairings(ins: Self.nessi).isEmpty,
                "no pairing without consent"
            )
            // No patient chosen: the page again, with the error.
            let none = try await Self.consent(context, ins: "")
            #expect(none.status == .badRequest)
            #expect(none.text.contains("Choisissez un patient"))
        }
    }

    @Test func tokenEndpointRefusals() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let page = try await Self.consent(context, ins: Self.nessi)
            let code = try #require(Self.query(page.headers[.location])["code"])
            let client = [("client_id", Self.clientId), ("client_secret", Self.secret)]
            func error(
                _ items: [(String, String)],
                client files: ClientFiles? = nil,
                contentType: String? = nil
            ) async throws -> (HTTPResponse.Status, String?) {
                let response: TestClient.Response
                if let contentType {
                    response = try await context.running.request(
                        MESService.tokenPath,
                        method: .post,
                        client: context.service,
                        headers: [.contentType: contentType],
                        body: Self.form(items)
                    )
                } else {
                    response = try await Self.token(context, items, client: files)
                }
                return (response.status, try response.json()["error"] as? String)
            }
            let grant = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect)]
            #expect(try await error(grant + [("client_id", Self.clientId)]) == (.unauthorized, "invalid_client"))
            #expect(
                try await error(grant + [("client_id", Self.clientId), ("client_secret", "wrong")]) == (
                    .unauthorized, "invalid_client"
                )
            )
            #expect(
                try await error(grant + [("client_id", "nobody"), ("client_secret", Self.secret)]) == (
                    .unauthorized, "invalid_client"
                )
            )
            // Another certificate whitelisted for mes (the demo LPS), with the right secret: not this client's.
            let lps = try #require(context.running.info.clientCertificates["insi-lps"])
            let other = ClientFiles(
                folder: lps.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(lps)
            )
            #expect(try await error(grant + client, client: other) == (.unauthorized, "invalid_client"))
            #expect(
                try await error(grant + client, contentType: "application/json") == (.badRequest, "invalid_request")
            )
            #expect(try await error(client) == (.badRequest, "invalid_request"))
            #expect(try await error(client + [("grant_type", "password")]) == (.badRequest, "unsupported_grant_type"))
            #expect(
                try await error(client + [("grant_type", "authorization_code"), ("redirect_uri", Self.redirect)]) == (
                    .badRequest, "invalid_request"
                )
            )
            #expect(
                try await error(
                    client + [
                        ("grant_type", "authorization_code"), ("code", "forged"), ("redirect_uri", Self.redirect),
                    ]
                ) == (.badRequest, "invalid_grant")
            )
            // A code presented with another redirect URI is spent and refused.
            #expect(
                try await error(
                    client + [
                        ("grant_type", "authorization_code"), ("code", code),
                        ("redirect_uri", "http://127.0.0.1:8080/console/mes/callback"),
                    ]
                ) == (.badRequest, "invalid_grant")
            )

            // A code used twice: refused, and the tokens of its first use are revoked.
            let second = try #require(
                Self.query(try await Self.consent(context, ins: Self.nessi).headers[.location])["code"]
            )
            let first = try await Self.token(
                context,
                client + [("grant_type", "authorization_code"), ("code", second), ("redirect_uri", Self.redirect)]
            )
            let access = try #require(try first.json()["access_token"] as? String)
            let idPe = try #require(try Self.claims(access)["idpe"] as? String)
            let query = "Observation?subject.identifier=urn:oid:\(Self.oid)%7C\(idPe)"
            #expect(try await Self.get(context, query, token: access).status == .ok)
            #expect(
                try await error(
                    client + [("grant_type", "authorization_code"), ("code", second), ("redirect_uri", Self.redirect)]
                ) == (.badRequest, "invalid_grant")
            )
            #expect(try await Self.get(context, query, token: access).status == .unauthorized)

            // An expired code.
            let third = try #require(
                Self.query(try await Self.consent(context, ins: Self.nessi).headers[.location])["code"]
            )
            try await context.running.sandbox.store.writer.write { db in
                try db.execute(
                    sql: "UPDATE mes_authorization_code SET expires_at = 0 WHERE code = ?",
                    arguments: [third]
                )
            }
            #expect(
                try await error(
                    client + [("grant_type", "authorization_code"), ("code", third), ("redirect_uri", Self.redirect)]
                ) == (.badRequest, "invalid_grant")
            )
            // HTTP Basic works in place of the form's secret.
            let fourth = try #require(
                Self.query(try await Self.consent(context, ins: Self.nessi).headers[.location])["code"]
            )
            let basic = Data("\(Self.clientId):\(Self.secret)".utf8).base64EncodedString()
            let viaBasic = try await context.running.request(
                MESService.tokenPath,
                method: .post,
                client: context.service,
                headers: [.contentType: "application/x-www-form-urlencoded", .authorization: "Basic \(basic)"],
                body: Self.form([
                    ("grant_type", "authorization_code"), ("code", fourth), ("redirect_uri", Self.redirect),
                ])
            )
            #expect(viaBasic.status == .ok, "\(viaBasic.text)")
        }
    }

    // MARK: Business-call refusals

    @Test func accessTokenRefusals() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let tokens = try await Self.pair(context, ins: Self.nessi)
            let access = try #require(tokens["access_token"] as? String)
            let idPe = try #require(try Self.claims(access)["idpe"] as? String)
            let query = "Observation?subject.identifier=urn:oid:\(Self.oid)%7C\(idPe)"
            func refused(
                _ token: String?,
                client: ClientFiles? = nil,
                headers: HTTPFields = [:]
            ) async throws -> TestClient.Response {
                try await Self.get(context, query, token: token, client: client, headers: headers)
            }
            let none = try await refused(nil)
            #expect(none.status == .unauthorized)
            #expect(none.headers[.wwwAuthenticate]?.contains("error=\"invalid_token\"") == true)
            #expect(try none.json()["resourceType"] as? String == "OperationOutcome")
            var forged = Array(access)
            forged[forged.count - 3] = forged[forged.count - 3] == "A" ? "B" : "A"
            #expect(try await refused(String(forged)).status == .unauthorized)
            // Expired: signed with the sandbox's own key, an hour ago.
            let key = try ES256PrivateKey(
                pem: String(
                    contentsOf: SharedPKI.pki.directory.appendingPathComponent("mes-signing-key.pem"),
                    encoding: .utf8
                )
            )
            var claims = try JSONDecoder().decode(
                MESAccessToken.self,
                from: JSONSerialization.data(withJSONObject: try Self.claims(access))
            )
            claims.exp = .init(value: Date().addingTimeInterval(-3600))
            let keys = JWTKeyCollection()
            await keys.add(ecdsa: key, kid: "esante-sandbox-mes")
            let expired = try await keys.sign(claims, kid: "esante-sandbox-mes")
            let expiredAnswer = try await refused(expired)
            #expect(expiredAnswer.status == .unauthorized)
            #expect(try Self.diagnostics(expiredAnswer).contains("expired"))
            // A certificate with the service's DN but another key: not the certificate the token is bound to.
            let twin = try SharedPKI.client(Self.serviceDN)
            let twinAnswer = try await refused(access, client: twin)
            #expect(twinAnswer.status == .unauthorized)
            #expect(try Self.diagnostics(twinAnswer).contains("bound to another certificate"))
            // Another service (another DN, registered and whitelisted) presenting this token.
            let otherDN = "CN=APPLI_GLYCEMIE_SANDBOX,OU=0002 449999998,O=EDITEUR SANDBOX GLYCEMIE,C=FR"
            let otherFiles = try SharedPKI.client(otherDN)
            let registered = try await context.running.admin(
                "/admin/mes/services",
                method: .post,
                body:
                    #"{"name":"Glycémie","subjectDN":"\#(otherDN)","redirectURIs":["https://glyc.example/cb"],"pairingOID":"1.2.250.1.999.43.1","clientId":"glycemie","clientSecret":"g"}"#
            )
            #expect(registered.status == .created, "\(registered.text)")
            #expect(try await refused(access, client: otherFiles).status == .unauthorized)
            // The id_token: garbage is 400; another pairing's is 401.
            let garbage = try await refused(access, headers: [MESService.idTokenHeader: "not-a-jwt"])
            #expect(garbage.status == .badRequest)
            #expect(try Self.diagnostics(garbage).contains("invalid ID_TOKEN JWT"))
            let zoe = try await Self.pair(context, ins: Self.zoe)
            let otherID = try #require(zoe["id_token"] as? String)
            #expect(try await refused(access, headers: [MESService.idTokenHeader: otherID]).status == .unauthorized)
            #expect(
                try await refused(
                    access,
                    headers: [MESService.idTokenHeader: try #require(tokens["id_token"] as? String)]
                ).status == .ok
            )
        }
    }

    @Test func idPeConsentAndDeviceConflicts() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let tokens = try await Self.pair(context, ins: Self.nessi)
            let access = try #require(tokens["access_token"] as? String)
            let idPe = try #require(try Self.claims(access)["idpe"] as? String)
            let before = try await Self.observationCount(context)
            // Another patient's idPe (ZOE's pairing), or another OID: 403.
            let zoe = try #require(try context.running.sandbox.mes.directory.pairings(ins: Self.zoe).first)
            for bundle in [Self.weight(idPe: zoe.idPe), Self.weight(idPe: idPe, oid: "1.2.3.4")] {
                let answer = try await Self.push(context, bundle, token: access)
                #expect(answer.status == .forbidden)
                #expect(try Self.diagnostics(answer) == "idPe requested do not match authorized idPe")
            }
            let search = try await Self.get(
                context,
                "Observation?subject.identifier=urn:oid:\(Self.oid)%7C\(zoe.idPe)",
                token: access
            )
            #expect(search.status == .forbidden)
            // Consent withdrawn (the patient's choice): 403, and the refresh token no longer works; given back, it works.
            let pairing = try #require(try context.running.sandbox.mes.directory.pairings(ins: Self.nessi).first)
            let withdrawn = try await context.running.admin(
                "/admin/mes/pairings/\(pairing.id)/consent",
                method: .post,
                body: #"{"consent": false}"#
            )
            #expect(withdrawn.status == .ok)
            let refused = try await Self.push(context, Self.weight(idPe: idPe), token: access)
            #expect(refused.status == .forbidden)
            #expect(try Self.diagnostics(refused) == "Consent not given")
            let refresh = try await Self.token(
                context,
                [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", try #require(tokens["refresh_token"] as? String)), ("client_id", Self.clientId),
                    ("client_secret", Self.secret),
                ]
            )
            #expect(try refresh.json()["error"] as? String == "invalid_grant")
            _ = try await context.running.admin(
                "/admin/mes/pairings/\(pairing.id)/consent",
                method: .post,
                body: #"{"consent": true}"#
            )
            #expect(try await Self.push(context, Self.weight(idPe: idPe), token: access).status == .ok)
            // A device declared by another service under the same identifier: 409.
            #expect(try await Self.push(context, Self.weight(idPe: idPe, device: true), token: access).status == .ok)
            let otherDN = "CN=APPLI_TENSION_SANDBOX,OU=0002 449999997,O=EDITEUR SANDBOX TENSION,C=FR"
            let otherFiles = try SharedPKI.client(otherDN)
            _ = try await context.running.admin(
                "/admin/mes/services",
                method: .post,
                body:
                    #"{"name":"Tension","subjectDN":"\#(otherDN)","redirectURIs":["https://tension.example/cb"],"pairingOID":"1.2.250.1.999.44.1","clientId":"tension","clientSecret":"t"}"#
            )
            let paired = try await context.running.admin(
                "/admin/mes/pairings",
                method: .post,
                body: #"{"clientId":"tension","ins":"\#(Self.nessi)"}"#
            )
            #expect(paired.status == .created, "\(paired.text)")
            let otherAnswer = try paired.json()
            let otherAccess = try #require((otherAnswer["tokens"] as? [String: Any])?["access_token"] as? String)
            let otherIdPe = try #require((otherAnswer["pairing"] as? [String: Any])?["idPe"] as? String)
            #expect(otherIdPe != idPe, "one idPe per service")
            let conflict = try await Self.push(
                context,
                Self.weight(idPe: otherIdPe, oid: "1.2.250.1.999.44.1", device: true),
                token: otherAccess,
                client: otherFiles
            )
            #expect(conflict.status == .conflict, "\(conflict.text)")
            #expect(try await Self.observationCount(context) == before + 2, "nothing stored by a refusal")
            // The admin pairing's token was bound to the first certificate that used it.
            let twin = try SharedPKI.client(otherDN)
            let bound = try await Self.get(
                context,
                "Observation?subject.identifier=urn:oid:1.2.250.1.999.44.1%7C\(otherIdPe)",
                token: otherAccess,
                client: twin
            )
            #expect(bound.status == .unauthorized)
        }
    }

    @Test func profileViolationsAreNamedOneIssueEach() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let access = try #require(try await Self.pair(context, ins: Self.nessi)["access_token"] as? String)
            let idPe = try #require(try Self.claims(access)["idpe"] as? String)
            let before = try await Self.observationCount(context)
            let cases: [([String: Any], [String])] = [
                (Self.weight(idPe: idPe, unit: "[lb_av]"), ["Observation.valueQuantity.code"]),
                (Self.weight(idPe: idPe, value: 900), ["Observation.valueQuantity.value"]),
                (Self.weight(idPe: idPe, date: "2099-01-01T00:00:00+01:00"), ["Observation.effectiveDateTime"]),
                (Self.weight(idPe: idPe, date: "hier"), ["Observation.effectiveDateTime"]),
                (Self.weight(idPe: idPe, code: "1234-5"), ["Observation.code.coding"]),
                (
                    Self.weight(idPe: idPe, value: 900, unit: "g", date: "2099-01-01T00:00:00Z"),
                    [
                        "Observation.effectiveDateTime", "Observation.valueQuantity.code",
                        "Observation.valueQuantity.value",
                    ]
                ),
            ]
            for (bundle, expected) in cases {
                let answer = try await Self.push(context, bundle, token: access)
                #expect(answer.status == .unprocessableContent, "\(answer.text)")
                #expect(Set(try Self.expressions(answer)) == Set(expected), "\(answer.text)")
            }
            // Blood pressure needs both components in mm[Hg].
            var pressure = Self.weight(idPe: idPe, code: "85354-9")
            var entry = (pressure["entry"] as! [[String: Any]])[0]
            var observation = entry["resource"] as! [String: Any]
            observation["valueQuantity"] = nil
            observation["component"] = [
                [
                    "code": ["coding": [["system": "http://loinc.org", "code": "8480-6"]]],
                    "valueQuantity": ["value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"],
                ]
            ]
            entry["resource"] = observation
            pressure["entry"] = [entry]
            let missing = try await Self.push(context, pressure, token: access)
            #expect(missing.status == .unprocessableContent)
            #expect(try Self.diagnostics(missing).contains("diastolique"))
            #expect(try await Self.observationCount(context) == before, "nothing stored")
        }
    }

    @Test func hostileAndMalformedBodies() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let access = try #require(try await Self.pair(context, ins: Self.nessi)["access_token"] as? String)
            let idPe = try #require(try Self.claims(access)["idpe"] as? String)
            let before = try await Self.observationCount(context)
            func raw(
                _ bytes: [UInt8],
                contentType: String = "application/fhir+json"
            ) async throws -> TestClient.Response {
                try await context.running.request(
                    MESService.basePath + "/fhir",
                    method: .post,
                    client: context.service,
                    headers: [.authorization: "Bearer \(access)", .contentType: contentType],
                    bytes: bytes
                )
            }
            let weight = Array(try JSONSerialization.data(withJSONObject: Self.weight(idPe: idPe)))
            #expect(try await raw(weight, contentType: "text/plain").status == .unsupportedMediaType)
            #expect(
                try await raw(Array(repeating: UInt8(ascii: " "), count: MESService.maximumBody + 1) + Array("{}".utf8))
                    .status == .contentTooLarge
            )
            #expect(try await raw(Array(String(repeating: "[", count: 200).utf8)).status == .badRequest)
            #expect(try await raw([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]).status == .badRequest)
            #expect(try await raw(Array("not json".utf8)).status == .badRequest)
            #expect(try await raw(Array(#"{"resourceType":"Patient"}"#.utf8)).status == .badRequest)
            let batch = try await raw(Array(#"{"resourceType":"Bundle","type":"batch","entry":[]}"#.utf8))
            #expect(batch.status == .badRequest)
            #expect(try Self.expressions(batch) == ["Bundle.type"])
            var twoObservations = Self.weight(idPe: idPe)
            twoObservations["entry"] = (twoObservations["entry"] as! [Any]) + (twoObservations["entry"] as! [Any])
            #expect(try await Self.push(context, twoObservations, token: access).status == .badRequest)
            var wrongMethod = Self.weight(idPe: idPe)
            var entry = (wrongMethod["entry"] as! [[String: Any]])[0]
            entry["request"] = ["method": "PUT", "url": "Observation/x"]
            wrongMethod["entry"] = [entry]
            let wrong = try await Self.push(context, wrongMethod, token: access)
            #expect(try Self.expressions(wrong) == ["Bundle.entry[0].request"])
            // Search refusals.
            let subject = "subject.identifier=urn:oid:\(Self.oid)%7C\(idPe)"
            for (query, expression) in [
                ("code=29463-7", "subject.identifier"), ("\(subject)&_count=101", "_count"),
                ("\(subject)&_offset=-1", "_offset"), ("\(subject)&color=red", "color"),
                ("\(subject)&_sort=value", "_sort"), ("\(subject)&date=yesterday", "date"),
            ] {
                let answer = try await Self.get(context, "Observation?\(query)", token: access)
                #expect(answer.status == .badRequest, "\(query)")
                #expect(try Self.expressions(answer) == [expression], "\(query): \(answer.text)")
            }
            #expect(try await Self.observationCount(context) == before, "nothing stored")
            // Still serving.
            #expect(try await Self.push(context, Self.weight(idPe: idPe), token: access).status == .ok)
        }
    }

    /// The README's curl walk-through, run as printed against this sandbox.
    @Test(.enabled(if: Reference.hasCurlAndPython, "needs curl and python3"))
    func readmeWalkthroughRunsAsPrinted() async throws {
        let readme = try String(
            contentsOf: SharedPKI.repositorySeeds.deletingLastPathComponent().appendingPathComponent("README.md"),
            encoding: .utf8
        )
        let block = try #require(
            readme.components(separatedBy: "<!-- mes-walkthrough -->\n```sh\n").dropFirst().first?.components(
                separatedBy: "\n```"
            ).first
        )
        let context = try await Self.start()
        try await context.running.whileRunning {
            let script = FileManager.default.temporaryDirectory.appendingPathComponent(
                "mes-walkthrough-\(UUID().uuidString).sh"
            )
            try Data(block.utf8).write(to: script)
            let pki = context.running.sandbox.pki.directory.path
            let run = try await Shell.run(
                "A='\(context.running.info.admin)' T='\(context.running.info.tls)' P='\(pki)' bash -e '\(script.path)'"
            )
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(#""type":"transaction-response""#), "\(run.stdout)")
            #expect(run.stdout.contains(#""total":1"#), "\(run.stdout)")
            #expect(run.stdout.contains("70.4"))
        }
    }

    @Test func commandLineRegistersAService() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mes-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = try SandboxStore.open(path: folder.appendingPathComponent("sandbox.sqlite").path)
        let arguments = [
            "mes", "service", "add", "--data-dir", folder.path, "--name", "Appli CLI", "--subject-dn",
            "CN=APPLI_CLI,O=EDITEUR,C=FR",
            "--redirect-uri", "https://cli.example/cb", "--pairing-oid", "1.2.250.1.999.46.1", "--client-id", "cli-app",
        ]
        let added = try await Shell.sandbox(arguments)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.contains("registered cli-app"))
        let again = try await Shell.sandbox(arguments)
        #expect(again.status == 2)
        #expect(again.stderr.contains("clientId: 'cli-app' is already registered"))
        let noDN = try await Shell.sandbox([
            "mes", "service", "add", "--data-dir", folder.path, "--name", "x", "--pairing-oid", "1.2.3",
        ])
        #expect(noDN.status == 2)
        #expect(noDN.stderr.contains("--subject-dn or --certificate"))
        let whitelist = try await Shell.sandbox(["whitelist", "list", "--data-dir", folder.path, "--service", "mes"])
        #expect(whitelist.stdout.contains("CN=APPLI_CLI,O=EDITEUR,C=FR"))
        let listed = try await Shell.sandbox(["mes", "service", "list", "--data-dir", folder.path])
        #expect(listed.stdout.contains("cli-app\t1.2.250.1.999.46.1"))
        for listing in [["service", "list"], ["pairings"], ["patients"]] {
            let json = try await Shell.sandbox(["mes"] + listing + ["--data-dir", folder.path, "--json"])
            #expect(json.status == 0, "\(json.stderr)")
            let array = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
            #expect(array != nil, "\(listing): \(json.stdout)")
            if listing == ["service", "list"] {
                #expect(array?.contains { $0["clientId"] as? String == "cli-app" } == true)
            }
        }
    }

    // MARK: Admin, seeds, console

    @Test func adminAPIResetAndExport() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let patients = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(try await context.running.admin("/admin/mes/patients").text.utf8)
                ) as? [[String: Any]]
            )
            #expect(patients.count == 5)
            #expect(
                patients.first { $0["ins"] as? String == Self.zoe }?["messagingAddress"] as? String
                    == "\(Self.zoe)@patient.mssante.fr"
            )
            let invalid: [(String, HTTPResponse.Status, String)] = [
                (#"{"name":"x"}"#, .badRequest, "subjectDN"),
                (
                    #"{"name":"x","subjectDN":"not a dn","redirectURIs":["https://a.example/cb"],"pairingOID":"1.2.3"}"#,
                    .badRequest, "subjectDN"
                ),
                (
                    #"{"name":"x","subjectDN":"CN=X,C=FR","redirectURIs":["ftp://a.example/cb"],"pairingOID":"1.2.3"}"#,
                    .badRequest, "redirectURIs"
                ),
                (
                    #"{"name":"x","subjectDN":"CN=X,C=FR","redirectURIs":["https://a.example/cb"],"pairingOID":"one.two"}"#,
                    .badRequest, "pairingOID"
                ),
                (
                    #"{"name":"x","subjectDN":"CN=X,C=FR","redirectURIs":["https://a.example/cb"],"pairingOID":"1.2.250.1.999.42.1"}"#,
                    .conflict, "pairingOID"
                ),
                (
                    #"{"name":"x","subjectDN":"CN=X,C=FR","redirectURIs":["https://a.example/cb"],"pairingOID":"1.2.3","clientId":"esante-sandbox-balance"}"#,
                    .conflict, "clientId"
                ),
            ]
            for (body, status, field) in invalid {
                let answer = try await context.running.admin("/admin/mes/services", method: .post, body: body)
                #expect(answer.status == status, "\(body)")
                #expect(answer.text.contains(field), "\(answer.text)")
            }
            let unknownPatient = try await context.running.admin(
                "/admin/mes/pairings",
                method: .post,
                body: #"{"clientId":"esante-sandbox-balance","ins":"299999999999999"}"#
            )
            #expect(unknownPatient.status == .notFound)
            let noConsent = try await context.running.admin(
                "/admin/mes/pairings",
                method: .post,
                body: #"{"clientId":"esante-sandbox-balance","ins":"\#(Self.nessi)","consent":false}"#
            )
            #expect(noConsent.status == .created)
            #expect(try noConsent.json()["tokens"] == nil)
            #expect(
                try await context.running.admin(
                    "/admin/mes/pairings/999/consent",
                    method: .post,
                    body: #"{"consent":true}"#
                ).status == .notFound
            )

            // The export holds every seeded kind, one JSON object a line.
            let export = try await context.running.admin("/admin/mes/export")
            #expect(export.headers[.contentType] == "application/x-ndjson")
            let lines = export.text.split(separator: "\n").map {
                try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
            #expect(lines.contains { $0["kind"] as? String == "service" })
            #expect(lines.filter { $0["resourceType"] as? String == "Observation" }.count >= 20)

            // Reset: a registered service disappears, the seeds come back.
            _ = try await context.running.admin(
                "/admin/mes/services",
                method: .post,
                body:
                    #"{"name":"Temporaire","subjectDN":"CN=TEMP,C=FR","redirectURIs":["https://t.example/cb"],"pairingOID":"1.2.250.1.999.45.1"}"#
            )
            #expect(try context.running.sandbox.mes.directory.services().count == 2)
            #expect(try await context.running.admin("/admin/reset", method: .post).status == .ok)
            #expect(try context.running.sandbox.mes.directory.services().map(\.clientId) == [Self.clientId])
            #expect(try context.running.sandbox.mes.directory.pairings().count == 2)
            #expect(try await Self.observationCount(context) > 0)
            #expect(try await context.running.sandbox.ror.repository.count(type: "Location") > 0, "the ROR seeds too")
        }
    }

    @Test func consolePageChartsAndConsentToggle() async throws {
        let context = try await Self.start()
        try await context.running.whileRunning {
            let page = try await context.running.admin("/console/mes")
            #expect(page.status == .ok)
            #expect(page.text.contains("\(Self.zoe)@patient.mssante.fr"))
            #expect(page.text.contains("Apparier un patient"))
            let patient = try await context.running.admin("/console/mes/patients/\(Self.zoe)")
            #expect(patient.text.contains("<svg id=\"chart-29463-7\""))
            // One point per seeded weight (14 values).
            let chart = try #require(
                patient.text.components(separatedBy: "<svg id=\"chart-29463-7\"").last?.components(
                    separatedBy: "</svg>"
                ).first
            )
            #expect(chart.components(separatedBy: "<circle").count - 1 == 14)
            let pressure = try await context.running.admin("/console/mes/patients/181036322045660")
            #expect(pressure.text.contains("systolique") && pressure.text.contains("diastolique"))
            let pairing = try #require(try context.running.sandbox.mes.directory.pairings(ins: Self.zoe).first)
            let toggled = try await context.running.admin(
                "/console/mes/pairings/\(pairing.id)/consent",
                method: .post,
                body: "consent=false",
                headers: [.contentType: "application/x-www-form-urlencoded"]
            )
            #expect(toggled.status == .seeOther)
            #expect(try context.running.sandbox.mes.directory.pairing(id: pairing.id)?.consent == false)
            #expect(try await context.running.admin("/console/mes/patients/000").status == .notFound)
        }
    }
}

extension FormEncoding {
    /// Percent-encodes a form value for these tests (every reserved character, so that `+`, `&` and `|` survive).
    static func encodeForTest(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? text
    }
}
