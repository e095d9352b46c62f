import Crypto
import Foundation
import GRDB
import GRDBSQLite
import Store
import Testing

/// A data folder over a prebuilt database (`SandboxStore.install(prebuilt:at:mode: .overlay)`): reads the base, keeps
/// its writes apart, never writes the base.
@Suite("Page overlay")
struct PageOverlayTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("esante-overlay-\(UUID().uuidString)")

    /// A prebuilt database of `rows` rows of 1 000 bytes (about 250 pages), built as `seed prebuild` builds one.
    func base(rows: Int = 1000) throws -> String {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("dataset.sqlite").path
        try SandboxStore.build(at: path) { store in
            try store.writer.write { db in
                try db.execute(sql: "CREATE TABLE sample (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
                try db.execute(sql: "CREATE INDEX sample_body ON sample (body)")
                for id in 1...rows {
                    try db.execute(
                        sql: "INSERT INTO sample VALUES (?, ?)",
                        arguments: [id, String(repeating: "base \(id) ", count: 100).prefix(1000).description]
                    )
                }
            }
        }
        return path
    }

    func dataFolder(_ name: String, over base: String) throws -> String {
        let data = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let path = data.appendingPathComponent("sandbox.sqlite").path
        try SandboxStore.install(prebuilt: base, at: path, mode: .overlay)
        return path
    }

    static func digest(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).description
    }

    static func bodies(_ store: SandboxStore, _ ids: [Int]) throws -> [String] {
        try store.writer.read { db in
            try ids.map { try String.fetchOne(db, sql: "SELECT body FROM sample WHERE id = ?", arguments: [$0]) ?? "-" }
        }
    }

    static func checkpoint(_ store: SandboxStore) throws {
        try store.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    @Test func twoFoldersOnOneBaseNeverSeeEachOthersWrites() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = try base()
        let baseDigest = try Self.digest(base)
        let pathA = try dataFolder("a", over: base)
        let pathB = try dataFolder("b", over: base)
        let a = try SandboxStore.open(path: pathA)
        let b = try SandboxStore.open(path: pathB)
        #expect(try Self.bodies(a, [1, 500, 1000]).map { $0.prefix(8) } == ["base 1 b", "base 500", "base 100"])

        try a.writer.write { db in
            try db.execute(sql: "UPDATE sample SET body = 'written by a' WHERE id <= 100")
            try db.execute(sql: "DELETE FROM sample WHERE id BETWEEN 900 AND 950")
            for id in 2001...3000 {
                try db.execute(
                    sql: "INSERT INTO sample VALUES (?, ?)",
                    arguments: [id, String(repeating: "a", count: 900)]
                )
            }
        }
        try b.writer.write { db in try db.execute(sql: "UPDATE sample SET body = 'written by b' WHERE id = 1") }
        // Both logs folded into their overlays: the pages are then read from the overlay files, not the logs.
        try Self.checkpoint(a)
        try Self.checkpoint(b)

        #expect(
            try Self.bodies(a, [1, 100, 101, 900, 2500]).map { $0.prefix(12) } == [
                "written by a", "written by a", "base 101 bas", "-", "aaaaaaaaaaaa",
            ]
        )
        #expect(
            try Self.bodies(b, [1, 2, 900, 2500]).map { $0.prefix(12) } == [
                "written by b", "base 2 base ", "base 900 bas", "-",
            ]
        )
        for store in [a, b] {
            #expect(try store.writer.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
        }
        // The index answers from the overlay's pages as well.
        #expect(
            try a.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM sample WHERE body = 'written by a'") }
                == 100
        )
        #expect(try Self.digest(base) == baseDigest, "the base was written")
        let baseSize = try FileManager.default.attributesOfItem(atPath: base)[.size] as? Int ?? 0
        var info = stat()
        #expect(stat(pathB, &info) == 0)
        // Space taken, not the size: the overlay file is sparse (a page lies at its offset in the database).
        let overlayB = Int(info.st_blocks) * 512
        #expect(overlayB < baseSize / 10, "b's overlay takes \(overlayB) bytes for one row changed")

        // A third connection, as a restarted server's, reads what was checkpointed.
        let again = try DatabaseQueue(path: pathA)
        #expect(try again.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM sample") } == 1000 - 51 + 1000)
        try again.close()
    }

    /// A prebuilt database rebuilt under a data folder would make its pages meaningless: the folder is refused, named.
    @Test func aBaseThatChangedIsRefused() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = try base(rows: 10)
        let path = try dataFolder("a", over: base)
        try FileManager.default.removeItem(atPath: base)
        _ = try self.base(rows: 11)
        // A fresh process has no map of this folder yet; this one opened none either.
        #expect {
            _ = try SandboxStore.open(path: path)
        } throws: { error in
            "\(error)".contains("changed since") && "\(error)".contains("remove the data folder")
        }
    }

    /// The overlay file alone is not a database: the `sqlite3` shell (SQLite's `unix` VFS) says so instead of reading
    /// the holes where the base's pages would be.
    @Test func theOverlayFileAloneIsRefusedBySQLite() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try dataFolder("a", over: try base(rows: 10))
        var connection: OpaquePointer?
        #expect(sqlite3_open_v2(path, &connection, SQLITE_OPEN_READONLY, "unix") == SQLITE_OK)
        defer { sqlite3_close(connection) }
        #expect(sqlite3_exec(connection, "SELECT COUNT(*) FROM sqlite_master", nil, nil, nil) == SQLITE_NOTADB)
    }

    @Test func anExistingDatabaseIsNeverReplaced() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = try base(rows: 10)
        let path = try dataFolder("a", over: base)
        #expect(throws: StoreError.self) { try SandboxStore.install(prebuilt: base, at: path, mode: .overlay) }
        #expect(throws: StoreError.self) { try SandboxStore.install(prebuilt: base, at: path, mode: .copy) }
    }
}
