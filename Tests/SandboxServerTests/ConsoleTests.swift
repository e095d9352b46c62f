import Access
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

@Suite("Web console pages and forms")
struct ConsoleTests {
    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    static func post(
        _ running: RunningSandbox,
        _ path: String,
        _ fields: [(String, String)],
        headers: HTTPFields = [:]
    ) async throws -> TestClient.Response {
        let body = fields.map { "\($0.0)=\(HTML.url($0.1))" }.joined(separator: "&")
        var all = form
        for field in headers { all.append(field) }
        return try await running.admin(path, method: .post, body: body, headers: all)
    }

    @Test func everyPageRendersOfflineHTML() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        try await running.whileRunning {
            let pages = [
                "/console": "Tableau de bord", "/console/onboarding": "Nouvelle demande",
                "/console/whitelist": "demo ROR consumer",
                "/console/journal": "journal-rows", "/console/data": "Location",
                "/console/data?type=Organization&identifier=759000001": "CENTRE HOSPITALIER",
                "/console/data/Location/loc-00001-1": "resource-json", "/console/capacity": "Installés",
                "/console/certificates": "certificate-form",
                "/console/faults": "fault-form",
            ]
            for (path, marker) in pages {
                let response = try await running.admin(path)
                #expect(response.status == .ok, "\(path)")
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                #expect(response.text.contains(marker), "\(path) should show \(marker)")
                // Nothing fetched from elsewhere: no external stylesheet, script, font or image.
                #expect(
                    !response.text.contains("src=\"http") && !response.text.contains("<link")
                        && !response.text.contains("@import"),
                    "\(path)"
                )
                #expect(response.text.contains("name=\"viewport\""))
            }
            #expect(try await running.admin("/console/data/Location/nope").status == .notFound)
            #expect(try await running.admin("/console/journal/999999").status == .notFound)
            #expect(try await running.admin("/").headers[.location] == "/console")
        }
    }

    @Test func onboardingFormsShowErrorsInlineAndDriveTheFlow() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let bad = try await Self.post(
                running,
                "/console/onboarding",
                [
                    ("kind", "saas"), ("direction", "consume"), ("service", "ror-fhir"),
                    ("contact", "qa@example.test"), ("subjectDN", "CN=broken,,"),
                ]
            )
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("aria-invalid=\"true\""))
            #expect(bad.text.contains("value=\"CN=broken,,\""), "the form keeps what was typed")
            #expect(bad.text.contains("subjectDN"))
            #expect(try running.sandbox.onboarding.list().isEmpty)
            let noFINESS = try await Self.post(
                running,
                "/console/onboarding",
                [
                    ("kind", "eai-regional"), ("direction", "feed"), ("service", "ror-fhir"),
                    ("contact", "eai@example.test"), ("subjectDN", "CN=EAI,O=GCS,C=FR"),
                ]
            )
            #expect(noFINESS.status == .badRequest)
            #expect(
                noFINESS.text.contains(
                    "<em class=\"error\">establishments: a feeding eai-regional gives the FINESS it acts for</em>"
                )
            )

            let created = try await Self.post(
                running,
                "/console/onboarding",
                [
                    ("kind", "saas"), ("direction", "consume"), ("service", "ror-fhir"),
                    ("contact", "qa@example.test"), ("subjectDN", "CN=CONSOLE,O=EDITEUR,C=FR"),
                ]
            )
            #expect(created.status == .seeOther)
            #expect(created.headers[.location] == "/console/onboarding#request-1")
            let list = try await running.admin("/console/onboarding")
            #expect(list.text.contains("CN=CONSOLE,O=EDITEUR,C=FR"))
            #expect(list.text.contains("/console/onboarding/1/validate"))
            let missingProfile = try await Self.post(running, "/console/onboarding/1/validate", [])
            #expect(missingProfile.status == .badRequest)
            #expect(missingProfile.text.contains("accessProfile"))
            #expect(
                try await Self.post(running, "/console/onboarding/1/validate", [("accessProfile", "2")]).status
                    == .seeOther
            )
            #expect(try await Self.post(running, "/console/onboarding/1/tests-done", []).status == .seeOther)
            #expect(try running.sandbox.onboarding.request(1).state == .whitelisted)
            let again = try await Self.post(running, "/console/onboarding/1/tests-done", [])
            #expect(again.status == .conflict)
            #expect(again.text.contains("Demande #1 : request 1 is whitelisted"))
            #expect(try await running.admin("/console/whitelist").text.contains("demande #1"))
            #expect(
                try await Self.post(running, "/console/onboarding/1/revoke", [("reason", "fin")]).status == .seeOther
            )
            #expect(try await Self.post(running, "/console/clock", [("speed", "0")]).status == .badRequest)
            #expect(try await Self.post(running, "/console/clock", [("speed", "3600")]).status == .seeOther)
            #expect(try await running.admin("/console").text.contains("×3600 (1 h per second)"))
        }
    }

    @Test func journalRowsArriveAfterAnIdAndOpenInFull() async throws {
        let running = try await RunningSandbox.start(rejectMode: .http)
        try await running.whileRunning {
            let client = try SharedPKI.client("CN=JOURNAL-CONSOLE,O=EDITEUR,C=FR")
            _ = try await running.request(
                "/ws-diffusion-fhir/metadata",
                client: client,
                headers: [.authorization: "Bearer secret-token-value"]
            )
            let rows = try await running.journalRows { $0.path == "/ws-diffusion-fhir/metadata" }
            let id = try #require(rows.first?.id)
            let fragment = try await running.admin("/console/journal/rows?after=\(id - 1)")
            #expect(fragment.text.contains("/console/journal/\(id)"))
            #expect(fragment.text.contains("CN=JOURNAL-CONSOLE,O=EDITEUR,C=FR"))
            #expect(fragment.headers[HTTPField.Name("X-Last-Id")!] == "\(id)")
            #expect(try await running.admin("/console/journal/rows?after=\(id)").text.isEmpty)
            #expect(try await running.admin("/console/journal/rows").status == .badRequest)
            let detail = try await running.admin("/console/journal/\(id)")
            #expect(detail.text.contains("not-whitelisted"))
            #expect(
                detail.text.contains("&quot;resourceType&quot; : &quot;OperationOutcome&quot;"),
                "the body pretty-printed"
            )
            #expect(!detail.text.contains("secret-token-value"), "authorization masked")
            #expect(detail.text.contains("Bearer ***(18 chars)"))
        }
    }

    @Test func certificateAndFaultFormsValidateInline() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let minted = try await Self.post(
                running,
                "/console/certificates",
                [("subjectDN", "CN=ATELIER-CONSOLE,C=FR"), ("keyType", "p256"), ("negative", "expired")]
            )
            #expect(minted.status == .ok)
            #expect(minted.text.contains("download=\"bundle.pem\" href=\"data:application/x-pem-file;base64,"))
            #expect(minted.text.contains("BEGIN CERTIFICATE"))
            #expect(minted.text.contains("expired"))
            let bad = try await Self.post(running, "/console/certificates", [("subjectDN", "CN=x,FOO=bar")])
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("aria-invalid=\"true\""))
            #expect(bad.text.contains("FOO"))

            let fault = try await Self.post(
                running,
                "/console/faults",
                [("target", "insi"), ("errorPercent", "25"), ("label", "démo")]
            )
            #expect(fault.status == .seeOther)
            #expect(running.sandbox.faults.rules.first?.errorRate == 0.25)
            #expect(try await running.admin("/console/faults").text.contains("insi: 25 % 503"))
            let invalid = try await Self.post(
                running,
                "/console/faults",
                [("target", "insi"), ("errorPercent", "lots")]
            )
            #expect(invalid.status == .badRequest)
            #expect(invalid.text.contains("errorPercent: &apos;lots&apos; is not a number"))
            let nothing = try await Self.post(running, "/console/faults", [("target", "insi")])
            #expect(nothing.text.contains("at least one effect"))
            #expect(try await Self.post(running, "/console/faults/1/delete", []).status == .seeOther)
            #expect(running.sandbox.faults.rules.isEmpty)
        }
    }

    @Test func capacityBoardAndDataPageFollowAPatch() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            let patched = try await CapacityFeed.replaceAvailable(running, count: 17, client: feeder, token: token)
            #expect(patched.status == .ok)
            let board = try await running.admin("/console/capacity/board?finess=759000001")
            #expect(board.text.contains("Disponibles indifférencié <b>17</b>"), "\(board.text.prefix(400))")
            let resource = try await running.admin("/console/data/Location/loc-00001-1")
            #expect(resource.text.contains("Version 1 → 2"))
            #expect(
                resource.text.contains("<span class=\"add\">+ ")
                    && resource.text.contains("&quot;valueInteger&quot; : 17")
            )
            #expect(
                try await running.admin("/console/capacity/board?finess=000000000").text.contains("Aucun établissement")
            )
        }
    }

    @Test func consoleBehindAnAdminTokenAsksForItOnce() async throws {
        let running = try await RunningSandbox.start { $0.adminToken = "jeton" }
        try await running.whileRunning {
            let denied = try await running.admin("/console")
            #expect(denied.status == .unauthorized)
            #expect(denied.text.contains("action=\"/console/login\""))
            #expect(try await Self.post(running, "/console/login", [("token", "faux")]).status == .unauthorized)
            let login = try await Self.post(running, "/console/login", [("token", "jeton")])
            #expect(login.status == .seeOther)
            let cookie = try #require(login.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            let page = try await running.admin("/console", headers: [.cookie: String(cookie.split(separator: ";")[0])])
            #expect(page.status == .ok)
            #expect(
                try await running.admin("/admin/whitelist").status == .unauthorized,
                "the API still wants the bearer token"
            )
        }
    }

    @Test func prettyPrintingAndDiffs() {
        #expect(Pretty.print(Data(#"{"b":1,"a":[true]}"#.utf8)) == "{\n  \"a\" : [\n    true\n  ],\n  \"b\" : 1\n}")
        #expect(Pretty.print(Data("<a><b>x</b><c/></a>".utf8)) == "<a>\n  <b>x</b>\n  <c/>\n</a>")
        #expect(Pretty.print(Data("plain".utf8)) == "plain")
        let diff = LineDiff.lines(old: ["a", "b", "c"], new: ["a", "x", "c", "d"])
        #expect(
            diff == [.same("a"), .added("x"), .removed("b"), .same("c"), .added("d")]
                || diff == [.same("a"), .removed("b"), .added("x"), .same("c"), .added("d")]
        )
        #expect(LineDiff.html(old: "same", new: "same").contains("identiques"))
        #expect(HTML.escape("<a href='x'>&\"") == "&lt;a href=&apos;x&apos;&gt;&amp;&quot;")
        #expect(FormData("a=1+2&b=%C3%A9&c=").values == ["a": ["1 2"], "b": ["é"], "c": [""]])
    }

    /// A page on another site cannot post to the console (Origin checked); the console's own forms can.
    @Test func crossSitePostsAreRefused() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let evil = try await Self.post(
                running,
                "/console/faults",
                [("target", "insi"), ("errorPercent", "100")],
                headers: [.origin: "http://evil.example"]
            )
            #expect(evil.status == .forbidden)
            #expect(evil.text.contains("cross-site request refused"))
            #expect(running.sandbox.faults.rules.isEmpty)
            let same = try await Self.post(
                running,
                "/console/faults",
                [("target", "insi"), ("errorPercent", "100")],
                headers: [.origin: "http://127.0.0.1:\(running.adminPort)"]
            )
            #expect(same.status == .seeOther, "\(same.text)")
            #expect(
                try await running.admin("/console", headers: [.origin: "http://evil.example"]).status == .ok,
                "reading is not refused"
            )
        }
    }

    /// The ANS's edits by mail from the console: an EAI's FINESS list, a proprietary solution's certificates.
    @Test func ansEditsFromTheConsole() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let eai = try running.sandbox.onboarding.submit(
                OnboardingSubmission(
                    kind: "eai-regional",
                    direction: "feed",
                    service: "ror-fhir",
                    contact: "e@example.test",
                    subjectDN: "CN=EAI-CONSOLE,O=GCS,C=FR",
                    establishments: ["690000001"]
                ),
                actor: "t"
            )
            let page = try await running.admin("/console/onboarding")
            #expect(page.text.contains("/console/onboarding/\(eai.id)/establishments"))
            #expect(
                try await Self.post(
                    running,
                    "/console/onboarding/\(eai.id)/establishments",
                    [("establishments", "690000001, 690000002")]
                ).status == .seeOther
            )
            #expect(try running.sandbox.onboarding.request(eai.id).establishments == ["690000001", "690000002"])
            let bad = try await Self.post(
                running,
                "/console/onboarding/\(eai.id)/establishments",
                [("establishments", "69")]
            )
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("is not a FINESS number"))

            let first = try SharedPKI.client("CN=PROPRIO-CONSOLE-A,O=EDITEUR,C=FR")
            let second = try SharedPKI.client("CN=PROPRIO-CONSOLE-B,O=EDITEUR,C=FR")
            let proprietary = try running.sandbox.onboarding.submit(
                OnboardingSubmission(
                    kind: "proprietary",
                    direction: "feed",
                    service: "ror-fhir",
                    contact: "p@example.test",
                    establishmentCertificates: [
                        .init(
                            finess: "750000001",
                            certificatePEM: try String(contentsOf: first.certificate, encoding: .utf8)
                        )
                    ]
                ),
                actor: "t"
            )
            let added = try await Self.post(
                running,
                "/console/onboarding/\(proprietary.id)/add-certificate",
                [
                    ("finess", "750000002"),
                    ("certificatePEM", try String(contentsOf: second.certificate, encoding: .utf8)),
                ]
            )
            #expect(added.status == .seeOther)
            #expect(
                try running.sandbox.onboarding.request(proprietary.id).establishmentCertificates.map(\.finess) == [
                    "750000001", "750000002",
                ]
            )
            #expect(try await running.admin("/console/onboarding").text.contains("Retirer 750000002"))
            #expect(
                try await Self.post(
                    running,
                    "/console/onboarding/\(proprietary.id)/remove-certificate",
                    [("finess", "750000001")]
                ).status == .seeOther
            )
            let last = try await Self.post(
                running,
                "/console/onboarding/\(proprietary.id)/remove-certificate",
                [("finess", "750000002")]
            )
            #expect(last.status == .conflict)
            #expect(last.text.contains("last certificate"))
        }
    }

    /// Console POSTs naming nothing that exists: a page with the reason, never a 500.
    @Test func unknownTargetsAreAnsweredWithTheReason() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let id = try running.sandbox.onboarding.submit(
                OnboardingSubmission(
                    kind: "saas",
                    direction: "consume",
                    service: "insi",
                    contact: "c",
                    subjectDN: "CN=X,C=FR"
                ),
                actor: "t"
            ).id
            let unknown = try await Self.post(running, "/console/onboarding/\(id)/promote", [])
            #expect(unknown.status == .badRequest)
            #expect(unknown.text.contains("action inconnue &apos;promote&apos;"))
            let notNumber = try await Self.post(
                running,
                "/console/onboarding/\(id)/validate",
                [("accessProfile", "deux")]
            )
            #expect(notNumber.status == .badRequest)
            #expect(notNumber.text.contains("accessProfile: &apos;deux&apos; is not a number"))
            #expect(
                try await Self.post(running, "/console/onboarding/999/validate", [("accessProfile", "1")]).status
                    == .notFound
            )
            #expect(try await Self.post(running, "/console/onboarding/x/validate", []).status == .badRequest)
            #expect(try await Self.post(running, "/console/whitelist/999/delete", []).status == .notFound)
            #expect(try await Self.post(running, "/console/faults/999/delete", []).status == .notFound)
            #expect(try await Self.post(running, "/console/clock", [("speed", "vite")]).status == .badRequest)
            #expect(try running.sandbox.onboarding.request(id).state == .submitted)
        }
    }

    /// What no route answers, or a route refuses before its handler, is said in the listener's forms: a console
    /// page in a browser, `{"error"}` on the API — never the router's empty answer. A bad value is refused, not
    /// replaced, and an unknown run or document is a 404, not a redirect or a 200.
    @Test func theAdminListenerAnswersEveryRefusalInItsForms() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let page = try await running.admin("/console/nope")
            #expect(page.status == .notFound)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("No admin or console page answers GET /console/nope."))
            let api = try await running.admin("/admin/nope", method: .delete)
            #expect(api.status == .notFound)
            #expect((try api.json()["error"] as? String)?.contains("DELETE /admin/nope") == true)
            let big = try await Self.post(
                running,
                "/console/onboarding",
                [("contact", String(repeating: "a", count: 1 << 20))]
            )
            #expect(big.status == .contentTooLarge)
            #expect(big.text.contains("over the size this page accepts"))
            let minutes = try await Self.post(
                running,
                "/console/recette",
                [("pack", "dmp"), ("client", "CN=X,C=FR"), ("minutes", "abc")]
            )
            #expect(minutes.status == .badRequest)
            #expect(minutes.text.contains("minutes: &apos;abc&apos; is not a number"))
            #expect(try running.sandbox.recette.runs().isEmpty)
            #expect(try await Self.post(running, "/console/recette/999/close", []).status == .notFound)
            #expect(try await running.admin("/console/dmp/documents/nope/raw").status == .notFound)
        }
    }
}
