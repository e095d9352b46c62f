import GRDB

/// The recette (module `Recette`): runs of a scenario pack against one client's calls.
extension SandboxMigrations {
    /// `v17-recette`.
    static func v17Recette(_ db: Database) throws {
        try db.create(table: "recette_run") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("pack_id", .text).notNull()
            t.column("pack_version", .text).notNull()
            // The pack as it was when the run started (JSON): editing a pack later does not change a run's judgement.
            t.column("pack", .blob).notNull()
            // `dn` (subject DN, compared by its match key) or `spki` (SHA-256 of the public key, hex).
            t.column("client_kind", .text).notNull()
            t.column("client", .text).notNull()
            t.column("client_key", .text).notNull()
            t.column("product_name", .text)
            t.column("product_version", .text)
            // The journal's last id when the run started: the run's calls are the client's rows after it.
            t.column("journal_start", .integer).notNull()
            t.column("started_at", .datetime).notNull()
            t.column("ends_at", .datetime).notNull()
            t.column("closed_at", .datetime)
            // At closing: the judgement and the calls it rests on (JSON), kept whatever the journal prunes later.
            t.column("result", .blob)
            t.column("calls", .blob)
            // A CLI in another process asks the server to write its queued journal rows before a run is judged
            // (unix times): the server answers by setting `journal_flushed_at` once they are written.
            t.column("journal_flush_requested_at", .double)
            t.column("journal_flushed_at", .double)
        }
    }
}
