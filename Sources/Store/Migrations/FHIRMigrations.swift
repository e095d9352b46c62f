import GRDB

/// The FHIR resource store shared by the FHIR services (module `FHIRCore`): resources, their search index, kept versions.
extension SandboxMigrations {
    /// `v2-fhir`.
    static func v2Fhir(_ db: Database) throws {
        // FHIR resources as stored JSON, one row per current version (the ROR has no history).
        try db.create(table: "fhir_resource") { t in
            t.column("type", .text).notNull()
            t.column("id", .text).notNull()
            t.column("version", .integer).notNull()
            t.column("last_updated", .text).notNull()  // FHIR instant, UTC, sortable
            t.column("deleted", .boolean).notNull().defaults(to: false)
            t.column("json", .blob).notNull()
            t.primaryKey(["type", "id"])
        }
        try db.create(index: "fhir_resource_updated", on: "fhir_resource", columns: ["type", "last_updated"])
        // Search index: one row per value a search parameter finds in a resource (columns by parameter type).
        try db.create(table: "fhir_index") { t in
            t.column("type", .text).notNull()
            t.column("id", .text).notNull()
            t.column("param", .text).notNull()
            t.column("system", .text)
            t.column("code", .text)
            t.column("text", .text)
            t.column("number", .double)
            t.column("low", .double)
            t.column("high", .double)
            t.column("ref_type", .text)
            t.column("ref_id", .text)
        }
        try db.create(index: "fhir_index_resource", on: "fhir_index", columns: ["type", "id", "param"])
        try db.create(index: "fhir_index_code", on: "fhir_index", columns: ["type", "param", "code", "system"])
        try db.create(index: "fhir_index_text", on: "fhir_index", columns: ["type", "param", "text"])
        try db.create(index: "fhir_index_number", on: "fhir_index", columns: ["type", "param", "number"])
        try db.create(index: "fhir_index_date", on: "fhir_index", columns: ["type", "param", "low", "high"])
        try db.create(index: "fhir_index_ref", on: "fhir_index", columns: ["ref_type", "ref_id", "type", "param"])
    }

    /// `v4-fhir-covering-indexes`.
    static func v4FhirCoveringIndexes(_ db: Database) throws {
        // Search sub-queries only need the resource id: with `id` (and `ref_id`) in the indexes they are
        // answered from the index alone (no row lookups; `docs/performance.md`).
        for name in ["fhir_index_code", "fhir_index_text", "fhir_index_number", "fhir_index_date", "fhir_index_ref"] {
            try db.drop(index: name)
        }
        try db.create(index: "fhir_index_code", on: "fhir_index", columns: ["type", "param", "code", "system", "id"])
        try db.create(index: "fhir_index_text", on: "fhir_index", columns: ["type", "param", "text", "id"])
        try db.create(index: "fhir_index_number", on: "fhir_index", columns: ["type", "param", "number", "id"])
        try db.create(index: "fhir_index_date", on: "fhir_index", columns: ["type", "param", "low", "high", "id"])
        try db.create(
            index: "fhir_index_ref",
            on: "fhir_index",
            columns: ["ref_type", "ref_id", "type", "param", "id"]
        )
        try db.create(
            index: "fhir_index_outgoing",
            on: "fhir_index",
            columns: ["type", "param", "ref_type", "ref_id", "id"]
        )
    }

    /// `v6-fhir-history`.
    static func v6FhirHistory(_ db: Database) throws {
        // Versions replaced by a write (a capacity PATCH keeps the Location it changed): what changed stays visible.
        try db.create(table: "fhir_history") { t in
            t.column("type", .text).notNull()
            t.column("id", .text).notNull()
            t.column("version", .integer).notNull()
            t.column("last_updated", .text).notNull()
            t.column("json", .blob).notNull()
            t.primaryKey(["type", "id", "version"])
        }
    }

    /// `v8-fhir-partial-indexes`.
    static func v8FhirPartialIndexes(_ db: Database) throws {
        // Each index row belongs to one parameter type and fills one column: the text, number, date and
        // reference indexes hold only the rows that fill theirs (the code index stays whole: it also serves
        // `:missing`). A national database shrinks by a quarter (3.7 → ~2.8 GB, copied at first start) and a
        // row written updates 3–4 B-trees instead of 8. Search SQL states the implied `IS NOT NULL` terms.
        for (name, columns, filled) in [
            ("fhir_index_text", "type, param, text, id", "text"),
            ("fhir_index_number", "type, param, number, id", "number"),
            ("fhir_index_date", "type, param, low, high, id", "low"),
            ("fhir_index_ref", "ref_type, ref_id, type, param, id", "ref_id"),
            ("fhir_index_outgoing", "type, param, ref_type, ref_id, id", "ref_id"),
        ] {
            try db.drop(index: name)
            try db.execute(sql: "CREATE INDEX \(name) ON fhir_index (\(columns)) WHERE \(filled) IS NOT NULL")
        }
        // Statistics for the new indexes (dropping the old ones dropped theirs).
        try SandboxStore.analyze(db)
    }

    /// `v12-fhir-history-deltas`.
    static func v12FhirHistoryDeltas(_ db: Database) throws {
        // A kept version may be a delta from the next one (`ResourceHistory`): NULL, `json` is the version.
        try db.alter(table: "fhir_history") { t in t.add(column: "base_updated", .text) }
    }
}
