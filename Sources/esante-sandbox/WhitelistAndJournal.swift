import Access
import ArgumentParser
import Foundation
import SandboxServer
import Store

struct WhitelistCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whitelist",
        abstract: "Edit the whitelists in a data folder (a running server sees changes within a second).",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Whitelist a subject DN (ror-fhir, insi, dmp, mes) or a public key (ror-csd)."
        )
        @OptionGroup var data: DataOptions
        @Option(help: "ror-fhir, ror-csd, insi, dmp or mes.") var service: String
        @Option(help: "Subject DN (RFC 4514, OpenSSL one-line or slash form).") var subjectDN: String?
        @Option(help: "SHA-256 of the certificate's SubjectPublicKeyInfo, hex or base64 (ror-csd).")
        var publicKeySHA256: String?
        @Option(help: "PEM certificate (or public key) to read the DN or key from.") var certificate: String?
        @Option(help: "consume or feed.") var role = "consume"
        @Option(help: "Establishment (FINESS) the entry may write for (repeatable).") var establishment: [String] = []
        @Option(help: "Free label.") var label: String?
        @Option(help: "Environment.") var environment = SandboxEnvironment.sandbox
        @Flag(help: "Print the entry as JSON.") var json = false
        @Flag(help: "Change the entry that already whitelists this DN or key for the service, instead of refusing.")
        var replace = false

        func run() async throws {
            try await reportingErrors {
                let pem = try certificate.map(readPEM)
                let request = WhitelistRequest(
                    environment: environment,
                    service: service,
                    subjectDN: subjectDN,
                    publicKeySHA256: publicKeySHA256,
                    certificatePEM: pem,
                    role: role,
                    establishments: establishment,
                    label: label
                )
                let entry = try Whitelist.entry(from: request, origin: "cli")
                let whitelist = try Whitelist(store: try data.openStore())
                let saved = try replace ? whitelist.add(entry) : whitelist.create(entry)
                if json {
                    print(try WhitelistCommand.render([saved]))
                } else {
                    print("whitelisted: \(WhitelistCommand.line(saved))")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every whitelist entry.")
        @OptionGroup var data: DataOptions
        @Option(help: "Only this service.") var service: String?
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            try await reportingErrors {
                let entries = try Whitelist(store: try data.openStore()).entries()
                    .filter { service == nil || $0.service.rawValue == service }
                if json {
                    print(try WhitelistCommand.render(entries))
                } else {
                    entries.forEach { print(WhitelistCommand.line($0)) }
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a whitelist entry by id.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Entry id (see 'whitelist list').") var id: Int64

        func run() async throws {
            try await reportingErrors {
                guard try Whitelist(store: try data.openStore()).remove(id: id) else {
                    throw UsageFailure("no whitelist entry \(id)")
                }
                print("removed entry \(id)")
            }
        }
    }

    static func line(_ entry: WhitelistEntry) -> String {
        let credential = entry.subjectDN.map { "DN \($0)" } ?? "SPKI \(entry.publicKeySHA256?.hex ?? "?")"
        let scope = entry.establishments.isEmpty ? "" : " establishments=\(entry.establishments.joined(separator: ","))"
        return
            "#\(entry.id ?? 0) \(entry.environment) \(entry.service.rawValue) \(entry.role.rawValue) \(credential)\(scope)"
            + (entry.label.map { " (\($0))" } ?? "")
    }

    static func render(_ entries: [WhitelistEntry]) throws -> String {
        // The admin API's view and encoder: camelCase, the client secret never printed.
        String(decoding: try SandboxJSON.encoder.encode(entries.map(WhitelistEntry.View.init)), as: UTF8.self)
    }
}

struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Show the call journal of a data folder."
    )
    @OptionGroup var data: DataOptions
    @Flag(help: "Keep printing new rows as they arrive.") var follow = false
    @Flag(help: "One JSON object per line.") var json = false
    @Option(help: "Only this service.") var service: String?
    @Option(help: "accepted or refused.") var decision: String?
    @Option(help: "How many rows (most recent).") var limit = 50

    func run() async throws {
        try await reportingErrors {
            var filter = JournalFilter(limit: limit, service: service)
            if let decision {
                guard let value = JournalDecision(rawValue: decision) else {
                    throw UsageFailure("--decision must be accepted or refused")
                }
                filter.decision = value
            }
            guard limit > 0 else { throw UsageFailure("--limit must be positive") }
            let journal = Journal(store: try data.openStore())
            var rows = try journal.entries(filter).reversed() as [JournalEntry]
            var lastID = rows.last?.id ?? 0
            while true {
                // Written unbuffered: with --follow into a pipe (`| grep`), rows must show as they arrive.
                for row in rows {
                    FileHandle.standardOutput.write(Data(((json ? try Self.json(row) : Self.line(row)) + "\n").utf8))
                }
                lastID = rows.last?.id ?? lastID
                guard follow else { return }
                try await Task.sleep(for: .milliseconds(300))
                filter.afterID = lastID
                filter.limit = 1000
                rows = try journal.entries(filter)
            }
        }
    }

    static func line(_ row: JournalEntry) -> String {
        let time = ISO8601DateFormatter().string(from: row.time)
        let target = row.method == "TLS" ? "(handshake)" : row.path + (row.query.map { "?\($0)" } ?? "")
        return "\(time) \(row.decision.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(row.status) "
            + "\(row.service ?? "-") \(row.method) \(target) \(row.reason ?? "") \(row.subjectDN.map { "[\($0)]" } ?? "")"
    }

    /// One line of JSON per row: the admin API's view of a journal row (`GET /admin/journal`), compact.
    static func json(_ row: JournalEntry) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(JournalEntry.View(row)), as: UTF8.self)
    }
}
