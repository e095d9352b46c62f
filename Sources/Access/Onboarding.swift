import Foundation
import GRDB
import Store

/// Who asks for access, as the ANS distinguishes them at onboarding.
public enum OrganisationKind: String, Sendable, Codable, CaseIterable {
    /// EAI régional / plateforme régionale: one certificate, a list of FINESS it acts for.
    case eaiRegional = "eai-regional"
    /// Editor hosting its customers (SaaS): one certificate, a list of FINESS.
    case saas
    /// Solution propriétaire installed in each establishment: one certificate per establishment, each whitelisted
    /// for that establishment only.
    case proprietary
}

/// The life of an integration request ("demande d'intégration").
public enum OnboardingState: String, Sendable, Codable, CaseIterable {
    case submitted
    /// The committee ("comité") accepted it and assigned the access profile(s).
    case validated
    case rejected
    /// The publisher finished its tests on the sandbox; the ANS delay runs.
    case testsDone = "tests-done"
    /// In the environment's whitelist: calls succeed.
    case whitelisted
    case revoked

    /// States reachable from this one (rejected and revoked are final).
    public var next: [OnboardingState] {
        switch self {
        case .submitted: [.validated, .rejected]
        case .validated: [.testsDone, .revoked]
        case .testsDone: [.whitelisted, .revoked]
        case .whitelisted: [.revoked]
        case .rejected, .revoked: []
        }
    }

    public var isFinal: Bool { next.isEmpty }
}

/// One establishment's own certificate (proprietary solutions).
public struct EstablishmentCertificate: Sendable, Codable, Hashable {
    /// FINESS of the establishment.
    public var finess: String
    public var certificatePEM: String

    public init(finess: String, certificatePEM: String) {
        self.finess = finess
        self.certificatePEM = certificatePEM
    }
}

/// What a publisher sends to ask for access (admin API body, CLI options). Texts, so that each mistake gets its
/// own message rather than a decoding error.
public struct OnboardingSubmission: Sendable, Codable {
    public var kind: String
    /// `feed` (alimentation) or `consume` (consommation).
    public var direction: String
    public var service: String
    public var environment: String?
    /// Who to write to (mail, name).
    public var contact: String
    /// The certificate's subject DN (DN services) — or give `certificatePEM`.
    public var subjectDN: String?
    /// The certificate (or, for ror-csd, the public key) in PEM.
    public var certificatePEM: String?
    /// FINESS the EAI/SaaS certificate acts for.
    public var establishments: [String]?
    /// Proprietary solutions: one certificate per establishment.
    public var establishmentCertificates: [EstablishmentCertificate]?

    public init(
        kind: String,
        direction: String,
        service: String,
        environment: String? = nil,
        contact: String,
        subjectDN: String? = nil,
        certificatePEM: String? = nil,
        establishments: [String]? = nil,
        establishmentCertificates: [EstablishmentCertificate]? = nil
    ) {
        self.kind = kind
        self.direction = direction
        self.service = service
        self.environment = environment
        self.contact = contact
        self.subjectDN = subjectDN
        self.certificatePEM = certificatePEM
        self.establishments = establishments
        self.establishmentCertificates = establishmentCertificates
    }
}

/// The committee's answer: the access profile and, for ROR FHIR, the Keycloak client and `Ror-*` header values.
public struct CommitteeDecision: Sendable, Codable, Equatable {
    /// ROR access profile 0–5 (consumers).
    public var accessProfile: Int?
    public var clientId: String?
    public var clientSecret: String?
    public var rorHeaders: [String: String]?
    public var reason: String?

    public init(
        accessProfile: Int? = nil,
        clientId: String? = nil,
        clientSecret: String? = nil,
        rorHeaders: [String: String]? = nil,
        reason: String? = nil
    ) {
        self.accessProfile = accessProfile
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.rorHeaders = rorHeaders
        self.reason = reason
    }
}

/// An integration request as stored.
public struct OnboardingRequest: Sendable, Codable, Equatable {
    public var id: Int64
    public var kind: OrganisationKind
    public var direction: WhitelistRole
    public var service: SandboxService
    public var environment: String
    public var contact: String
    public var subjectDN: String?
    public var certificatePEM: String?
    public var establishments: [String]
    public var establishmentCertificates: [EstablishmentCertificate]
    public var state: OnboardingState
    public var committee: CommitteeDecision?
    public var rejectionReason: String?
    /// Sandbox-clock time from which the ANS puts it in the whitelist.
    public var whitelistDueAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
}

/// One transition (or edit) of a request: who, when (sandbox clock), why.
public struct OnboardingEvent: Sendable, Codable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "onboarding_event"
    public var id: Int64?
    public var requestId: Int64
    public var time: Date
    public var fromState: String?
    public var toState: String
    public var actor: String
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case id, time, actor, reason
        case requestId = "request_id"
        case fromState = "from_state"
        case toState = "to_state"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Why an onboarding action was refused: `invalid` input (400), a `conflict` with the request's state (409), or
/// no such request (404). Nothing is changed when one is thrown.
public struct OnboardingError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case invalid, conflict, notFound }
    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// The onboarding flow: integration requests, committee decisions, the ANS delay on the sandbox clock, and the
/// whitelist entries a request creates (pointing back to it, removed when it is revoked).
public final class Onboarding: Sendable {
    let store: SandboxStore
    let whitelist: Whitelist
    public let clock: SandboxClock
    /// Environments requests may target; nil = any valid name (the CLI, which does not know the server's).
    let environments: [String]?
    let journal: Journal?

    /// `delay`, when given, is stored as the delay of this data folder (the server's `--whitelist-delay`); the CLI
    /// passes nil and follows it.
    public init(
        store: SandboxStore,
        whitelist: Whitelist,
        clock: SandboxClock,
        delay: WhitelistDelay? = nil,
        environments: [String]? = nil,
        journal: Journal? = nil
    ) throws {
        self.store = store
        self.whitelist = whitelist
        self.clock = clock
        self.environments = environments
        self.journal = journal
        if let delay {
            try store.writer.write { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO onboarding_setting(name, value) VALUES ('whitelist_delay', ?)",
                    arguments: [String(delay.seconds)]
                )
            }
        }
    }

    /// The ANS delay between "tests done" and the whitelist, on the sandbox clock.
    public var delay: WhitelistDelay {
        let seconds = try? store.writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM onboarding_setting WHERE name = 'whitelist_delay'").flatMap(
                Double.init
            )
        }
        return WhitelistDelay(seconds: (seconds ?? nil) ?? 0)
    }

    // MARK: Reading

    public func request(_ id: Int64) throws -> OnboardingRequest {
        try promoteDue()
        return try store.writer.read { db in try Self.fetch(id, in: db) }
    }

    public func list(state: OnboardingState? = nil) throws -> [OnboardingRequest] {
        try promoteDue()
        return try store.writer.read { db in
            var sql = "SELECT json FROM onboarding_request"
            var arguments: StatementArguments = []
            if let state {
                sql += " WHERE state = ?"
                arguments = [state.rawValue]
            }
            return try String.fetchAll(db, sql: sql + " ORDER BY id", arguments: arguments).map(Self.decode)
        }
    }

    public func events(_ id: Int64) throws -> [OnboardingEvent] {
        try store.writer.read { db in
            try OnboardingEvent.filter(Column("request_id") == id).order(Column("id")).fetchAll(db)
        }
    }

    /// Requests waiting for someone (committee, tests, the ANS delay).
    public func waitingCount() throws -> Int {
        try store.writer.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM onboarding_request WHERE state IN ('submitted', 'validated', 'tests-done')"
            ) ?? 0
        }
    }

    // MARK: Transitions

    public func submit(_ submission: OnboardingSubmission, actor: String) throws -> OnboardingRequest {
        let now = clock.now
        var request = try validated(submission, now: now)
        _ = try entries(for: request)  // everything the whitelist will need is checked now, not at whitelisting
        return try whitelist.edit { db in
            try db.execute(
                sql: "INSERT INTO onboarding_request(state, json, created_at, updated_at) VALUES (?, '{}', ?, ?)",
                arguments: [request.state.rawValue, now, now]
            )
            request.id = db.lastInsertedRowID
            try save(request, in: db)
            try record(request, from: nil, actor: actor, reason: "submitted by \(request.contact)", in: db)
            return request
        }
    }

    /// Committee: accepted, with the access profile and client; the entries this makes are checked now.
    public func validate(_ id: Int64, decision: CommitteeDecision, actor: String) throws -> OnboardingRequest {
        try transition(id, to: .validated, actor: actor, reason: decision.reason) { request in
            var decision = decision
            if request.service == .rorFHIR {
                if request.direction == .consume, decision.accessProfile == nil {
                    throw OnboardingError(
                        .invalid,
                        "accessProfile: the committee assigns a ROR access profile (0 to 5) to a consumer"
                    )
                }
                // Consumers and feeders both get a Keycloak client (the feed takes a bearer token too).
                decision.clientId = decision.clientId ?? "sandbox-client-\(request.id)"
            }
            request.committee = decision
        }
    }

    public func reject(_ id: Int64, reason: String, actor: String) throws -> OnboardingRequest {
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw OnboardingError(.invalid, "reason: a rejection says why")
        }
        return try transition(id, to: .rejected, actor: actor, reason: reason) { $0.rejectionReason = reason }
    }

    /// The publisher's tests are done: the ANS delay starts (whitelisted when it has passed on the sandbox clock).
    public func markTestsDone(_ id: Int64, actor: String) throws -> OnboardingRequest {
        let delay = self.delay
        let due = clock.now.addingTimeInterval(delay.seconds)
        _ = try transition(id, to: .testsDone, actor: actor, reason: "whitelisting due after \(delay) (sandbox clock)")
        {
            $0.whitelistDueAt = due
        }
        try promoteDue()
        return try request(id)
    }

    /// The ANS adds the request's certificate(s) to the whitelist — once the delay has passed.
    public func addToWhitelist(_ id: Int64, actor: String) throws -> OnboardingRequest {
        let now = clock.now
        return try transition(id, to: .whitelisted, actor: actor, reason: nil) { request in
            if let due = request.whitelistDueAt, due > now {
                throw OnboardingError(
                    .conflict,
                    "request \(id) cannot be whitelisted before \(ISO8601DateFormatter().string(from: due)): "
                        + "the ANS delay has \(WhitelistDelay.describe(seconds: due.timeIntervalSince(now).rounded(.up))) left on the sandbox clock (\(self.clock.view.label))"
                )
            }
        }
    }

    public func revoke(_ id: Int64, reason: String?, actor: String) throws -> OnboardingRequest {
        try transition(id, to: .revoked, actor: actor, reason: reason) { _ in }
    }

    /// Whitelists every request whose delay has passed (the ANS's part; run by the server and on every read).
    @discardableResult
    public func promoteDue() throws -> [OnboardingRequest] {
        let now = clock.now
        let due = try store.writer.read { db in
            try Int64.fetchAll(
                db,
                sql: "SELECT id FROM onboarding_request WHERE state = 'tests-done' AND whitelist_due_at <= ?",
                arguments: [now]
            )
        }
        return try due.compactMap { id in
            do {
                return try transition(id, to: .whitelisted, actor: "ans", reason: "delay passed") { _ in }
            } catch let error as OnboardingError where error.kind == .conflict {
                return nil  // changed meanwhile (another process)
            }
        }
    }

    // MARK: Edits the ANS accepts by mail

    /// New FINESS list of an EAI/SaaS request (and of its whitelist entries when whitelisted).
    public func setEstablishments(_ id: Int64, _ establishments: [String], actor: String) throws -> OnboardingRequest {
        try edit(id, actor: actor, reason: "establishments: \(establishments.joined(separator: ", "))") { request in
            guard request.kind != .proprietary else {
                throw OnboardingError(
                    .conflict,
                    "request \(id) is a proprietary solution: add or remove establishment certificates instead"
                )
            }
            try Self.checkFINESS(establishments, field: "establishments")
            if request.direction == .feed, establishments.isEmpty {
                throw OnboardingError(.invalid, "establishments: a feeding EAI/SaaS acts for at least one FINESS")
            }
            request.establishments = establishments
        }
    }

    public func addEstablishmentCertificate(
        _ id: Int64,
        _ certificate: EstablishmentCertificate,
        actor: String
    ) throws -> OnboardingRequest {
        try edit(id, actor: actor, reason: "certificate added for \(certificate.finess)") { request in
            guard request.kind == .proprietary else {
                throw OnboardingError(
                    .conflict,
                    "request \(id) is \(request.kind.rawValue): only proprietary solutions have one certificate per establishment"
                )
            }
            guard !request.establishmentCertificates.contains(where: { $0.finess == certificate.finess }) else {
                throw OnboardingError(
                    .conflict,
                    "request \(id) already has a certificate for establishment \(certificate.finess): remove it first"
                )
            }
            request.establishmentCertificates.append(certificate)
            try Self.checkFINESS([certificate.finess], field: "finess")
        }
    }

    public func removeEstablishmentCertificate(_ id: Int64, finess: String, actor: String) throws -> OnboardingRequest {
        try edit(id, actor: actor, reason: "certificate removed for \(finess)") { request in
            guard request.kind == .proprietary else {
                throw OnboardingError(
                    .conflict,
                    "request \(id) is \(request.kind.rawValue): only proprietary solutions have one certificate per establishment"
                )
            }
            guard let index = request.establishmentCertificates.firstIndex(where: { $0.finess == finess }) else {
                throw OnboardingError(.notFound, "request \(id) has no certificate for establishment \(finess)")
            }
            guard request.establishmentCertificates.count > 1 else {
                throw OnboardingError(
                    .conflict,
                    "establishment \(finess) is the request's last certificate: revoke the request instead"
                )
            }
            request.establishmentCertificates.remove(at: index)
        }
    }

    // MARK: Internals

    /// Moves a request to `target` if its state allows it (or, with no target, edits it in place unless it is final),
    /// applying `change`, checking the entries it stands for, syncing them and recording the event — in one
    /// transaction.
    private func transition(
        _ id: Int64,
        to target: OnboardingState?,
        actor: String,
        reason: String?,
        _ change: (inout OnboardingRequest) throws -> Void
    ) throws -> OnboardingRequest {
        try whitelist.edit { db in
            var request = try Self.fetch(id, in: db)
            let from = request.state
            if let target {
                guard from.next.contains(target) else {
                    let allowed = from.next.map(\.rawValue)
                    throw OnboardingError(
                        .conflict,
                        "request \(id) is \(from.rawValue): it cannot become \(target.rawValue)"
                            + (allowed.isEmpty
                                ? " (\(from.rawValue) is final)" : " (next: \(allowed.joined(separator: " or ")))")
                    )
                }
            } else if from.isFinal {
                throw OnboardingError(.conflict, "request \(id) is \(from.rawValue): it can no longer be changed")
            }
            try change(&request)
            request.state = target ?? from
            try syncEntries(of: request, entries: try entries(for: request), in: db)
            try save(request, in: db)
            try record(request, from: from, actor: actor, reason: reason, in: db)
            return request
        }
    }

    /// An edit that keeps the state (refused on final requests).
    private func edit(
        _ id: Int64,
        actor: String,
        reason: String,
        _ change: (inout OnboardingRequest) throws -> Void
    ) throws -> OnboardingRequest {
        try transition(id, to: nil, actor: actor, reason: reason, change)
    }

    /// The request's whitelist entries are exactly what its state says: its certificate(s) when whitelisted,
    /// nothing otherwise.
    private func syncEntries(of request: OnboardingRequest, entries: [WhitelistEntry], in db: Database) throws {
        try db.execute(sql: "DELETE FROM whitelist_entry WHERE onboarding_request_id = ?", arguments: [request.id])
        guard request.state == .whitelisted else { return }
        for entry in entries { _ = try Whitelist.upsert(entry, in: db) }
    }

    /// The whitelist entries a request stands for: one per certificate, scoped to its establishments.
    func entries(for request: OnboardingRequest) throws -> [WhitelistEntry] {
        let committee = request.committee
        let client = request.service == .rorFHIR
        func entry(
            certificatePEM: String?,
            subjectDN: String?,
            establishments: [String],
            what: String,
            clientSuffix: String = ""
        ) throws -> WhitelistEntry {
            let whitelistRequest = WhitelistRequest(
                environment: request.environment,
                service: request.service.rawValue,
                subjectDN: subjectDN,
                certificatePEM: certificatePEM,
                role: request.direction.rawValue,
                establishments: establishments,
                label: "onboarding #\(request.id) \(request.kind.rawValue) (\(request.contact))",
                clientId: client ? committee?.clientId.map { $0 + clientSuffix } : nil,
                accessProfile: client ? committee?.accessProfile : nil,
                clientSecret: client ? committee?.clientSecret : nil,
                rorHeaders: client ? committee?.rorHeaders : nil
            )
            do {
                var entry = try Whitelist.entry(from: whitelistRequest, origin: "onboarding", now: clock.now)
                entry.onboardingRequestId = request.id
                return entry
            } catch let error as WhitelistError {
                throw OnboardingError(.invalid, "\(what): \(error.description)")
            }
        }
        if request.kind == .proprietary {
            return try request.establishmentCertificates.map {
                // One Keycloak client per establishment certificate (`<client>-<FINESS>`): a token is bound to one certificate.
                try entry(
                    certificatePEM: $0.certificatePEM,
                    subjectDN: nil,
                    establishments: [$0.finess],
                    what: "certificate of establishment \($0.finess)",
                    clientSuffix: "-" + $0.finess
                )
            }
        }
        return [
            try entry(
                certificatePEM: request.certificatePEM,
                subjectDN: request.subjectDN,
                establishments: request.establishments,
                what: "request"
            )
        ]
    }

    /// A submission checked field by field, as a request in state `submitted` (id 0 until stored).
    private func validated(_ submission: OnboardingSubmission, now: Date) throws -> OnboardingRequest {
        func invalid(_ message: String) -> OnboardingError { OnboardingError(.invalid, message) }
        guard let kind = OrganisationKind(rawValue: submission.kind) else {
            throw invalid(
                "kind: '\(submission.kind)' is not one of \(OrganisationKind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard let direction = WhitelistRole(rawValue: submission.direction) else {
            throw invalid("direction: '\(submission.direction)' is not feed or consume")
        }
        guard let service = SandboxService(rawValue: submission.service) else {
            throw invalid(
                "service: '\(submission.service)' is not one of \(SandboxService.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let environment = submission.environment ?? environments?.first ?? SandboxEnvironment.sandbox
        if let environments, !environments.contains(environment) {
            throw invalid(
                "environment: '\(environment)' is not served here (environments: \(environments.joined(separator: ", ")))"
            )
        }
        let contact = submission.contact.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !contact.isEmpty else { throw invalid("contact: say who to write to") }
        let establishments = submission.establishments ?? []
        let certificates = submission.establishmentCertificates ?? []
        if kind == .proprietary {
            guard !certificates.isEmpty else {
                throw invalid(
                    "establishmentCertificates: a proprietary solution gives one certificate per establishment"
                )
            }
            guard submission.subjectDN == nil, submission.certificatePEM == nil, establishments.isEmpty else {
                throw invalid(
                    "a proprietary solution is identified by its establishment certificates only: remove subjectDN, certificatePEM and establishments"
                )
            }
            try Self.checkFINESS(certificates.map(\.finess), field: "establishmentCertificates.finess")
        } else {
            guard certificates.isEmpty else {
                throw invalid(
                    "establishmentCertificates: only proprietary solutions give one certificate per establishment"
                )
            }
            try Self.checkFINESS(establishments, field: "establishments")
            if direction == .feed, establishments.isEmpty {
                throw invalid("establishments: a feeding \(kind.rawValue) gives the FINESS it acts for")
            }
            if service.credential == .publicKey, submission.certificatePEM == nil {
                throw invalid(
                    "certificatePEM: ror-csd whitelists by public key: give the certificate or public key in PEM"
                )
            }
        }
        return OnboardingRequest(
            id: 0,
            kind: kind,
            direction: direction,
            service: service,
            environment: environment,
            contact: contact,
            subjectDN: submission.subjectDN,
            certificatePEM: submission.certificatePEM,
            establishments: establishments,
            establishmentCertificates: certificates,
            state: .submitted,
            committee: nil,
            rejectionReason: nil,
            whitelistDueAt: nil,
            createdAt: now,
            updatedAt: now
        )
    }

    /// FINESS numbers: 9 characters, digits (2A/2B for Corsica), each once.
    static func checkFINESS(_ values: [String], field: String) throws {
        for value in values {
            let ok =
                value.count == 9
                && value.enumerated().allSatisfy { index, c in
                    c.isASCII && (c.isNumber || (index == 1 && (c == "A" || c == "B")))
                }
            guard ok else { throw OnboardingError(.invalid, "\(field): '\(value)' is not a FINESS number (9 digits)") }
        }
        if Set(values).count != values.count { throw OnboardingError(.invalid, "\(field): a FINESS appears twice") }
    }

    private func save(_ request: OnboardingRequest, in db: Database) throws {
        var request = request
        request.updatedAt = clock.now
        try db.execute(
            sql: "UPDATE onboarding_request SET state = ?, json = ?, updated_at = ?, whitelist_due_at = ? WHERE id = ?",
            arguments: [
                request.state.rawValue, String(decoding: try JSONEncoder().encode(request), as: UTF8.self),
                request.updatedAt, request.whitelistDueAt, request.id,
            ]
        )
    }

    private func record(
        _ request: OnboardingRequest,
        from: OnboardingState?,
        actor: String,
        reason: String?,
        in db: Database
    ) throws {
        var event = OnboardingEvent(
            requestId: request.id,
            time: clock.now,
            fromState: from?.rawValue,
            toState: request.state.rawValue,
            actor: actor,
            reason: reason
        )
        try event.insert(db)
        guard let journal else { return }
        // The journal shows the flow beside the calls it changes (method ONBOARDING).
        var row = JournalEntry(
            environment: request.environment,
            service: request.service.rawValue,
            method: "ONBOARDING",
            path: "/admin/onboarding/\(request.id)",
            status: 200,
            decision: .accepted,
            reason: "\(from.map { $0.rawValue + " → " } ?? "")\(request.state.rawValue) by \(actor)"
                + (reason.map { ": \($0)" } ?? ""),
            identity: nil,
            durationMs: 0
        )
        row.subjectDN =
            request.subjectDN
            ?? request.establishmentCertificates.first.flatMap {
                try? PublicKeyMaterial(pem: $0.certificatePEM).subject?.rfc4514
            }
        journal.record(row)
    }

    static func fetch(_ id: Int64, in db: Database) throws -> OnboardingRequest {
        guard
            let json = try String.fetchOne(db, sql: "SELECT json FROM onboarding_request WHERE id = ?", arguments: [id])
        else {
            throw OnboardingError(.notFound, "no onboarding request \(id)")
        }
        return try decode(json)
    }

    static func decode(_ json: String) throws -> OnboardingRequest {
        try JSONDecoder().decode(OnboardingRequest.self, from: Data(json.utf8))
    }

    /// Writes the journal rows of the flow now (the CLI has no background writer).
    public func flushJournal() { journal?.flush() }

    /// Everything back to empty (`reset?scope=all`).
    public func removeAll() throws {
        try whitelist.edit { db in
            try db.execute(sql: "DELETE FROM whitelist_entry WHERE onboarding_request_id IS NOT NULL")
            try db.execute(sql: "DELETE FROM onboarding_event")
            try db.execute(sql: "DELETE FROM onboarding_request")
        }
    }
}
