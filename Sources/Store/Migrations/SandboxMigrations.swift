import GRDB

/// The database's schema history: one function per migration, grouped by the module that owns the tables
/// (`AccessMigrations.swift`, `FHIRMigrations.swift`, `INSiMigrations.swift`, `JournalMigrations.swift`,
/// `MESMigrations.swift`, `DMPMigrations.swift`, `RecetteMigrations.swift`, `RORMigrations.swift`), applied in this
/// order. A migration, once released, is never edited: a change is a new one at the end.
enum SandboxMigrations {
    static let all: [(name: String, migrate: @Sendable (Database) throws -> Void)] = [
        ("v1-access", v1Access),
        ("v2-fhir", v2Fhir),
        ("v3-ror-clients", v3RorClients),
        ("v4-fhir-covering-indexes", v4FhirCoveringIndexes),
        ("v5-insi", v5Insi),
        ("v6-fhir-history", v6FhirHistory),
        ("v7-onboarding", v7Onboarding),
        ("v8-fhir-partial-indexes", v8FhirPartialIndexes),
        ("v9-journal-bodies", v9JournalBodies),
        ("v10-journal-body-tails", v10JournalBodyTails),
        ("v11-journal-stored-versions", v11JournalStoredVersions),
        ("v12-fhir-history-deltas", v12FhirHistoryDeltas),
        ("v13-journal-body-references", v13JournalBodyReferences),
        ("v14-mes", v14Mes),
        ("v15-dmp", v15Dmp),
        ("v16-dmp-signatures", v16DmpSignatures),
        ("v17-recette", v17Recette),
        ("v18-ror-revoked-tokens", v18RorRevokedTokens),
        ("v19-journal-response-pages", v19JournalResponsePages),
    ]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in all { migrator.registerMigration(migration.name, migrate: migration.migrate) }
        return migrator
    }
}
