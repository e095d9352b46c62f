import Foundation
import GRDB
import Store

/// The INSi test base in the sandbox store: identities, simulated Vitale cards, authorised LPS numbers (IDAM).
/// Read on every call (a few hundred rows at most), so the CLI and the admin API change it under a running server.
public struct INSiDirectory: Sendable {
    public let store: SandboxStore

    public init(store: SandboxStore) {
        self.store = store
    }

    /// `Seeds/insi/`: `identities.json` (`{"identities": […], "cards": […]}`) and `lps.json` (`{"lps": [{"idam", "label"}]}`).
    public struct SeedFile: Codable, Sendable {
        public var identities: [INSIdentity]?
        public var cards: [VitaleCard]?
        public var lps: [AuthorisedLPS]?
    }

    /// A software authorisation number the CNDA assigned ("numéro d'autorisation", `ContexteLPS/LPS/IDAM`).
    public struct AuthorisedLPS: Codable, Sendable, Hashable {
        public var idam: String
        public var label: String?

        public init(idam: String, label: String? = nil) {
            self.idam = idam
            self.label = label
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Loads `Seeds/insi/*.json` when the base is empty, or in its place (`replace`, reset). One transaction: a
    /// broken seed file leaves what was stored. Seeds are trusted with their keys (the CNDA's wrong keys included).
    @discardableResult
    public func loadSeeds(from seeds: URL?, replace: Bool) throws -> Int {
        let folder = seeds?.appendingPathComponent("insi")
        var files: [URL] = []
        if let folder, let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) {
            files = names.filter { $0.hasSuffix(".json") }.sorted().map { folder.appendingPathComponent($0) }
        }
        var seed = SeedFile(identities: [], cards: [], lps: [])
        for file in files {
            do {
                let part = try JSONDecoder().decode(SeedFile.self, from: Data(contentsOf: file))
                seed.identities! += part.identities ?? []
                seed.cards! += part.cards ?? []
                seed.lps! += part.lps ?? []
            } catch {
                throw INSiValidationError(field: file.lastPathComponent, "\(error)")
            }
        }
        for identity in seed.identities! {
            do { try identity.validate(allowBadKey: true) } catch {
                throw INSiValidationError(field: "identity \(identity.matricule)", "\(error)")
            }
        }
        return try store.writer.write { db -> Int in
            if !replace {
                let empty =
                    try Bool.fetchOne(
                        db,
                        sql: "SELECT NOT EXISTS (SELECT 1 FROM insi_identity) AND NOT EXISTS (SELECT 1 FROM insi_lps)"
                    ) ?? true
                guard empty else { return 0 }
            }
            for table in ["insi_identity", "insi_card", "insi_lps"] { try db.execute(sql: "DELETE FROM \(table)") }
            for identity in seed.identities! { try Self.save(identity, in: db) }
            for card in seed.cards! { try Self.save(card, in: db) }
            for lps in seed.lps! {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO insi_lps (idam, label) VALUES (?, ?)",
                    arguments: [lps.idam, lps.label]
                )
            }
            return seed.identities!.count + seed.cards!.count + seed.lps!.count
        }
    }

    static func save(_ identity: INSIdentity, in db: Database) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO insi_identity (matricule, json) VALUES (?, ?)",
            arguments: [identity.matricule, String(decoding: try encoder.encode(identity), as: UTF8.self)]
        )
    }

    static func save(_ card: VitaleCard, in db: Database) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO insi_card (id, json) VALUES (?, ?)",
            arguments: [card.id, String(decoding: try encoder.encode(card), as: UTF8.self)]
        )
    }

    // MARK: Reading

    public func identities() throws -> [INSIdentity] {
        try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT json FROM insi_identity ORDER BY matricule").map {
                try JSONDecoder().decode(INSIdentity.self, from: Data($0.utf8))
            }
        }
    }

    public func cards() throws -> [VitaleCard] {
        try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT json FROM insi_card ORDER BY id").map {
                try JSONDecoder().decode(VitaleCard.self, from: Data($0.utf8))
            }
        }
    }

    public func authorisedLPS() throws -> [AuthorisedLPS] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT idam, label FROM insi_lps ORDER BY idam").map {
                AuthorisedLPS(idam: $0["idam"], label: $0["label"])
            }
        }
    }

    public func isAuthorised(idam: String) throws -> Bool {
        try store.writer.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM insi_lps WHERE idam = ?)", arguments: [idam])
                ?? false
        }
    }

    // MARK: Editing (admin API, CLI)

    /// Adds or replaces an identity, validated (bad NIR keys refused unless `allowBadKey`).
    public func add(_ identity: INSIdentity, allowBadKey: Bool) throws {
        try identity.validate(allowBadKey: allowBadKey)
        try store.writer.write { db in try Self.save(identity, in: db) }
    }

    /// Adds or replaces a card; every beneficiary must be an identity of the base.
    public func add(_ card: VitaleCard) throws {
        guard !card.id.isEmpty else { throw INSiValidationError(field: "id", "missing") }
        try INSTraits.checkMatricule(card.insured, field: "assure")
        guard !card.beneficiaries.isEmpty else {
            throw INSiValidationError(field: "beneficiaires", "a card carries at least one beneficiary")
        }
        try store.writer.write { db in
            for (index, beneficiary) in card.beneficiaries.enumerated() {
                guard
                    try Bool.fetchOne(
                        db,
                        sql: "SELECT EXISTS (SELECT 1 FROM insi_identity WHERE matricule = ?)",
                        arguments: [beneficiary.matricule]
                    ) == true
                else {
                    throw INSiValidationError(
                        field: "beneficiaires[\(index)].matricule",
                        "\(beneficiary.matricule) is not an identity of the test base: add it first"
                    )
                }
                guard (1...9).contains(beneficiary.rank) else {
                    throw INSiValidationError(
                        field: "beneficiaires[\(index)].rang",
                        "the birth rank is 1 to 9, not \(beneficiary.rank)"
                    )
                }
            }
            try Self.save(card, in: db)
        }
    }

    public func add(_ lps: AuthorisedLPS) throws {
        guard !lps.idam.isEmpty, lps.idam.count <= 64, lps.idam.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw INSiValidationError(
                field: "idam",
                "an authorisation number is 1 to 64 ASCII characters without spaces"
            )
        }
        try store.writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO insi_lps (idam, label) VALUES (?, ?)",
                arguments: [lps.idam, lps.label]
            )
        }
    }

    /// Removes an identity (`identity`), a card (`card`) or an LPS number (`lps`); false when there was none.
    public func remove(_ kind: Kind, id: String) throws -> Bool {
        try store.writer.write { db in
            try db.execute(sql: "DELETE FROM \(kind.table) WHERE \(kind.key) = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public enum Kind: String, Sendable, CaseIterable {
        case identity = "identities"
        case card = "cards"
        case lps

        var table: String {
            switch self {
            case .identity: "insi_identity"
            case .card: "insi_card"
            case .lps: "insi_lps"
            }
        }

        var key: String {
            switch self {
            case .identity: "matricule"
            case .card: "id"
            case .lps: "idam"
            }
        }
    }
}
