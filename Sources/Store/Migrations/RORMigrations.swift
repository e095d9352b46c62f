import GRDB

/// The ROR's Keycloak realm (module `RORFHIR`): access tokens revoked before they expire.
extension SandboxMigrations {
    /// `v18-ror-revoked-tokens`.
    static func v18RorRevokedTokens(_ db: Database) throws {
        try db.create(table: "ror_revoked_token") { t in
            // The token's `jti`; the row is forgotten once the token has expired anyway.
            t.primaryKey("jti", .text)
            t.column("expires_at", .datetime).notNull()
        }
    }
}
