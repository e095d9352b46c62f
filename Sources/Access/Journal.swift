import Crypto
import Foundation
import GRDB
import Logging
import NIOConcurrencyHelpers
import Store

#if canImport(Glibc)
import Glibc
#endif

/// `accepted` or `refused`, as the journal and `/_sandbox/whoami` say it.
public enum JournalDecision: String, Sendable, Codable {
    case accepted
    case refused
}

/// One call (or one refused TLS handshake) as the sandbox saw it.
public struct JournalEntry: Sendable, Codable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "journal"

    public var id: Int64?
    public var time: Date
    public var environment: String
    public var service: String?
    /// HTTP method, or `TLS` for a handshake refused before any request.
    public var method: String
    public var path: String
    public var query: String?
    /// HTTP status; 0 when the TLS handshake was refused.
    public var status: Int
    public var decision: JournalDecision
    public var reason: String?
    public var subjectDN: String?
    public var issuerDN: String?
    public var serialNumber: String?
    public var spkiSHA256: String?
    public var durationMs: Double
    public var remoteAddress: String?
    /// JSON object of header name → value, authorization values masked.
    public var requestHeaders: String?
    public var requestBody: Data?
    public var requestBodyTruncated: Bool
    public var responseHeaders: String?
    public var responseBody: Data?
    public var responseBodyTruncated: Bool
    /// The response body named rather than copied: a version the store keeps (read back as `responseBody`).
    public var responseVersion: StoredVersion? = nil
    /// The response body kept as the versions and bytes it is made of (read back as `responseBody`).
    public var responsePage: JournalPage? = nil

    enum CodingKeys: String, CodingKey {
        case id, time, environment, service, method, path, query, status, decision, reason
        case subjectDN = "subject_dn"
        case issuerDN = "issuer_dn"
        case serialNumber = "serial_number"
        case spkiSHA256 = "spki_sha256"
        case durationMs = "duration_ms"
        case remoteAddress = "remote_address"
        case requestHeaders = "request_headers"
        case requestBody = "request_body"
        case requestBodyTruncated = "request_body_truncated"
        case responseHeaders = "response_headers"
        case responseBody = "response_body"
        case responseBodyTruncated = "response_body_truncated"
    }

    /// The row without its bodies, marked truncated (what the journal keeps of a call while its writer is behind).
    mutating func dropBodies() {
        if requestBody != nil { (requestBody, requestBodyTruncated) = (nil, true) }
        if responseBody != nil || responsePage != nil {
            (responseBody, responsePage, responseBodyTruncated) = (nil, nil, true)
        }
    }

    /// Bytes of bodies this row holds until it is written (a page's recipe counted as its parts): what the queue's
    /// and a transaction's bounds count.
    var queuedBodyBytes: Int {
        (requestBody?.count ?? 0) + (responseBody?.count ?? 0)
            + (responsePage?.parts.reduce(0) {
                switch $1 {
                case .bytes(let bytes): $0 + bytes.count
                case .version: $0 + 64
                }
            } ?? 0)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    public init(
        time: Date = Date(),
        environment: String,
        service: String?,
        method: String,
        path: String,
        query: String? = nil,
        status: Int,
        decision: JournalDecision,
        reason: String?,
        identity: ClientIdentity?,
        durationMs: Double,
        remoteAddress: String? = nil
    ) {
        self.time = time
        self.environment = environment
        self.service = service
        self.method = method
        self.path = path
        self.query = query
        self.status = status
        self.decision = decision
        self.reason = reason
        self.subjectDN = identity?.subjectDN
        self.issuerDN = identity?.issuerDN
        self.serialNumber = identity?.serialNumber
        self.spkiSHA256 = identity?.spkiSHA256.hex
        self.durationMs = durationMs
        self.remoteAddress = remoteAddress
        self.requestBodyTruncated = false
        self.responseBodyTruncated = false
    }

    /// Values for ``Journal/insertSQL``, in its column order; a body kept in `journal_body` is given by its id.
    func insertArguments(
        requestBody: JournalBodyReference,
        responseBody: JournalBodyReference,
        responsePage: Data?
    ) -> StatementArguments {
        [
            Self.storedTime(time), environment, service, method, path, query, status, decision.rawValue, reason,
            subjectDN, issuerDN,
            serialNumber, spkiSHA256, durationMs, remoteAddress, requestHeaders, requestBody.inline,
            requestBodyTruncated,
            responseHeaders, responseBody.inline, responseBodyTruncated, requestBody.id, responseBody.id,
            responseVersion?.type, responseVersion?.id, responseVersion?.version, responseVersion?.lastUpdated,
            responsePage,
        ]
    }

    /// The time as GRDB stores a `Date` (`yyyy-MM-dd HH:mm:ss.SSS`, UTC), written by hand:
    /// GRDB's DateFormatter was a quarter of writing a journal row.
    static func storedTime(_ time: Date) -> String {
        // Milliseconds rounded to the nearest, as GRDB's formatter writes them (the test compares the two).
        let total = ((time.timeIntervalSinceReferenceDate + 978_307_200) * 1000).rounded()
        var seconds = time_t((total / 1000).rounded(.down))
        let milliseconds = Int(total - Double(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var out = [UInt8](repeating: 0x30, count: 23)
        func put(_ value: Int, at end: Int, digits: Int) {
            var value = value
            for index in stride(from: end, to: end - digits, by: -1) {
                out[index] = UInt8(0x30 + value % 10)
                value /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, at: 3, digits: 4)
        out[4] = 0x2D
        put(Int(parts.tm_mon) + 1, at: 6, digits: 2)
        out[7] = 0x2D
        put(Int(parts.tm_mday), at: 9, digits: 2)
        out[10] = 0x20
        put(Int(parts.tm_hour), at: 12, digits: 2)
        out[13] = 0x3A
        put(Int(parts.tm_min), at: 15, digits: 2)
        out[16] = 0x3A
        put(Int(parts.tm_sec), at: 18, digits: 2)
        out[19] = 0x2E
        put(milliseconds, at: 22, digits: 3)
        return String(decoding: out, as: UTF8.self)
    }

    /// Keeps at most `limit` bytes of a body; says whether it cut.
    public static func clip(_ bytes: some Collection<UInt8>, limit: Int) -> (Data?, Bool) {
        guard !bytes.isEmpty else { return (nil, false) }
        if bytes.count <= limit { return (Data(bytes), false) }
        return (Data(bytes.prefix(limit)), true)
    }

    /// Header list as stored: JSON object (names lower-cased, repeated names joined with `, `), authorization-like
    /// values masked. Written by hand: this runs for every request.
    public static func encodeHeaders(_ headers: [(String, String)]) -> String {
        var merged: [(String, String)] = []
        merged.reserveCapacity(headers.count)
        for (name, value) in headers {
            // HTTP/2-style canonical names are lowercase already: lowercasing every name cost a GET a few µs.
            let lower = name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) ? name.lowercased() : name
            let masked = Self.maskedHeaderNames.contains(lower) ? Self.mask(value) : value
            if let index = merged.firstIndex(where: { $0.0 == lower }) {
                merged[index].1 += ", " + masked
            } else {
                merged.append((lower, masked))
            }
        }
        merged.sort { $0.0 < $1.0 }
        // One byte buffer rather than a String grown by concatenation: this runs for both sides of every call.
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(merged.reduce(2) { $0 + $1.0.utf8.count + $1.1.utf8.count + 6 })
        for (index, (name, value)) in merged.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.append(name, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONText.append(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// ``encodeHeaders(_:)`` remembering its last answer: a keep-alive client sends the same headers call after
    /// call (and gets the same ones back), and encoding them was a twentieth of a read answered at once. Confined to
    /// one connection's thread.
    public final class HeaderMemo {
        private var last: [(String, String)] = []
        private var text = ""

        public init() {}

        public func encode(_ headers: [(String, String)]) -> String {
            if headers.count == last.count, zip(headers, last).allSatisfy({ $0.0 == $1.0 && $0.1 == $1.1 }),
                !text.isEmpty
            {
                return text
            }
            last = headers
            text = JournalEntry.encodeHeaders(headers)
            return text
        }
    }

    static let maskedHeaderNames: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-admin-token",
    ]

    /// `Bearer eyJhbGciOi…` → `Bearer ***(1234 chars)`: enough to tell tokens apart by length, nothing to replay.
    static func mask(_ value: String) -> String {
        // Counted in scalars, not graphemes (a token is ASCII; grapheme counting was most of the cost of masking).
        let scalars = value.unicodeScalars
        guard let space = scalars.firstIndex(of: " "), space != scalars.startIndex else {
            return "***(\(scalars.count) chars)"
        }
        let secret = scalars[scalars.index(after: space)...]
        guard !secret.isEmpty else { return "***(\(scalars.count) chars)" }
        return String(scalars[..<space]) + " ***(\(secret.count) chars)"
    }
}

/// Shared bodies already stored (hash → `journal_body.id`) and the last few by their bytes.
struct SharedBodies {
    var ids: [Data: Int64] = [:]
    /// Whole bodies, and apart the tails of long bodies (rows with no tail of their own): a whole body may be a head
    /// with a tail, which a tail must not point to.
    var bodies = RecentBodies(capacity: 32)
    var tails = RecentBodies(capacity: 8)
}

/// The last bodies stored, by their bytes: comparing costs less than hashing again (Data's == compares lengths first).
struct RecentBodies {
    let capacity: Int
    private var latest: [(body: Data, id: Int64)] = []

    init(capacity: Int) { self.capacity = capacity }

    func id(of body: Data) -> Int64? {
        latest.first { Self.same($0.body, body) }?.id
    }

    /// Equal bytes; the same storage is known equal without comparing them (a read answered from the read cache
    /// hands the journal the cached resource's own bytes, call after call).
    static func same(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        let shared = a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.baseAddress == y.baseAddress } }
        return shared || a == b
    }

    mutating func remember(_ body: Data, _ id: Int64) {
        if latest.count >= capacity { latest.removeFirst() }
        latest.append((body, id))
    }
}

/// A response body that is a resource version the store keeps (`fhir_resource`, then `fhir_history` once replaced):
/// a capacity PATCH answers with the Location it has just stored, and the journal copying those bytes again (with
/// the checkpoint's copy, ~4 of the ~15 pages a PATCH wrote) cost the feed a sixth of its throughput. Named by
/// version and `meta.lastUpdated`: a version number reused after the data was reloaded reads as no body rather than
/// as another version's bytes.
public struct StoredVersion: Sendable, Hashable {
    public var type: String
    public var id: String
    public var version: Int
    /// As stored (`fhir_resource.last_updated`).
    public var lastUpdated: String

    public init(type: String, id: String, version: Int, lastUpdated: String) {
        self.type = type
        self.id = id
        self.version = version
        self.lastUpdated = lastUpdated
    }
}

/// The body bytes each journal row stored, oldest first, and their sum: what the body budget prunes by.
struct JournalLedger {
    var loaded = false
    private var rows: [(id: Int64, bytes: Int)] = []
    private var start = 0
    private(set) var bytes = 0

    mutating func append(id: Int64, bytes stored: Int) {
        rows.append((id, stored))
        bytes += stored
    }

    /// Forgets the rows up to `id`; returns `id`.
    mutating func drop(through id: Int64) -> Int64 {
        var dropped = 0
        while start < rows.count, rows[start].id <= id {
            dropped += rows[start].bytes
            start += 1
        }
        compact()
        bytes -= dropped
        return id
    }

    /// Forgets the oldest rows until at most `budget` bytes remain; returns the last id forgotten.
    mutating func drop(keeping budget: Int) -> Int64 {
        var last: Int64 = 0
        var dropped = 0
        while start < rows.count, bytes - dropped > budget {
            dropped += rows[start].bytes
            last = rows[start].id
            start += 1
        }
        compact()
        bytes -= dropped
        return last
    }

    private mutating func compact() {
        if start > 4096, start * 2 > rows.count {
            rows.removeFirst(start)
            start = 0
        }
    }
}

/// Where a row's body is: in the row (short bodies), or shared in `journal_body`.
struct JournalBodyReference {
    var inline: Data?
    var id: Int64?
}

/// Journal query filters (admin API, CLI).
public struct JournalFilter: Sendable {
    public var limit: Int = 100
    public var service: String?
    public var decision: JournalDecision?
    /// Only rows with an id greater than this (for `--follow`).
    public var afterID: Int64?

    public init(limit: Int = 100, service: String? = nil, decision: JournalDecision? = nil, afterID: Int64? = nil) {
        self.limit = limit
        self.service = service
        self.decision = decision
        self.afterID = afterID
    }
}

/// The call journal: rows are queued in memory and written in batches by a background task, so journaling costs
/// the request path a lock and an append rather than a SQLite transaction. Bounded to `maxRows` and to about
/// `maxBodyBytes` of stored bodies (oldest rows pruned first): a national consumer's search pages (~200 kB each, all
/// different while a feed writes) filled 25 GB in five minutes under rows alone.
///
/// A batch is written at most `flushInterval` after its first row; a `kill -9` can lose that window of journal
/// rows (never service data, which is written before the response).
public final class Journal: Sendable {
    private let store: SandboxStore
    public let maxRows: Int
    /// Bytes of bodies kept, about (a shared body is counted with the row that first stored it).
    public let maxBodyBytes: Int
    /// Body bytes queued and not yet written above which a row is queued without its bodies (marked truncated):
    /// a writer falling behind must not take the server's memory with it.
    static let maxQueuedBodyBytes = 64 << 20
    private let pending = NIOLockedValueBox<(entries: [JournalEntry], recorded: Int, bodyBytes: Int)>(([], 0, 0))
    /// The body bytes each row stored (touched under `flushLock` only), oldest first.
    private let ledger = NIOLockedValueBox(JournalLedger())
    private let flushLock = NIOLock()
    private let logger: Logger
    /// Touched under `flushLock` only; emptied whenever an id may have gone (collection, failed flush, removal).
    private let bodies = NIOLockedValueBox(SharedBodies())
    /// Rows not written since the disk became full (touched under `flushLock` only): said once when it fills, and
    /// counted when space returns, rather than an error line every batch.
    private let rowsLostToFullDisk = NIOLockedValueBox(0)
    /// Bodies this long or longer are shared (`journal_body`); shorter ones stay in the row.
    static let sharedBodySize = 1024
    /// Bodies this long or longer are kept as a head of ``headSize`` bytes and a tail shared by every body that ends
    /// the same way: a search page answered again differs only in its first few hundred bytes (the Bundle's `id`,
    /// `meta.lastUpdated` and paging key), and each answer was stored whole (a national 1.5 MB page: 1 MiB written
    /// per call, which doubled its server CPU).
    static let splitBodySize = 64 * 1024
    static let headSize = 4096

    /// Told of every row as it is recorded (the server's metrics count calls there).
    private let observer: (@Sendable (JournalEntry) -> Void)?

    public init(
        store: SandboxStore,
        maxRows: Int = 100_000,
        maxBodyBytes: Int = 512 << 20,
        logger: Logger = Logger(label: "journal"),
        observer: (@Sendable (JournalEntry) -> Void)? = nil
    ) {
        self.store = store
        self.maxRows = max(1, maxRows)
        self.maxBodyBytes = max(1, maxBodyBytes)
        self.logger = logger
        self.observer = observer
    }

    /// Queues a row; never blocks on SQLite.
    public func record(_ entry: JournalEntry) {
        observer?(entry)
        var entry = entry
        let bytes = entry.queuedBodyBytes
        pending.withLockedValue {
            if $0.bodyBytes + bytes > Self.maxQueuedBodyBytes {
                entry.dropBodies()
            } else {
                $0.bodyBytes += bytes
            }
            $0.entries.append(entry)
            $0.recorded &+= 1
        }
    }

    /// Rows stored now (queued ones not yet written are not counted).
    public func rowCount() throws -> Int {
        try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journal") ?? 0 }
    }

    /// Rows recorded since the start (a sign of activity: the sandbox is idle while it does not move).
    public var recordedCount: Int {
        pending.withLockedValue { $0.recorded }
    }

    /// Rows written per transaction by ``flush()``, and body bytes after which a transaction takes no more rows.
    static let rowsPerTransaction = 8
    static let bytesPerTransaction = 256 * 1024

    /// The first rows of `rest` one transaction writes: up to ``rowsPerTransaction``, ending with the row that
    /// brings their bodies to ``bytesPerTransaction`` (a search page of a megabyte is a transaction alone).
    static func transactionRows(_ rest: ArraySlice<JournalEntry>) -> ArraySlice<JournalEntry> {
        var bytes = 0
        var end = rest.startIndex
        while end < rest.endIndex, end - rest.startIndex < rowsPerTransaction, bytes < bytesPerTransaction {
            bytes += rest[end].queuedBodyBytes
            end += 1
        }
        return rest[rest.startIndex..<end]
    }

    /// The SHA-256 that ``share(_:digest:stored:in:)`` would work out for a body (of the whole body, or of the tail
    /// of a long one), or nil when it needs none: short, or one of the last bodies stored.
    private func digest(_ body: Data?) -> Data? {
        guard let body, body.count >= Self.sharedBodySize,
            bodies.withLockedValue({ $0.bodies.id(of: body) }) == nil
        else { return nil }
        guard body.count >= Self.splitBodySize else { return Data(SHA256.hash(data: body)) }
        let tail = body.dropFirst(Self.headSize)
        guard bodies.withLockedValue({ $0.tails.id(of: tail) }) == nil else { return nil }
        return Data(SHA256.hash(data: tail))
    }

    /// Writes queued rows now, then prunes beyond `maxRows`. Safe to call from several places.
    public func flush() {
        flushLock.withLock {
            let batch = pending.withLockedValue { queue -> [JournalEntry] in
                defer {
                    queue.entries.removeAll(keepingCapacity: true)
                    queue.bodyBytes = 0
                }
                return queue.entries
            }
            guard !batch.isEmpty else { return }
            var written = 0
            do {
                // Few rows and few bytes per transaction, their digests worked out before the writer is taken: the
                // services' writes (a capacity PATCH commits on its connection's event loop, stalling the loop's other
                // connections meanwhile) wait for one short transaction, not for a batch of search pages (eight
                // national pages held the writer ~15 ms; figures in `docs/performance.md`).
                var rest = batch[...]
                while !rest.isEmpty {
                    let rows = Self.transactionRows(rest)
                    rest = rest.dropFirst(rows.count)
                    let digests = rows.map { (digest($0.requestBody), digest($0.responseBody)) }
                    try store.writer.write { db in
                        try loadLedgerOnce(db)
                        // One prepared statement for the batch: several times cheaper than Codable record inserts.
                        let insert = try db.cachedStatement(sql: Self.insertSQL)
                        for (entry, (requestDigest, responseDigest)) in zip(rows, digests) {
                            var stored = 0
                            let request = try share(entry.requestBody, digest: requestDigest, stored: &stored, in: db)
                            let response = try share(
                                entry.responseBody,
                                digest: responseDigest,
                                stored: &stored,
                                in: db
                            )
                            let page = entry.responsePage?.encoded()
                            stored += page?.count ?? 0
                            try insert.execute(
                                arguments: entry.insertArguments(
                                    requestBody: request,
                                    responseBody: response,
                                    responsePage: page
                                )
                            )
                            ledger.withLockedValue { $0.append(id: db.lastInsertedRowID, bytes: stored) }
                        }
                        guard rest.isEmpty else { return }
                        // ids are monotonic (AUTOINCREMENT), so "older than the newest maxRows" is a range delete,
                        // and so is "the oldest rows holding more than the body budget" (to 99 % of it: small
                        // prunes, no pause of the feed's writes behind a large one).
                        let newest = db.lastInsertedRowID
                        let cutoff = ledger.withLockedValue { ledger -> Int64 in
                            let rows = ledger.drop(through: newest - Int64(maxRows))
                            guard ledger.bytes > maxBodyBytes else { return rows }
                            return max(rows, ledger.drop(keeping: maxBodyBytes / 100 * 99))
                        }
                        try prune(through: cutoff, in: db)
                    }
                    written += rows.count
                }
                let lost = rowsLostToFullDisk.withLockedValue { lost in
                    defer { lost = 0 }
                    return lost
                }
                if lost > 0 {
                    logger.warning("journal: space is back; \(lost) rows were not written while the disk was full")
                }
            } catch {
                bodies.withLockedValue { $0 = SharedBodies() }
                // Rows of a rolled-back transaction are in the ledger: read it again from what was stored.
                ledger.withLockedValue { $0.loaded = false }
                let unwritten = batch.count - written
                if StorageSpace.isExhausted(error) {
                    let first = rowsLostToFullDisk.withLockedValue { lost in
                        defer { lost += unwritten }
                        return lost == 0
                    }
                    if first {
                        logger.error(
                            "journal: the disk is full; calls are answered but not journaled until space returns"
                        )
                    }
                } else {
                    logger.error("journal: could not write \(unwritten) of \(batch.count) rows: \(error)")
                }
            }
        }
    }

    /// A body as a row stores it: inline when short, else the id of its one `journal_body` copy; adds the bytes it
    /// stored to `stored`.
    /// `digest`: its SHA-256 (or its tail's) when already worked out (``digest(_:)``).
    private func share(_ body: Data?, digest: Data?, stored: inout Int, in db: Database) throws -> JournalBodyReference
    {
        guard let body, body.count >= Self.sharedBodySize else {
            stored += body?.count ?? 0
            return JournalBodyReference(inline: body, id: nil)
        }
        // The same bodies come back call after call (a consumer rereading a Location): comparing bytes with the
        // last ones stored costs less than hashing them again.
        if let id = bodies.withLockedValue({ $0.bodies.id(of: body) }) {
            return JournalBodyReference(inline: nil, id: id)
        }
        guard body.count >= Self.splitBodySize else {
            guard
                let id = try store(
                    body,
                    hash: digest ?? Data(SHA256.hash(data: body)),
                    tail: nil,
                    stored: &stored,
                    in: db
                )
            else {
                stored += body.count
                return JournalBodyReference(inline: body, id: nil)
            }
            bodies.withLockedValue { $0.bodies.remember(body, id) }
            return JournalBodyReference(inline: nil, id: id)
        }
        // Head and shared tail. The tail is compared with the last ones stored before being hashed (hashing a
        // megabyte was a tenth of a repeated search page's CPU); the head's row is told by its bytes and its tail's
        // row (ids are never reused: AUTOINCREMENT).
        let head = body.prefix(Self.headSize)
        let tail = body.dropFirst(Self.headSize)
        var tailID = bodies.withLockedValue { $0.tails.id(of: tail) }
        if tailID == nil,
            let id = try store(
                Data(tail),
                hash: digest ?? Data(SHA256.hash(data: tail)),
                tail: nil,
                stored: &stored,
                in: db
            )
        {
            tailID = id
            bodies.withLockedValue { $0.tails.remember(tail, id) }
        }
        // A head's key is one byte longer than a body's hash: the two can never be taken for each other.
        guard let tailID,
            let id = try store(
                Data(head),
                hash: Data([1]) + Data(SHA256.hash(data: head + Data("\u{0}\(tailID)".utf8))),
                tail: tailID,
                stored: &stored,
                in: db
            )
        else {
            stored += body.count
            return JournalBodyReference(inline: body, id: nil)
        }
        bodies.withLockedValue { $0.bodies.remember(body, id) }
        return JournalBodyReference(inline: nil, id: id)
    }

    /// The rows already stored when this journal first writes, each with the bytes of its bodies (a shared body
    /// counted with every row referring to it, and a head with its tail: more than stored, so pruning errs towards
    /// the bound).
    private func loadLedgerOnce(_ db: Database) throws {
        guard !ledger.withLockedValue({ $0.loaded }) else { return }
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT j.id,
                    COALESCE(length(j.request_body), 0) + COALESCE(length(j.response_body), 0)
                    + COALESCE(length(j.response_page), 0)
                    + COALESCE((SELECT length(b.body) + COALESCE((SELECT length(t.body) FROM journal_body t
                        WHERE t.id = b.tail_id), 0) FROM journal_body b WHERE b.id = j.request_body_id), 0)
                    + COALESCE((SELECT length(b.body) + COALESCE((SELECT length(t.body) FROM journal_body t
                        WHERE t.id = b.tail_id), 0) FROM journal_body b WHERE b.id = j.response_body_id), 0)
                FROM journal j ORDER BY j.id
                """
        )
        ledger.withLockedValue { ledger in
            ledger = JournalLedger()
            ledger.loaded = true
            for row in rows { ledger.append(id: row[0], bytes: row[1]) }
        }
    }

    /// The `journal_body` row of these bytes (and tail), stored if new; nil if it cannot be found after (no row then
    /// refers to it: the body stays in the journal row).
    private func store(_ bytes: Data, hash: Data, tail: Int64?, stored: inout Int, in db: Database) throws -> Int64? {
        if let known = bodies.withLockedValue({ $0.ids[hash] }) { return known }
        try db.cachedStatement(
            sql: "INSERT INTO journal_body (hash, body, tail_id) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING"
        )
        .execute(arguments: [hash, bytes, tail])
        if db.changesCount > 0 { stored += bytes.count }
        guard
            let id = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM journal_body WHERE hash = ?"),
                arguments: [hash]
            )
        else {
            return nil
        }
        bodies.withLockedValue { state in
            if state.ids.count >= 10_000 { state.ids.removeAll() }
            state.ids[hash] = id
        }
        return id
    }

    /// The shared bodies the pruned rows (or heads) referred to that nothing refers to any more, removed; answers
    /// their tails, candidates in turn.
    static let collectSQL = """
        DELETE FROM journal_body AS b
        WHERE b.id IN (SELECT id FROM temp.journal_pruned_body)
          AND NOT EXISTS (SELECT 1 FROM journal WHERE request_body_id = b.id)
          AND NOT EXISTS (SELECT 1 FROM journal WHERE response_body_id = b.id)
          AND NOT EXISTS (SELECT 1 FROM journal_body t WHERE t.tail_id = b.id)
        RETURNING tail_id
        """

    /// The connection's list of candidate bodies for ``collectSQL``.
    static func prepareCollection(_ db: Database) throws {
        try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS journal_pruned_body (id INTEGER PRIMARY KEY)")
    }

    /// Prunes the rows up to `id` and the shared bodies only they referred to: the work is the pruned rows' (index
    /// lookups per candidate body: migration v13), not a scan of every body kept. The bodies went in the same
    /// transaction as their rows, so the database never holds more than the budget for long.
    private func prune(through id: Int64, in db: Database) throws {
        try Self.prepareCollection(db)
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO temp.journal_pruned_body
                    SELECT request_body_id FROM journal WHERE id <= ?1 AND request_body_id IS NOT NULL
                    UNION ALL SELECT response_body_id FROM journal WHERE id <= ?1 AND response_body_id IS NOT NULL
                """,
            arguments: [id]
        )
        try db.execute(sql: "DELETE FROM journal WHERE id <= ?", arguments: [id])
        guard db.changesCount > 0 else { return }
        // The heads, then the tails their heads were the last to refer to.
        var collected = false
        for _ in 0..<2 {
            let tails = try Int64?.fetchAll(db, sql: Self.collectSQL).compactMap { $0 }
            collected = collected || db.changesCount > 0
            try db.execute(sql: "DELETE FROM temp.journal_pruned_body")
            guard !tails.isEmpty else { break }
            for tail in tails {
                try db.execute(sql: "INSERT OR IGNORE INTO temp.journal_pruned_body VALUES (?)", arguments: [tail])
            }
        }
        try db.execute(sql: "DELETE FROM temp.journal_pruned_body")
        if collected { bodies.withLockedValue { $0 = SharedBodies() } }
    }

    /// Background writer loop: flushes every `interval` until cancelled, then once more.
    public func run(interval: Duration = .milliseconds(50)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await Task.detached(priority: .utility) { self.flush() }.value
        }
        flush()
    }

    static let insertSQL = """
        INSERT INTO journal (time, environment, service, method, path, query, status, decision, reason, subject_dn,
        issuer_dn, serial_number, spki_sha256, duration_ms, remote_address, request_headers, request_body,
        request_body_truncated, response_headers, response_body, response_body_truncated, request_body_id, response_body_id,
        response_resource_type, response_resource_id, response_resource_version, response_resource_updated,
        response_page)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// A shared body by its id: its bytes, then its tail's (SQLite's `||` keeps blob bytes as they are; the cast gives
    /// a blob back).
    static func sharedBody(_ id: String) -> String {
        "SELECT CAST(b.body || COALESCE((SELECT t.body FROM journal_body t WHERE t.id = b.tail_id), X'') AS BLOB) FROM journal_body b WHERE b.id = \(id)"
    }

    /// Rows with the bodies the journal keeps (the columns ``JournalEntry`` decodes), and the ``StoredVersion`` a
    /// body may be instead (read by `fetch`).
    static let selectSQL = """
        SELECT j.id, j.time, j.environment, j.service, j.method, j.path, j.query, j.status, j.decision, j.reason,
        j.subject_dn, j.issuer_dn, j.serial_number, j.spki_sha256, j.duration_ms, j.remote_address, j.request_headers,
        COALESCE(j.request_body, (\(sharedBody("j.request_body_id")))) AS request_body,
        j.request_body_truncated, j.response_headers,
        COALESCE(j.response_body, (\(sharedBody("j.response_body_id")))) AS response_body,
        j.response_body_truncated, j.response_resource_type, j.response_resource_id, j.response_resource_version,
        j.response_resource_updated, j.response_page
        FROM journal j
        """

    /// The rows `sql` selects (``selectSQL``), a response body named as a ``StoredVersion`` read from the store (current
    /// or kept, in the same snapshot).
    static func fetch(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [JournalEntry] {
        var versions = ResourceHistory.Reader(db)
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            var entry = try JournalEntry(row: row)
            if entry.responseBody == nil, let type: String = row["response_resource_type"],
                let id: String = row["response_resource_id"],
                let version: Int = row["response_resource_version"]
            {
                entry.responseBody = try versions.json(
                    type: type,
                    id: id,
                    version: version,
                    lastUpdated: row["response_resource_updated"]
                )
            } else if entry.responseBody == nil, let encoded: Data = row["response_page"],
                let page = JournalPage(encoded: encoded)
            {
                entry.responseBody = try page.rebuild(&versions)
            }
            return entry
        }
    }

    public func entries(_ filter: JournalFilter) throws -> [JournalEntry] {
        flush()
        let conditions: [(String, (any DatabaseValueConvertible & Sendable)?)] = [
            ("j.service = ?", filter.service), ("j.decision = ?", filter.decision?.rawValue),
            ("j.id > ?", filter.afterID),
        ].filter { $0.1 != nil }
        let sql =
            Self.selectSQL + (conditions.isEmpty ? "" : " WHERE " + conditions.map(\.0).joined(separator: " AND "))
            + " ORDER BY j.id \(filter.afterID == nil ? "DESC" : "ASC") LIMIT ?"
        let arguments = StatementArguments(conditions.map(\.1) + [filter.limit])
        return try store.writer.read { db in try Self.fetch(db, sql, arguments) }
    }

    /// Calls accepted and refused since `date` (the console's dashboard; onboarding and fault rows are not calls).
    public func counts(since date: Date) throws -> (accepted: Int, refused: Int) {
        flush()
        return try store.writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT decision, COUNT(*) AS n FROM journal WHERE time >= ? AND method NOT IN ('ONBOARDING', 'FAULT') GROUP BY decision",
                arguments: [date]
            )
            var counts = (accepted: 0, refused: 0)
            for row in rows {
                if row["decision"] == JournalDecision.accepted.rawValue {
                    counts.accepted = row["n"]
                } else {
                    counts.refused = row["n"]
                }
            }
            return counts
        }
    }

    public func entry(id: Int64) throws -> JournalEntry? {
        flush()
        return try store.writer.read { db in try Self.fetch(db, Self.selectSQL + " WHERE j.id = ?", [id]).first }
    }

    public func removeAll() throws {
        flush()
        try flushLock.withLock {
            try store.writer.write { db in
                try db.execute(sql: "DELETE FROM journal")
                try db.execute(sql: "DELETE FROM journal_body")
            }
            bodies.withLockedValue { $0 = SharedBodies() }
            ledger.withLockedValue {
                $0 = JournalLedger()
                $0.loaded = true
            }
        }
    }
}

/// JSON string literals.
public enum JSONText {
    /// Appends `text` as a JSON string literal (quotes, escapes of `"`, `\\` and control characters).
    public static func append(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most header values need no escape: one scan of the bytes, one copy.
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
            out.append(contentsOf: text.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        let hex = Array("0123456789abcdef".utf8)
        for byte in text.utf8 {
            switch byte {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case ..<0x20: out += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)  // UTF-8 multi-byte sequences pass through whole
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
