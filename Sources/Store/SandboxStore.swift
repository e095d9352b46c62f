import Foundation
import GRDB

/// The sandbox's single SQLite database: one file in WAL mode under the data folder, or memory for tests.
///
/// Every table is created by a migration of `Migrations/` (``SandboxMigrations``): one function each, grouped by the
/// module owning the tables, applied in one ordered list.
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
    ///
    /// A database made by ``install(prebuilt:at:mode:)`` as a page overlay (``PageOverlay``) is opened over its base.
    public static func open(path: String) throws -> SandboxStore {
        try PageOverlay.attachIfOverlay(database: path)
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

    /// Opens the database file for reading only (page overlays included), not migrated: for inspecting a data
    /// folder, a running server's too (SQLite's WAL lets a reader in beside the writer).
    public static func openForReading(path: String) throws -> DatabaseQueue {
        try PageOverlay.attachIfOverlay(database: path)
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Builds a database file at `path` in one go (a prebuilt seed dataset): migrated like the live one, written
    /// with no rollback journal and no sync (a failed build is removed, never half-used), then renamed into place.
    public static func build(at path: String, _ body: (SandboxStore) throws -> Void) throws {
        let staging = path + ".building-\(UUID().uuidString)"
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "PRAGMA cache_size = -262144")  // 256 MiB: index builds sort in memory
        }
        do {
            let queue = try DatabaseQueue(path: staging, configuration: configuration)
            try migrator.migrate(queue)
            try body(SandboxStore(writer: queue, path: staging))
            try queue.close()
            guard rename(staging, path) == 0 else {
                throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// The migrations this build applies, in order: a prebuilt file made by a build with other migrations is not
    /// installed (its schema or index rows may differ).
    public static var schemaIdentifiers: [String] { migrator.migrations }

    /// How a new data folder takes a prebuilt database.
    public enum InstallMode: String, CaseIterable, Sendable {
        /// Over the prebuilt file, left read-only, keeping only the pages the folder writes (``PageOverlay``):
        /// instant whatever the dataset's size, but the database is readable through esante-sandbox only.
        case overlay
        /// A whole copy: a standalone SQLite file, for the `sqlite3` shell and other tools.
        case copy
    }

    /// Installs a prebuilt database (``build(at:_:)``) as the database file `path`, which must not exist yet: as a
    /// page overlay, or a copy made in the kernel (`copy_file_range`: no round trip through this process) where the
    /// system offers one. A copy is staged then linked: one interrupted half-way leaves no database behind, an
    /// existing one is never replaced.
    public static func install(prebuilt: String, at path: String, mode: InstallMode = .copy) throws {
        guard FileManager.default.isReadableFile(atPath: prebuilt) else { throw StoreError("cannot read \(prebuilt)") }
        if mode == .overlay {
            try PageOverlay.create(database: path, base: prebuilt)
            return
        }
        let staging = path + ".installing-\(UUID().uuidString)"
        defer { unlink(staging) }
        if try !copyInKernel(from: prebuilt, to: staging) {
            unlink(staging)
            try FileManager.default.copyItem(atPath: prebuilt, toPath: staging)
        }
        guard link(staging, path) == 0 else {
            throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
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
            if copied < 0, remaining == Int(info.st_size), [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP].contains(errno) {
                return false
            }
            guard copied > 0 else {
                throw StoreError("copying \(source): \(copied < 0 ? String(cString: strerror(errno)) : "file shrank")")
            }
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
        try writer.writeWithoutTransaction { db in try Self.transaction(db, updates) }
    }

    /// An immediate write transaction handed to the writer's thread (GRDB's `write`), ended as ``writeInPlace(_:)``
    /// ends its own: for writes whose transaction observers (the FHIR read cache) must hear of every rollback.
    public func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await writer.writeWithoutTransaction { db in try Self.transaction(db, updates) }
    }

    private static func transaction<T>(_ db: Database, _ updates: (Database) throws -> T) throws -> T {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        do {
            let result = try updates(db)
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
            return result
        } catch {
            if db.isInsideTransaction {
                try? db.rollback()
            } else {
                // SQLite rolled the transaction back itself (a COMMIT refused for a full disk), and GRDB tells no
                // transaction observer of such a rollback: the read cache would keep what it wrote and serve a version
                // never stored. An empty transaction rolled back tells them.
                try? db.execute(sql: "BEGIN DEFERRED TRANSACTION")
                try? db.execute(sql: "ROLLBACK TRANSACTION")
            }
            throw error
        }
    }

    func migrate() throws {
        try Self.migrator.migrate(writer)
    }

    static var migrator: DatabaseMigrator { SandboxMigrations.migrator }

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
