import Foundation
import GRDB

/// Copies the pages committed to the write-ahead log into the database file away from the request path.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the log past 1000 pages: one capacity PATCH in
/// about fifty paid for copying ~4 MB and two fsyncs, most of the feed's p99. Here a connection of its own runs a
/// passive checkpoint a few times a second (passive: it never waits for, nor blocks, a writer or a reader). The
/// writers' automatic checkpoint stays as a backstop at a far higher mark, for when this one cannot keep up.
final class WALCheckpointer: Sendable {
    static let interval: Duration = .milliseconds(100)
    /// The writers' own threshold, in pages (64 MiB of log).
    static let backstopPages = 16_384

    private let task: Task<Void, Never>

    init(path: String) throws {
        let connection = try DatabaseQueue(path: path)
        task = Task.detached(priority: .utility) {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.interval)
                _ = try? await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            }
        }
    }

    deinit { task.cancel() }
}
