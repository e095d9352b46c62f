import GRDB

/// Mon espace santé (module `MonEspaceSante`): referenced services, patients, pairings and the OAuth2 codes and tokens
/// issued for them. Measures and devices are FHIR resources in `fhir_resource`.
extension SandboxMigrations {
    /// `v14-mes`.
    static func v14Mes(_ db: Database) throws {
        try db.create(table: "mes_service") { t in
            t.primaryKey("client_id", .text)
            t.column("name", .text).notNull()
            t.column("subject_dn", .text).notNull()
            t.column("subject_dn_key", .text).notNull()
            t.column("client_secret", .text).notNull()
            // JSON array of the registered redirect URIs (compared exactly, as RFC 6749 §3.1.2.3 asks).
            t.column("redirect_uris", .text).notNull()
            t.column("pairing_oid", .text).notNull().unique()
            t.column("origin", .text).notNull()
            t.column("created_at", .text).notNull()
        }
        try db.create(table: "mes_patient") { t in
            t.primaryKey("ins", .text)
            t.column("birth_name", .text).notNull()
            t.column("first_names", .text).notNull()
            t.column("sex", .text).notNull()
            t.column("birth_date", .text).notNull()
        }
        try db.create(table: "mes_pairing") { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("client_id", .text).notNull().references("mes_service", onDelete: .cascade)
            t.column("patient_ins", .text).notNull().references("mes_patient", onDelete: .cascade)
            t.column("idpe", .text).notNull().unique()
            t.column("consent", .boolean).notNull()
            t.column("state", .text).notNull()
            t.column("created_at", .text).notNull()
            t.column("updated_at", .text).notNull()
            t.column("tokens_issued", .integer).notNull().defaults(to: 0)
            t.column("last_call_at", .text)
            t.uniqueKey(["client_id", "patient_ins"])
        }
        try db.create(table: "mes_authorization_code") { t in
            t.primaryKey("code", .text)
            t.column("client_id", .text).notNull()
            t.column("pairing_id", .integer).notNull().references("mes_pairing", onDelete: .cascade)
            t.column("redirect_uri", .text).notNull()
            t.column("scope", .text).notNull()
            t.column("nonce", .text)
            t.column("code_challenge", .text)
            t.column("code_challenge_method", .text)
            t.column("expires_at", .double).notNull()
            t.column("used", .boolean).notNull().defaults(to: false)
        }
        try db.create(table: "mes_token") { t in
            // An access token's `jti`, or the SHA-256 of a refresh token (never the token itself).
            t.primaryKey("id", .text)
            t.column("kind", .text).notNull()
            t.column("pairing_id", .integer).notNull().references("mes_pairing", onDelete: .cascade)
            t.column("client_id", .text).notNull()
            // The authorization code the grant came from: a code used twice revokes what it gave (RFC 6749 §4.1.2).
            t.column("code", .text)
            t.column("certificate_sha256", .text)
            t.column("expires_at", .double).notNull()
            t.column("revoked", .boolean).notNull().defaults(to: false)
        }
        try db.create(index: "mes_token_pairing", on: "mes_token", columns: ["pairing_id"])
        // One row per measure (its Observation in `fhir_resource`), so that a patient's measures are one index
        // range, newest first: through the generic search index, a search read every Observation (~100 ms at
        // 100 000 measures; docs/performance.md).
        try db.create(table: "mes_measure") { t in
            t.primaryKey("observation_id", .text)
            // `urn:oid:<pairing OID>|<idPe>`.
            t.column("subject", .text).notNull()
            t.column("code_system", .text)
            t.column("code", .text).notNull()
            t.column("effective_low", .double).notNull()
            t.column("effective_high", .double).notNull()
        }
        try db.create(index: "mes_measure_subject", on: "mes_measure", columns: ["subject", "effective_low"])
        try db.create(
            index: "mes_measure_subject_code",
            on: "mes_measure",
            columns: ["subject", "code", "effective_low"]
        )
    }
}
