import Access
import Foundation
import HTTPCommon
import HTTPTypes
import HummingbirdTesting
import MonEspaceSante
import Testing

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

@Suite("Recette: the CSD and Mon espace santé packs")
struct RecetteCSDAndMESTests {
    static let csdDN = "CN=CLIENT_WS_ROR_SANDBOX,OU=312345678900017,O=EDITEUR SANDBOX CSD,ST=Gironde (33),C=FR"

    /// The CSD consumer's day: an establishment read by FINESS then by idNat_Struct, the updates since a date, and an
    /// unknown establishment (the `ror:erreur` 404), resent at once when `resendsAfter404`.
    static func csdDay(resendsAfter404: Bool) async throws -> RunDriver.Report {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        return try await running.whileRunning {
            let client = try RunDriver.files(running, "csd-consumer")
            // Bound by public key, as the ROR whitelists CSD consumers.
            let spki = try SPKIDigest(publicKey: client.issued.certificate.publicKey).hex
            let run = try await RunDriver.start(running, pack: "csd-consumer", client: spki)
            for code in ["759000001", "1759000001"] {
                #expect(try await CSDCalls.post(running, CSDCalls.establishment(code), client: client).0.status == .ok)
            }
            let notification = CSDCalls.notification("<csd:dateRef>2020-01-01T00:00:00Z</csd:dateRef>")
            #expect(
                try await CSDCalls.post(running, notification, client: client, operation: .notification).0.status == .ok
            )
            let unknown = try await CSDCalls.post(running, CSDCalls.establishment("1000000000"), client: client)
            #expect(unknown.0.status == .internalServerError)
            if resendsAfter404 {
                _ = try await CSDCalls.post(running, CSDCalls.establishment("1000000000"), client: client)
            }
            return try await RunDriver.close(running, run)
        }
    }

    @Test func aCSDConsumerPassesAndAResendAfter404Fails() async throws {
        let good = try await Self.csdDay(resendsAfter404: false)
        #expect(good.verdict == "passed", "\(good.problems)")
        #expect(good.steps["SBX-CSD-LECTURE/L1"]?.status == "pass")
        #expect(good.steps["SBX-CSD-LECTURE/L2"]?.status == "pass")
        let resending = try await Self.csdDay(resendsAfter404: true)
        #expect(resending.verdict == "failed")
        let step = try #require(resending.steps["SBX-CSD-ERREUR/E2"])
        #expect(step.status == "fail")
        #expect(step.message.contains("the client made 1, first #"), "\(step.message)")
    }

    static let serviceDN =
        "CN=APPLI_BALANCE_SANDBOX,OU=0002 449999999,O=EDITEUR SANDBOX MESURES,ST=Loire-Atlantique (44),C=FR"

    /// The referenced service's day: the patient pairs on the page, the code is exchanged, a weight pushed, then the
    /// last value read — or, with `readsFirst`, read before anything was pushed.
    static func mesDay(readsFirst: Bool) async throws -> RunDriver.Report {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        return try await running.whileRunning {
            let client = try RunDriver.files(running, "mes-service")
            let run = try await RunDriver.start(running, pack: "mes", client: serviceDN)
            let redirect = "https://balance.example/callback"
            let consent = try await running.admin(
                MESService.authorizePath,
                method: .post,
                body: "client_id=esante-sandbox-balance&redirect_uri=\(FormEncoding.encode(redirect))"
                    + "&response_type=code&scope=openid%20mesures&state=r1&ins=110086322083060&decision=allow",
                headers: [.contentType: "application/x-www-form-urlencoded"]
            )
            let location = try #require(consent.headers[.location])
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let tokens = try await running.request(
                MESService.tokenPath,
                method: .post,
                client: client,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: "grant_type=authorization_code&code=\(code)&redirect_uri=\(FormEncoding.encode(redirect))"
                    + "&client_id=esante-sandbox-balance&client_secret=sandbox-balance-secret"
            ).json()
            let token = try #require(tokens["access_token"] as? String)
            let idPe = try #require(tokens["id_token"] as? String).split(separator: ".")[1]
            let claims = try #require(
                try JSONSerialization.jsonObject(with: Data(base64URL: String(idPe))) as? [String: Any]
            )
            let subject = "1.2.250.1.999.42.1%7C\(try #require(claims["idpe"] as? String))"
            let read = {
                try await running.request(
                    MESService.basePath + "/fhir/Observation?subject.identifier=\(subject)&_sort=-date&_count=1",
                    client: client,
                    headers: [.authorization: "Bearer \(token)"]
                )
            }
            if readsFirst { _ = try await read() }
            let bundle: [String: Any] = [
                "resourceType": "Bundle", "type": "transaction",
                "entry": [
                    [
                        "resource": [
                            "resourceType": "Observation", "status": "final",
                            "code": ["coding": [["system": "http://loinc.org", "code": "29463-7"]]],
                            "subject": [
                                "identifier": ["system": "urn:oid:1.2.250.1.999.42.1", "value": claims["idpe"]]
                            ],
                            "effectiveDateTime": "2026-12-01T08:00:00+01:00",
                            "valueQuantity": [
                                "value": 71.2, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg",
                            ],
                        ],
                        "request": ["method": "POST", "url": "Observation"],
                    ]
                ],
            ]
            let pushed = try await running.request(
                MESService.basePath + "/fhir",
                method: .post,
                client: client,
                headers: [.authorization: "Bearer \(token)", .contentType: "application/fhir+json"],
                body: String(decoding: try JSONSerialization.data(withJSONObject: bundle), as: UTF8.self)
            )
            #expect(pushed.status == .ok, "\(pushed.text)")
            if !readsFirst { _ = try await read() }
            return try await RunDriver.close(running, run)
        }
    }

    @Test func aMESServicePassesAndReadingBeforePushingIsNamed() async throws {
        let good = try await Self.mesDay(readsFirst: false)
        #expect(good.verdict == "passed", "\(good.problems)")
        let early = try await Self.mesDay(readsFirst: true)
        #expect(early.verdict == "incomplete", "\(early.problems)")
        let step = try #require(early.steps["SBX-MES-MESURES/M3"])
        #expect(step.status == "fail")
        #expect(step.message.contains("Lecture de la dernière valeur"), "\(step.message)")
        #expect(step.message.contains("after #"), "\(step.message)")
    }
}

extension Data {
    /// base64url without padding, as JWTs carry their parts.
    init(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self = Data(base64Encoded: base64) ?? Data()
    }
}
