import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Recette
@testable import SandboxServer
@testable import SandboxTestSupport

/// A ROR consumer as a publisher writes one, with the mistakes the `ror-consumer` pack must catch.
struct ConsumerClient {
    enum Fault {
        /// The Ror-* headers forgotten from the third call on.
        case headersDroppedFromThirdCall
        /// One large page instead of following `next`.
        case largeCount
    }

    let running: RunningSandbox
    let client: ClientFiles
    var faults: Set<Fault> = []
    var token: String?
    var calls = 0

    mutating func get(_ path: String) async throws -> TestClient.Response {
        if token == nil { token = try await RORConsumer.accessToken(running, client: client) }
        calls += 1
        var headers: HTTPFields = [.authorization: "Bearer \(token!)"]
        if !(faults.contains(.headersDroppedFromThirdCall) && calls >= 3) {
            for field in RORConsumer.rorHeaders { headers[field.name] = field.value }
        }
        return try await running.request(path, client: client, headers: headers)
    }

    /// A search and every page after it, following `next` (its path and query only: the host is this sandbox's).
    mutating func searchAll(_ path: String) async throws -> Int {
        var next: String? = path
        var pages = 0
        while let page = next {
            let response = try await get(page)
            pages += 1
            let links = try response.json()["link"] as? [[String: Any]] ?? []
            next = (links.first { $0["relation"] as? String == "next" }?["url"] as? String).flatMap { url in
                URLComponents(string: url).map {
                    $0.percentEncodedPath + ($0.percentEncodedQuery.map { "?\($0)" } ?? "")
                }
            }
        }
        return pages
    }

    /// The capacity consultations of the ROR documentation, then a bulk export polled as `Retry-After` says.
    mutating func day() async throws {
        let revinclude = "_revinclude=HealthcareService:location"
        let count = faults.contains(.largeCount) ? 1000 : 5
        _ = try await searchAll("/ws-diffusion-fhir/Location?\(revinclude)&_count=\(count)")
        _ = try await searchAll("/ws-diffusion-fhir/Location?_tag=52&\(revinclude)")
        _ = try await searchAll("/ws-diffusion-fhir/Location?identifier=\(CapacityFeed.place)&\(revinclude)")
        _ = try await searchAll("/ws-diffusion-fhir/Location?_lastUpdated=ge2023-08-02&\(revinclude)&_count=50")
        let kickoff = try await get("/ws-diffusion-fhir/$export?_type=Location")
        guard let location = kickoff.headers[.contentLocation], let components = URLComponents(string: location) else {
            return
        }
        let poll = components.percentEncodedPath + "?" + (components.percentEncodedQuery ?? "")
        for _ in 0..<60 {
            let status = try await get(poll)
            if status.status == .ok { break }
            let wait = Double(status.headers[.retryAfter] ?? "1") ?? 1
            try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 50))
        }
    }
}

@Suite("Recette: the ROR consumer pack")
struct RecetteConsumerTests {
    static func judge(_ faults: Set<ConsumerClient.Fault>) async throws -> RunDriver.Report {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        return try await running.whileRunning {
            let run = try await RunDriver.start(running, pack: "ror-consumer", client: RORConsumer.consumerDN)
            var consumer = ConsumerClient(
                running: running,
                client: try RunDriver.files(running, "ror-consumer"),
                faults: faults
            )
            try await consumer.day()
            return try await RunDriver.close(running, run)
        }
    }

    @Test func aWellBehavedConsumerPasses() async throws {
        let report = try await Self.judge([])
        #expect(report.verdict == "passed", "\(report.problems)")
        for step in [
            "consultation-donnees-capacitaires/1/S1", "consultation-donnees-capacitaires/1ter/S1",
            "consultation-donnees-capacitaires/2/S1", "consultation-donnees-capacitaires/4/S1", "SBX-CONS-PAGING/P3",
            "SBX-CONS-EXPORT/X2",
        ] {
            #expect(report.steps[step]?.status == "pass", "\(step): \(report.steps[step]?.message ?? "absent")")
        }
    }

    @Test func headersMissingOnTheThirdCallAreNamed() async throws {
        let report = try await Self.judge([.headersDroppedFromThirdCall])
        #expect(report.verdict == "failed")
        let step = try #require(report.steps["SBX-CONS-HEADERS/H1"])
        #expect(step.status == "fail")
        #expect(step.message.contains("Call 3 of"), "\(step.message)")
        #expect(step.message.contains("it has no header ror-profil-utilisateur-code"), "\(step.message)")
    }

    @Test func aLargerCountInsteadOfPagingFails() async throws {
        let report = try await Self.judge([.largeCount])
        #expect(report.verdict == "failed")
        let step = try #require(report.steps["SBX-CONS-PAGING/P1"])
        #expect(step.status == "fail")
        #expect(step.message.contains("_count=1000"), "\(step.message)")
    }
}
