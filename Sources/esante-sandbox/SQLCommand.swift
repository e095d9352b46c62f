import ArgumentParser
import Foundation
import GRDB
import Store

/// `esante-sandbox sql STATEMENT…`: read-only SQL on a data folder's database, page overlays included — what the
/// `sqlite3` shell cannot open (a data folder over a prebuilt dataset is readable through esante-sandbox only).
struct SQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run read-only SQL on a data folder's database (a running server's too).",
        discussion: """
            Prints each statement's rows tab-separated under a header line: text as is (tabs and newlines \
            escaped), blobs as text when they are UTF-8 (stored FHIR JSON is), else as x'hex'; NULL as NULL. The \
            connection is read-only: data changes through the sandbox's APIs. On a data folder made over a prebuilt \
            dataset (serve --prebuilt overlay, the default), "VACUUM INTO 'FILE'" writes a standalone copy the \
            sqlite3 shell and other tools open.
            """
    )

    @Argument(help: "SQL statements, e.g. 'SELECT type, COUNT(*) FROM fhir_resource GROUP BY type'.")
    var statements: [String]
    @OptionGroup var data: DataOptions

    func run() async throws {
        try await reportingErrors {
            let path = try data.databasePath()
            let database: DatabaseQueue
            do { database = try SandboxStore.openForReading(path: path) } catch {
                throw UsageFailure("\(path): \(error)")
            }
            for statement in statements {
                do {
                    // Outside a transaction (each statement its own read): VACUUM INTO cannot run inside one.
                    try database.inDatabase { db in
                        let cursor = try Row.fetchCursor(db, sql: statement)
                        var header = false
                        while let row = try cursor.next() {
                            if !header {
                                print(row.columnNames.joined(separator: "\t"))
                                header = true
                            }
                            print(row.databaseValues.map(Self.text).joined(separator: "\t"))
                        }
                    }
                } catch let error as DatabaseError {
                    throw UsageFailure("\(statement): \(error.message ?? "\(error)")")
                }
            }
        }
    }

    static func text(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .null: return "NULL"
        case .int64(let number): return String(number)
        case .double(let number): return String(number)
        case .string(let string): return escaped(string)
        case .blob(let data):
            if let string = String(data: data, encoding: .utf8) { return escaped(string) }
            return "x'" + data.map { String(format: "%02x", $0) }.joined() + "'"
        }
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\t", with: "\\t")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
