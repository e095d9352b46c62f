import Access
import Foundation
import Testing
import X509

@testable import TestPKI

@Suite("Test PKI: hierarchy, negative certificates, chain verification")
struct TestPKITests {
    static let dn = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func trustStore(_ pki: SandboxPKI) throws -> TrustStore {
        let store = TrustStore(certificates: [pki.root.certificate, pki.issuingCA.certificate])
        store.setRevokedSerials(try pki.revokedSerials())
        return store
    }

    @Test func hierarchyIsShapedLikeIGCSanteAndMarkedSandbox() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, created) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        #expect(created)
        let root = SubjectDN(pki.root.certificate.subject)
        let issuing = SubjectDN(pki.issuingCA.certificate.subject)
        #expect(root.rfc4514.contains("SANDBOX AC RACINE IGC-SANTE ELEMENTAIRE"))
        #expect(issuing.rfc4514.contains("SANDBOX AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"))
        #expect(pki.issuingCA.certificate.issuer == pki.root.certificate.subject)
        #expect(pki.server.certificate.issuer == pki.issuingCA.certificate.subject)
        let names = try pki.server.certificate.extensions.subjectAlternativeNames
        #expect(names?.contains(.dnsName("localhost")) == true)
        // Loading again mints nothing and gives the same certificates.
        let (again, createdAgain) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        #expect(!createdAgain)
        #expect(again.root.certificate == pki.root.certificate)
        #expect(again.server.certificate == pki.server.certificate)
    }

    @Test func rsaClientCertificateHasTheExactDNAndVerifies() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, _) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        let issued = try pki.issueClient(
            subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
            algorithm: .rsa2048
        )
        #expect(String(describing: issued.certificate.subject) == Self.dn)
        #expect(
            pki.issuingCA.certificate.publicKey.isValidSignature(issued.certificate.signature, for: issued.certificate)
        )
        #expect(try await Self.trustStore(pki).verify(chain: [issued.certificate]) == .trusted)
        try pki.write(issued, to: directory.appendingPathComponent("client"))
        let bundle = try String(contentsOf: directory.appendingPathComponent("client/bundle.pem"), encoding: .utf8)
        #expect(bundle.contains("-----END CERTIFICATE-----\n-----BEGIN"))
    }

    @Test(arguments: [
        (NegativeKind.expired, ChainFailure.expired),
        (.notYetValid, .notYetValid),
        (.selfSigned, .selfSigned),
        (.untrustedCA, .unknownIssuer),
        (.serverEKU, .wrongExtendedKeyUsage),
        (.revoked, .revoked),
        (.intermediateNotCA, .notACA),
        (.pathLengthExceeded, .pathLengthExceeded),
        (.unknownCriticalExtension, .unknownCriticalExtension),
        (.nameConstraints, .nameConstraints),
        (.wrongKeyUsage, .wrongKeyUsage),
    ])
    func negativeCertificatesAreRefusedForTheirReason(kind: NegativeKind, failure: ChainFailure) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, _) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        let issued = try pki.issueClient(
            subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
            algorithm: .p256,
            negative: kind
        )
        #expect(String(describing: issued.certificate.subject) == Self.dn)
        // As a client presents it: the certificate, then the intermediate it was issued by.
        #expect(
            try await Self.trustStore(pki).verify(chain: [issued.certificate] + issued.chain) == .refused(failure)
        )
    }

    @Test func mismatchedKeyDoesNotBelongToTheCertificate() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, _) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        let issued = try pki.issueClient(
            subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
            algorithm: .p256,
            negative: .mismatchedKey
        )
        #expect(issued.privateKey.publicKey != issued.certificate.publicKey)
    }

    @Test func chainSentByTheClientIsUsedAndAForgedIssuerIsRefused() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, _) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        let leaf = try pki.issueClient(subject: try SubjectDN(parsing: Self.dn).distinguishedName(), algorithm: .p256)
        // Trusting the root only: the client must send the issuing CA.
        let rootOnly = TrustStore(certificates: [pki.root.certificate])
        #expect(await rootOnly.verify(chain: [leaf.certificate]) == .refused(.unknownIssuer))
        #expect(await rootOnly.verify(chain: [leaf.certificate, pki.issuingCA.certificate]) == .trusted)
        // A CA with the same name but another key signs nothing we trust.
        let impostor = try CertificateMinter.authority(
            subject: pki.issuingCA.certificate.subject,
            algorithm: .p256,
            issuer: nil,
            validity: DateInterval(start: Date().addingTimeInterval(-60), duration: 86400)
        )
        let forged = try CertificateMinter.client(
            subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
            algorithm: .p256,
            issuer: impostor,
            validity: DateInterval(start: Date().addingTimeInterval(-60), duration: 86400)
        )
        #expect(try await Self.trustStore(pki).verify(chain: [forged.certificate]) == .refused(.badSignature))
        #expect(await TrustStore(certificates: [pki.root.certificate]).verify(chain: []) == .refused(.noCertificate))
    }

    @Test func revocationListRoundTripsAndRejectsGarbage() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, _) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        #expect(try pki.revoke(serial: "0A:BC:01") == "0abc01")
        #expect(try pki.revoke(serial: "0x00ABC01") == "0abc01")  // sign padding and case do not matter
        #expect(try pki.revokedSerials() == ["0abc01"])
        #expect(throws: PKIError.self) { try pki.revoke(serial: "not-hex") }
        try pki.clearRevocations()
        #expect(try pki.revokedSerials().isEmpty)
    }

    /// The SPKI digest equals what OpenSSL computes (what the ANS is sent for CSD whitelisting).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func spkiDigestMatchesOpenSSL() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (pki, _) = try SandboxPKI.loadOrCreate(directory: directory, algorithm: .p256)
        for algorithm in [KeyAlgorithm.p256, .rsa2048] {
            let issued = try pki.issueClient(
                subject: try SubjectDN(parsing: Self.dn).distinguishedName(),
                algorithm: algorithm
            )
            let out = directory.appendingPathComponent("c-\(algorithm.rawValue)")
            try pki.write(issued, to: out)
            let script =
                "openssl x509 -in '\(out.path)/cert.pem' -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"
            let output = try Self.shell(script)
            let expected = String(output.prefix(64))
            #expect(try SPKIDigest(publicKey: issued.certificate.publicKey).hex == expected)
            // And openssl prints the same RFC 2253 DN (UTF-8 kept).
            let subject = try Self.shell(
                "openssl x509 -in '\(out.path)/cert.pem' -noout -subject -nameopt RFC2253,-esc_msb"
            )
            #expect(subject.trimmingCharacters(in: .whitespacesAndNewlines) == "subject=\(Self.dn)")
            let verify = try Self.shell("openssl verify -CAfile '\(pki.caBundleURL.path)' '\(out.path)/cert.pem'")
            #expect(verify.contains(": OK"))
        }
    }

    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
