import Access
import Foundation
import GRDB
import NIOConcurrencyHelpers
import Store

/// A run (campagne de recette): one pack judged against the calls of one client, identified by its certificate
/// (subject DN or public key), never by a test-only header.
public struct RecetteRun: Codable, Sendable, Equatable {
    public var id: Int64
    public var pack: RecettePack
    public var client: ClientSelector
    public var productName: String?
    public var productVersion: String?
    public var journalStart: Int64
    public var startedAt: Date
    public var endsAt: Date
    public var closedAt: Date?

    public func isOpen(at now: Date) -> Bool { closedAt == nil && now < endsAt }
}

/// Whose calls a run judges: a subject DN (any of the three ways to write one) or a public key's SHA-256.
public struct ClientSelector: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case dn
        case spki
    }

    public var kind: Kind
    /// As given.
    public var value: String
    /// The DN's match key, or the SPKI SHA-256 in lower-case hex.
    public var key: String

    /// Reads `--client`: 64 hex digits are a public key's SHA-256, anything else a subject DN.
    public init(parsing text: String) throws(RecetteError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        value = trimmed
        if trimmed.count == 64, trimmed.allSatisfy(\.isHexDigit) {
            kind = .spki
            key = trimmed.lowercased()
            return
        }
        do {
            kind = .dn
            key = try SubjectDN(parsing: trimmed).matchKey
        } catch {
            throw RecetteError(
                "--client '\(text)' is neither a subject DN (\(error)) nor a public key's SHA-256 (64 hex digits)"
            )
        }
    }

    init(kind: Kind, value: String, key: String) {
        self.kind = kind
        self.value = value
        self.key = key
    }

    /// Whether a journal row is this client's.
    func matches(subjectDN: String?, spki: String?, keys: inout [String: String]) -> Bool {
        switch kind {
        case .spki: return spki?.lowercased() == key
        case .dn:
            guard let subjectDN else { return false }
            if let known = keys[subjectDN] { return known == key }
            let parsed = (try? SubjectDN(parsing: subjectDN).matchKey) ?? ""
            keys[subjectDN] = parsed
            return parsed == key
        }
    }

    public func matches(_ identity: ClientIdentity) -> Bool {
        switch kind {
        case .spki: identity.spkiSHA256.hex.lowercased() == key
        case .dn: identity.subjectMatchKey == key
        }
    }
}

/// The runs, in the database: started from the CLI, the admin API or the console, judged from the journal.
public final class RecetteRuns: Sendable {
    private let store: SandboxStore
    private let journal: Journal
    public let packs: RecettePacks

    public init(store: SandboxStore, journal: Journal, packs: RecettePacks) {
        self.store = store
        self.journal = journal
        self.packs = packs
    }

    /// Opens a run of `pack` for `client`, from now for `minutes`.
    public func start(
        pack packID: String,
        client: String,
        minutes: Double = 60,
        productName: String? = nil,
        productVersion: String? = nil,
        now: Date = Date()
    ) throws -> RecetteRun {
        guard let pack = packs.pack(packID) else {
            throw RecetteError(
                "no pack '\(packID)' (packs: \(packs.packs.map(\.id).joined(separator: ", ")))"
            )
        }
        guard minutes > 0, minutes <= 7 * 24 * 60 else {
            throw RecetteError("the run's duration must be from 1 second to 7 days, not \(minutes) minutes")
        }
        let selector = try ClientSelector(parsing: client)
        journal.flush()
        return try store.writer.write { db in
            let start = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM journal") ?? 0
            let ends = now.addingTimeInterval(minutes * 60)
            try db.execute(
                sql: """
                    INSERT INTO recette_run (pack_id, pack_version, pack, client_kind, client, client_key, product_name,
                        product_version, journal_start, started_at, ends_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    pack.id, pack.version, try JSONEncoder().encode(pack), selector.kind.rawValue, selector.value,
                    selector.key, productName, productVersion, start, now, ends,
                ]
            )
            return RecetteRun(
                id: db.lastInsertedRowID,
                pack: pack,
                client: selector,
                productName: productName,
                productVersion: productVersion,
                journalStart: start,
                startedAt: now,
                endsAt: ends
            )
        }
    }

    public func runs() throws -> [RecetteRun] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM recette_run ORDER BY id DESC").map(Self.run)
        }
    }

    /// The runs open at `now` (what injects answers), read without decoding the others' packs.
    public func openRuns(at now: Date = Date()) throws -> [RecetteRun] {
        try store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM recette_run WHERE closed_at IS NULL AND ends_at > ? ORDER BY id DESC",
                arguments: [now]
            ).map(Self.run)
        }
    }

    public func run(_ id: Int64) throws -> RecetteRun? {
        try store.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM recette_run WHERE id = ?", arguments: [id]).map(Self.run)
        }
    }

    /// The run's judgement now, and the calls it rests on: a closed run's as stored at closing; a run past its end
    /// is closed first.
    public func status(_ id: Int64, now: Date = Date()) throws -> (RecetteRun, RunResult, [RecordedCall])? {
        guard var run = try run(id) else { return nil }
        if run.closedAt == nil, now >= run.endsAt {
            return try close(id, now: run.endsAt)
        }
        if run.closedAt != nil, let stored = try stored(id) {
            return (run, stored.result, stored.calls)
        }
        run.closedAt = nil
        let calls = try self.calls(of: run)
        let result = RecetteEvaluation(pack: run.pack, calls: calls, run: run.id, closed: false, now: now).result()
        return (run, result, calls)
    }

    /// Closes the run: judged once more with what was not seen counted missing, and kept with its calls.
    @discardableResult
    public func close(_ id: Int64, now: Date = Date()) throws -> (RecetteRun, RunResult, [RecordedCall])? {
        guard var run = try run(id) else { return nil }
        if run.closedAt != nil, let stored = try stored(id) { return (run, stored.result, stored.calls) }
        let calls = try self.calls(of: run)
        let closedAt = min(now, run.endsAt)
        let result = RecetteEvaluation(pack: run.pack, calls: calls, run: run.id, closed: true, now: closedAt).result()
        try store.writer.write { db in
            try db.execute(
                sql: "UPDATE recette_run SET closed_at = ?, result = ?, calls = ? WHERE id = ? AND closed_at IS NULL",
                arguments: [closedAt, try JSONEncoder().encode(result), try JSONEncoder().encode(calls), id]
            )
        }
        run.closedAt = closedAt
        return (run, result, calls)
    }

    /// The client's journal rows since the run started (and before it closed): those kept before a reset emptied the
    /// journal, then the journal's (ids keep growing across a reset).
    func calls(of run: RecetteRun) throws -> [RecordedCall] {
        var keys: [String: String] = [:]
        var calls = try carried(run.id)
        var after = max(run.journalStart, calls.last?.id ?? 0)
        while true {
            let page = try journal.entries(JournalFilter(limit: 5_000, afterID: after))
            for entry in page where entry.time < (run.closedAt ?? run.endsAt) {
                if run.client.matches(subjectDN: entry.subjectDN, spki: entry.spkiSHA256, keys: &keys),
                    entry.method != "ONBOARDING", entry.method != "FAULT"
                {
                    calls.append(RecordedCall(entry))
                }
            }
            guard page.count == 5_000, let last = page.last?.id else { break }
            after = last
        }
        return calls
    }

    /// Before the journal is emptied (a reset): each open run keeps the calls it has so far.
    public func keepCallsOfOpenRuns(now: Date = Date()) throws {
        for run in try runs() where run.isOpen(at: now) {
            let calls = try self.calls(of: run)
            try store.writer.write { db in
                try db.execute(
                    sql: "UPDATE recette_run SET calls = ? WHERE id = ? AND closed_at IS NULL",
                    arguments: [try JSONEncoder().encode(calls), run.id]
                )
            }
        }
    }

    private func carried(_ id: Int64) throws -> [RecordedCall] {
        let data = try store.writer.read { db in
            try Data.fetchOne(
                db,
                sql: "SELECT calls FROM recette_run WHERE id = ? AND closed_at IS NULL",
                arguments: [id]
            )
        }
        return try data.map { try JSONDecoder().decode([RecordedCall].self, from: $0) } ?? []
    }

    private func stored(_ id: Int64) throws -> (result: RunResult, calls: [RecordedCall])? {
        try store.writer.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT result, calls FROM recette_run WHERE id = ?",
                    arguments: [id]
                ),
                let result: Data = row["result"], let calls: Data = row["calls"]
            else { return nil }
            return (
                try JSONDecoder().decode(RunResult.self, from: result),
                try JSONDecoder().decode([RecordedCall].self, from: calls)
            )
        }
    }

    /// Asks the server (another process) to write the journal rows it still holds, then waits until it says so, at
    /// most `timeout` (no server running: its rows were written when it stopped). Returns whether it answered.
    @discardableResult
    public func waitForServerJournal(_ id: Int64, timeout: Duration = .seconds(5)) async throws -> Bool {
        let requested = Date().timeIntervalSince1970
        try await store.writer.write { db in
            try db.execute(
                sql: "UPDATE recette_run SET journal_flush_requested_at = ? WHERE id = ?",
                arguments: [requested, id]
            )
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let flushed = try await store.writer.read { db in
                try Double.fetchOne(db, sql: "SELECT journal_flushed_at FROM recette_run WHERE id = ?", arguments: [id])
            }
            if let flushed, flushed >= requested { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// The server's side: when a run asks for the journal (``waitForServerJournal(_:timeout:)``), `flush` writes the
    /// queued rows and the request is acknowledged. One small read when nobody asks.
    public func answerJournalRequests(flush: () -> Void) throws {
        let pending = try store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, journal_flush_requested_at AS requested FROM recette_run
                    WHERE journal_flush_requested_at > COALESCE(journal_flushed_at, 0)
                    """
            )
        }
        guard !pending.isEmpty else { return }
        flush()
        try store.writer.write { db in
            for row in pending {
                try db.execute(
                    sql: "UPDATE recette_run SET journal_flushed_at = ? WHERE id = ?",
                    arguments: [row["requested"] as Double, row["id"] as Int64]
                )
            }
        }
    }

    /// Removes every run (a full reset).
    public func removeAll() throws {
        try store.writer.write { db in try db.execute(sql: "DELETE FROM recette_run") }
    }

    static func run(_ row: Row) throws -> RecetteRun {
        RecetteRun(
            id: row["id"],
            pack: try JSONDecoder().decode(RecettePack.self, from: row["pack"] as Data),
            client: ClientSelector(
                kind: ClientSelector.Kind(rawValue: row["client_kind"]) ?? .dn,
                value: row["client"],
                key: row["client_key"]
            ),
            productName: row["product_name"],
            productVersion: row["product_version"],
            journalStart: row["journal_start"],
            startedAt: row["started_at"],
            endsAt: row["ends_at"],
            closedAt: row["closed_at"]
        )
    }
}

/// The answers open runs inject, kept in memory and refreshed from the database every second (a run started by the
/// CLI takes effect within that second). Each step's count of uses lives here: a restart gives them back.
public final class RecetteInjector: Sendable {
    struct Active: Sendable {
        var run: Int64
        var client: ClientSelector
        var step: String
        var pattern: CallPattern
        var answer: RecettePack.Injection
        var endsAt: Date
    }

    private let state = NIOLockedValueBox<(active: [Active], used: [String: Int])>(([], [:]))

    public init() {}

    /// No run injects anything (the access layer's immediate answers are only given then).
    public var isQuiet: Bool { state.withLockedValue { $0.active.isEmpty } }

    /// Takes the injections of the runs open at `now`.
    public func refresh(from runs: RecetteRuns, now: Date = Date()) throws {
        let active = try runs.openRuns(at: now).flatMap { run in
            run.pack.scenarios.flatMap(\.steps).compactMap { step -> Active? in
                step.inject.map {
                    Active(
                        run: run.id,
                        client: run.client,
                        step: step.id,
                        pattern: step.match,
                        answer: $0,
                        endsAt: run.endsAt
                    )
                }
            }
        }
        state.withLockedValue { $0.active = active }
    }

    /// The answer to give instead of the service's, if an open run injects one for this client and request; its
    /// use is counted. `reason` goes to the journal row.
    public func answer(
        identity: ClientIdentity?,
        service: String?,
        method: String,
        path: String,
        query: String?,
        headers: [String: String],
        body: Data,
        now: Date = Date()
    ) -> (answer: RecettePack.Injection, reason: String)? {
        guard let identity else { return nil }
        return state.withLockedValue { state in
            for candidate in state.active where now < candidate.endsAt && candidate.client.matches(identity) {
                let key = "\(candidate.run)/\(candidate.step)"
                guard state.used[key, default: 0] < (candidate.answer.times ?? 1),
                    candidate.pattern.matchesRequest(
                        service: service,
                        method: method,
                        path: path,
                        query: query,
                        headers: headers,
                        body: body
                    )
                else { continue }
                state.used[key, default: 0] += 1
                return (candidate.answer, RecordedCall.injectionReason(run: candidate.run, step: candidate.step))
            }
            return nil
        }
    }
}
