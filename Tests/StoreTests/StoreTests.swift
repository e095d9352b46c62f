import Foundation
import GRDB
import Store
import Synchronization
import Testing

@Suite("SQLite store")
struct StoreTests {
    /// Committed pages reach the database file by the background checkpoint, with no writer paying for it: 2 MiB
    /// stay below both SQLite's default automatic threshold (1000 pages) and the writers' backstop.
    @Test func theWriteAheadLogIsCheckpointedInTheBackground() async throws {
        try await Self.withFileStore { store, path in try await checkpointed(store, path) }
    }

    private func checkpointed(_ store: SandboxStore, _ path: String) async throws {
        func fileSize() -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0 }
        let before = fileSize()
        try await store.writer.write { db in
            try db.execute(sql: "CREATE TABLE checkpoint_probe (payload BLOB)")
            for _ in 0..<64 {
                try db.execute(
                    sql: "INSERT INTO checkpoint_probe VALUES (?)",
                    arguments: [Data(repeating: 7, count: 32 * 1024)]
                )
            }
        }
        var size = fileSize()
        for _ in 0..<50 where size < before + 2_000_000 {
            try await Task.sleep(for: .milliseconds(100))
            size = fileSize()
        }
        #expect(size >= before + 2_000_000, "database file \(before) → \(size) bytes")
        #expect(
            try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checkpoint_probe") }
                == 64
        )
    }

    /// A write in place commits, or rolls back whole when it throws (nothing of it stays, the next write proceeds),
    /// and a committed one is seen by the other connections.
    @Test func writesInPlaceCommitOrRollBackWhole() async throws {
        struct Refused: Error {}
        try await Self.withFileStore { store, _ in
            try await store.writer.write { db in try db.execute(sql: "CREATE TABLE probe (n INTEGER)") }
            func count() async throws -> Int {
                try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM probe") ?? -1 }
            }
            #expect(throws: Refused.self) {
                try store.writeInPlace { db in
                    try db.execute(sql: "INSERT INTO probe VALUES (1)")
                    throw Refused()
                }
            }
            #expect(try await count() == 0)
            #expect(throws: DatabaseError.self) {
                try store.writeInPlace { db in
                    try db.execute(sql: "INSERT INTO probe VALUES (2)")
                    try db.execute(sql: "INSERT INTO no_such_table VALUES (3)")
                }
            }
            #expect(try await count() == 0)
            #expect(
                try store.writeInPlace { db in
                    try db.execute(sql: "INSERT INTO probe VALUES (4)")
                    return 4
                } == 4
            )
            #expect(try await count() == 1)
            #expect(
                try await store.writer.writeWithoutTransaction { db in db.isInsideTransaction } == false,
                "no transaction left open"
            )
        }
    }

    /// Runs `body` on a database file of its own (removed after).
    /// A write the database cannot grow for is told apart (SQLITE_FULL, here from SQLite's page limit), leaves
    /// nothing, and the same write passes once there is room.
    @Test func aFullDatabaseIsToldApartAndLeavesNothing() async throws {
        try await Self.withFileStore { store, _ in
            try await store.write { db in try db.execute(sql: "CREATE TABLE full_probe (payload BLOB)") }
            let pages = try await store.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
            try await store.writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            }
            let big = Data(repeating: 1, count: 256 * 1024)
            do {
                try await store.write { db in try db.execute(sql: "INSERT INTO full_probe VALUES (?)", arguments: [big])
                }
                Issue.record("a 256 KiB row was written into a database that may not grow")
            } catch {
                #expect(StorageSpace.isExhausted(error), "\(error)")
            }
            #expect(!StorageSpace.isExhausted(DatabaseError(resultCode: .SQLITE_BUSY)))
            #expect(
                try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM full_probe") } == 0
            )
            try await store.writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA max_page_count = 1000000")
            }
            try await store.write { db in try db.execute(sql: "INSERT INTO full_probe VALUES (?)", arguments: [big]) }
            #expect(
                try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM full_probe") } == 1
            )
        }
    }

    /// Transaction observers (the FHIR read cache) hear of every failed write: a rollback the store makes, and the
    /// empty transaction rolled back that tells them when SQLite ended the transaction itself (a COMMIT refused for
    /// a full disk, which GRDB reports to no observer).
    @Test func observersHearOfEveryFailedWrite() async throws {
        try await Self.withFileStore { store, _ in
            let observer = RollbackCounter()
            try await store.writer.writeWithoutTransaction { db in
                db.add(transactionObserver: observer, extent: .observerLifetime)
                try db.execute(sql: "CREATE TABLE rollback_probe (n INTEGER)")
            }
            struct Refused: Error {}
            await #expect(throws: Refused.self) {
                try await store.write { db in
                    try db.execute(sql: "INSERT INTO rollback_probe VALUES (1)")
                    throw Refused()
                }
            }
            #expect(observer.rollbacks.withLock { $0 } == 1)
            try await store.writer.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN DEFERRED TRANSACTION")
                try db.execute(sql: "ROLLBACK TRANSACTION")
            }
            #expect(observer.rollbacks.withLock { $0 } == 2)
        }
    }

    static func withFileStore(_ body: (SandboxStore, String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("esante-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("sandbox.sqlite").path
        try await body(try SandboxStore.open(path: path), path)
    }
}

/// Counts the rollbacks it is told of.
final class RollbackCounter: TransactionObserver, Sendable {
    let rollbacks = Mutex(0)
    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) {}
    func databaseDidRollback(_ db: Database) { rollbacks.withLock { $0 += 1 } }
}
