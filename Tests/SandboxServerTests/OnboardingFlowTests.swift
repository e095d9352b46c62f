import Access
import Foundation
import HTTPTypes
import SandboxServer
import TestPKI
import Testing
import X509

@testable import SandboxTestSupport

@Suite("Onboarding flow over the admin API and mutual TLS")
struct OnboardingFlowTests {
    static let dn = "CN=EDITEUR-FLOW-TEST,OU=0002 500000001,O=EDITEUR FLOW,C=FR"

    /// Refused (DN quoted) → submit → validate → tests done → the delay passes on the fast clock → accepted; then revoked → refused.
    @Test func aRefusedCertificateBecomesAcceptedThroughTheFlow() async throws {
        let client = try SharedPKI.client(Self.dn)
        let running = try await RunningSandbox.start(rejectMode: .http) { configuration in
            configuration.whitelistDelay = try! WhitelistDelay(parsing: "5d")
            configuration.clockSpeed = 100_000  // 5 d ≈ 4.3 s of real time
        }
        try await running.whileRunning {
            let whoami = "/ws-diffusion-fhir/metadata"
            let refused = try await running.request(whoami, client: client)
            #expect(refused.status == .forbidden)
            #expect(refused.text.contains(Self.dn))

            let submitted = try await running.admin(
                "/admin/onboarding",
                method: .post,
                body: """
                    {"kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "flow@editeur.test", "subjectDN": "\(Self.dn)"}
                    """
            )
            #expect(submitted.status == .created, "\(submitted.text)")
            let id = try #require(try submitted.json()["id"] as? Int)
            #expect(try submitted.json()["state"] as? String == "submitted")

            let early = try await running.admin("/admin/onboarding/\(id)/tests-done", method: .post)
            #expect(early.status == .conflict)
            #expect(early.text.contains("is submitted: it cannot become tests-done"))
            let noProfile = try await running.admin("/admin/onboarding/\(id)/validate", method: .post, body: "{}")
            #expect(noProfile.status == .badRequest)
            #expect(noProfile.text.contains("accessProfile"))
            let validated = try await running.admin(
                "/admin/onboarding/\(id)/validate",
                method: .post,
                body: #"{"accessProfile": 1, "actor": "comité ROR", "reason": "dossier complet"}"#
            )
            #expect(validated.status == .ok, "\(validated.text)")
            let testsDone = try await running.admin("/admin/onboarding/\(id)/tests-done", method: .post)
            #expect(try testsDone.json()["state"] as? String == "tests-done")
            #expect(try await running.request(whoami, client: client).status == .forbidden, "not before the delay")
            let tooSoon = try await running.admin("/admin/onboarding/\(id)/whitelist", method: .post)
            #expect(tooSoon.status == .conflict)
            #expect(tooSoon.text.contains("left on the sandbox clock"))

            // The server's background task whitelists it once 5 sandbox days have passed.
            var state = ""
            for _ in 0..<100 where state != "whitelisted" {
                try await Task.sleep(for: .milliseconds(100))
                state =
                    try await running.admin("/admin/onboarding/\(id)").json()["request"].flatMap {
                        ($0 as? [String: Any])?["state"] as? String
                    } ?? ""
            }
            #expect(state == "whitelisted")
            let accepted = try await running.request(whoami, client: client)
            #expect(accepted.status == .ok, "\(accepted.text)")
            let entries = try running.sandbox.whitelist.entries().filter { $0.onboardingRequestId == Int64(id) }
            #expect(entries.count == 1)
            #expect(entries.first?.clientId == "sandbox-client-\(id)")

            let detail = try await running.admin("/admin/onboarding/\(id)").json()
            let events = try #require(detail["events"] as? [[String: Any]])
            #expect(
                events.compactMap { $0["toState"] as? String } == [
                    "submitted", "validated", "tests-done", "whitelisted",
                ]
            )
            #expect(events[1]["actor"] as? String == "comité ROR")
            let clock = try #require(detail["clock"] as? [String: Any])
            #expect((clock["label"] as? String)?.hasPrefix("×100000") == true)
            let journal = try await running.journalRows {
                $0.method == "ONBOARDING" && $0.path == "/admin/onboarding/\(id)"
            }
            #expect(journal.count == 4)

            let revoked = try await running.admin(
                "/admin/onboarding/\(id)/revoke",
                method: .post,
                body: #"{"reason": "fin de contrat"}"#
            )
            #expect(revoked.status == .ok)
            #expect(try await running.request(whoami, client: client).status == .forbidden)
            let again = try await running.admin("/admin/onboarding/\(id)/whitelist", method: .post)
            #expect(again.status == .conflict)
            #expect(again.text.contains("revoked is final"))
        }
    }

    @Test func adminAPIRefusesBadInputWithSpecificMessages() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                ("/admin/onboarding", .post, "{", .badRequest, "invalid JSON"),
                ("/admin/onboarding", .post, #"{"kind": "saas"}"#, .badRequest, "missing field"),
                (
                    "/admin/onboarding", .post,
                    #"{"kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "c", "subjectDN": "CN=a,,"}"#,
                    .badRequest, "subjectDN"
                ),
                (
                    "/admin/onboarding", .post,
                    #"{"kind": "saas", "direction": "consume", "service": "ror-csd", "contact": "c"}"#, .badRequest,
                    "public key"
                ),
                ("/admin/onboarding?state=maybe", .get, nil, .badRequest, "state must be one of"),
                ("/admin/onboarding/42", .get, nil, .notFound, "no onboarding request 42"),
                ("/admin/onboarding/x/validate", .post, nil, .badRequest, "must be an integer"),
                ("/admin/onboarding/42/reject", .post, #"{"reason": "x"}"#, .notFound, "no onboarding request 42"),
                ("/admin/clock", .post, #"{"speed": 0}"#, .badRequest, "between 1"),
            ]
            for (path, method, body, status, message) in cases {
                let response = try await running.admin(path, method: method, body: body)
                #expect(response.status == status, "\(method) \(path): \(response.text)")
                #expect(response.text.contains(message), "\(method) \(path): \(response.text)")
            }
            #expect(try running.sandbox.onboarding.list().isEmpty)
            let id = try running.sandbox.onboarding.submit(
                OnboardingSubmission(
                    kind: "eai-regional",
                    direction: "feed",
                    service: "ror-fhir",
                    contact: "c",
                    subjectDN: "CN=EAI-API,C=FR",
                    establishments: ["690000001"]
                ),
                actor: "t"
            ).id
            let edits: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                ("/admin/onboarding/\(id)/establishments", .put, nil, .badRequest, "give establishments"),
                (
                    "/admin/onboarding/\(id)/establishments", .put, #"{"establishments": ["x"]}"#, .badRequest,
                    "is not a FINESS number"
                ),
                (
                    "/admin/onboarding/\(id)/certificates", .post, #"{"finess": "690000002"}"#, .badRequest,
                    "give finess and certificatePEM"
                ),
                (
                    "/admin/onboarding/\(id)/certificates/690000001", .delete, nil, .conflict,
                    "only proprietary solutions"
                ),
                (
                    "/admin/onboarding/\(id)/validate", .post, #"{"accessProfile": "one"}"#, .badRequest,
                    "field 'accessProfile'"
                ),
            ]
            for (path, method, body, status, message) in edits {
                let response = try await running.admin(path, method: method, body: body)
                #expect(response.status == status, "\(method) \(path): \(response.text)")
                #expect(response.text.contains(message), "\(method) \(path): \(response.text)")
            }
            #expect(try running.sandbox.onboarding.request(id).establishments == ["690000001"])
            let clock = try await running.admin("/admin/clock", method: .post, body: #"{"speed": 60}"#)
            #expect(try clock.json()["label"] as? String == "×60 (1 min per second)")
        }
    }

    /// The certificate workshop mints in the sandbox PKI: the PEMs work over mutual TLS; bad orders are 400s.
    @Test func certificateWorkshopMintsUsableCertificates() async throws {
        let running = try await RunningSandbox.start(rejectMode: .http)
        try await running.whileRunning {
            let minted = try await running.admin(
                "/admin/certificates",
                method: .post,
                body: #"{"subjectDN": "CN=ATELIER,O=EDITEUR,C=FR", "keyType": "p256"}"#
            )
            #expect(minted.status == .created, "\(minted.text)")
            let order = try minted.json()
            #expect(order["subjectDN"] as? String == "CN=ATELIER,O=EDITEUR,C=FR")
            #expect((order["bundlePEM"] as? String)?.contains("PRIVATE KEY") == true)
            let folder = SharedPKI.directory.appendingPathComponent("clients/workshop-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try (order["certificatePEM"] as! String).write(
                to: folder.appendingPathComponent("cert.pem"),
                atomically: true,
                encoding: .utf8
            )
            try (order["privateKeyPEM"] as! String).write(
                to: folder.appendingPathComponent("key.pem"),
                atomically: true,
                encoding: .utf8
            )
            let files = ClientFiles(
                folder: folder,
                issued: IssuedCertificate(
                    certificate: try Certificate(pemEncoded: order["certificatePEM"] as! String),
                    privateKey: try Certificate.PrivateKey(pemEncoded: order["privateKeyPEM"] as! String)
                )
            )
            let whoami = try await running.request("/_sandbox/whoami", client: files)
            #expect(whoami.status == .ok)
            #expect(try whoami.json()["subjectDN"] as? String == "CN=ATELIER,O=EDITEUR,C=FR")

            let expired = try await running.admin(
                "/admin/certificates",
                method: .post,
                body: #"{"subjectDN": "CN=VIEUX,C=FR", "negative": "expired", "keyType": "p256"}"#
            )
            #expect(try expired.json()["negative"] as? String == "expired")
            for (body, message) in [
                (#"{"subjectDN": "CN=a,,"}"#, "subjectDN"),
                (#"{"subjectDN": "CN=a", "negative": "broken"}"#, "negative: 'broken'"),
                (#"{"subjectDN": "CN=a", "environment": "production"}"#, "environment: 'production' is not served"),
                (#"{"subjectDN": "CN=a", "keyType": "dsa"}"#, "keyType: 'dsa'"), (#"{}"#, "missing field"),
            ] {
                let response = try await running.admin("/admin/certificates", method: .post, body: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.text.contains(message), "\(body): \(response.text)")
            }
        }
    }

    /// A proprietary solution: each establishment's certificate feeds its own establishment only; an EAI's one
    /// certificate feeds every FINESS of its list and nothing else.
    @Test func feedScopeFollowsTheRequestKind() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        try await running.whileRunning {
            let first = try SharedPKI.client("CN=PROPRIETAIRE-A,O=EDITEUR PROPRIETAIRE,C=FR")
            let second = try SharedPKI.client("CN=PROPRIETAIRE-B,O=EDITEUR PROPRIETAIRE,C=FR")
            let eai = try SharedPKI.client("CN=EAI-REGION,O=GCS REGION,C=FR")
            func pem(_ files: ClientFiles) throws -> String {
                try String(contentsOf: files.certificate, encoding: .utf8)
            }
            let proprietary = try running.sandbox.onboarding.submit(
                OnboardingSubmission(
                    kind: "proprietary",
                    direction: "feed",
                    service: "ror-fhir",
                    contact: "p@example.test",
                    establishmentCertificates: [
                        .init(finess: "759000001", certificatePEM: try pem(first)),
                        .init(finess: "759000009", certificatePEM: try pem(second)),
                    ]
                ),
                actor: "test"
            )
            let regional = try running.sandbox.onboarding.submit(
                OnboardingSubmission(
                    kind: "eai-regional",
                    direction: "feed",
                    service: "ror-fhir",
                    contact: "e@example.test",
                    subjectDN: "CN=EAI-REGION,O=GCS REGION,C=FR",
                    establishments: ["759000009"]
                ),
                actor: "test"
            )
            for id in [proprietary.id, regional.id] {
                _ = try running.sandbox.onboarding.validate(id, decision: .init(), actor: "c")
                #expect(try running.sandbox.onboarding.markTestsDone(id, actor: "p").state == .whitelisted)
            }
            func token(_ client: ClientFiles, _ clientId: String) async throws -> String {
                let answer = try await RORConsumer.token(
                    running,
                    client: client,
                    form: "grant_type=client_credentials&client_id=\(clientId)"
                )
                return try #require(try answer.json()["access_token"] as? String, "\(clientId): \(answer.text)")
            }
            let body = CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", count: 2)
            )
            // loc-00005-1 (FINESS 759000009) counts places (nature 02).
            let places = CapacityFeed.body(
                "replace",
                path: CapacityFeed.selector(status: "02"),
                value: CapacityFeed.indicator(status: "02", type: "02", count: 2)
            )
            let tokenA = try await token(first, "sandbox-client-\(proprietary.id)-759000001")
            let tokenB = try await token(second, "sandbox-client-\(proprietary.id)-759000009")
            let tokenEAI = try await token(eai, "sandbox-client-\(regional.id)")
            #expect(
                try await CapacityFeed.patch(running, "1759000001/LIT000011", body: body, client: first, token: tokenA)
                    .status == .ok
            )
            #expect(
                try await CapacityFeed.patch(
                    running,
                    "1759000009/LIT000051",
                    body: places,
                    client: first,
                    token: tokenA
                ).status == .forbidden
            )
            #expect(
                try await CapacityFeed.patch(
                    running,
                    "1759000009/LIT000051",
                    body: places,
                    client: second,
                    token: tokenB
                ).status == .ok
            )
            #expect(
                try await CapacityFeed.patch(
                    running,
                    "1759000009/LIT000051",
                    body: places,
                    client: eai,
                    token: tokenEAI
                ).status == .ok
            )
            #expect(
                try await CapacityFeed.patch(running, "1759000001/LIT000011", body: body, client: eai, token: tokenEAI)
                    .status == .forbidden
            )
            // The ANS adds 759000001 to the EAI's list by mail: now it may feed it.
            _ = try running.sandbox.onboarding.setEstablishments(regional.id, ["759000009", "759000001"], actor: "ans")
            #expect(
                try await CapacityFeed.patch(running, "1759000001/LIT000011", body: body, client: eai, token: tokenEAI)
                    .status == .ok
            )
        }
    }
}
