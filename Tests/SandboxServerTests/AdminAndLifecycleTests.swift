import Access
import Foundation
import GRDB
import HTTPTypes
import TestPKI
import Testing
import X509

@testable import SandboxServer
@testable import SandboxTestSupport

@Suite("Admin API, seeds, reset, ready file")
struct AdminAndLifecycleTests {
    static let dn = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

    @Test func repositorySeedsWhitelistTheDemoClientsAndTheBannerCurlLineWorks() async throws {
        let readyFile = SharedPKI.directory.appendingPathComponent("ready-\(UUID().uuidString).json")
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds, readyFile: readyFile)
        try await running.whileRunning {

            let ready = try JSONSerialization.jsonObject(with: Data(contentsOf: readyFile)) as? [String: Any]
            #expect(ready?["tls"] as? String == running.info.tls)
            #expect((ready?["admin"] as? String)?.hasPrefix("http://127.0.0.1:") == true)
            #expect((ready?["caCertificate"] as? String)?.contains("BEGIN CERTIFICATE") == true)
            let clients = ready?["clientCertificates"] as? [String: [String: String]]
            #expect(
                Set(clients?.keys.map { $0 } ?? []) == [
                    "ror-consumer", "ror-feeder", "csd-consumer", "insi-lps", "mes-service", "not-whitelisted",
                ]
            )

            let files = try #require(running.info.clientCertificates["ror-consumer"])
            let consumer = ClientFiles(
                folder: files.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(files)
            )
            let whoami = try await running.request("/_sandbox/whoami", client: consumer)
            #expect(try whoami.json()["subjectDN"] as? String == Self.dn)
            #expect((try whoami.json()["whitelisted"] as? [String: Bool])?["ror-fhir"] == true)

            let csdFiles = try #require(running.info.clientCertificates["csd-consumer"])
            let csd = ClientFiles(
                folder: csdFiles.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(csdFiles)
            )
            #expect(
                (try await running.request("/_sandbox/whoami", client: csd).json()["whitelisted"] as? [String: Bool])?[
                    "ror-csd"
                ] == true
            )

            // The banner's curl line, run as printed, when curl is installed.
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") {
                let banner = running.sandbox.banner(running.info)
                let line = try #require(banner.split(separator: "\n").first { $0.contains("curl ") })
                let output = try await Shell.run(String(line).trimmingCharacters(in: .whitespaces))
                #expect(output.status == 0)
                #expect(output.stdout.contains("\"subjectDN\" : \"\(Self.dn)\""))
            }
        }
    }

    @Test func whitelistAPIValidatesAndDeletes() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {

            let bad: [(String, String)] = [
                ("not json", "body must be a JSON whitelist entry"),
                (#"{"subjectDN": "CN=x"}"#, "missing field 'service'"),
                (#"{"service": "ror-fhir", "subjectDN": "CN=x,BAD"}"#, "malformed DN"),
                (#"{"service": "ror-fhir", "subjectDN": "FOO=x"}"#, "unknown attribute type 'FOO'"),
                (#"{"service": "nope", "subjectDN": "CN=x"}"#, "unknown service 'nope'"),
                (#"{"service": "ror-csd", "subjectDN": "CN=x"}"#, "whitelists by public key"),
                (#"{"service": "ror-csd", "publicKeySHA256": "12"}"#, "64 hex digits"),
            ]
            for (body, message) in bad {
                let response = try await running.admin("/admin/whitelist", method: .post, body: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(
                    (try response.json()["error"] as? String)?.contains(message) == true,
                    "\(body) → \(response.text)"
                )
            }
            #expect(try running.sandbox.whitelist.entries().isEmpty)  // nothing half-stored

            let created = try await running.admin(
                "/admin/whitelist",
                method: .post,
                body:
                    #"{"service": "ror-fhir", "subjectDN": "\#(Self.dn)", "role": "feed", "establishments": ["750099992"], "label": "x"}"#
            )
            #expect(created.status == .created)
            let id = try #require(try created.json()["id"] as? Int)
            #expect(try created.json()["establishments"] as? [String] == ["750099992"])

            // The same DN again for the service: 409 naming the entry, which keeps what it had.
            let again = try await running.admin(
                "/admin/whitelist",
                method: .post,
                body: #"{"service": "ror-fhir", "subjectDN": "\#(Self.dn)", "role": "consume"}"#
            )
            #expect(again.status == .conflict)
            #expect(
                (try again.json()["error"] as? String)?.contains("as entry \(id) (role feed)") == true,
                "\(again.text)"
            )
            #expect(try running.sandbox.whitelist.entries().first?.establishments == ["750099992"])
            // PUT changes it; another DN or an unknown id is refused.
            let changed = try await running.admin(
                "/admin/whitelist/\(id)",
                method: .put,
                body:
                    #"{"service": "ror-fhir", "subjectDN": "\#(Self.dn)", "role": "feed", "establishments": ["750099993"]}"#
            )
            #expect(changed.status == .ok, "\(changed.text)")
            #expect(try changed.json()["establishments"] as? [String] == ["750099993"])
            #expect(try changed.json()["id"] as? Int == id)
            let otherDN = try await running.admin(
                "/admin/whitelist/\(id)",
                method: .put,
                body: #"{"service": "ror-fhir", "subjectDN": "CN=AUTRE,C=FR"}"#
            )
            #expect(otherDN.status == .badRequest)
            #expect(otherDN.text.contains("cannot change"))
            let unknown = try await running.admin(
                "/admin/whitelist/999999",
                method: .put,
                body: #"{"service": "ror-fhir", "subjectDN": "CN=AUTRE,C=FR"}"#
            )
            #expect(unknown.status == .notFound)

            let list = try await running.admin("/admin/whitelist")
            let entries = try JSONSerialization.jsonObject(with: Data(list.text.utf8)) as? [[String: Any]]
            #expect(entries?.count == 1)
            #expect(entries?.first?["subjectDN"] as? String == Self.dn)

            #expect(try await running.admin("/admin/whitelist/abc", method: .delete).status == .badRequest)
            #expect(try await running.admin("/admin/whitelist/999999", method: .delete).status == .notFound)
            #expect(try await running.admin("/admin/whitelist/\(id)", method: .delete).status == .noContent)
            #expect(try running.sandbox.whitelist.entries().isEmpty)
        }
    }

    @Test func journalAPIFiltersAndRejectsBadQueries() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            try running.whitelist("insi", dn: Self.dn)
            _ = try await running.request("/lps", method: .post, client: client, body: "<a/>")
            _ = try await running.request("/ws-diffusion-fhir/Location", client: client)
            _ = try await running.journalRows { $0.service == "ror-fhir" }

            let refused = try await running.admin("/admin/journal?decision=refused&limit=5")
            let rows = try JSONSerialization.jsonObject(with: Data(refused.text.utf8)) as? [[String: Any]]
            #expect(rows?.count == 1)
            #expect(rows?.first?["service"] as? String == "ror-fhir")
            for key in ["time", "service", "method", "path", "status", "decision", "reason", "subjectDN", "spkiSHA256"]
            {
                #expect(rows?.first?[key] != nil, "journal row lacks \(key)")
            }
            let insi = try await running.admin("/admin/journal?service=insi")
            #expect(
                (try JSONSerialization.jsonObject(with: Data(insi.text.utf8)) as? [[String: Any]])?.first?["decision"]
                    as? String == "accepted"
            )

            for query in ["limit=0", "limit=x", "decision=maybe", "after=x"] {
                #expect(try await running.admin("/admin/journal?\(query)").status == .badRequest, "\(query)")
            }
        }
    }

    @Test func resetEmptiesTheJournalAndScopeAllRestoresTheSeededWhitelist() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds, privatePKI: true)
        try await running.whileRunning {
            let seeded = try running.sandbox.whitelist.entries().count
            #expect(seeded == 7, "the whitelist seeds and the Mon espace santé demo service")
            try running.whitelist("insi", dn: Self.dn)
            _ = try? await running.request("/_sandbox/whoami", client: nil)  // refused handshake: a journal row
            // Service data changed by a client (here: a ROR resource removed) comes back with the reset.
            let services = try await running.sandbox.ror.repository.count(type: "HealthcareService")
            #expect(services >= 50)
            try await running.sandbox.store.writer.write { db in
                try db.execute(sql: "DELETE FROM fhir_resource WHERE type = 'HealthcareService' AND id = 'hs-00001-1'")
            }
            #expect(try await running.sandbox.ror.repository.count(type: "HealthcareService") == services - 1)
            _ = try await running.journalRows { _ in true }

            #expect(try await running.admin("/admin/reset?scope=everything", method: .post).status == .badRequest)
            #expect(try await running.admin("/admin/reset", method: .post).status == .ok)
            #expect(try running.sandbox.journal.entries(JournalFilter()).isEmpty)
            #expect(try await running.sandbox.ror.repository.count(type: "HealthcareService") == services)
            #expect(try running.sandbox.whitelist.entries().count == seeded + 1)  // the whitelist is kept

            #expect(try await running.admin("/admin/reset?scope=all", method: .post).status == .ok)
            let entries = try running.sandbox.whitelist.entries()
            #expect(entries.count == seeded)
            #expect(entries.allSatisfy { $0.origin == "seed" })
        }
    }

    @Test func healthAndOpenAPIDescribeEveryRoute() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let health = try await running.admin("/admin/health")
            #expect(health.status == .ok)
            #expect(try health.json()["tls"] as? String == running.info.tls)

            let openapi = try await running.admin("/admin/openapi.json")
            let document = try openapi.json()
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            // What the admin router registers (`:id` written `{id}`, as OpenAPI does), not a list kept by hand.
            var registered: [String: Set<String>] = [:]
            for route in running.sandbox.makeAdminRouter().routes {
                let path =
                    "/"
                    + route.path.description.split(separator: "/").map { part in
                        part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                    }.joined(separator: "/")
                guard path.hasPrefix("/admin/") || path == "/metrics" else { continue }
                registered[path, default: []].insert(route.method.rawValue.lowercased())
            }
            #expect(registered.count > 20, "the admin router's routes were read")
            #expect(Set(paths.keys) == Set(registered.keys))
            for (path, methods) in registered { #expect(Set(paths[path]?.keys.map { $0 } ?? []) == methods, "\(path)") }
        }
    }

    @Test func adminTokenIsEnforcedWhenSet() async throws {
        let running = try await RunningSandbox.start { $0.adminToken = "s3cret" }
        try await running.whileRunning {
            let denied = try await running.admin("/admin/whitelist")
            #expect(denied.status == .unauthorized)
            #expect(try denied.json()["error"] as? String != nil)
            #expect(
                try await running.admin("/admin/whitelist", headers: [.authorization: "Bearer wrong"]).status
                    == .unauthorized
            )
            #expect(
                try await running.admin("/admin/whitelist", headers: [.authorization: "Bearer s3cret"]).status == .ok
            )
        }
    }

    @Test func adminOnANonLoopbackAddressNeedsAToken() throws {
        var configuration = SandboxConfiguration()
        configuration.inMemory = true
        configuration.pkiDirectory = SharedPKI.pki.directory
        configuration.host = "0.0.0.0"
        #expect {
            _ = try Sandbox(configuration: configuration)
        } throws: { error in
            "\(error)".contains("--admin-token")
        }
        configuration.host = "127.0.0.1"
        configuration.adminHost = "0.0.0.0"
        #expect(throws: SandboxError.self) { _ = try Sandbox(configuration: configuration) }
        configuration.adminToken = "t"
        _ = try Sandbox(configuration: configuration)  // accepted with a token (not started)
    }

    @Test func brokenSeedsAndTrustFilesAreClearErrors() throws {
        let seeds = try SharedPKI.emptySeeds()
        try FileManager.default.createDirectory(
            at: seeds.appendingPathComponent("access"),
            withIntermediateDirectories: true
        )
        try Data(#"{"entries": [{"service": "ror-fhir", "client": "ghost"}]}"#.utf8)
            .write(to: seeds.appendingPathComponent("access/whitelist.json"))
        var configuration = SandboxConfiguration()
        configuration.inMemory = true
        configuration.pkiDirectory = SharedPKI.pki.directory
        configuration.seedsDirectory = seeds
        #expect { _ = try Sandbox(configuration: configuration) } throws: {
            "\($0)".contains("unknown demo client 'ghost'")
        }

        try Data("{ nope".utf8).write(to: seeds.appendingPathComponent("access/whitelist.json"))
        #expect { _ = try Sandbox(configuration: configuration) } throws: { "\($0)".contains("whitelist.json") }

        // A ROR dataset file that is not JSON names itself and where reading stopped.
        let rorSeeds = try SharedPKI.emptySeeds()
        try FileManager.default.createDirectory(
            at: rorSeeds.appendingPathComponent("ror"),
            withIntermediateDirectories: true
        )
        try Data(#"{"resourceType": "Bundle", "entry": [}"#.utf8).write(
            to: rorSeeds.appendingPathComponent("ror/broken.json")
        )
        configuration.seedsDirectory = rorSeeds
        #expect { _ = try Sandbox(configuration: configuration) } throws: {
            "\($0)".contains("broken.json: not a JSON object: a value was expected (at byte 37)")
        }

        configuration.seedsDirectory = try SharedPKI.emptySeeds()
        configuration.trustCAFiles = [seeds.appendingPathComponent("missing.pem")]
        #expect { _ = try Sandbox(configuration: configuration) } throws: { "\($0)".contains("--trust-ca") }
    }

    /// `--trust-ca`: a certificate from another CA (e.g. the real IGC-Santé TEST chain) is accepted once trusted.
    @Test func trustCAAddsAnotherHierarchy() async throws {
        let other = SharedPKI.directory.appendingPathComponent("other-pki-\(UUID().uuidString)")
        let (otherPKI, _) = try SandboxPKI.loadOrCreate(directory: other, algorithm: .p256)
        let issued = try otherPKI.issueClient(
            subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
            algorithm: .p256
        )
        let folder = other.appendingPathComponent("client")
        try otherPKI.write(issued, to: folder)
        let client = ClientFiles(folder: folder, issued: issued)

        let running = try await RunningSandbox.start { $0.trustCAFiles = [otherPKI.caBundleURL] }
        try await running.whileRunning {
            let whoami = try await running.request("/_sandbox/whoami", client: client)
            #expect(whoami.status == .ok)
            #expect(try whoami.json()["chainVerified"] as? Bool == true)
        }
    }
}
