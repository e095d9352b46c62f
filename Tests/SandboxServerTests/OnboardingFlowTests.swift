import Access
import Foundation
import HTTPTypes
import SandboxServer
import Testing
import TestPKI
import X509

@Suite("Onboarding flow over the admin API and mutual TLS")
struct OnboardingFlowTests {
    static let dn = "CN=EDITEUR-FLOW-TEST,OU=0002 500000001,O=EDITEUR FLOW,C=FR"

    /// Refused (DN quoted) → submit → validate → tests done → the delay passes on the fast clock → accepted; then revoked → refused.
    @Test func aRefusedCertificateBecomesAcceptedThroughTheFlow() async throws {
        let client = try SharedPKI.client(Self.dn)
        let running = try await RunningSandbox.start(rejectMode: .http) { configuration in
            configuration.whitelistDelay = try! WhitelistDelay(parsing: "5d")
            configuration.clockSpeed = 100_000 // 5 d ≈ 4.3 s of real time
        }
        defer { Task { await running.stop() } }
        let whoami = "/ws-diffusion-fhir/metadata"
        let refused = try await running.request(whoami, client: client)
        #expect(refused.status == .forbidden)
        #expect(refused.text.contains(Self.dn))

        let submitted = try await running.admin("/admin/onboarding", method: .post, body: """
            {"kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "flow@editeur.test", "subjectDN": "\(Self.dn)"}
            """)
        #expect(submitted.status == .created, "\(submitted.text)")
        let id = try #require(try submitted.json()["id"] as? Int)
        #expect(try submitted.json()["state"] as? String == "submitted")

        let early = try await running.admin("/admin/onboarding/\(id)/tests-done", method: .post)
        #expect(early.status == .conflict)
        #expect(early.text.contains("is submitted: it cannot become tests-done"))
        let noProfile = try await running.admin("/admin/onboarding/\(id)/validate", method: .post, body: "{}")
        #expect(noProfile.status == .badRequest)
        #expect(noProfile.text.contains("accessProfile"))
        let validated = try await running.admin("/admin/onboarding/\(id)/validate", method: .post,
                                                body: #"{"accessProfile": 1, "actor": "comité ROR", "reason": "dossier complet"}"#)
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
            state = try await running.admin("/admin/onboarding/\(id)").json()["request"].flatMap { ($0 as? [String: Any])?["state"] as? String } ?? ""
        }
        #expect(state == "whitelisted")
        let accepted = try await running.request(whoami, client: client)
        #expect(accepted.status == .ok, "\(accepted.text)")
        let entries = try running.sandbox.whitelist.entries().filter { $0.onboardingRequestId == Int64(id) }
        #expect(entries.count == 1)
        #expect(entries.first?.clientId == "sandbox-client-\(id)")

        let detail = try await running.admin("/admin/onboarding/\(id)").json()
        let events = try #require(detail["events"] as? [[String: Any]])
        #expect(events.compactMap { $0["toState"] as? String } == ["submitted", "validated", "tests-done", "whitelisted"])
        #expect(events[1]["actor"] as? String == "comité ROR")
        let clock = try #require(detail["clock"] as? [String: Any])
        #expect((clock["label"] as? String)?.hasPrefix("×100000") == true)
        let journal = try await running.journalRows { $0.method == "ONBOARDING" && $0.path == "/admin/onboarding/\(id)" }
        #expect(journal.count == 4)

        let revoked = try await running.admin("/admin/onboarding/\(id)/revoke", method: .post, body: #"{"reason": "fin de contrat"}"#)
        #expect(revoked.status == .ok)
        #expect(try await running.request(whoami, client: client).status == .forbidden)
        let again = try await running.admin("/admin/onboarding/\(id)/whitelist", method: .post)
        #expect(again.status == .conflict)
        #expect(again.text.contains("revoked is final"))
    }

    @Test func adminAPIRefusesBadInputWithSpecificMessages() async throws {
        let running = try await RunningSandbox.start()
        defer { Task { await running.stop() } }
        let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
            ("/admin/onboarding", .post, "{", .badRequest, "invalid JSON"),
            ("/admin/onboarding", .post, #"{"kind": "saas"}"#, .badRequest, "missing field"),
            ("/admin/onboarding", .post, #"{"kind": "saas", "direction": "consume", "service": "ror-fhir", "contact": "c", "subjectDN": "CN=a,,"}"#, .badRequest, "subjectDN"),
            ("/admin/onboarding", .post, #"{"kind": "saas", "direction": "consume", "service": "ror-csd", "contact": "c"}"#, .badRequest, "public key"),
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
        let clock = try await running.admin("/admin/clock", method: .post, body: #"{"speed": 60}"#)
        #expect(try clock.json()["label"] as? String == "×60 (1 min per second)")
    }

    /// The certificate workshop mints in the sandbox PKI: the PEMs work over mutual TLS; bad orders are 400s.
    @Test func certificateWorkshopMintsUsableCertificates() async throws {
        let running = try await RunningSandbox.start(rejectMode: .http)
        defer { Task { await running.stop() } }
        let minted = try await running.admin("/admin/certificates", method: .post, body: #"{"subjectDN": "CN=ATELIER,O=EDITEUR,C=FR", "keyType": "p256"}"#)
        #expect(minted.status == .created, "\(minted.text)")
        let order = try minted.json()
        #expect(order["subjectDN"] as? String == "CN=ATELIER,O=EDITEUR,C=FR")
        #expect((order["bundlePEM"] as? String)?.contains("PRIVATE KEY") == true)
        let folder = SharedPKI.directory.appendingPathComponent("clients/workshop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try (order["certificatePEM"] as! String).write(to: folder.appendingPathComponent("cert.pem"), atomically: true, encoding: .utf8)
        try (order["privateKeyPEM"] as! String).write(to: folder.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        let files = ClientFiles(folder: folder, issued: IssuedCertificate(
            certificate: try Certificate(pemEncoded: order["certificatePEM"] as! String),
            privateKey: try Certificate.PrivateKey(pemEncoded: order["privateKeyPEM"] as! String)))
        let whoami = try await running.request("/_sandbox/whoami", client: files)
        #expect(whoami.status == .ok)
        #expect(try whoami.json()["subjectDN"] as? String == "CN=ATELIER,O=EDITEUR,C=FR")

        let expired = try await running.admin("/admin/certificates", method: .post, body: #"{"subjectDN": "CN=VIEUX,C=FR", "negative": "expired", "keyType": "p256"}"#)
        #expect(try expired.json()["negative"] as? String == "expired")
        for (body, message) in [(#"{"subjectDN": "CN=a,,"}"#, "subjectDN"), (#"{"subjectDN": "CN=a", "negative": "broken"}"#, "negative: 'broken'"),
                                (#"{"subjectDN": "CN=a", "environment": "production"}"#, "environment: 'production' is not served"),
                                (#"{"subjectDN": "CN=a", "keyType": "dsa"}"#, "keyType: 'dsa'"), (#"{}"#, "missing field")] {
            let response = try await running.admin("/admin/certificates", method: .post, body: body)
            #expect(response.status == .badRequest, "\(body)")
            #expect(response.text.contains(message), "\(body): \(response.text)")
        }
    }
}
