import Access
import Foundation
import HTTPTypes
import SandboxServer
import TestPKI
import Testing

@testable import SandboxTestSupport

@Suite("Environments: one listener, PKI and whitelist each")
struct EnvironmentTests {
    static let dn = "CN=EDITEUR-PROD-TEST,OU=0002 500000003,O=EDITEUR PROD,C=FR"
    /// The production PKI beside the shared test PKI (minted once per test process).
    static let productionPKI: SandboxPKI = try! SandboxPKI.loadOrCreate(
        directory: SandboxPKI.directory(base: SharedPKI.pki.directory, environment: "production"),
        algorithm: .p256,
        environment: "production"
    ).pki

    static func productionClient(_ dn: String) throws -> ClientFiles {
        let issued = try productionPKI.issueClient(
            subject: try SubjectDN(parsing: dn).distinguishedName(),
            algorithm: .p256
        )
        let folder = SharedPKI.directory.appendingPathComponent("clients/prod-\(UUID().uuidString)")
        try productionPKI.write(issued, to: folder)
        return ClientFiles(folder: folder, issued: issued)
    }

    @Test func eachEnvironmentTrustsItsOwnPKIAndKeepsItsOwnWhitelist() async throws {
        _ = Self.productionPKI
        let running = try await RunningSandbox.start(rejectMode: .http) {
            $0.environments = ["bac-a-sable", "production"]
        }
        try await running.whileRunning {
            #expect(running.info.environments.map(\.name) == ["bac-a-sable", "production"])
            #expect(running.info.environments[1].caCertificateFile.hasSuffix("pki-production/ca-bundle.pem"))
            #expect(running.info.environments[0].tls != running.info.environments[1].tls)
            let issuer = SubjectDN(Self.productionPKI.issuingCA.certificate.subject).rfc4514
            #expect(issuer.contains("SANDBOX PROD AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"))

            let testClient = try SharedPKI.client(Self.dn)
            let prodClient = try Self.productionClient(Self.dn)
            // whoami names the environment of the listener.
            let whoami = try await running.request("/_sandbox/whoami", client: prodClient, environment: "production")
            #expect(whoami.status == .ok, "\(whoami.text)")
            #expect(try whoami.json()["environment"] as? String == "production")

            // A TEST certificate presented to production is refused with that reason.
            let crossed = try await running.request("/_sandbox/whoami", client: testClient, environment: "production")
            #expect(crossed.status == .forbidden)
            #expect(crossed.text.contains("CA of another environment"), "\(crossed.text)")
            let reverse = try await running.request("/ws-diffusion-fhir/metadata", client: prodClient)
            #expect(reverse.status == .forbidden)
            #expect(reverse.text.contains("another environment"))
            let rows = try await running.journalRows { $0.reason == "other-environment-ca" }
            #expect(rows.contains { $0.environment == "production" })
            #expect(rows.contains { $0.environment == "bac-a-sable" })

            // Whitelisted in bac-a-sable only: production still refuses the same DN (its own whitelist).
            try running.whitelist("ror-fhir", dn: Self.dn)
            #expect(try await running.request("/ws-diffusion-fhir/metadata", client: testClient).status == .ok)
            let notYet = try await running.request(
                "/ws-diffusion-fhir/metadata",
                client: prodClient,
                environment: "production"
            )
            #expect(notYet.status == .forbidden)
            #expect(notYet.text.contains("whitelist of environment 'production'"))
            #expect(notYet.text.contains("It is whitelisted for: ror-fhir@bac-a-sable"))
            try running.sandbox.whitelist.add(
                try Whitelist.entry(
                    from: .init(environment: "production", service: "ror-fhir", subjectDN: Self.dn),
                    origin: "test"
                )
            )
            #expect(
                try await running.request("/ws-diffusion-fhir/metadata", client: prodClient, environment: "production")
                    .status == .ok
            )

            // Onboarding targets the served environments only.
            let bad = try await running.admin(
                "/admin/onboarding",
                method: .post,
                body: """
                    {"kind": "saas", "direction": "consume", "service": "insi", "contact": "c", "subjectDN": "\(Self.dn)", "environment": "recette"}
                    """
            )
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("environments: bac-a-sable, production"))
        }
    }

    @Test func badEnvironmentListsAreRefused() throws {
        for (list, message) in [
            ([String](), "at least one"), (["Prod"], "not a valid name"), (["a", "a"], "appears twice"),
        ] {
            var configuration = SandboxConfiguration()
            configuration.inMemory = true
            configuration.pkiDirectory = SharedPKI.pki.directory
            configuration.environments = list
            #expect { _ = try Sandbox(configuration: configuration) } throws: { error in
                "\(error)".contains(message)
            }
        }
    }
}
