import Foundation
import GRDB
import Store
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
            for _ in 0..<64 { try db.execute(sql: "INSERT INTO checkpoint_probe VALUES (?)", arguments: [Data(repeating: 7, count: 32 * 1024)]) }
        }
        var size = fileSize()
        for _ in 0..<50 where size < before + 2_000_000 {
            try await Task.sleep(for: .milliseconds(100))
            size = fileSize()
        }
        #expect(size >= before + 2_000_000, "database file \(before) → \(size) bytes")
        #expect(try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checkpoint_probe") } == 64)
    }

    /// Runs `body` on a database file of its own (removed after).
    static func withFileStore(_ body: (SandboxStore, String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("esante-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("sandbox.sqlite").path
        try await body(try SandboxStore.open(path: path), path)
    }
}
