import GRDB

/// How the journal keeps bodies (module `Access`, `Journal`): shared bodies, shared tails, named stored versions.
extension SandboxMigrations {
    /// `v9-journal-bodies`.
    static func v9JournalBodies(_ db: Database) throws {
        // A body of 1 KiB or more is kept once however many calls carried it: consumers re-read the same
        // resources all day, and each read wrote (then pruned) the whole resource again.
        try db.create(table: "journal_body") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("hash", .blob).notNull().unique()
            t.column("body", .blob).notNull()
        }
        try db.alter(table: "journal") { t in
            t.add(column: "request_body_id", .integer)
            t.add(column: "response_body_id", .integer)
        }
    }

    /// `v10-journal-body-tails`.
    static func v10JournalBodyTails(_ db: Database) throws {
        // A long body is kept as its head and a shared tail: search pages differ from one call to the next only
        // in their first bytes (the Bundle's id, time and paging key), and each was stored whole again.
        try db.alter(table: "journal_body") { t in t.add(column: "tail_id", .integer) }
    }

    /// `v11-journal-stored-versions`.
    static func v11JournalStoredVersions(_ db: Database) throws {
        // A response body that is a resource version the store keeps is named, not copied (`StoredVersion`).
        try db.alter(table: "journal") { t in
            t.add(column: "response_resource_type", .text)
            t.add(column: "response_resource_id", .text)
            t.add(column: "response_resource_version", .integer)
            t.add(column: "response_resource_updated", .text)
        }
    }

    /// `v13-journal-body-references`.
    static func v13JournalBodyReferences(_ db: Database) throws {
        // Which rows refer to a shared body, found by index: collecting the bodies no row refers to scanned the
        // whole journal twice while the writers waited behind it (`docs/performance.md`).
        try db.execute(
            sql: "CREATE INDEX journal_request_body ON journal (request_body_id) WHERE request_body_id IS NOT NULL"
        )
        try db.execute(
            sql: "CREATE INDEX journal_response_body ON journal (response_body_id) WHERE response_body_id IS NOT NULL"
        )
        try db.execute(sql: "CREATE INDEX journal_body_tail ON journal_body (tail_id) WHERE tail_id IS NOT NULL")
    }

    /// `v19-journal-response-pages`.
    static func v19JournalResponsePages(_ db: Database) throws {
        // A response body made of stored versions and the bytes between them (a search page) is kept as that recipe
        // (`JournalPage`), not copied: a national page is a megabyte, and under a live feed no two are alike.
        try db.alter(table: "journal") { t in t.add(column: "response_page", .blob) }
    }
}
