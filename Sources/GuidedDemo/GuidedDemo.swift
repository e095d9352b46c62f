import Access
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import SandboxServer

/// `esante-sandbox demo`: the whitelisting flow told step by step and done for real against a sandbox — a
/// publisher's certificate refused, its integration request, the committee, the ANS delay on the fast clock, then
/// accepted, a bed availability fed and read back by a consumer. Every step checks what it announces, so the demo
/// is also an end-to-end test: `run` returns false when a step did not behave as announced.
public struct GuidedDemo {
    /// The seeds' story (`Seeds/demo/story.json`).
    public struct Story: Codable, Sendable {
        public struct Publisher: Codable, Sendable {
            public var subjectDN: String
            public var contact: String
            public var kind: String
        }
        public struct Place: Codable, Sendable {
            public var id: String
            public var identifier: String
        }
        public var publisher: Publisher
        public var establishment: String
        public var location: Place
        public var availableBeds: Int
        public var consumerClient: String

        /// The story of a seeds folder (`demo/story.json`): it names a place of that folder's ROR dataset.
        public static func load(seeds: URL) throws -> Story {
            let file = seeds.appendingPathComponent("demo/story.json")
            guard let data = FileManager.default.contents(atPath: file.path) else {
                throw Failure(description: "\(file.path): no demo story in this seeds folder")
            }
            do { return try JSONDecoder().decode(Story.self, from: data) } catch {
                throw Failure(description: "\(file.path): \(error)")
            }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let target: ReadyInfo
    let story: Story
    let pause: Bool
    let say: @Sendable (String) -> Void
    let clients = ClientPool()
    var admin: HTTPClient { clients.admin }

    public init(target: ReadyInfo, story: Story, pause: Bool, say: @escaping @Sendable (String) -> Void) {
        self.target = target
        self.story = story
        self.pause = pause
        self.say = say
    }

    static let capacity =
        "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity"

    /// Plays the story; throws `Failure` at the first step that does not behave as announced.
    public func run() async throws {
        do {
            try await play()
        } catch {
            await clients.shutdown()
            throw error
        }
        await clients.shutdown()
    }

    func play() async throws {
        var step = 0
        func announce(_ text: String) async {
            step += 1
            if pause, step > 1 {
                say("   (press Enter to continue)")
                _ = readLine()
            }
            say("\n\(step). \(text)")
        }
        func check(_ condition: Bool, _ failure: @autoclosure () -> String) throws {
            guard condition else { throw Failure(description: "step \(step): \(failure())") }
        }
        let tls = target.tls
        let feedURL = tls + SandboxService.Path.rorCapacityFeed + "/Location?identifier=" + story.location.identifier

        await announce("The publisher gets a test certificate for its subject DN (certificate workshop).")
        let minted = try await json(
            admin,
            .POST,
            target.admin + "/admin/certificates",
            json: ["subjectDN": story.publisher.subjectDN]
        )
        try check(minted.status == 201, "expected 201 from /admin/certificates, got \(minted.status): \(minted.text)")
        let certificatePEM = minted.object["certificatePEM"] as? String ?? ""
        let keyPEM = minted.object["privateKeyPEM"] as? String ?? ""
        say(
            "   subject DN: \(minted.object["subjectDN"] as? String ?? "?")\n   issued by:  \(minted.object["issuerDN"] as? String ?? "?")"
        )
        let publisher = try clients.make(ca: target.caCertificateFile, certificatePEM: certificatePEM, keyPEM: keyPEM)

        await announce("It calls the ROR capacity feed before being whitelisted: refused.")
        let refused = try await send(
            publisher,
            .PATCH,
            feedURL,
            headers: [("Content-Type", "application/fhir+json")],
            body: patchBody(beds: story.availableBeds)
        )
        try check(refused.status == 403, "expected 403, got \(refused.status): \(refused.text)")
        try check(refused.text.contains(story.publisher.subjectDN), "the refusal should quote the DN: \(refused.text)")
        say("   403 Forbidden — \(Self.diagnostics(refused.text) ?? refused.text)")

        await announce(
            "It submits an integration request to the ANS: feed the ROR for establishment \(story.establishment)."
        )
        let submitted = try await json(
            admin,
            .POST,
            target.admin + "/admin/onboarding",
            json: [
                "kind": story.publisher.kind, "direction": "feed", "service": "ror-fhir",
                "contact": story.publisher.contact,
                "subjectDN": story.publisher.subjectDN, "establishments": [story.establishment],
                "environment": target.environment,
            ]
        )
        try check(submitted.status == 201, "expected 201, got \(submitted.status): \(submitted.text)")
        let id = submitted.object["id"] as? Int ?? 0
        say("   request #\(id): \(submitted.object["state"] as? String ?? "?")")

        await announce("The committee validates it and assigns a Keycloak client.")
        let validated = try await json(
            admin,
            .POST,
            target.admin + "/admin/onboarding/\(id)/validate",
            json: ["actor": "comité ROR (démo)", "reason": "dossier complet"]
        )
        try check(
            validated.status == 200 && validated.object["state"] as? String == "validated",
            "expected validated: \(validated.text)"
        )
        let clientId = (validated.object["committee"] as? [String: Any])?["clientId"] as? String ?? ""
        say("   state validated, client id \(clientId)")

        await announce("The publisher reports its tests done; the ANS delay before the whitelist starts.")
        let done = try await json(
            admin,
            .POST,
            target.admin + "/admin/onboarding/\(id)/tests-done",
            json: ["actor": "éditeur (démo)"]
        )
        try check(done.status == 200, "expected 200, got \(done.status): \(done.text)")
        say(
            "   state \(done.object["state"] as? String ?? "?")"
                + ((done.object["whitelistDueAt"] as? String).map { ", whitelisting due \($0) (sandbox clock)" } ?? "")
        )

        await announce("The delay passes on the fast clock, and the ANS whitelists the certificate.")
        let clock = try await json(admin, .GET, target.admin + "/admin/clock")
        let previousSpeed = clock.object["speed"] as? Double ?? 1
        let started = Date()
        var state = done.object["state"] as? String ?? ""
        if state != "whitelisted", let dueText = done.object["whitelistDueAt"] as? String,
            let due = ISO8601DateFormatter().date(from: dueText),
            let nowText = clock.object["now"] as? String, let now = ISO8601DateFormatter().date(from: nowText)
        {
            // Fast enough for the rest of the delay to pass in about 3 s of real time.
            let speed = min(100_000, max(previousSpeed, (due.timeIntervalSince(now) / 3).rounded(.up)))
            if speed > previousSpeed {
                _ = try await json(admin, .POST, target.admin + "/admin/clock", json: ["speed": speed])
                say("   clock ×\(Int(speed))")
            }
        }
        while state != "whitelisted", Date().timeIntervalSince(started) < 30 {
            try await Task.sleep(for: .milliseconds(200))
            let detail = try await json(admin, .GET, target.admin + "/admin/onboarding/\(id)")
            state = (detail.object["request"] as? [String: Any])?["state"] as? String ?? ""
        }
        if previousSpeed != (try await json(admin, .GET, target.admin + "/admin/clock").object["speed"] as? Double) {
            _ = try await json(admin, .POST, target.admin + "/admin/clock", json: ["speed": previousSpeed])
        }
        try check(state == "whitelisted", "the request was not whitelisted within 30 s (state \(state))")
        say(String(format: "   whitelisted after %.1f s of real time", Date().timeIntervalSince(started)))

        await announce("It gets an access token with its certificate (client_credentials, tls_client_auth).")
        let token = try await send(
            publisher,
            .POST,
            tls + "/auth/realms/ror/protocol/openid-connect/token",
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "grant_type=client_credentials&client_id=\(clientId)"
        )
        let accessToken =
            (try? JSONSerialization.jsonObject(with: Data(token.text.utf8)) as? [String: Any])?["access_token"]
            as? String
        try check(token.status == 200 && accessToken != nil, "expected a token, got \(token.status): \(token.text)")
        say("   200 OK, Bearer token of \(accessToken?.count ?? 0) characters")

        await announce(
            "It sends the bed availability of \(story.location.identifier): \(story.availableBeds) beds available."
        )
        let patched = try await send(
            publisher,
            .PATCH,
            feedURL,
            headers: [("Content-Type", "application/fhir+json"), ("Authorization", "Bearer \(accessToken ?? "")")],
            body: patchBody(beds: story.availableBeds)
        )
        try check(patched.status == 200, "expected 200, got \(patched.status): \(patched.text)")
        say("   200 OK, Location version \(patched.headers.first(name: "ETag") ?? "?")")

        await announce("A consumer (the demo client '\(story.consumerClient)') reads the new availability.")
        let read = try await consumerReadsBeds()
        try check(
            read == story.availableBeds,
            "the consumer read \(read.map(String.init) ?? "nothing") instead of \(story.availableBeds)"
        )
        say("   the consumer sees \(read ?? 0) available beds")
        say(
            "\nDone: every step behaved as announced. The journal (admin /admin/journal, or 'esante-sandbox journal') shows each call."
        )
    }

    /// The consumer's token and read of the Location: available beds now (status 02, current, undifferentiated).
    func consumerReadsBeds() async throws -> Int? {
        guard let files = target.clientCertificates[story.consumerClient] else {
            throw Failure(description: "no demo client '\(story.consumerClient)' in this sandbox")
        }
        let consumer = try clients.make(
            ca: target.caCertificateFile,
            certificatePEM: try String(contentsOf: files.certificate, encoding: .utf8),
            keyPEM: try String(contentsOf: files.key, encoding: .utf8)
        )
        // Its Keycloak client and Ror-* values: the ror-fhir entry of the DN the sandbox reads from its certificate.
        let subjectDN = try await send(consumer, .GET, target.tls + "/_sandbox/whoami").object["subjectDN"] as? String
        let whitelist = try await send(admin, .GET, target.admin + "/admin/whitelist")
        let entries = (try? JSONSerialization.jsonObject(with: Data(whitelist.text.utf8)) as? [[String: Any]]) ?? []
        guard
            let entry = entries.first(where: {
                $0["service"] as? String == "ror-fhir" && $0["subjectDN"] as? String == subjectDN
            }),
            let clientId = entry["clientId"] as? String
        else {
            throw Failure(
                description: "the demo consumer (\(subjectDN ?? "?")) is not a ror-fhir client of the whitelist"
            )
        }
        let token = try await send(
            consumer,
            .POST,
            target.tls + "/auth/realms/ror/protocol/openid-connect/token",
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "grant_type=client_credentials&client_id=\(clientId)"
        )
        guard
            let accessToken = (try? JSONSerialization.jsonObject(with: Data(token.text.utf8)) as? [String: Any])?[
                "access_token"
            ] as? String
        else {
            throw Failure(description: "the consumer got no token: \(token.status) \(token.text)")
        }
        var headers = [("Authorization", "Bearer \(accessToken)")]
        for (name, value) in entry["rorHeaders"] as? [String: String] ?? [:] { headers.append((name, value)) }
        let location = try await send(
            consumer,
            .GET,
            target.tls + SandboxService.Path.rorConsumer + "/Location/\(story.location.id)",
            headers: headers
        )
        guard location.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(location.text.utf8)) as? [String: Any]
        else {
            throw Failure(
                description:
                    "the consumer could not read Location/\(story.location.id): \(location.status) \(location.text)"
            )
        }
        return Self.availableBeds(in: object)
    }

    static func availableBeds(in location: [String: Any]) -> Int? {
        for indicator in location["extension"] as? [[String: Any]] ?? [] where indicator["url"] as? String == capacity {
            let parts = indicator["extension"] as? [[String: Any]] ?? []
            func code(_ url: String) -> String? {
                ((parts.first { $0["url"] as? String == url }?["valueCodeableConcept"] as? [String: Any])?["coding"]
                    as? [[String: Any]])?.first?["code"] as? String
            }
            if code("capacityStatus") == "02", code("temporalityCapacity") == "01",
                code("genderCapacityAvailable") == "03"
            {
                return parts.first { $0["url"] as? String == "nbCapacity" }?["valueInteger"] as? Int
            }
        }
        return nil
    }

    /// Scenario 2bis of the ROR feed: replace the current undifferentiated availability.
    func patchBody(beds: Int) -> String {
        func nos(_ tre: String) -> String {
            "https://mos.esante.gouv.fr/NOS/\(tre)/FHIR/\(tre.replacingOccurrences(of: "_", with: "-"))"
        }
        func coded(_ url: String, _ tre: String, _ code: String) -> [String: Any] {
            ["url": url, "valueCodeableConcept": ["coding": [["system": nos(tre), "code": code]]]]
        }
        func selector(_ url: String, _ code: String) -> String {
            "extension.where(url='\(url)' and valueCodeableConcept.coding.code='\(code)')"
        }
        let path =
            "Location.extension.where(url='\(Self.capacity)').where("
            + [
                selector("capacityStatus", "02"), selector("temporalityCapacity", "01"),
                selector("temporaryAssignement", "01"),
                selector("genderCapacityAvailable", "03"),
            ].joined(separator: " and ") + ")"
        let stamp = ISO8601DateFormatter().string(from: Date())
        let value: [String: Any] = [
            "url": Self.capacity,
            "extension": [
                coded("capacityStatus", "TRE_R330-TypeStatutCapacite", "02"),
                coded("capacityType", "TRE_R329-NatureCapacite", "01"),
                coded("temporalityCapacity", "TRE_R331-TemporaliteCapacite", "01"),
                coded("capacitySourceType", "TRE_R335-TypeSourceCapacite", "02"),
                coded("temporaryAssignement", "TRE_R337-AffectationTemporaire", "01"),
                coded("genderCapacityAvailable", "TRE_R332-GenreCapacite", "03"),
                ["url": "nbCapacity", "valueInteger": beds], ["url": "capacityUpdateDate", "valueDateTime": stamp],
            ],
        ]
        let parameters: [String: Any] = [
            "resourceType": "Parameters",
            "parameter": [
                [
                    "name": "operation",
                    "part": [
                        ["name": "type", "valueCode": "replace"], ["name": "path", "valueString": path],
                        ["name": "value", "valueExtension": value],
                    ],
                ]
            ],
        ]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: parameters)) ?? Data(), as: UTF8.self)
    }

    // MARK: HTTP

    struct Answer {
        var status: Int
        var text: String
        var headers: HTTPHeaders
        var object: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
        }
    }

    /// The demo's HTTP clients (plain for the admin API, one per certificate for mutual TLS), shut down at the end.
    final class ClientPool: Sendable {
        let admin = HTTPClient(eventLoopGroupProvider: .singleton)
        private let made = NIOLockedValueBox<[HTTPClient]>([])

        /// An HTTPS client presenting a certificate and trusting the sandbox's CA bundle.
        func make(ca: String, certificatePEM: String, keyPEM: String) throws -> HTTPClient {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(ca)
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            made.withLockedValue { $0.append(client) }
            return client
        }

        func shutdown() async {
            for client in made.withLockedValue({ $0 }) + [admin] { try? await client.shutdown() }
        }
    }

    func send(
        _ client: HTTPClient,
        _ method: HTTPMethod,
        _ url: String,
        headers: [(String, String)] = [],
        body: String? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), text: String(buffer: bytes), headers: response.headers)
    }

    func json(
        _ client: HTTPClient,
        _ method: HTTPMethod,
        _ url: String,
        json: [String: Any]? = nil
    ) async throws -> Answer {
        let body = try json.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        return try await send(
            client,
            method,
            url,
            headers: body == nil ? [] : [("Content-Type", "application/json")],
            body: body
        )
    }

    /// The `diagnostics` of an OperationOutcome, for one-line output.
    static func diagnostics(_ text: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return nil
        }
        return (object["issue"] as? [[String: Any]])?.first?["diagnostics"] as? String
    }
}
