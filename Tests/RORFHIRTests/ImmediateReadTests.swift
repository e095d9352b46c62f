import Access
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import RORFHIR
@testable import SandboxServer
@testable import SandboxTestSupport

/// Consumer reads answered on the connection's event loop (`ImmediateAnswers`, `RORFHIRService.readNow`): the same
/// answers and journal rows as the `:type/:id` route, every other case left to the route, responses in order.
@Suite("Immediate reads")
struct ImmediateReadTests {
    static let location = "/ws-diffusion-fhir/Location/loc-00001-1"

    static func request(
        _ path: String,
        token: String?,
        headers extra: HTTPFields = [:],
        dropping: HTTPField.Name? = nil
    ) -> Request {
        var fields = RORConsumer.rorHeaders
        if let token { fields[.authorization] = "Bearer \(token)" }
        for field in extra { fields[field.name] = field.value }
        if let dropping { fields[dropping] = nil }
        return Request(
            head: HTTPRequest(method: .get, scheme: "https", authority: "localhost", path: path, headerFields: fields),
            body: RequestBody(buffer: ByteBuffer())
        )
    }

    @Test func readNowAnswersOnlyWhatNeedsNothingButMemory() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let ror = running.sandbox.ror
            let identity = try ClientIdentity(certificate: consumer.issued.certificate, verdict: .trusted)
            let environment = SandboxEnvironment.sandbox
            let token = try await RORConsumer.accessToken(running, client: consumer)
            // Nothing verified or cached yet: the route answers.
            #expect(
                ror.readNow(Self.request(Self.location, token: token), identity: identity, environment: environment)
                    == nil
            )
            let routed = try await RORConsumer.get(running, Self.location, client: consumer, token: token)
            #expect(routed.status == .ok)

            // Token verified, Location cached: answered at once, with the route's bytes and validators.
            let (head, body) = try #require(
                ror.readNow(Self.request(Self.location, token: token), identity: identity, environment: environment)
            )
            #expect(head.status == .ok)
            #expect(body == Data(buffer: try #require(routed.body)))
            for name in [HTTPField.Name.contentType, .eTag, .lastModified] {
                #expect(head.headerFields[name] == routed.headers[name], "\(name)")
            }

            // Everything else is left to the route (which answers errors in their one form).
            let other = try ClientIdentity(
                certificate: try SharedPKI.client("CN=OTHER,O=TEST,C=FR").issued.certificate,
                verdict: .trusted
            )
            let leftToTheRoute: [(String, Request, ClientIdentity)] = [
                ("token bound to another certificate", Self.request(Self.location, token: token), other),
                ("no token", Self.request(Self.location, token: nil), identity),
                ("unknown token", Self.request(Self.location, token: token + "x"), identity),
                (
                    "a Ror-* header missing",
                    Self.request(Self.location, token: token, dropping: HTTPField.Name("Ror-Role-Metier-Code")!),
                    identity
                ),
                (
                    "a Ror-* header not registered",
                    Self.request(Self.location, token: token, headers: [HTTPField.Name("Ror-Role-Metier-Code")!: "X"]),
                    identity
                ),
                (
                    "XML asked", Self.request(Self.location, token: token, headers: [.accept: "application/fhir+xml"]),
                    identity
                ),
                ("a query", Self.request(Self.location + "?_format=json", token: token), identity),
                ("not cached", Self.request("/ws-diffusion-fhir/Location/loc-00002-1", token: token), identity),
                ("unknown id", Self.request("/ws-diffusion-fhir/Location/nope", token: token), identity),
                ("unknown type", Self.request("/ws-diffusion-fhir/Patient/loc-00001-1", token: token), identity),
                ("history", Self.request(Self.location + "/_history", token: token), identity),
                ("operation", Self.request("/ws-diffusion-fhir/OperationDefinition/export", token: token), identity),
            ]
            for (what, request, caller) in leftToTheRoute {
                #expect(ror.readNow(request, identity: caller, environment: environment) == nil, "\(what)")
            }
            // Capitals in Accept are folded, as the route folds them.
            #expect(
                ror.readNow(
                    Self.request(Self.location, token: token, headers: [.accept: "Application/FHIR+JSON"]),
                    identity: identity,
                    environment: environment
                ) != nil
            )
        }
    }

    @Test func readTargetsAreThoseOnlyTheReadRouteAnswers() {
        #expect(
            RORFHIRService.readTarget("/ws-diffusion-fhir/Location/loc-1.a-B") ?? ("", "") == ("Location", "loc-1.a-B")
        )
        for path in [
            "/ws-diffusion-fhir/Location", "/ws-diffusion-fhir/Location/", "/ws-diffusion-fhir/Location/a/b",
            "/ws-diffusion-fhir/Location/_search", "/ws-diffusion-fhir/Location/$export",
            "/ws-diffusion-fhir/Location/a%20b",
            "/ws-diffusion-fhir/OperationDefinition/export", "/ws-diffusion-fhirX/Location/a", "/other/Location/a",
            "/ws-diffusion-fhir/Location/" + String(repeating: "a", count: 65),
        ] {
            #expect(RORFHIRService.readTarget(path) == nil, "\(path)")
        }
    }

    /// Over mutual TLS: the first read (token not yet verified) takes the route, the next ones are answered at
    /// once; the client sees the same answer and the journal the same row. Refusals and faults still apply.
    @Test func immediateReadsAnswerAndJournalLikeTheRoute() async throws {
        let (running, consumer) = try await RORConsumer.start()
        try await running.whileRunning {
            let token = try await RORConsumer.accessToken(running, client: consumer)
            let first = try await RORConsumer.get(running, Self.location, client: consumer, token: token)
            let second = try await RORConsumer.get(running, Self.location, client: consumer, token: token)
            #expect(first.status == .ok && second.status == .ok)
            #expect(first.body == second.body)
            for name in [HTTPField.Name.contentType, .eTag, .lastModified, .contentLength] {
                #expect(second.headers[name] == first.headers[name], "\(name)")
            }
            #expect(second.headers[.date] != nil)
            let rows = try await running.journalRows { $0.path == Self.location }
            try #require(rows.count == 2)
            #expect(Set(rows.map(\.responseBody)).count == 1)
            #expect(Set(rows.map(\.responseHeaders)).count == 1, "\(rows.map(\.responseHeaders))")
            #expect(Set(rows.map(\.requestHeaders)).count == 1)
            #expect(rows.allSatisfy { $0.status == 200 && $0.decision == .accepted && $0.reason == "whitelisted" })
            #expect(Set(rows.map(\.subjectDN)).count == 1 && rows[0].subjectDN != nil)
            #expect(rows.allSatisfy { $0.remoteAddress?.hasPrefix("127.0.0.1:") == true })

            // A header that does not match the registration: 403 from the route, even on a cached read.
            var headers = RORConsumer.rorHeaders
            headers[.authorization] = "Bearer \(token)"
            headers[HTTPField.Name("Ror-Role-Metier-Code")!] = "AUTRE"
            let mismatch = try await running.request(Self.location, client: consumer, headers: headers)
            #expect(mismatch.status == .forbidden)
            #expect(mismatch.text.contains("Ror-Role-Metier-Code"))

            // A fault rule in force: the service's 503, even for a read that could be answered at once.
            _ = try await running.admin(
                "/admin/faults",
                method: .post,
                body: #"{"service": "ror-fhir", "errorRate": 1, "retryAfter": 7}"#
            )
            let unavailable = try await RORConsumer.get(running, Self.location, client: consumer, token: token)
            #expect(unavailable.status == .serviceUnavailable)
            #expect(unavailable.headers[.retryAfter] == "7")
            _ = try await running.admin("/admin/faults", method: .delete)

            // The entry removed from the whitelist: refused at once, though token and resource are in memory.
            let entry = try #require(
                running.sandbox.whitelist.entries().first { $0.clientId == "esante-sandbox-consumer" }
            )
            #expect(try running.sandbox.whitelist.remove(id: try #require(entry.id)))
            let refused = try await RORConsumer.get(running, Self.location, client: consumer, token: token)
            #expect(refused.status == .forbidden)
        }
    }

    /// A sandbox whose consumer token is verified and Location cached, and the consumer's headers as raw HTTP lines.
    static func warmed() async throws -> (RunningSandbox, ClientFiles, String) {
        let (running, consumer) = try await RORConsumer.start()
        let token = try await RORConsumer.accessToken(running, client: consumer)
        _ = try await RORConsumer.get(running, location, client: consumer, token: token)
        let headers =
            RORConsumer.rorHeaders.map { "\($0.name.rawName): \($0.value)\r\n" }.joined()
            + "Authorization: Bearer \(token)\r\n"
        return (running, consumer, headers)
    }

    /// Pipelined requests are answered in order: a read is only answered at once when no earlier request of the
    /// connection is still with the router (here a search, slower than a cached read).
    @Test func pipelinedRequestsKeepTheirOrder() async throws {
        let (running, consumer, headers) = try await Self.warmed()
        try await running.whileRunning {
            func get(_ path: String, close: Bool = false) -> String {
                "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\(headers)\(close ? "Connection: close\r\n" : "")\r\n"
            }
            let text =
                get("/ws-diffusion-fhir/HealthcareService?_count=3") + get(Self.location) + get(Self.location)
                + get("/_sandbox/whoami", close: true)
            let exchange = try await RawTLS.exchange(
                port: running.tlsPort,
                client: consumer,
                send: text,
                timeout: .seconds(10)
            )
            #expect(exchange.serverClosed)
            let answers = exchange.received.components(separatedBy: "HTTP/1.1 ").dropFirst()
            try #require(answers.count == 4, "\(exchange.received.prefix(400))")
            let kinds = answers.map { answer -> String in
                if answer.contains(#""resourceType":"Bundle""#) { return "bundle" }
                if answer.contains(#""resourceType":"Location""#) { return "location" }
                return answer.contains("whitelist") || answer.contains("subject") ? "whoami" : String(answer.prefix(80))
            }
            #expect(kinds == ["bundle", "location", "location", "whoami"])
        }
    }

    /// `ab` and other HTTP/1.0 clients: a cached read asked with `Connection: keep-alive` is answered in 1.0 with the
    /// connection kept (the HTTP/1.0 handler sees the immediate answer too), and a last request without it closes.
    @Test func http10KeepAliveReadsAreAnsweredIn10() async throws {
        let (running, consumer, headers) = try await Self.warmed()
        try await running.whileRunning {
            let keepAlive = "GET \(Self.location) HTTP/1.0\r\nConnection: keep-alive\r\n\(headers)\r\n"
            let last = "GET \(Self.location) HTTP/1.0\r\n\(headers)\r\n"
            let exchange = try await RawTLS.exchange(
                port: running.tlsPort,
                client: consumer,
                send: keepAlive + keepAlive + last,
                timeout: .seconds(10)
            )
            try RawTLS.expectHTTP10KeepAlive(exchange, answers: 3)
        }
    }
}
