import Access
import FHIRCore
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// A full disk while the sandbox runs: each write is refused in its service's form with a Retry-After, nothing of it
/// is stored, reads go on, and writes are accepted again once there is room. SQLite's page limit stands in for the
/// disk (the same `SQLITE_FULL`); `scripts/disk-full-check` fills a real tmpfs.
@Suite("Full disk")
struct StorageFullTests {
    /// The capacity feed answers 507 OperationOutcome `no-store`; the Location read afterwards is the last version
    /// acknowledged (the read cache kept nothing of the refused write), and the feed takes writes again.
    @Test func capacityFeedRefusesInFHIRFormAndRecovers() async throws {
        let (running, feeder, token) = try await CapacityFeed.start()
        try await running.whileRunning {
            #expect(
                try await CapacityFeed.replaceAvailable(running, count: 1, client: feeder, token: token).status == .ok
            )
            try await running.databaseFull(true)
            var lastAccepted = 1
            let (refusal, accepted) = try await running.untilRefused(accepted: .ok) { attempt in
                let response = try await CapacityFeed.replaceAvailable(
                    running,
                    count: 100 + attempt,
                    client: feeder,
                    token: token
                )
                if response.status == .ok { lastAccepted = 100 + attempt }
                return response
            }
            let refused = try #require(refusal, "\(accepted) PATCHes accepted on a full database")
            #expect(refused.status.code == 507)
            #expect(refused.headers[.retryAfter] == "30")
            let issue = try #require((try refused.json()["issue"] as? [[String: Any]])?.first)
            #expect(issue["code"] as? String == "no-store")
            #expect((issue["diagnostics"] as? String)?.contains("disk is full") == true)
            // Reads go on, and show the last acknowledged count.
            #expect(try await CapacityFeed.available(running) == [lastAccepted])
            try await running.databaseFull(false)
            #expect(
                try await CapacityFeed.replaceAvailable(running, count: 7, client: feeder, token: token).status == .ok
            )
            #expect(try await CapacityFeed.available(running) == [7])
        }
    }

    /// The admin API answers 507 `{"error"}` and the console a 507 page; entries made before are kept and new ones
    /// are taken once there is room.
    @Test func adminAPIAndConsoleRefuseInTheirFormsAndRecover() async throws {
        let running = try await RunningSandbox.start()
        try await running.whileRunning {
            func whitelist(_ n: Int) async throws -> TestClient.Response {
                try await running.admin(
                    "/admin/whitelist",
                    method: .post,
                    body: #"{"service": "insi", "subjectDN": "CN=PLEIN \#(n),O=EDITEUR,C=FR"}"#
                )
            }
            #expect(try await whitelist(0).status == .created)
            try await running.databaseFull(true)
            let (apiRefusal, _) = try await running.untilRefused(accepted: .created) { try await whitelist($0 + 1) }
            let api = try #require(apiRefusal)
            #expect(api.status.code == 507)
            #expect(api.headers[.retryAfter] == "30")
            #expect((try api.json()["error"] as? String)?.contains("disk is full") == true)
            let (pageRefusal, _) = try await running.untilRefused(accepted: .seeOther) { attempt in
                try await ConsoleTests.post(
                    running,
                    "/console/onboarding",
                    [
                        ("kind", "saas"), ("direction", "consume"), ("service", "ror-fhir"),
                        ("contact", "plein@editeur.test"), ("subjectDN", "CN=CONSOLE \(attempt),O=EDITEUR,C=FR"),
                    ]
                )
            }
            let page = try #require(pageRefusal)
            #expect(page.status.code == 507)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("disk is full"))
            #expect(try await running.admin("/admin/health").status == .ok)
            try await running.databaseFull(false)
            #expect(try await whitelist(1000).status == .created)
            let dns = try running.sandbox.whitelist.entries().compactMap(\.subjectDN)
            #expect(dns.contains { $0.contains("PLEIN 0") } && dns.contains { $0.contains("PLEIN 1000") })
        }
    }

    /// Each form's refusal, from the error SQLite raises: FHIR, SOAP (503: the status SOAP stacks read as "later"),
    /// the admin API's JSON; anything else stays a 500.
    @Test func eachFormOfTheRefusal() throws {
        let full = DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full")
        let fhir = ServiceErrors.response(for: full, form: .fhirOperationOutcome)
        #expect(fhir.status.code == 507 && fhir.headers[.retryAfter] == "30")
        #expect(fhir.headers[.contentType] == OperationOutcome.contentType)
        let soap = ServiceErrors.response(for: full, form: .soapFault)
        #expect(soap.status == .serviceUnavailable && soap.headers[.retryAfter] == "30")
        let json = SandboxJSON.unexpected(full, doing: "whitelist")
        #expect(json.status.code == 507 && json.headers[.retryAfter] == "30")
        let other = SandboxJSON.unexpected(DatabaseError(resultCode: .SQLITE_BUSY), doing: "whitelist")
        #expect(other.status == .internalServerError && other.headers[.retryAfter] == nil)
        #expect(
            ServiceErrors.response(for: DatabaseError(resultCode: .SQLITE_BUSY), form: .soapFault).status
                == .internalServerError
        )
    }
}
