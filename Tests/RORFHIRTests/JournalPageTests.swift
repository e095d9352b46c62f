import Access
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// Search pages in the journal: kept as the versions they answered and the bytes between them (``JournalPage``),
/// read back as the bytes answered — after the places on them changed, trimmed by an access profile, or cut at the
/// journal's body limit.
@Suite("Journal of search pages")
struct JournalPageTests {
    static let search = "/ws-diffusion-fhir/Location?_revinclude=HealthcareService:location&_count=20"

    static func demoConsumer(_ running: RunningSandbox) throws -> ClientFiles {
        let files = try #require(running.info.clientCertificates["ror-consumer"])
        return ClientFiles(folder: files.certificate.deletingLastPathComponent(), issued: try SharedPKI.issued(files))
    }

    /// The journal's rows of the search, oldest first, with what the database holds for each.
    static func rows(_ running: RunningSandbox, count: Int) async throws -> [(entry: JournalEntry, stored: Row)] {
        var rows: [JournalEntry] = []
        for _ in 0..<150 where rows.count < count {
            rows = try await running.journalRows { $0.method == "GET" && $0.query?.hasPrefix("_revinclude") == true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try rows.reversed().map { entry in
            let stored = try running.sandbox.store.writer.read { db in
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT response_body IS NULL AND response_body_id IS NULL AS named, length(response_page) AS page,
                        response_body_truncated AS truncated FROM journal WHERE id = ?
                        """,
                    arguments: [entry.id]
                )
            }
            return (entry, try #require(stored))
        }
    }

    @Test func aSearchPageIsKeptAsItsVersionsAndReadsBackExactlyAfterTheyChange() async throws {
        let (running, feeder, feedToken) = try await CapacityFeed.start()
        try await running.whileRunning {
            let consumer = try Self.demoConsumer(running)
            let token = try await RORConsumer.accessToken(running, client: consumer)
            let before = try await RORConsumer.get(running, Self.search, client: consumer, token: token)
            #expect(before.status == .ok)
            // The first place of the page changes (a new version; the one answered before is kept as history).
            let patched = try await CapacityFeed.replaceAvailable(running, count: 9, client: feeder, token: feedToken)
            #expect(patched.status == .ok, "\(patched.text)")
            let after = try await RORConsumer.get(running, Self.search, client: consumer, token: token)
            #expect(after.status == .ok)
            let answered = [before.data, after.data]
            #expect(answered[0].count > 20_000 && answered[0] != answered[1])

            let rows = try await Self.rows(running, count: 2)
            #expect(rows.map(\.entry.responseBody) == answered, "each row gives back its own page, byte for byte")
            for (row, page) in zip(rows, answered) {
                #expect(row.stored["named"] == true, "no copy of the page")
                #expect((row.stored["page"] as Int? ?? .max) < page.count / 10)
                #expect(row.stored["truncated"] == false)
            }
        }
    }

    /// An access profile that trims places: the trimmed ones are not the stored versions, so their bytes are kept.
    @Test func placesTrimmedByAProfileAreKeptAsAnswered() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        try await running.whileRunning {
            let (client, token) = try await RORFHIRTests.consumer(running, profile: 4)
            let answered = try await RORConsumer.get(running, Self.search, client: client, token: token)
            #expect(answered.status == .ok)
            let consumer = try Self.demoConsumer(running)
            let full = try await RORConsumer.get(
                running,
                Self.search,
                client: consumer,
                token: try await RORConsumer.accessToken(running, client: consumer)
            )
            #expect(full.data.count > answered.data.count, "profile 4 sees less of each place")
            let rows = try await Self.rows(running, count: 2)
            #expect(rows.map(\.entry.responseBody) == [answered.data, full.data])
        }
    }

    /// Over `--journal-body-limit`, the page's first bytes up to the limit, marked truncated (as any body).
    @Test func aPageOverTheBodyLimitIsKeptUpToItMarkedTruncated() async throws {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds) { $0.journalBodyLimit = 5_000 }
        try await running.whileRunning {
            let consumer = try Self.demoConsumer(running)
            let token = try await RORConsumer.accessToken(running, client: consumer)
            let answered = try await RORConsumer.get(running, Self.search, client: consumer, token: token)
            #expect(answered.data.count > 5_000)
            let rows = try await Self.rows(running, count: 1)
            #expect(rows.first?.entry.responseBody == answered.data.prefix(5_000))
            #expect(rows.first?.entry.responseBodyTruncated == true)
            #expect(rows.first?.stored["named"] == true)
        }
    }
}
