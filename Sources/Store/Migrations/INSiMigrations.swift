import GRDB

/// The INSi test base (module `INSi`).
extension SandboxMigrations {
    /// `v5-insi`.
    static func v5Insi(_ db: Database) throws {
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
}
