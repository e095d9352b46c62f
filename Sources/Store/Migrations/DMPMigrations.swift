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
        // XDS.b: submission sets, document entries (the ebRIM metadata kept as received, status updated), documents.
        try db.create(table: "dmp_submission_set") { t in
            t.primaryKey("entry_uuid", .text)
            t.column("unique_id", .text).notNull().unique()
            t.column("ins", .text).notNull()
            t.column("submitted_at", .text).notNull()
            t.column("metadata", .text).notNull()
        }
        try db.create(table: "dmp_document") { t in
            t.primaryKey("entry_uuid", .text)
            t.column("unique_id", .text).notNull().unique()
            t.column("ins", .text).notNull()
            t.column("submission_set_uuid", .text).notNull()
            // Approved, Deprecated (replaced), Archived, Deleted (urn:oasis:…:StatusType: and urn:asip:ci-sis:2010:StatusType:).
            t.column("status", .text).notNull()
            t.column("mime_type", .text).notNull()
            t.column("class_code", .text)
            t.column("type_code", .text)
            t.column("format_code", .text)
            t.column("creation_time", .text)
            t.column("hash", .text).notNull()
            t.column("size", .integer).notNull()
            t.column("replaces", .text)
            // Confidentiality codes of the entry (MASQUE_PS masks it to other professionals, INVISIBLE_PATIENT hides it
            // from the patient), comma-separated, and the structure that submitted it (the VIHF's).
            t.column("confidentiality", .text).notNull().defaults(to: "")
            t.column("author_structure", .text).notNull().defaults(to: "")
            t.column("metadata", .text).notNull()
            t.column("content", .blob).notNull()
            t.column("stored_at", .text).notNull()
        }
        try db.create(index: "dmp_document_patient", on: "dmp_document", columns: ["ins", "status"])
        try db.create(table: "dmp_association") { t in
            t.primaryKey("entry_uuid", .text)
            t.column("type", .text).notNull()
            t.column("source", .text).notNull()
            t.column("target", .text).notNull()
        }
    }

    /// `v16-dmp-signatures`: the XAdES signature of each submission set received over SOAP (the DSG detached
    /// signature document), kept apart from the patient's documents with its signer and signing time.
    static func v16DmpSignatures(_ db: Database) throws {
        try db.create(table: "dmp_submission_signature") { t in
            t.primaryKey("submission_set_uuid", .text).references("dmp_submission_set", onDelete: .cascade)
            t.column("entry_uuid", .text).notNull()
            t.column("unique_id", .text).notNull().unique()
            // The signing certificate's subject (RFC 4514) and the XAdES SigningTime, as signed.
            t.column("signer", .text).notNull()
            t.column("signing_time", .text).notNull()
            t.column("metadata", .text).notNull()
            t.column("content", .blob).notNull()
        }
    }
}
