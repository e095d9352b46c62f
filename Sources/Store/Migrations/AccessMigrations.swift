import GRDB

/// Who may call: the whitelist (and the ROR clients' credentials on it), the journal's first form, the onboarding requests and the sandbox clock (module `Access`).
extension SandboxMigrations {
    /// `v1-access`.
    static func v1Access(_ db: Database) throws {
        try db.create(table: "whitelist_entry") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("environment", .text).notNull()
            t.column("service", .text).notNull()
            t.column("subject_dn", .text)
            t.column("subject_dn_key", .text)
            t.column("public_key_sha256", .text)
            t.column("role", .text).notNull()
            t.column("establishments", .text).notNull().defaults(to: "[]")
            t.column("label", .text)
            t.column("origin", .text).notNull().defaults(to: "admin")
            t.column("created_at", .datetime).notNull()
            t.column("updated_at", .datetime).notNull()
            t.check(sql: "subject_dn_key IS NOT NULL OR public_key_sha256 IS NOT NULL")
        }
        try db.create(
            index: "whitelist_by_dn",
            on: "whitelist_entry",
            columns: ["environment", "service", "subject_dn_key"]
        )
        try db.create(
            index: "whitelist_by_key",
            on: "whitelist_entry",
            columns: ["environment", "service", "public_key_sha256"]
        )

        // A counter bumped by triggers, so a running server sees whitelist edits made by the CLI (another process).
        try db.create(table: "store_revision") { t in
            t.primaryKey("name", .text)
            t.column("value", .integer).notNull()
        }
        try db.execute(sql: "INSERT INTO store_revision(name, value) VALUES ('whitelist', 0)")
        for event in ["INSERT", "UPDATE", "DELETE"] {
            try db.execute(
                sql: """
                    CREATE TRIGGER whitelist_revision_\(event.lowercased()) AFTER \(event) ON whitelist_entry
                    BEGIN UPDATE store_revision SET value = value + 1 WHERE name = 'whitelist'; END
                    """
            )
        }

        try db.create(table: "journal") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("time", .datetime).notNull()
            t.column("environment", .text).notNull()
            t.column("service", .text)
            t.column("method", .text).notNull()
            t.column("path", .text).notNull()
            t.column("query", .text)
            t.column("status", .integer).notNull()
            t.column("decision", .text).notNull()
            t.column("reason", .text)
            t.column("subject_dn", .text)
            t.column("issuer_dn", .text)
            t.column("serial_number", .text)
            t.column("spki_sha256", .text)
            t.column("duration_ms", .double).notNull()
            t.column("remote_address", .text)
            t.column("request_headers", .text)
            t.column("request_body", .blob)
            t.column("request_body_truncated", .boolean).notNull().defaults(to: false)
            t.column("response_headers", .text)
            t.column("response_body", .blob)
            t.column("response_body_truncated", .boolean).notNull().defaults(to: false)
        }
        try db.create(index: "journal_by_service", on: "journal", columns: ["service", "id"])
        try db.create(index: "journal_by_decision", on: "journal", columns: ["decision", "id"])
    }

    /// `v3-ror-clients`.
    static func v3RorClients(_ db: Database) throws {
        // ROR FHIR clients (Keycloak realm `ror`): client id, access profile 0–5, secret (profile 0), the four
        // Ror-* header values the ANS assigns.
        try db.alter(table: "whitelist_entry") { t in
            t.add(column: "client_id", .text)
            t.add(column: "access_profile", .integer)
            t.add(column: "client_secret", .text)
            t.add(column: "ror_headers", .text)
        }
    }

    /// `v7-onboarding`.
    static func v7Onboarding(_ db: Database) throws {
        // Integration requests ("demandes d'intégration") and their history; whitelist entries created by a
        // request point back to it (removed with it on revocation).
        try db.create(table: "onboarding_request") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("state", .text).notNull()
            t.column("json", .text).notNull()
            t.column("created_at", .datetime).notNull()
            t.column("updated_at", .datetime).notNull()
            t.column("whitelist_due_at", .datetime)
        }
        try db.create(table: "onboarding_event") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("request_id", .integer).notNull().indexed()
            t.column("time", .datetime).notNull()
            t.column("from_state", .text)
            t.column("to_state", .text).notNull()
            t.column("actor", .text).notNull()
            t.column("reason", .text)
        }
        try db.alter(table: "whitelist_entry") { t in t.add(column: "onboarding_request_id", .integer) }
        // Settings the server was started with that the CLI must follow too (the ANS delay).
        try db.create(table: "onboarding_setting") { t in
            t.primaryKey("name", .text)
            t.column("value", .text).notNull()
        }
        // The sandbox clock, compressible for demos: sandbox time = sandbox_anchor + (now - real_anchor) × speed.
        try db.create(table: "sandbox_clock") { t in
            t.primaryKey("id", .integer)
            t.column("real_anchor", .double).notNull()
            t.column("sandbox_anchor", .double).notNull()
            t.column("speed", .double).notNull()
        }
    }
}
