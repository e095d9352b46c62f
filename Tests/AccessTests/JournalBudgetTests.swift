import Access
import Foundation
import GRDB
import Store
import Testing

/// The journal's bounds beyond its row count: bytes of bodies kept, and the bodies queued while its writer is behind.
@Suite("Journal body budget")
struct JournalBudgetTests {
    static func call(_ number: Int, bytes: Int) -> JournalEntry {
        var entry = JournalEntry(
            environment: "bac-a-sable",
            service: "ror-fhir",
            method: "GET",
            path: "/ws-diffusion-fhir/Location",
            status: 200,
            decision: .accepted,
            reason: nil,
            identity: nil,
            durationMs: 1
        )
        // Every body different (a search page while a feed writes): nothing to share.
        entry.responseBody = Data("page \(number) ".utf8) + Data(repeating: UInt8(number % 251), count: bytes)
        return entry
    }

    static func storedBodyBytes(_ store: SandboxStore) throws -> Int {
        try store.writer.read {
            try Int.fetchOne(
                $0,
                sql: """
                    SELECT COALESCE((SELECT SUM(length(body)) FROM journal_body), 0)
                        + COALESCE((SELECT SUM(length(response_body)) FROM journal), 0)
                    """
            ) ?? 0
        }
    }

    static func ids(_ store: SandboxStore) throws -> [Int64] {
        try store.writer.read { try Int64.fetchAll($0, sql: "SELECT id FROM journal ORDER BY id") }
    }

    /// 100 pages of 100 kB against a 1 MiB budget: the newest ~9–10 rows are kept, the others pruned with their
    /// bodies; rows keep their bound too.
    @Test func bodiesAreKeptWithinTheBudget() throws {
        let store = try SandboxStore.inMemory()
        let journal = Journal(store: store, maxRows: 1000, maxBodyBytes: 1 << 20)
        for number in 1...100 {
            journal.record(Self.call(number, bytes: 100_000))
            if number % 5 == 0 { journal.flush() }
        }
        let kept = try Self.ids(store)
        #expect(kept.count >= 8 && kept.count <= 11, "\(kept)")
        #expect(kept.last == 100)
        #expect(try Self.storedBodyBytes(store) <= (1 << 20) + 5 * 100_000)
        #expect(try journal.entries(JournalFilter(limit: 1)).first?.responseBody?.prefix(9) == Data("page 100 ".utf8))
    }

    /// A journal opened on rows stored before (a restart) counts them against its budget at its first write.
    @Test func rowsStoredBeforeCountAgainstTheBudget() throws {
        let store = try SandboxStore.inMemory()
        let before = Journal(store: store, maxRows: 1000, maxBodyBytes: 64 << 20)
        for number in 1...30 { before.record(Self.call(number, bytes: 100_000)) }
        before.flush()
        #expect(try Self.ids(store).count == 30)
        let after = Journal(store: store, maxRows: 1000, maxBodyBytes: 1 << 20)
        after.record(Self.call(31, bytes: 10))
        after.flush()
        let kept = try Self.ids(store)
        #expect(kept.count >= 8 && kept.count <= 11 && kept.last == 31, "\(kept)")
    }

    /// Calls recorded while more than 64 MiB of bodies wait to be written keep their rows, not their bodies.
    @Test func callsQueuedBehindTheWriterKeepNoBodies() throws {
        let store = try SandboxStore.inMemory()
        let journal = Journal(store: store, maxRows: 1000, maxBodyBytes: 1 << 30)
        for number in 1...70 { journal.record(Self.call(number, bytes: 1 << 20)) }
        // A search page's recipe is held too: dropped alike.
        var page = Self.call(0, bytes: 0)
        page.responseBody = nil
        page.responsePage = JournalPage(parts: [.bytes(Data(repeating: 0x20, count: 2 << 20))], length: 2 << 20)
        journal.record(page)
        journal.flush()
        let all = Array(try journal.entries(JournalFilter(limit: 100)).reversed())
        #expect(all.last?.responseBody == nil && all.last?.responseBodyTruncated == true)
        let rows = all.dropLast()
        #expect(rows.count == 70)
        let withBodies = rows.prefix { $0.responseBody != nil }
        #expect(withBodies.count == 63, "\(withBodies.count) rows with bodies")
        #expect(rows.dropFirst(63).allSatisfy { $0.responseBody == nil && $0.responseBodyTruncated })
        // Written, the queue takes bodies again.
        journal.record(Self.call(71, bytes: 10))
        journal.flush()
        #expect(try journal.entries(JournalFilter(limit: 1)).first?.responseBody != nil)
    }
}
