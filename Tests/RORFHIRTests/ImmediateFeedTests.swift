import Access
import FHIRCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import RORFHIR
@testable import SandboxServer
@testable import SandboxTestSupport

/// Capacity PATCHes answered on the connection's event loop (`ImmediateAnswers`, `RORCapacityFeed.patchNow`): the
/// route's answer and journal row; every refusal, and every case that would have to wait, left to the route with
/// nothing written.
@Suite("Immediate capacity feed")
struct ImmediateFeedTests {
    typealias Feed = CapacityFeed
    static let replace7 = Feed.body(
        "replace",
        path: Feed.selector(status: "02"),
        value: Feed.indicator(status: "02", count: 7)
    )

    static func request(
        _ query: String = Feed.place,
        token: String?,
        method: HTTPRequest.Method = .patch,
        contentType: String = "application/fhir+json"
    ) -> Request {
        var fields: HTTPFields = [.contentType: contentType]
        if let token { fields[.authorization] = "Bearer \(token)" }
        return Request(
            head: HTTPRequest(
                method: method,
                scheme: "https",
                authority: "localhost",
                path: Feed.path + query,
                headerFields: fields
            ),
            body: RequestBody(buffer: ByteBuffer())
        )
    }

    static func version(_ running: RunningSandbox) async throws -> Int? {
        try await running.sandbox.ror.repository.read(type: "Location", id: "loc-00001-1")?.version
    }

    @Test func patchNowAnswersOnlyWhatNeedsNothingButMemory() async throws {
        let (running, feeder, token) = try await Feed.start()
        try await running.whileRunning {
            let feed = running.sandbox.ror.feed
            let identity = try ClientIdentity(certificate: feeder.issued.certificate, verdict: .trusted)
            let environment = SandboxEnvironment.sandbox
            func now(
                _ request: Request,
                _ body: String,
                as caller: ClientIdentity? = nil
            ) -> (HTTPResponse, Data, StoredVersion)? {
                feed.patchNow(
                    request,
                    body: ByteBuffer(string: body),
                    identity: caller ?? identity,
                    environment: environment
                )
            }
            // The token not verified yet: the route answers.
            #expect(now(Self.request(token: token), Self.replace7) == nil)
            #expect(try await Self.version(running) == 1)
            let routed = try await Feed.patch(running, body: Self.replace7, client: feeder, token: token)
            #expect(routed.status == .ok)

            // Token verified, Location cached: written and answered at once, as the route answers.
            let (head, body, version) = try #require(
                now(
                    Self.request(token: token),
                    Feed.body(
                        "replace",
                        path: Feed.selector(status: "02"),
                        value: Feed.indicator(status: "02", count: 9)
                    )
                )
            )
            #expect(head.status == .ok)
            #expect(head.headerFields[.eTag] == "W/\"3\"")
            #expect(head.headerFields[HTTPField.Name("X-Sandbox-Previous-Version")!] == "2")
            #expect(
                head.headerFields[.contentLocation] == "/ws-synchro-dispo-lits-fhir/Location/loc-00001-1/_history/3"
            )
            for name in [HTTPField.Name.contentType, .lastModified] {
                #expect(head.headerFields[name] != nil && routed.headers[name] != nil, "\(name)")
            }
            #expect(try await Self.version(running) == 3)
            #expect(body == (try await running.sandbox.ror.repository.read(type: "Location", id: "loc-00001-1"))?.json)
            #expect(version.id == "loc-00001-1" && version.type == "Location" && version.version == 3)
            #expect(try await Feed.available(running) == [9], "a consumer sees it at once")
            try await RORCapacityFeedTests.expectExactIndex(running, id: "loc-00001-1")

            // Everything else is the route's, and nothing is written.
            let consumer = try #require(running.info.clientCertificates["ror-consumer"])
            let consumerFiles = ClientFiles(
                folder: consumer.certificate.deletingLastPathComponent(),
                issued: try SharedPKI.issued(consumer)
            )
            let consumerToken = try await RORConsumer.accessToken(running, client: consumerFiles)
            let consumerIdentity = try ClientIdentity(certificate: consumerFiles.issued.certificate, verdict: .trusted)
            let invalid = Feed.body(
                "replace",
                path: Feed.selector(status: "02"),
                value: Feed.indicator(status: "02", temporality: "09", count: 1)
            )
            let leftToTheRoute: [(String, Request, String, ClientIdentity?)] = [
                ("no token", Self.request(token: nil), Self.replace7, nil),
                ("unknown token", Self.request(token: token + "x"), Self.replace7, nil),
                ("a consumer's token", Self.request(token: consumerToken), Self.replace7, consumerIdentity),
                ("token bound to another certificate", Self.request(token: token), Self.replace7, consumerIdentity),
                ("not a PATCH", Self.request(token: token, method: .post), Self.replace7, nil),
                ("no identifier", Self.request("", token: token), Self.replace7, nil),
                ("unknown Location", Self.request("1759000001/NOPE", token: token), Self.replace7, nil),
                ("not JSON media type", Self.request(token: token, contentType: "text/plain"), Self.replace7, nil),
                ("malformed JSON", Self.request(token: token), "{\"resourceType\": ", nil),
                ("not a capacity path", Self.request(token: token), Feed.body("delete", path: "Location.name"), nil),
                (
                    "no such indicator (404)", Self.request(token: token),
                    Feed.body(
                        "replace",
                        path: Feed.selector(status: "02", temporality: "04"),
                        value: Feed.indicator(status: "02", temporality: "04", count: 1)
                    ), nil
                ),
                ("not a valid indicator (400)", Self.request(token: token), invalid, nil),
            ]
            for (what, request, body, caller) in leftToTheRoute {
                #expect(now(request, body, as: caller) == nil, "\(what)")
            }
            // The route holds the Location's turn: this one would have to wait for it, and is the route's.
            await feed.turns.begin("loc-00001-1")
            #expect(now(Self.request(token: token), Self.replace7) == nil, "turn taken")
            feed.turns.end("loc-00001-1")
            #expect(try await Self.version(running) == 3)
            #expect(try await Feed.available(running) == [9])
            // Another event loop holds it: this one waits (here up to 10 s), then answers once it is given back.
            #expect(feed.turns.take("loc-00001-1", waitingUpTo: .seconds(1)))
            var patient = feed
            patient.turnWait = .seconds(10)
            let waiting = Task { [patient] in
                await onThread {
                    patient.patchNow(
                        Self.request(token: token),
                        body: ByteBuffer(
                            string: Feed.body(
                                "replace",
                                path: Feed.selector(status: "02"),
                                value: Feed.indicator(status: "02", count: 8)
                            )
                        ),
                        identity: identity,
                        environment: environment
                    )?.0.status
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await Self.version(running) == 3)
            feed.turns.end("loc-00001-1")
            #expect(await waiting.value == .ok)
            #expect(try await Feed.available(running) == [8])
            // And the turn is free again.
            #expect(now(Self.request(token: token), Self.replace7)?.0.status == .ok)
        }
    }

    /// Over mutual TLS, on one keep-alive connection: accepted PATCHes answered at once and journaled with their
    /// bodies as the route journals them; a PATCH the route must refuse reaches it with its whole body (here its
    /// 400 and 404 OperationOutcomes), a body over what is held here too; answers in order.
    @Test func keepAlivePatchesAnswerAndJournalLikeTheRoute() async throws {
        let (running, feeder, token) = try await Feed.start()
        try await running.whileRunning {
            // The token verified and the Location cached by a first PATCH through the route.
            #expect(try await Feed.patch(running, body: Self.replace7, client: feeder, token: token).status == .ok)
            func patch(_ body: String, close: Bool = false) -> String {
                "PATCH \(Feed.path)\(Feed.place) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\(close ? "Connection: close\r\n" : "")\r\n\(body)"
            }
            let missing = Feed.body(
                "replace",
                path: Feed.selector(status: "02", temporality: "04"),
                value: Feed.indicator(status: "02", temporality: "04", count: 1)
            )
            // Over 256 KiB (held no longer than that) and still a valid patch: the route's, with the same outcome.
            let padded = Self.replace7 + String(repeating: " ", count: 300 << 10)
            let bodies = [
                Feed.body("replace", path: Feed.selector(status: "02"), value: Feed.indicator(status: "02", count: 4)),
                "{\"resourceType\": \"Parameters\", ", missing, padded,
                Feed.body("replace", path: Feed.selector(status: "02"), value: Feed.indicator(status: "02", count: 5)),
            ]
            let text = bodies.enumerated().map { patch($1, close: $0 == bodies.count - 1) }.joined()
            let exchange = try await RawTLS.exchange(
                port: running.tlsPort,
                client: feeder,
                send: text,
                timeout: .seconds(10)
            )
            #expect(exchange.serverClosed)
            let answers = exchange.received.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(answers == ["200", "400", "404", "200", "200"], "\(exchange.received.prefix(600))")
            #expect(
                exchange.received.contains(#""code":"structure""#) && exchange.received.contains(#""code":"not-found""#)
            )
            #expect(try await Self.version(running) == 5)
            #expect(try await Feed.available(running) == [5])

            var rows: [JournalEntry] = []
            for _ in 0..<150 where rows.count < 6 {
                rows = try await running.journalRows { $0.method == "PATCH" }
                if rows.count < 6 { try await Task.sleep(for: .milliseconds(20)) }
            }
            try #require(rows.count == 6, "\(rows.map(\.status))")
            #expect(rows.map(\.status).sorted() == [200, 200, 200, 200, 400, 404])
            var versions: [String] = []
            for row in rows where row.status == 200 {
                #expect(row.requestBody.map { String(decoding: $0, as: UTF8.self).contains("\"Parameters\"") } == true)
                #expect(row.responseHeaders?.lowercased().contains("x-sandbox-previous-version") == true)
                #expect(row.decision == .accepted && row.subjectDN != nil)
                // The Location of that version, whether the journal copied it (route) or names it (answered at once),
                // current (5) or replaced since (2–4): the bytes the client got.
                let body = try #require(row.responseBody)
                let meta = try #require(
                    (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["meta"] as? [String: Any]
                )
                versions.append(try #require(meta["versionId"] as? String))
                if versions.last != "2" { #expect(exchange.received.contains(String(decoding: body, as: UTF8.self))) }
            }
            #expect(versions.sorted() == ["2", "3", "4", "5"])
        }
    }

    /// `ab -k` sends its PATCHes in HTTP/1.0 with `Connection: keep-alive`: answered in 1.0 with the connection kept,
    /// and the last one, without it, closes.
    @Test func http10KeepAlivePatchesAreAnsweredIn10() async throws {
        let (running, feeder, token) = try await Feed.start()
        try await running.whileRunning {
            #expect(try await Feed.patch(running, body: Self.replace7, client: feeder, token: token).status == .ok)
            func patch(_ count: Int, keepAlive: Bool) -> String {
                let body = Feed.body(
                    "replace",
                    path: Feed.selector(status: "02"),
                    value: Feed.indicator(status: "02", count: count)
                )
                return
                    "PATCH \(Feed.path)\(Feed.place) HTTP/1.0\r\nContent-Type: application/fhir+json\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\(keepAlive ? "Connection: keep-alive\r\n" : "")\r\n\(body)"
            }
            let exchange = try await RawTLS.exchange(
                port: running.tlsPort,
                client: feeder,
                send: patch(11, keepAlive: true) + patch(12, keepAlive: true) + patch(13, keepAlive: false),
                timeout: .seconds(10)
            )
            try RawTLS.expectHTTP10KeepAlive(exchange, answers: 3)
            #expect(try await Feed.available(running) == [13])
            #expect(try await Self.version(running) == 5)
        }
    }
}
