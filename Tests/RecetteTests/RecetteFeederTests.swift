import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

/// A capacity feeder written as bed-management software would be, with knobs that make it misbehave the ways the
/// `ror-feeder` pack must catch.
struct FeederClient {
    enum Fault {
        /// Sends `add` without trying `replace` first.
        case addFirst
        /// Gives up on a 503.
        case abandonOn503
        /// Resends a 503'd request at once.
        case retryAt503Immediately
        /// Resends a 412'd request at once.
        case retryBlindlyAfter412
        /// Sends the consumer's Ror-* headers on the feed.
        case rorHeaders
        /// Fetches a token for every call.
        case tokenPerCall
    }

    let running: RunningSandbox
    let client: ClientFiles
    var faults: Set<Fault> = []
    var token: String?
    /// What the feeder reported to its user: status per update.
    var outcomes: [Int] = []
    /// Its connection, kept from call to call: an immediate retry is then immediate, whatever the machine's load.
    var connection: TestClient?

    mutating func accessToken() async throws -> String {
        if let token, !faults.contains(.tokenPerCall) { return token }
        let response = try await RORConsumer.token(
            running,
            client: client,
            form: "grant_type=client_credentials&client_id=esante-sandbox-feeder"
        )
        token = try #require(try response.json()["access_token"] as? String)
        return token!
    }

    mutating func patch(_ body: String) async throws -> TestClient.Response {
        let token = try await accessToken()
        var headers: HTTPFields = [.contentType: "application/fhir+json", .authorization: "Bearer \(token)"]
        if faults.contains(.rorHeaders) {
            for field in RORConsumer.rorHeaders { headers[field.name] = field.value }
        }
        if connection == nil { connection = try running.connection(client: client) }
        return try await connection!.execute(
            .init(
                CapacityFeed.path + CapacityFeed.place,
                method: .patch,
                headers: headers,
                body: ByteBuffer(string: body)
            )
        )
    }

    /// One indicator update: replace; on the 404 naming the capacity, add; on 503, wait Retry-After and resend; a
    /// 412 or 400 is reported, not resent.
    mutating func update(status: String, temporality: String, count: Int) async throws {
        let indicator = CapacityFeed.indicator(status: status, temporality: temporality, count: count)
        let replace = CapacityFeed.body(
            "replace",
            path: CapacityFeed.selector(status: status, temporality: temporality),
            value: indicator
        )
        let add = CapacityFeed.body(
            "add",
            path: "Location.extension.where(url='\(CapacityFeed.capacity)')",
            value: indicator
        )
        var body = faults.contains(.addFirst) ? add : replace
        var response = try await patch(body)
        while true {
            switch response.status.code {
            case 503:
                if faults.contains(.abandonOn503) { break }
                if !faults.contains(.retryAt503Immediately) {
                    let wait = Double(response.headers[.retryAfter] ?? "1") ?? 1
                    try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 150))
                }
                response = try await patch(body)
                continue
            case 412 where faults.contains(.retryBlindlyAfter412):
                response = try await patch(body)
            case 404:
                let expression =
                    ((try response.json()["issue"] as? [[String: Any]])?.first?["expression"] as? [String])?.first ?? ""
                if expression.contains("ror-location-supported-capacity"), body == replace {
                    body = add
                    response = try await patch(body)
                    continue
                }
            default: break
            }
            break
        }
        outcomes.append(Int(response.status.code))
    }

    /// The feeder's day: three updates of the current available beds (the sandbox injects 412, 400 and 503 into the
    /// first three), then a new indicator (404 → add), then its update.
    mutating func day() async throws {
        try await update(status: "02", temporality: "01", count: 5)
        try await update(status: "02", temporality: "01", count: 6)
        try await update(status: "02", temporality: "01", count: 7)
        try await update(status: "02", temporality: "04", count: 3)
        try await update(status: "02", temporality: "04", count: 4)
    }
}

@Suite("Recette: the ROR feeder pack")
struct RecetteFeederTests {
    static let feederDN = "CN=EAI_SANDBOX_IDF,OU=1750099992,O=GRADES SANDBOX ILE-DE-FRANCE,ST=Paris (75),C=FR"

    /// Runs the feeder with `faults` inside a run of the pack and closes it.
    static func judge(_ faults: Set<FeederClient.Fault>) async throws -> (RunDriver.Report, FeederClient) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        return try await running.whileRunning {
            let run = try await RunDriver.start(running, pack: "ror-feeder", client: feederDN)
            var feeder = FeederClient(
                running: running,
                client: try RunDriver.files(running, "ror-feeder"),
                faults: faults
            )
            try await feeder.day()
            try await feeder.connection?.shutdown()
            return (try await RunDriver.close(running, run), feeder)
        }
    }

    @Test func aWellBehavedFeederPasses() async throws {
        let (report, feeder) = try await Self.judge([])
        // 412 and 400 reported to the user, the 503 retried to a 200, the new indicator added, then updated.
        #expect(feeder.outcomes == [412, 400, 200, 200, 200])
        #expect(report.verdict == "passed", "\(report.problems)")
        #expect(report.steps["SBX-FEED-ERRORS/E503R"]?.status == "pass")
        #expect(report.steps["creation-maj-lieu-offre/2/A2"]?.status == "pass")
    }

    @Test(arguments: [
        (FeederClient.Fault.addFirst, "creation-maj-lieu-offre/2/A1", "Expected no call of this kind; the client made"),
        (.abandonOn503, "SBX-FEED-ERRORS/E503R", "The client made no such call"),
        (.retryAt503Immediately, "SBX-FEED-ERRORS/E503R", "Expected no sooner than 2 s after"),
        (.retryBlindlyAfter412, "SBX-FEED-ERRORS/E412R", "Expected no call of this kind; the client made 1"),
        (.rorHeaders, "creation-maj-lieu-offre/2bis/R2", "which must be absent"),
        (.tokenPerCall, "SBX-FEED-TOKEN/T2", "Expected at most 1 such calls in 270 s"),
    ])
    func aMisbehavingFeederFailsWithTheReason(fault: FeederClient.Fault, step: String, message: String) async throws {
        let (report, _) = try await Self.judge([fault])
        #expect(report.verdict == "failed", "\(report.problems)")
        let judged = try #require(report.steps[step])
        #expect(judged.status == "fail", "\(step): \(judged.message)")
        #expect(judged.message.contains(message), "\(step): \(judged.message)")
        // The message quotes the call by its journal id.
        #expect(judged.message.contains("#"), "\(judged.message)")
    }
}
