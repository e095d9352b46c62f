import Foundation
import GRDB
import NIOConcurrencyHelpers
import Store
import X509

/// What a whitelisted caller may do on a service.
public enum WhitelistRole: String, Sendable, Hashable, Codable, CaseIterable {
    /// Read (consommateur).
    case consume
    /// Write (alimentation), possibly limited to establishments.
    case feed
}

/// One line of a service's whitelist ("liste blanche"): an environment, a service and the credential the ANS
/// registered — a subject DN (FHIR, INSi, DMP, MES) or a public key (CSD).
public struct WhitelistEntry: Sendable, Hashable, Codable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "whitelist_entry"

    public var id: Int64?
    public var environment: String
    public var service: SandboxService
    /// RFC 4514 form of the DN as normalised at insertion.
    public var subjectDN: String?
    public var subjectDNKey: String?
    public var publicKeySHA256: SPKIDigest?
    public var role: WhitelistRole
    /// Establishment identifiers (FINESS) this entry may write for; empty means its own only.
    public var establishments: [String]
    public var label: String?
    /// `seed`, `admin` or `cli`: who created it.
    public var origin: String
    /// ROR FHIR (Keycloak realm `ror`) client id, access profile 0–5, secret (profile 0) and the `Ror-*` header
    /// values the ANS assigned with the profile.
    public var clientId: String?
    public var accessProfile: Int?
    public var clientSecret: String?
    public var rorHeaders: [String: String]?
    /// The onboarding request ("demande d'intégration") that created this entry, if any.
    public var onboardingRequestId: Int64?
    public var createdAt: Date
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, environment, service, role, establishments, label, origin
        case subjectDN = "subject_dn"
        case subjectDNKey = "subject_dn_key"
        case publicKeySHA256 = "public_key_sha256"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case clientId = "client_id"
        case accessProfile = "access_profile"
        case clientSecret = "client_secret"
        case rorHeaders = "ror_headers"
        case onboardingRequestId = "onboarding_request_id"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    public init(
        environment: String = SandboxEnvironment.sandbox,
        service: SandboxService,
        subjectDN: SubjectDN? = nil,
        publicKeySHA256: SPKIDigest? = nil,
        role: WhitelistRole = .consume,
        establishments: [String] = [],
        label: String? = nil,
        origin: String = "admin",
        now: Date = Date()
    ) {
        self.environment = environment
        self.service = service
        self.subjectDN = subjectDN?.rfc4514
        self.subjectDNKey = subjectDN?.matchKey
        self.publicKeySHA256 = publicKeySHA256
        self.role = role
        self.establishments = establishments
        self.label = label
        self.origin = origin
        self.createdAt = now
        self.updatedAt = now
    }

    func matches(_ identity: ClientIdentity) -> Bool {
        if let key = subjectDNKey, key == identity.subjectMatchKey { return true }
        if let spki = publicKeySHA256, spki == identity.spkiSHA256 { return true }
        return false
    }
}

/// Why a request may or may not reach a service.
public struct AccessDecision: Sendable, Hashable {
    public var allowed: Bool
    /// Short machine-readable reason stored in the journal (`whitelisted`, `not-whitelisted`, `expired`…).
    public var reason: String
    /// Sentence for the caller, quoting the presented DN or key.
    public var message: String
    public var entry: WhitelistEntry?

    public init(allowed: Bool, reason: String, message: String, entry: WhitelistEntry?) {
        self.allowed = allowed
        self.reason = reason
        self.message = message
        self.entry = entry
    }
}

/// A request to add an entry, as the admin API and the CLI receive it. Exactly one credential must be usable.
public struct WhitelistRequest: Sendable, Codable {
    public var environment: String?
    public var service: String
    public var subjectDN: String?
    public var publicKeySHA256: String?
    public var certificatePEM: String?
    public var role: String?
    public var establishments: [String]?
    public var label: String?
    public var clientId: String?
    public var accessProfile: Int?
    public var clientSecret: String?
    public var rorHeaders: [String: String]?

    public init(
        environment: String? = nil,
        service: String,
        subjectDN: String? = nil,
        publicKeySHA256: String? = nil,
        certificatePEM: String? = nil,
        role: String? = nil,
        establishments: [String]? = nil,
        label: String? = nil,
        clientId: String? = nil,
        accessProfile: Int? = nil,
        clientSecret: String? = nil,
        rorHeaders: [String: String]? = nil
    ) {
        self.clientId = clientId
        self.accessProfile = accessProfile
        self.clientSecret = clientSecret
        self.rorHeaders = rorHeaders
        self.environment = environment
        self.service = service
        self.subjectDN = subjectDN
        self.publicKeySHA256 = publicKeySHA256
        self.certificatePEM = certificatePEM
        self.role = role
        self.establishments = establishments
        self.label = label
    }
}

/// A whitelist request that cannot become an entry; `description` is the message shown to the user.
public struct WhitelistError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The entry a new one would have replaced (a conflict, answered 409).
    public var existing: WhitelistEntry?
    init(_ description: String, existing: WhitelistEntry? = nil) {
        self.description = description
        self.existing = existing
    }
}

/// The whitelists of every environment and service, cached in memory for the request path and kept in SQLite.
public final class Whitelist: Sendable {
    private let store: SandboxStore
    /// The entries and, per environment and service, indexes by DN key and by SPKI: the request path does two
    /// dictionary lookups instead of scanning and re-normalising entries.
    private struct Cache {
        var entries: [WhitelistEntry] = []
        var byDN: [String: WhitelistEntry] = [:]
        var bySPKI: [String: WhitelistEntry] = [:]
        /// `environment|clientId` → the ror-fhir entry of that Keycloak client (looked up on every FHIR call).
        var byClient: [String: WhitelistEntry] = [:]
        /// Entry id → its DN's attributes in any order (to explain near misses).
        var unorderedKeys: [Int64: String] = [:]
        var revision: Int64 = -1
        var checkedAt: Date = .distantPast

        init() {}

        init(entries: [WhitelistEntry], revision: Int64) {
            self.entries = entries
            self.revision = revision
            self.checkedAt = Date()
            for entry in entries {
                let scope = Self.scope(entry.environment, entry.service)
                if let key = entry.subjectDNKey { byDN[scope + key] = byDN[scope + key] ?? entry }
                if let spki = entry.publicKeySHA256 { bySPKI[scope + spki.hex] = bySPKI[scope + spki.hex] ?? entry }
                if entry.service == .rorFHIR, let client = entry.clientId {
                    byClient[entry.environment + "|" + client] = byClient[entry.environment + "|" + client] ?? entry
                }
                if let id = entry.id, let text = entry.subjectDN, let dn = try? SubjectDN(parsing: text) {
                    unorderedKeys[id] = dn.unorderedMatchKey
                }
            }
        }

        static func scope(_ environment: String, _ service: SandboxService) -> String {
            environment + "|" + service.rawValue + "|"
        }

        func match(_ identity: ClientIdentity, service: SandboxService, environment: String) -> WhitelistEntry? {
            let scope = Self.scope(environment, service)
            return byDN[scope + identity.subjectMatchKey] ?? bySPKI[scope + identity.spkiSHA256.hex]
        }
    }
    private let cache = NIOLockedValueBox(Cache())
    /// How stale the cache may be with respect to edits made by another process (the CLI).
    private let externalRefreshInterval: TimeInterval

    public init(store: SandboxStore, externalRefreshInterval: TimeInterval = 0.5) throws {
        self.store = store
        self.externalRefreshInterval = externalRefreshInterval
        try reload()
    }

    // MARK: Editing

    /// Validates a request and turns it into an entry (not stored).
    public static func entry(
        from request: WhitelistRequest,
        origin: String,
        now: Date = Date()
    ) throws -> WhitelistEntry {
        guard let service = SandboxService(rawValue: request.service) else {
            throw WhitelistError(
                "unknown service '\(request.service)' (expected one of: \(SandboxService.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let roleText = request.role ?? WhitelistRole.consume.rawValue
        guard let role = WhitelistRole(rawValue: roleText) else {
            throw WhitelistError("unknown role '\(roleText)' (expected consume or feed)")
        }
        var dn: SubjectDN?
        var spki: SPKIDigest?
        if let text = request.subjectDN {
            do { dn = try SubjectDN(parsing: text) } catch { throw WhitelistError("subjectDN: \(error)") }
        }
        if let text = request.publicKeySHA256 {
            guard let digest = SPKIDigest(text: text) else {
                throw WhitelistError(
                    "publicKeySHA256: expected 64 hex digits (SHA-256 of the DER SubjectPublicKeyInfo) or its base64"
                )
            }
            spki = digest
        }
        if let pem = request.certificatePEM {
            let material = try PublicKeyMaterial(pem: pem)
            spki = material.spkiSHA256
            // For DN services a certificate stands for its subject DN; CSD keeps the key only.
            if service.credential == .subjectDN, dn == nil { dn = material.subject }
        }
        switch service.credential {
        case .subjectDN:
            guard dn != nil else {
                throw WhitelistError(
                    "service \(service.rawValue) whitelists by subject DN: give subjectDN (or certificatePEM)"
                )
            }
            if request.publicKeySHA256 == nil { spki = nil }  // the DN is the credential; a certificate only named it
        case .publicKey:
            guard spki != nil else {
                throw WhitelistError(
                    "service ror-csd whitelists by public key, as the ANS does: give publicKeySHA256 or certificatePEM"
                )
            }
            if request.subjectDN != nil {
                throw WhitelistError("service ror-csd whitelists by public key only: remove subjectDN")
            }
        }
        let establishments = request.establishments ?? []
        if let bad = establishments.first(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) }) {
            throw WhitelistError("establishments: '\(bad)' is not an identifier")
        }
        let environment = request.environment ?? SandboxEnvironment.sandbox
        guard !environment.isEmpty, environment.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw WhitelistError("environment: '\(environment)' is not a valid name")
        }
        var entry = WhitelistEntry(
            environment: environment,
            service: service,
            subjectDN: dn,
            publicKeySHA256: spki,
            role: role,
            establishments: establishments,
            label: request.label,
            origin: origin,
            now: now
        )
        try applyRORClient(request, to: &entry)
        return entry
    }

    /// The four headers every ROR consumer call carries, with the values the ANS assigns at onboarding.
    public static let rorHeaderNames = [
        "Ror-Profil-Utilisateur-Code", "Ror-Profil-Utilisateur-System", "Ror-Role-Metier-Code",
        "Ror-Role-Metier-System",
    ]

    /// ROR FHIR client fields: only on `ror-fhir` entries; profile 0 (public data) authenticates with a secret.
    static func applyRORClient(_ request: WhitelistRequest, to entry: inout WhitelistEntry) throws {
        let given =
            request.clientId != nil || request.accessProfile != nil || request.clientSecret != nil
            || request.rorHeaders != nil
        guard given else { return }
        guard entry.service == .rorFHIR else {
            throw WhitelistError("clientId, accessProfile, clientSecret and rorHeaders apply to ror-fhir entries only")
        }
        if let clientId = request.clientId {
            guard !clientId.isEmpty, clientId.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw WhitelistError("clientId: '\(clientId)' is not a valid client id (letters, digits, - _ .)")
            }
        }
        if let profile = request.accessProfile, !(0...5).contains(profile) {
            throw WhitelistError("accessProfile must be 0 to 5 (got \(profile))")
        }
        if request.accessProfile == 0, (request.clientSecret ?? "").isEmpty {
            throw WhitelistError("accessProfile 0 (public data) authenticates with client_secret: give clientSecret")
        }
        if let headers = request.rorHeaders {
            let unknown = headers.keys.filter { name in
                !rorHeaderNames.contains { $0.caseInsensitiveCompare(name) == .orderedSame }
            }
            guard unknown.isEmpty else {
                throw WhitelistError(
                    "rorHeaders: unknown header(s) \(unknown.sorted().joined(separator: ", ")) (expected \(rorHeaderNames.joined(separator: ", ")))"
                )
            }
        }
        entry.clientId = request.clientId
        entry.accessProfile = request.accessProfile ?? (request.clientId != nil ? 1 : nil)
        entry.clientSecret = request.clientSecret
        entry.rorHeaders = request.rorHeaders
    }

    /// Stores an entry; an entry with the same environment, service and credential is updated instead
    /// (role, establishments, label), so adding twice is harmless.
    @discardableResult
    /// Adds an entry, or changes the one with the same credential (seeds, onboarding, `--replace`).
    public func add(_ entry: WhitelistEntry) throws -> WhitelistEntry {
        try edit { db in try Self.upsert(entry, in: db) }
    }

    /// Adds a new entry; one with the same service, environment and credential is a conflict naming it (the ROR
    /// gives a consumer and a feeder one certificate each, so a DN holds one entry per service).
    public func create(_ entry: WhitelistEntry) throws -> WhitelistEntry {
        try edit { db in
            if let existing = try Self.sameCredential(as: entry, in: db) {
                throw WhitelistError(
                    "\(entry.subjectDN ?? entry.publicKeySHA256?.hex ?? "this credential") is already whitelisted for \(entry.service.rawValue) in \(entry.environment) as entry \(existing.id ?? 0) (role \(existing.role.rawValue)\(existing.clientId.map { ", client id \($0)" } ?? "")): change it with PUT /admin/whitelist/\(existing.id ?? 0) or remove it first",
                    existing: existing
                )
            }
            var entry = entry
            try entry.insert(db)
            return entry
        }
    }

    /// Changes entry `id` to `entry`, which must name the same service, environment and credential; nil when there
    /// is no such entry.
    public func update(id: Int64, to entry: WhitelistEntry) throws -> WhitelistEntry? {
        try edit { db in
            guard let existing = try WhitelistEntry.fetchOne(db, key: id) else { return nil }
            guard let same = try Self.sameCredential(as: entry, in: db), same.id == existing.id else {
                throw WhitelistError(
                    "entry \(id) is \(existing.subjectDN ?? existing.publicKeySHA256?.hex ?? "") for \(existing.service.rawValue) in \(existing.environment): its service, environment and DN or key cannot change (remove it and add another)"
                )
            }
            return try Self.upsert(entry, in: db)
        }
    }

    /// Runs whitelist edits in one transaction (with the caller's own writes), then refreshes the cache.
    public func edit<T>(_ body: (Database) throws -> T) throws -> T {
        let result = try store.writer.write(body)
        try reload()
        return result
    }

    /// `add` inside a transaction the caller owns.
    public static func upsert(_ entry: WhitelistEntry, in db: Database) throws -> WhitelistEntry {
        var entry = entry
        if var existing = try sameCredential(as: entry, in: db) {
            existing.role = entry.role
            existing.establishments = entry.establishments
            existing.label = entry.label ?? existing.label
            existing.clientId = entry.clientId ?? existing.clientId
            existing.accessProfile = entry.accessProfile ?? existing.accessProfile
            existing.clientSecret = entry.clientSecret ?? existing.clientSecret
            existing.rorHeaders = entry.rorHeaders ?? existing.rorHeaders
            existing.onboardingRequestId = entry.onboardingRequestId ?? existing.onboardingRequestId
            existing.updatedAt = entry.updatedAt
            try existing.update(db)
            return existing
        }
        try entry.insert(db)
        return entry
    }

    private static func sameCredential(as entry: WhitelistEntry, in db: Database) throws -> WhitelistEntry? {
        var request =
            WhitelistEntry
            .filter(Column("environment") == entry.environment && Column("service") == entry.service.rawValue)
        if let key = entry.subjectDNKey {
            request = request.filter(Column("subject_dn_key") == key)
        } else if let spki = entry.publicKeySHA256 {
            request = request.filter(Column("subject_dn_key") == nil && Column("public_key_sha256") == spki.hex)
        }
        return try request.fetchOne(db)
    }

    /// Removes an entry; false when there was none with this id.
    @discardableResult
    public func remove(id: Int64) throws -> Bool {
        let deleted = try store.writer.write { db in try WhitelistEntry.deleteOne(db, key: id) }
        try reload()
        return deleted
    }

    /// The `ror-fhir` entry of a Keycloak client id in an environment.
    public func rorClient(_ clientId: String, environment: String) -> WhitelistEntry? {
        try? refreshIfChangedElsewhere()
        return cache.withLockedValue { $0.byClient[environment + "|" + clientId] }
    }

    /// Removes every entry (used by `reset?scope=all` before re-seeding).
    public func removeAll() throws {
        _ = try store.writer.write { db in try WhitelistEntry.deleteAll(db) }
        try reload()
    }

    public func entries() throws -> [WhitelistEntry] {
        try refreshIfChangedElsewhere()
        return cache.withLockedValue { $0.entries }
    }

    /// Changes whenever the whitelist does (in this process or another): a cache key for derived answers.
    public var revision: Int64 {
        try? refreshIfChangedElsewhere()
        return cache.withLockedValue { $0.revision }
    }

    public func reload() throws {
        let (entries, revision) = try store.writer.read { db in
            (
                try WhitelistEntry.order(Column("id")).fetchAll(db),
                try Int64.fetchOne(db, sql: "SELECT value FROM store_revision WHERE name = 'whitelist'") ?? 0
            )
        }
        let fresh = Cache(entries: entries, revision: revision)
        cache.withLockedValue { $0 = fresh }
    }

    /// Picks up edits made by another process at most every `externalRefreshInterval`.
    private func refreshIfChangedElsewhere() throws {
        let (due, known) = cache.withLockedValue { cache -> (Bool, Int64) in
            let due = Date().timeIntervalSince(cache.checkedAt) >= externalRefreshInterval
            if due { cache.checkedAt = Date() }
            return (due, cache.revision)
        }
        guard due else { return }
        if try store.revision("whitelist") != known { try reload() }
    }

    // MARK: Decisions

    /// Whether `identity` may call `service` in `environment`, with the reason in words.
    /// The refusal of a caller whose certificate is missing or did not verify; nil when the chain is fine.
    public static func chainRefusal(_ identity: ClientIdentity?) -> AccessDecision? {
        guard let identity else {
            return AccessDecision(
                allowed: false,
                reason: ChainFailure.noCertificate.rawValue,
                message: "Access refused: \(ChainFailure.noCertificate.explanation).",
                entry: nil
            )
        }
        guard let failure = identity.chainFailure else { return nil }
        return AccessDecision(
            allowed: false,
            reason: failure.rawValue,
            message:
                "Access refused: \(failure.explanation) (subject DN '\(identity.subjectDN)', issuer '\(identity.issuerDN)').",
            entry: nil
        )
    }

    public func decide(identity: ClientIdentity?, service: SandboxService, environment: String) -> AccessDecision {
        guard let identity, identity.chainFailure == nil else { return Self.chainRefusal(identity)! }
        try? refreshIfChangedElsewhere()
        let snapshot = cache.withLockedValue { $0 }
        if let entry = snapshot.match(identity, service: service, environment: environment) {
            return AccessDecision(
                allowed: true,
                reason: "whitelisted",
                message: "whitelisted (entry \(entry.id ?? 0))",
                entry: entry
            )
        }
        return AccessDecision(
            allowed: false,
            reason: "not-whitelisted",
            message: refusalMessage(identity: identity, service: service, environment: environment, cache: snapshot),
            entry: nil
        )
    }

    private func refusalMessage(
        identity: ClientIdentity,
        service: SandboxService,
        environment: String,
        cache: Cache
    ) -> String {
        var message: String
        switch service.credential {
        case .subjectDN:
            message =
                "The certificate subject DN '\(identity.subjectDN)' is not in the \(service.rawValue) whitelist of environment '\(environment)'."
        case .publicKey:
            message =
                "The certificate public key (SPKI SHA-256 \(identity.spkiSHA256.hex)) is not in the \(service.rawValue) whitelist of environment '\(environment)'."
        }
        let elsewhere = cache.entries.filter {
            $0.matches(identity) && !($0.environment == environment && $0.service == service)
        }
        if !elsewhere.isEmpty {
            let places = Set(elsewhere.map { "\($0.service.rawValue)@\($0.environment)" }).sorted()
            message += " It is whitelisted for: \(places.joined(separator: ", "))."
        }
        let unordered = identity.subjectUnorderedMatchKey
        if let near = cache.entries.first(where: {
            $0.environment == environment && $0.service == service
                && $0.id.flatMap { cache.unorderedKeys[$0] } == unordered
        }), let nearDN = near.subjectDN {
            message +=
                " Entry \(near.id ?? 0) has the same attributes in another order ('\(nearDN)'): the RDN order of a DN is significant."
        }
        return message
    }
}

/// A PEM certificate or public key given to identify a caller by key (or, for a certificate, by DN).
public struct PublicKeyMaterial: Sendable {
    public var spkiSHA256: SPKIDigest
    public var subject: SubjectDN?

    public init(pem: String) throws {
        if pem.contains("BEGIN CERTIFICATE") {
            guard let certificate = try? Certificate(pemEncoded: pem) else {
                throw WhitelistError("certificatePEM: not a valid PEM certificate")
            }
            self.spkiSHA256 = try SPKIDigest(publicKey: certificate.publicKey)
            self.subject = SubjectDN(certificate.subject)
        } else if pem.contains("BEGIN PUBLIC KEY") {
            guard let key = try? Certificate.PublicKey(pemEncoded: pem) else {
                throw WhitelistError("certificatePEM: not a valid PEM public key")
            }
            self.spkiSHA256 = try SPKIDigest(publicKey: key)
            self.subject = nil
        } else {
            throw WhitelistError("certificatePEM: expected a PEM 'CERTIFICATE' or 'PUBLIC KEY' block")
        }
    }
}
