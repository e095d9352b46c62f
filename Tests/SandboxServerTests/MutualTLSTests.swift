import Access
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOSSL
import TestPKI
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// End to end over real TLS sockets on 127.0.0.1, with certificates minted by the tests.
@Suite("Mutual TLS: identity, whitelist enforcement, refusals, journal", .serialized)
struct MutualTLSTests {
    static let dn = "CN=CLIENT_TEST_RORN,OU=33333333333,O=GIP - TEST3012,ST=Paris (75),C=FR"

    @Test func whitelistedDNIsAcceptedAndWhoAmIAnswersTheContract() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            try running.whitelist("ror-fhir", dn: Self.dn)

            let whoami = try await running.request("/_sandbox/whoami", client: client)
            #expect(whoami.status == .ok)
            let body = try whoami.json()
            #expect(body["environment"] as? String == "bac-a-sable")
            #expect(body["subjectDN"] as? String == Self.dn)
            #expect((body["issuerDN"] as? String)?.contains("SANDBOX AC IGC-SANTE ELEMENTAIRE ORGANISATIONS") == true)
            #expect(body["serialNumber"] as? String == client.issued.serialHex)
            #expect(
                body["spkiSHA256"] as? String == (try SPKIDigest(publicKey: client.issued.certificate.publicKey)).hex
            )
            #expect(body["notBefore"] is String && body["notAfter"] is String)
            let whitelisted = body["whitelisted"] as? [String: Bool]
            #expect(whitelisted == ["ror-fhir": true, "ror-csd": false, "insi": false, "dmp": false, "mes": false])
            let reasons = body["reasons"] as? [String: String]
            #expect(reasons?["insi"]?.contains("is not in the insi whitelist") == true)

            // A whitelisted caller reaches the service: an unknown path there is a FHIR 404, not a 403.
            let fhir = try await running.request("/ws-diffusion-fhir/Location/x/y/z?identifier=x", client: client)
            #expect(fhir.status == .notFound)
            #expect(fhir.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
            #expect(fhir.text.contains("\"resourceType\":\"OperationOutcome\""))

            let rows = try await running.journalRows { $0.path == "/ws-diffusion-fhir/Location/x/y/z" }
            #expect(rows.first?.decision == .accepted)
            #expect(rows.first?.reason == "whitelisted")
            #expect(rows.first?.service == "ror-fhir")
            #expect(rows.first?.query == "identifier=x")
            #expect(rows.first?.subjectDN == Self.dn)
            #expect(rows.first?.status == 404)
        }
    }

    @Test(arguments: [
        "C = FR, ST = Paris (75), O = GIP - TEST3012, OU = 33333333333, CN = CLIENT_TEST_RORN",
        "/C=FR/ST=Paris (75)/O=GIP - TEST3012/OU=33333333333/CN=CLIENT_TEST_RORN",
    ])
    func sameDNWrittenTheOpenSSLOrSlashWayIsAccepted(form: String) async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            let body = try JSONSerialization.data(withJSONObject: [
                "service": "ror-fhir", "subjectDN": form, "role": "consume",
            ])
            let created = try await running.admin(
                "/admin/whitelist",
                method: .post,
                body: String(decoding: body, as: UTF8.self)
            )
            #expect(created.status == .created)
            #expect(try created.json()["subjectDN"] as? String == Self.dn)
            let response = try await running.request("/ws-diffusion-fhir/metadata", client: client)
            #expect(response.status == .ok)
            #expect(try response.json()["resourceType"] as? String == "CapabilityStatement")
        }
    }

    @Test func notWhitelistedGets403InTheServiceFormWithTheDNQuoted() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(
                "CN=EDITEUR_EN_ATTENTE,OU=33333333399,O=EDITEUR SANDBOX,ST=Île-de-France (75),C=FR"
            )
            let expectedDN = "CN=EDITEUR_EN_ATTENTE,OU=33333333399,O=EDITEUR SANDBOX,ST=Île-de-France (75),C=FR"

            let fhir = try await running.request("/ws-synchro-dispo-lits-fhir/Location", method: .patch, client: client)
            #expect(fhir.status == .forbidden)
            let outcome = try fhir.json()
            #expect(outcome["resourceType"] as? String == "OperationOutcome")
            let issue = (outcome["issue"] as? [[String: Any]])?.first
            #expect(issue?["code"] as? String == "forbidden")
            #expect((issue?["diagnostics"] as? String)?.contains("'\(expectedDN)'") == true)
            #expect((issue?["diagnostics"] as? String)?.contains("ror-fhir whitelist") == true)

            let soap = try await running.request("/lps", method: .post, client: client, body: "<x/>")
            #expect(soap.status == .forbidden)
            #expect(soap.headers[.contentType]?.hasPrefix("application/soap+xml") == true)
            #expect(soap.text.contains("<env:Fault>"))
            #expect(soap.text.contains("<env:Value>env:Sender</env:Value>"))
            #expect(soap.text.contains("sandbox:NotWhitelisted"))
            #expect(soap.text.contains(XMLEscaped.of(expectedDN)))

            // CSD whitelists public keys: the refusal quotes the key, not the DN.
            let csd = try await running.request("/ROR/CSD", method: .post, client: client, body: "<x/>")
            #expect(csd.status == .forbidden)
            let spki = try SPKIDigest(publicKey: client.issued.certificate.publicKey).hex
            #expect(csd.text.contains(spki))

            // Checked on the prefix, before any route: an unknown path under a service is 403, not 404.
            let unknown = try await running.request("/mes/anything/at/all", client: client)
            #expect(unknown.status == .forbidden)

            let rows = try await running.journalRows { $0.decision == .refused && $0.reason == "not-whitelisted" }
            #expect(rows.count >= 4)
            #expect(rows.allSatisfy { $0.subjectDN == expectedDN && $0.spkiSHA256 == spki })
        }
    }

    @Test func publicKeyEntryMatchesWhateverTheDN() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client("CN=SOMETHING ELSE ENTIRELY,O=X,C=FR")
            let spki = try SPKIDigest(publicKey: client.issued.certificate.publicKey)
            let body = #"{"service": "ror-csd", "publicKeySHA256": "\#(spki.hex)"}"#
            #expect(try await running.admin("/admin/whitelist", method: .post, body: body).status == .created)
            let csd = try await running.request("/ROR/CSD", method: .post, client: client, body: "<x/>")
            // Accepted by key: the CSD service answers (a fault: not SOAP 1.2).
            #expect(csd.status == .unsupportedMediaType)
            #expect(csd.text.contains("<env:Fault>") && csd.text.contains("ror:erreur"))
            // Same DN, other key: refused.
            let sameDN = try SharedPKI.client("CN=SOMETHING ELSE ENTIRELY,O=X,C=FR")
            #expect(
                try await running.request("/ROR/CSD", method: .post, client: sameDN, body: "<x/>").status == .forbidden
            )
        }
    }

    /// A client that never finishes its headers, or sends less body than announced, is cut off after the request
    /// timeout; others are answered meanwhile.
    @Test func stalledRequestsAreCutOffOthersAnswered() async throws {
        let running = try await RunningSandbox.start { $0.requestTimeout = 1 }
        try await running.whileRunning {
            let client = try SharedPKI.client("CN=CLIENT_LENT,O=EDITEUR SANDBOX,C=FR")
            for partial in [
                "GET /_sandbox/whoami HTTP/1.1\r\nHost: localhost\r\n",
                "POST /_sandbox/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc",
            ] {
                let started = ContinuousClock.now
                async let stalled = RawTLS.exchange(
                    port: running.tlsPort,
                    client: client,
                    send: partial,
                    timeout: .seconds(5)
                )
                #expect(try await running.request("/_sandbox/whoami", client: client).status == .ok)
                let exchange = try await stalled
                let waited = ContinuousClock.now - started
                #expect(exchange.serverClosed, "\(partial)")
                #expect(exchange.received.isEmpty, "\(exchange.received)")
                #expect(waited >= .milliseconds(900) && waited < .seconds(4), "\(waited)")
            }
        }
    }

    /// The TLS profiles: `intermediate` (default) refuses TLS 1.2 CBC suites, `modern` TLS 1.2 altogether, `legacy`
    /// takes both; TLS 1.3 always works.
    @Test(arguments: TLSProfile.allCases)
    func tlsProfiles(profile: TLSProfile) async throws {
        let running = try await RunningSandbox.start { $0.tlsProfile = profile }
        try await running.whileRunning {
            let client = try SharedPKI.client("CN=CLIENT_TLS,O=EDITEUR SANDBOX,C=FR")
            func answered(_ version: TLSVersion, _ suite: NIOTLSCipher?) async -> Bool {
                let response = try? await running.request(
                    "/_sandbox/whoami",
                    client: client,
                    tlsVersion: version,
                    cipherSuites: suite.map { [$0] }
                )
                return response?.status == .ok
            }
            #expect(await answered(.tlsv13, nil))
            #expect(await answered(.tlsv12, .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) == (profile != .modern))
            #expect(await answered(.tlsv12, .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA) == (profile == .legacy))
        }
    }

    @Test(arguments: [TLSVersion.tlsv12, .tlsv13])
    func tlsVersions(version: TLSVersion) async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let good = try SharedPKI.client(Self.dn)
            try running.whitelist("ror-fhir", dn: Self.dn)
            #expect(try await running.request("/_sandbox/whoami", client: good, tlsVersion: version).status == .ok)
            let expired = try SharedPKI.client(Self.dn, negative: .expired)
            await #expect(throws: (any Error).self) {
                _ = try await running.request("/_sandbox/whoami", client: expired, tlsVersion: version)
            }
            let rows = try await running.journalRows { $0.method == "TLS" && $0.reason == "expired" }
            #expect(rows.first?.subjectDN == Self.dn)
            #expect(rows.first?.status == 0)
        }
    }

    /// Every negative certificate, in both reject modes, with the reason in the journal.
    @Test(
        arguments: [
            (NegativeKind?.some(.expired), "expired"),
            (.some(.notYetValid), "not-yet-valid"),
            (.some(.selfSigned), "self-signed"),
            (.some(.untrustedCA), "unknown-ca"),
            (.some(.serverEKU), "wrong-eku"),
            (.some(.revoked), "revoked"),
            (.some(.intermediateNotCA), "not-a-ca"),
            (.some(.pathLengthExceeded), "path-length-exceeded"),
            (.some(.unknownCriticalExtension), "unknown-critical-extension"),
            (.some(.nameConstraints), "name-constraints"),
            (nil, "no-client-certificate"),
        ],
        [RejectMode.tls, .http]
    )
    func negativeCertificatesAreRefused(negative: (kind: NegativeKind?, reason: String), mode: RejectMode) async throws
    {
        let (kind, reason) = negative
        let client = try kind.map { try SharedPKI.client(Self.dn, negative: $0) }
        let running = try await RunningSandbox.start(rejectMode: mode)
        try await running.whileRunning {
            try running.whitelist("ror-fhir", dn: Self.dn)  // the DN is whitelisted: the chain alone is refused

            switch mode {
            case .tls:
                await #expect(throws: (any Error).self) {
                    _ = try await running.request("/ws-diffusion-fhir/Location", client: client)
                }
                let rows = try await running.journalRows { $0.method == "TLS" }
                #expect(rows.first?.reason == reason)
                #expect(rows.first?.decision == .refused)
                if kind != nil { #expect(rows.first?.subjectDN == Self.dn) }
            case .http:
                let fhir = try await running.request("/ws-diffusion-fhir/Location", client: client)
                #expect(fhir.status == .forbidden)
                #expect(fhir.text.contains("OperationOutcome"))
                let explanation = ChainFailure(rawValue: reason)!.explanation
                #expect(fhir.text.contains(explanation))
                let whoami = try await running.request("/_sandbox/whoami", client: client)
                #expect(whoami.status == .forbidden)
                if kind != nil {
                    #expect(try whoami.json()["chainFailure"] as? String == reason)
                    #expect(try whoami.json()["subjectDN"] as? String == Self.dn)
                }
                let rows = try await running.journalRows { $0.path == "/ws-diffusion-fhir/Location" }
                #expect(rows.first?.reason == reason)
                #expect(rows.first?.decision == .refused)
                #expect(rows.first?.status == 403)
            }
        }
    }

    /// A certificate that may not sign: swift-nio-ssl's client will not even use it, so OpenSSL's (curl) presents it;
    /// the server's TLS library refuses it before the chain is verified, in both reject modes, and the journal
    /// names the sandbox's reason.
    @Test(arguments: [RejectMode.tls, .http])
    func aCertificateThatMayNotSignIsRefusedAtTheHandshake(mode: RejectMode) async throws {
        let client = try SharedPKI.client(Self.dn, negative: .wrongKeyUsage)
        let running = try await RunningSandbox.start(rejectMode: mode)
        try await running.whileRunning {
            try running.whitelist("ror-fhir", dn: Self.dn)
            let curl = try await Shell.run(
                "curl -s -o /dev/null -w '%{http_code}' --cacert '\(SharedPKI.pki.caBundleURL.path)' "
                    + "--cert '\(client.certificate.path)' --key '\(client.key.path)' "
                    + "https://127.0.0.1:\(running.tlsPort)/_sandbox/whoami"
            )
            #expect(curl.status != 0)
            #expect(curl.stdout == "000")
            let rows = try await running.journalRows { $0.method == "TLS" }
            #expect(rows.first?.reason == "wrong-key-usage")
            #expect(rows.first?.decision == .refused)
        }
    }

    /// The client's own TLS stack refuses a certificate whose key does not match: nothing reaches the sandbox.
    @Test func mismatchedKeyFailsOnTheClientSide() throws {
        let client = try SharedPKI.client(Self.dn, negative: .mismatchedKey)
        #expect(throws: (any Error).self) {
            _ = try NIOSSLContext(configuration: try TLSClients.configuration(client: client, tlsVersion: nil))
        }
    }

    @Test func revocationTakesEffectWhileRunning() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            try running.whitelist("ror-fhir", dn: Self.dn)
            #expect(try await running.request("/_sandbox/whoami", client: client).status == .ok)
            try SharedPKI.pki.revoke(serial: client.issued.serialHex)  // as `certs revoke` does, from outside
            var refused = false
            for _ in 0..<40 where !refused {
                try await Task.sleep(for: .milliseconds(100))
                refused = (try? await running.request("/_sandbox/whoami", client: client)) == nil
            }
            #expect(refused)
        }
    }

    @Test func bodiesAreJournaledAuthorizationMaskedAndClipped() async throws {
        let running = try await RunningSandbox.start { $0.journalBodyLimit = 64 }
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            try running.whitelist("ror-fhir", dn: Self.dn)
            let payload = #"{"resourceType":"Parameters","parameter":[]}"#
            _ = try await running.request(
                "/ws-synchro-dispo-lits-fhir/Location",
                method: .patch,
                client: client,
                headers: [.authorization: "Bearer abc.def.ghi", .contentType: "application/fhir+json"],
                body: payload
            )
            let row = try #require(try await running.journalRows { $0.method == "PATCH" }.first)
            #expect(row.requestBody.map { String(decoding: $0, as: UTF8.self) } == payload)
            #expect(!row.requestBodyTruncated)
            #expect(row.requestHeaders?.contains("abc.def.ghi") == false)
            #expect(row.requestHeaders?.contains("Bearer ***(11 chars)") == true)
            #expect(row.responseBody?.count == 64)
            #expect(row.responseBodyTruncated)
            #expect(row.durationMs > 0)
        }
    }

    /// An answer built in memory is journaled whole, byte for byte what the client received, and still arrives
    /// with its length (it is gathered before it is written).
    @Test func journaledResponseBodiesAreTheBytesSent() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            let response = try await running.request("/_sandbox/whoami", client: client)
            #expect(response.status == .ok)
            let body = try #require(response.body)
            #expect(body.readableBytes > 0 && response.headers[.contentLength] == String(body.readableBytes))
            let row = try #require(try await running.journalRows { $0.path == "/_sandbox/whoami" }.first)
            #expect(row.responseBody == Data(body.readableBytesView))
            #expect(!row.responseBodyTruncated)
        }
    }

    @Test func http10ClientsGetHTTP10AndAClose() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)

            let plain = try await RawTLS.exchange(
                port: running.tlsPort,
                client: client,
                send: "GET /_sandbox/whoami HTTP/1.0\r\n\r\n"
            )
            #expect(plain.received.hasPrefix("HTTP/1.0 200"))
            #expect(plain.received.lowercased().contains("connection: close"))
            #expect(plain.serverClosed)

            // keep-alive is honoured and echoed; the next request without it closes.
            let twice = try await RawTLS.exchange(
                port: running.tlsPort,
                client: client,
                send:
                    "GET /_sandbox/whoami HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /_sandbox/whoami HTTP/1.0\r\n\r\n"
            )
            #expect(twice.received.components(separatedBy: "HTTP/1.0 200").count == 3)
            #expect(twice.received.lowercased().contains("connection: keep-alive"))
            #expect(twice.serverClosed)

            // HTTP/1.1 stays open by default.
            let eleven = try await RawTLS.exchange(
                port: running.tlsPort,
                client: client,
                send: "GET /_sandbox/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n",
                timeout: .milliseconds(500)
            )
            #expect(eleven.received.hasPrefix("HTTP/1.1 200"))
            #expect(!eleven.serverClosed)
        }
    }
}

extension MutualTLSTests {
    @Test func plainHTTPOnTheTLSPortIsJournaledWithTheTLSLayersReason() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let plain = TestClient(host: "127.0.0.1", port: running.tlsPort)
            plain.connect()
            _ = try? await plain.get("/_sandbox/whoami")
            try? await plain.shutdown()
            let rows = try await running.journalRows { $0.method == "TLS" }
            #expect(rows.first?.reason?.hasPrefix("tls-error:") == true)
            #expect(rows.first?.subjectDN == nil)
        }
    }

    @Test func bodyOverTheUploadLimitIs413InTheServiceForm() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            try running.whitelist("ror-fhir", dn: Self.dn)
            let big = String(repeating: "x", count: 10 * 1024 * 1024 + 1)
            let response = try await running.request(
                "/ws-diffusion-fhir/Location",
                method: .post,
                client: client,
                body: big
            )
            #expect(response.status == .contentTooLarge)
            #expect(response.text.contains("OperationOutcome"))
            let admin = try await running.admin(
                "/admin/whitelist",
                method: .post,
                body: String(repeating: " ", count: 1024 * 1024 + 1)
            )
            #expect(admin.status == .contentTooLarge)
            #expect(try admin.json()["error"] != nil)
            // The server keeps serving.
            #expect(try await running.request("/_sandbox/whoami", client: client).status == .ok)
        }
    }

    /// `--server-cert/--server-key`: the sandbox presents the given chain (here from another PKI).
    @Test func ownServerCertificateIsPresented() async throws {
        let other = SharedPKI.directory.appendingPathComponent("own-server-\(UUID().uuidString)")
        let (otherPKI, _) = try SandboxPKI.loadOrCreate(directory: other, algorithm: .p256)
        let running = try await RunningSandbox.start {
            $0.serverCertificate = otherPKI.serverChainURL
            $0.serverKey = otherPKI.serverKeyURL
        }
        try await running.whileRunning {
            let client = try SharedPKI.client(Self.dn)
            // Our usual CA no longer validates the server…
            await #expect(throws: (any Error).self) {
                _ = try await running.request("/_sandbox/whoami", client: client)
            }
            // …the other PKI's does.
            var tls = try TLSClients.configuration(client: client, tlsVersion: nil)
            tls.trustRoots = .file(otherPKI.caBundleURL.path)
            let testClient = TestClient(
                host: "127.0.0.1",
                port: running.tlsPort,
                configuration: .init(tlsConfiguration: tls, serverName: "localhost")
            )
            testClient.connect()
            #expect(try await testClient.get("/_sandbox/whoami").status == .ok)
            try await testClient.shutdown()
        }
    }
}

enum XMLEscaped {
    static func of(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&apos;")
    }
}
