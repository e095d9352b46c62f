import Foundation
import GRDB

/// The sandbox's single SQLite database: one file in WAL mode under the data folder, or memory for tests.
///
/// Every table is created by a migration below; service modules add theirs by appending migrations here, so the
/// schema history stays in one place and `reset` knows every table.
public final class SandboxStore: Sendable {
    public let writer: any DatabaseWriter
    /// File path, or nil in memory.
    public let path: String?
    /// Checkpoints the write-ahead log of a file database off the request path.
    private let checkpointer: WALCheckpointer?

    /// Opens (creating if needed) the database file and migrates it.
    ///
    /// `synchronous = NORMAL` in WAL mode: a commit is in the OS before the response is sent, so `kill -9` loses
    /// nothing acknowledged; only a power cut could lose the last commits (acceptable for a sandbox).
    public static func open(path: String) throws -> SandboxStore {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.backstopPages)")
        }
        configuration.busyMode = .timeout(5)
        let pool = try DatabasePool(path: path, configuration: configuration)
        let store = SandboxStore(writer: pool, path: path, checkpointer: try WALCheckpointer(path: path))
        try store.migrate()
        return store
    }

    /// Builds a database file at `path` in one go (a prebuilt seed dataset): migrated like the live one, written
    /// with no rollback journal and no sync (a failed build is removed, never half-used), then renamed into place.
    public static func build(at path: String, _ body: (SandboxStore) throws -> Void) throws {
        let staging = path + ".building-\(UUID().uuidString)"
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "PRAGMA cache_size = -262144") // 256 MiB: index builds sort in memory
        }
        do {
            let queue = try DatabaseQueue(path: staging, configuration: configuration)
            try migrator.migrate(queue)
            try body(SandboxStore(writer: queue, path: staging))
            try queue.close()
            guard rename(staging, path) == 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// The migrations this build applies, in order: a prebuilt file made by a build with other migrations is not
    /// installed (its schema or index rows may differ).
    public static var schemaIdentifiers: [String] { migrator.migrations }

    /// Installs a prebuilt database (``build(at:_:)``) as the database file `path`, which must not exist yet, by an
    /// in-kernel copy (`copy_file_range`: no round trip through this process) where the system offers one. Staged
    /// then linked: a copy interrupted half-way leaves no database behind, an existing one is never replaced.
    public static func install(prebuilt: String, at path: String) throws {
        guard FileManager.default.isReadableFile(atPath: prebuilt) else { throw StoreError("cannot read \(prebuilt)") }
        let staging = path + ".installing-\(UUID().uuidString)"
        defer { unlink(staging) }
        if try !copyInKernel(from: prebuilt, to: staging) {
            unlink(staging)
            try FileManager.default.copyItem(atPath: prebuilt, toPath: staging)
        }
        guard link(staging, path) == 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
    }

    /// Copies `source` to the new file `target` with `copy_file_range(2)`; false when the kernel cannot (no such
    /// call, or not between these file systems), for the caller to copy otherwise.
    private static func copyInKernel(from source: String, to target: String) throws -> Bool {
        guard let copyFileRange = LinuxCalls.copyFileRange else { return false }
        let input = Foundation.open(source, O_RDONLY)
        guard input >= 0 else { throw StoreError("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = Foundation.open(target, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard output >= 0 else { throw StoreError("cannot write \(target): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var info = stat()
        guard fstat(input, &info) == 0 else { throw StoreError("cannot stat \(source)") }
        var remaining = Int(info.st_size)
        while remaining > 0 {
            let copied = copyFileRange(input, nil, output, nil, remaining, 0)
            if copied < 0, errno == EINTR { continue }
            if copied < 0, remaining == Int(info.st_size), [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP].contains(errno) { return false }
            guard copied > 0 else { throw StoreError("copying \(source): \(copied < 0 ? String(cString: strerror(errno)) : "file shrank")") }
            remaining -= copied
        }
        return true
    }

    /// A private in-memory database (tests, `serve --in-memory`).
    public static func inMemory() throws -> SandboxStore {
        let queue = try DatabaseQueue()
        let store = SandboxStore(writer: queue, path: nil)
        try store.migrate()
        return store
    }

    init(writer: any DatabaseWriter, path: String?, checkpointer: WALCheckpointer? = nil) {
        self.writer = writer
        self.path = path
        self.checkpointer = checkpointer
    }

    /// A write transaction run on the calling thread, waiting for the writer if another write is in progress
    /// (GRDB's synchronous `write`: the calling thread takes the writer's queue in turn). For short writes on a
    /// request's path: the asynchronous `write` hands the transaction to the writer's thread and the answer back,
    /// two thread wake-ups per request.
    ///
    /// `BEGIN` and `COMMIT` are cached statements: GRDB's `write` parses and prepares both again for every
    /// transaction, which was a twentieth of a capacity PATCH's time inside the writer.
    public func writeInPlace<T>(_ updates: (Database) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            do {
                let result = try updates(db)
                try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                return result
            } catch {
                if db.isInsideTransaction { try? db.rollback() }
                throw error
            }
        }
    }

    func migrate() throws {
        try Self.migrator.migrate(writer)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-access") { db in
            try db.create(table: "whitelist_entry") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("environment", .text).notNull()
                t.column("service", .text).notNull()
                t.column("subject_dn", .text)
                t.column("subject_dn_key", .text)
                t.column("public_key_sha256", .text)
                t.column("role", .text).notNull()
                t.column("establishments", .text).notNull().defaults(to: "[]")
                t.column("label", .text)
                t.column("origin", .text).notNull().defaults(to: "admin")
                t.column("created_at", .datetime).notNull()
                t.column("updated_at", .datetime).notNull()
                t.check(sql: "subject_dn_key IS NOT NULL OR public_key_sha256 IS NOT NULL")
            }
            try db.create(index: "whitelist_by_dn", on: "whitelist_entry", columns: ["environment", "service", "subject_dn_key"])
            try db.create(index: "whitelist_by_key", on: "whitelist_entry", columns: ["environment", "service", "public_key_sha256"])

            // A counter bumped by triggers, so a running server sees whitelist edits made by the CLI (another process).
            try db.create(table: "store_revision") { t in
                t.primaryKey("name", .text)
                t.column("value", .integer).notNull()
            }
            try db.execute(sql: "INSERT INTO store_revision(name, value) VALUES ('whitelist', 0)")
            for event in ["INSERT", "UPDATE", "DELETE"] {
                try db.execute(sql: """
                    CREATE TRIGGER whitelist_revision_\(event.lowercased()) AFTER \(event) ON whitelist_entry
                    BEGIN UPDATE store_revision SET value = value + 1 WHERE name = 'whitelist'; END
                    """)
            }

            try db.create(table: "journal") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("time", .datetime).notNull()
                t.column("environment", .text).notNull()
                t.column("service", .text)
                t.column("method", .text).notNull()
                t.column("path", .text).notNull()
                t.column("query", .text)
                t.column("status", .integer).notNull()
                t.column("decision", .text).notNull()
                t.column("reason", .text)
                t.column("subject_dn", .text)
                t.column("issuer_dn", .text)
                t.column("serial_number", .text)
                t.column("spki_sha256", .text)
                t.column("duration_ms", .double).notNull()
                t.column("remote_address", .text)
                t.column("request_headers", .text)
                t.column("request_body", .blob)
                t.column("request_body_truncated", .boolean).notNull().defaults(to: false)
                t.column("response_headers", .text)
                t.column("response_body", .blob)
                t.column("response_body_truncated", .boolean).notNull().defaults(to: false)
            }
            try db.create(index: "journal_by_service", on: "journal", columns: ["service", "id"])
            try db.create(index: "journal_by_decision", on: "journal", columns: ["decision", "id"])
        }
        migrator.registerMigration("v2-fhir") { db in
            // FHIR resources as stored JSON, one row per current version (the ROR has no history).
            try db.create(table: "fhir_resource") { t in
                t.column("type", .text).notNull()
                t.column("id", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("last_updated", .text).notNull() // FHIR instant, UTC, sortable
                t.column("deleted", .boolean).notNull().defaults(to: false)
                t.column("json", .blob).notNull()
                t.primaryKey(["type", "id"])
            }
            try db.create(index: "fhir_resource_updated", on: "fhir_resource", columns: ["type", "last_updated"])
            // Search index: one row per value a search parameter finds in a resource (columns by parameter type).
            try db.create(table: "fhir_index") { t in
                t.column("type", .text).notNull()
                t.column("id", .text).notNull()
                t.column("param", .text).notNull()
                t.column("system", .text)
                t.column("code", .text)
                t.column("text", .text)
                t.column("number", .double)
                t.column("low", .double)
                t.column("high", .double)
                t.column("ref_type", .text)
                t.column("ref_id", .text)
            }
            try db.create(index: "fhir_index_resource", on: "fhir_index", columns: ["type", "id", "param"])
            try db.create(index: "fhir_index_code", on: "fhir_index", columns: ["type", "param", "code", "system"])
            try db.create(index: "fhir_index_text", on: "fhir_index", columns: ["type", "param", "text"])
            try db.create(index: "fhir_index_number", on: "fhir_index", columns: ["type", "param", "number"])
            try db.create(index: "fhir_index_date", on: "fhir_index", columns: ["type", "param", "low", "high"])
            try db.create(index: "fhir_index_ref", on: "fhir_index", columns: ["ref_type", "ref_id", "type", "param"])
        }
        migrator.registerMigration("v3-ror-clients") { db in
            // ROR FHIR clients (Keycloak realm `ror`): client id, access profile 0–5, secret (profile 0), the four
            // Ror-* header values the ANS assigns.
            try db.alter(table: "whitelist_entry") { t in
                t.add(column: "client_id", .text)
                t.add(column: "access_profile", .integer)
                t.add(column: "client_secret", .text)
                t.add(column: "ror_headers", .text)
            }
        }
        migrator.registerMigration("v4-fhir-covering-indexes") { db in
            // Search sub-queries only need the resource id: with `id` (and `ref_id`) in the indexes they are
            // answered from the index alone (no row lookups): the chained example query went from 108 to 42 ms (p50, 2 000 establishments).
            for name in ["fhir_index_code", "fhir_index_text", "fhir_index_number", "fhir_index_date", "fhir_index_ref"] {
                try db.drop(index: name)
            }
            try db.create(index: "fhir_index_code", on: "fhir_index", columns: ["type", "param", "code", "system", "id"])
            try db.create(index: "fhir_index_text", on: "fhir_index", columns: ["type", "param", "text", "id"])
            try db.create(index: "fhir_index_number", on: "fhir_index", columns: ["type", "param", "number", "id"])
            try db.create(index: "fhir_index_date", on: "fhir_index", columns: ["type", "param", "low", "high", "id"])
            try db.create(index: "fhir_index_ref", on: "fhir_index", columns: ["ref_type", "ref_id", "type", "param", "id"])
            try db.create(index: "fhir_index_outgoing", on: "fhir_index", columns: ["type", "param", "ref_type", "ref_id", "id"])
        }
        migrator.registerMigration("v5-insi") { db in
            // INSi test base (the CNDA's role): identities by matricule, simulated Vitale cards, and the LPS
            // authorisation numbers (IDAM) the CNDA assigned. JSON rows: the INSi module owns their shape.
            try db.create(table: "insi_identity") { t in
                t.primaryKey("matricule", .text)
                t.column("json", .text).notNull()
            }
            try db.create(table: "insi_card") { t in
                t.primaryKey("id", .text)
                t.column("json", .text).notNull()
            }
            try db.create(table: "insi_lps") { t in
                t.primaryKey("idam", .text)
                t.column("label", .text)
            }
        }
        migrator.registerMigration("v6-fhir-history") { db in
            // Versions replaced by a write (a capacity PATCH keeps the Location it changed): what changed stays visible.
            try db.create(table: "fhir_history") { t in
                t.column("type", .text).notNull()
                t.column("id", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("last_updated", .text).notNull()
                t.column("json", .blob).notNull()
                t.primaryKey(["type", "id", "version"])
            }
        }
        migrator.registerMigration("v7-onboarding") { db in
            // Integration requests ("demandes d'intégration") and their history; whitelist entries created by a
            // request point back to it (removed with it on revocation).
            try db.create(table: "onboarding_request") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("state", .text).notNull()
                t.column("json", .text).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("updated_at", .datetime).notNull()
                t.column("whitelist_due_at", .datetime)
            }
            try db.create(table: "onboarding_event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("request_id", .integer).notNull().indexed()
                t.column("time", .datetime).notNull()
                t.column("from_state", .text)
                t.column("to_state", .text).notNull()
                t.column("actor", .text).notNull()
                t.column("reason", .text)
            }
            try db.alter(table: "whitelist_entry") { t in t.add(column: "onboarding_request_id", .integer) }
            // Settings the server was started with that the CLI must follow too (the ANS delay).
            try db.create(table: "onboarding_setting") { t in
                t.primaryKey("name", .text)
                t.column("value", .text).notNull()
            }
            // The sandbox clock, compressible for demos: sandbox time = sandbox_anchor + (now - real_anchor) × speed.
            try db.create(table: "sandbox_clock") { t in
                t.primaryKey("id", .integer)
                t.column("real_anchor", .double).notNull()
                t.column("sandbox_anchor", .double).notNull()
                t.column("speed", .double).notNull()
            }
        }
        migrator.registerMigration("v8-fhir-partial-indexes") { db in
            // Each index row belongs to one parameter type and fills one column: the text, number, date and
            // reference indexes hold only the rows that fill theirs (the code index stays whole: it also serves
            // `:missing`). A national database shrinks by a quarter (3.7 → ~2.8 GB, copied at first start) and a
            // row written updates 3–4 B-trees instead of 8. Search SQL states the implied `IS NOT NULL` terms.
            for (name, columns, filled) in [
                ("fhir_index_text", "type, param, text, id", "text"),
                ("fhir_index_number", "type, param, number, id", "number"),
                ("fhir_index_date", "type, param, low, high, id", "low"),
                ("fhir_index_ref", "ref_type, ref_id, type, param, id", "ref_id"),
                ("fhir_index_outgoing", "type, param, ref_type, ref_id, id", "ref_id"),
            ] {
                try db.drop(index: name)
                try db.execute(sql: "CREATE INDEX \(name) ON fhir_index (\(columns)) WHERE \(filled) IS NOT NULL")
            }
            // Statistics for the new indexes (dropping the old ones dropped theirs).
            try analyze(db)
        }
        migrator.registerMigration("v9-journal-bodies") { db in
            // A body of 1 KiB or more is kept once however many calls carried it: consumers re-read the same
            // resources all day, and each read wrote (then pruned) the whole resource again.
            try db.create(table: "journal_body") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("hash", .blob).notNull().unique()
                t.column("body", .blob).notNull()
            }
            try db.alter(table: "journal") { t in
                t.add(column: "request_body_id", .integer)
                t.add(column: "response_body_id", .integer)
            }
        }
        migrator.registerMigration("v10-journal-body-tails") { db in
            // A long body is kept as its head and a shared tail: search pages differ from one call to the next only
            // in their first bytes (the Bundle's id, time and paging key), and each was stored whole again.
            try db.alter(table: "journal_body") { t in t.add(column: "tail_id", .integer) }
        }
        migrator.registerMigration("v11-journal-stored-versions") { db in
            // A response body that is a resource version the store keeps is named, not copied (`StoredVersion`).
            try db.alter(table: "journal") { t in
                t.add(column: "response_resource_type", .text)
                t.add(column: "response_resource_id", .text)
                t.add(column: "response_resource_version", .integer)
                t.add(column: "response_resource_updated", .text)
            }
        }
        migrator.registerMigration("v12-fhir-history-deltas") { db in
            // A kept version may be a delta from the next one (`ResourceHistory`): NULL, `json` is the version.
            try db.alter(table: "fhir_history") { t in t.add(column: "base_updated", .text) }
        }
        migrator.registerMigration("v13-journal-body-references") { db in
            // Which rows refer to a shared body, found by index: collecting the bodies no row refers to scanned the
            // whole journal twice (2 × ~65 ms at 100 000 rows, every 10 000 rows pruned: the writers waited behind it).
            try db.execute(sql: "CREATE INDEX journal_request_body ON journal (request_body_id) WHERE request_body_id IS NOT NULL")
            try db.execute(sql: "CREATE INDEX journal_response_body ON journal (response_body_id) WHERE response_body_id IS NOT NULL")
            try db.execute(sql: "CREATE INDEX journal_body_tail ON journal_body (tail_id) WHERE tail_id IS NOT NULL")
        }
        return migrator
    }

    /// Refreshes the query planner's statistics on the FHIR tables, from a sample of each index (`analysis_limit`):
    /// exact counts would read a national database whole (a minute) for the same plans.
    public static func analyze(_ db: Database) throws {
        try db.execute(sql: "PRAGMA analysis_limit = 2000")
        try db.execute(sql: "ANALYZE fhir_index")
        try db.execute(sql: "ANALYZE fhir_resource")
    }

    /// Current value of a revision counter (see `store_revision`).
    public func revision(_ name: String) throws -> Int64 {
        try writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT value FROM store_revision WHERE name = ?", arguments: [name]) ?? 0
        }
    }
}

/// A store operation that failed for a reason GRDB does not report (files).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
