import GRDB

/// The DMP (module `DMP`): patients' records ("dossiers") and the structures authorised on each.
extension SandboxMigrations {
    /// `v15-dmp`.
    static func v15Dmp(_ db: Database) throws {
        try db.create(table: "dmp_record") { t in
            // The patient's INS (15 characters) and the OID it was given under.
            t.primaryKey("ins", .text)
            t.column("ins_oid", .text).notNull()
            // `open` or `closed` (TD1.2 closes and reactivates).
            t.column("status", .text).notNull()
            t.column("created_at", .text).notNull()
            t.column("updated_at", .text).notNull()
            t.column("closure_reason", .text)
        }
        try db.create(table: "dmp_authorization") { t in
            t.column("ins", .text).notNull().references("dmp_record", onDelete: .cascade)
            // `Identifiant_Structure` of the VIHF: the structure authorised (TD0.3).
            t.column("structure_id", .text).notNull()
            t.column("updated_at", .text).notNull()
            t.primaryKey(["ins", "structure_id"])
        }
    }
}
