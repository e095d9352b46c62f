import Access
import Crypto
import Foundation
import GRDB
import Store

/// A service referenced in the Mon espace santé catalogue ("service référencé"): who it is (its certificate's DN,
/// whitelisted for `mes`), how it authenticates at the token endpoint, where the patient's browser may be sent back,
/// and the OID under which its patients' identifiers (idPe) are written.
public struct MESServiceRecord: Codable, Sendable, Equatable {
    public var clientId: String
    public var name: String
    public var subjectDN: String
    public var clientSecret: String
    public var redirectURIs: [String]
    /// "OID d'appariement": `Observation.subject.identifier.system` is `urn:oid:<pairingOID>`.
    public var pairingOID: String
    public var origin: String
    public var createdAt: String
}

/// A patient of the sandbox's Mon espace santé: one of the INSi test identities, by INS.
public struct MESPatient: Codable, Sendable, Equatable {
    /// The INS: 13-character matricule and its 2-digit key.
    public var ins: String
    public var birthName: String
    public var firstNames: String
    public var sex: String
    public var birthDate: String

    /// The patient's MSSanté address, as Mon espace santé gives every account one (`<INS>@patient.mssante.fr`).
    public var messagingAddress: String { "\(ins)@patient.mssante.fr" }
}

/// A pairing ("appariement") of a patient with a service: the patient's consent, and the pairing-specific patient
/// identifier (idPe) the service knows the patient by — never the INS.
public struct MESPairing: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case active, revoked }

    public var id: Int64
    public var clientId: String
    public var patientINS: String
    public var idPe: String
    public var consent: Bool
    public var state: State
    public var createdAt: String
    public var updatedAt: String
    public var tokensIssued: Int
    public var lastCallAt: String?
}

/// A refusal of a directory operation, said in a sentence that names the field.
public struct MESError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable { case invalid, notFound, conflict }
    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// The Mon espace santé tables: services, patients, pairings, authorization codes and tokens.
public final class MESDirectory: Sendable {
    let store: SandboxStore
    let whitelist: Whitelist

    public init(store: SandboxStore, whitelist: Whitelist) {
        self.store = store
        self.whitelist = whitelist
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    // MARK: Services

    /// What a registration gives: the service's fields, a client id and secret made up when absent.
    public struct Registration: Codable, Sendable {
        public var name: String
        public var subjectDN: String
        public var redirectURIs: [String]
        public var pairingOID: String
        public var clientId: String?
        public var clientSecret: String?

        public init(
            name: String,
            subjectDN: String,
            redirectURIs: [String],
            pairingOID: String,
            clientId: String? = nil,
            clientSecret: String? = nil
        ) {
            self.name = name
            self.subjectDN = subjectDN
            self.redirectURIs = redirectURIs
            self.pairingOID = pairingOID
            self.clientId = clientId
            self.clientSecret = clientSecret
        }
    }

    /// Registers a service and whitelists its certificate's DN for `mes` (in the default environment). A client id
    /// already registered is a conflict: nothing a user created is replaced silently.
    @discardableResult
    public func register(_ registration: Registration, origin: String) throws -> MESServiceRecord {
        let name = registration.name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw MESError(.invalid, "name: a service needs a name") }
        let dn: SubjectDN
        do { dn = try SubjectDN(parsing: registration.subjectDN) } catch {
            throw MESError(.invalid, "subjectDN: \(error)")
        }
        guard !registration.redirectURIs.isEmpty else {
            throw MESError(.invalid, "redirectURIs: at least one absolute https (or http://127.0.0.1) URI")
        }
        for uri in registration.redirectURIs {
            guard let url = URLComponents(string: uri), let scheme = url.scheme, url.host != nil, url.fragment == nil,
                scheme == "https" || (scheme == "http" && ["127.0.0.1", "localhost", "[::1]"].contains(url.host ?? ""))
            else {
                throw MESError(
                    .invalid,
                    "redirectURIs: '\(uri)' is not an absolute https URI without fragment (http only on loopback)"
                )
            }
        }
        guard registration.pairingOID.range(of: #"^[0-2](\.(0|[1-9][0-9]*))+$"#, options: .regularExpression) != nil
        else {
            throw MESError(.invalid, "pairingOID: '\(registration.pairingOID)' is not an OID (e.g. 1.2.250.1.999.1)")
        }
        let clientId = registration.clientId ?? "mes-" + UUID().uuidString.lowercased().prefix(8)
        guard clientId.range(of: #"^[A-Za-z0-9._-]{3,64}$"#, options: .regularExpression) != nil else {
            throw MESError(.invalid, "clientId: 3 to 64 letters, digits, '.', '_' or '-'")
        }
        let record = MESServiceRecord(
            clientId: clientId,
            name: name,
            subjectDN: dn.rfc4514,
            clientSecret: registration.clientSecret ?? Self.randomToken(bytes: 24),
            redirectURIs: registration.redirectURIs,
            pairingOID: registration.pairingOID,
            origin: origin,
            createdAt: Self.now()
        )
        try store.writer.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM mes_service WHERE client_id = ?", arguments: [clientId]) != nil
            {
                throw MESError(.conflict, "clientId: '\(clientId)' is already registered")
            }
            if let other = try String.fetchOne(
                db,
                sql: "SELECT client_id FROM mes_service WHERE pairing_oid = ?",
                arguments: [record.pairingOID]
            ) {
                throw MESError(.conflict, "pairingOID: \(record.pairingOID) is already the OID of '\(other)'")
            }
            try db.execute(
                sql: """
                    INSERT INTO mes_service (client_id, name, subject_dn, subject_dn_key, client_secret, redirect_uris,
                                             pairing_oid, origin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    clientId, record.name, record.subjectDN, dn.matchKey, record.clientSecret,
                    String(decoding: try JSONEncoder().encode(record.redirectURIs), as: UTF8.self), record.pairingOID,
                    origin, record.createdAt,
                ]
            )
        }
        let alreadyWhitelisted = try whitelist.entries().contains {
            $0.service == .mes && $0.subjectDN.flatMap { try? SubjectDN(parsing: $0).matchKey } == dn.matchKey
        }
        if !alreadyWhitelisted {
            try whitelist.add(
                try Whitelist.entry(
                    from: WhitelistRequest(
                        service: SandboxService.mes.rawValue,
                        subjectDN: record.subjectDN,
                        label: "Mon espace santé: \(record.name) (\(clientId))"
                    ),
                    origin: origin
                )
            )
        }
        return record
    }

    public func services() throws -> [MESServiceRecord] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM mes_service ORDER BY created_at, client_id").map(Self.service)
        }
    }

    public func service(clientId: String) throws -> MESServiceRecord? {
        try store.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM mes_service WHERE client_id = ?", arguments: [clientId]).map(
                Self.service
            )
        }
    }

    static func service(_ row: Row) -> MESServiceRecord {
        let uris = (try? JSONDecoder().decode([String].self, from: Data((row["redirect_uris"] as String).utf8))) ?? []
        return MESServiceRecord(
            clientId: row["client_id"],
            name: row["name"],
            subjectDN: row["subject_dn"],
            clientSecret: row["client_secret"],
            redirectURIs: uris,
            pairingOID: row["pairing_oid"],
            origin: row["origin"],
            createdAt: row["created_at"]
        )
    }

    // MARK: Patients

    public func patients() throws -> [MESPatient] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM mes_patient ORDER BY birth_name, ins").map(Self.patient)
        }
    }

    public func patient(ins: String) throws -> MESPatient? {
        try store.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM mes_patient WHERE ins = ?", arguments: [ins]).map(Self.patient)
        }
    }

    /// Adds a patient; an INS already present is a conflict.
    public func add(_ patient: MESPatient) throws {
        guard
            patient.ins.range(of: #"^[12378][0-9]{4}(2A|2B|[0-9]{2})[0-9]{6}[0-9]{2}$"#, options: .regularExpression)
                != nil
        else {
            throw MESError(.invalid, "ins: '\(patient.ins)' is not a 15-character INS (13-character matricule and key)")
        }
        try store.writer.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM mes_patient WHERE ins = ?", arguments: [patient.ins]) != nil {
                throw MESError(.conflict, "ins: \(patient.ins) is already a patient")
            }
            try db.execute(
                sql: "INSERT INTO mes_patient (ins, birth_name, first_names, sex, birth_date) VALUES (?, ?, ?, ?, ?)",
                arguments: [patient.ins, patient.birthName, patient.firstNames, patient.sex, patient.birthDate]
            )
        }
    }

    static func patient(_ row: Row) -> MESPatient {
        MESPatient(
            ins: row["ins"],
            birthName: row["birth_name"],
            firstNames: row["first_names"],
            sex: row["sex"],
            birthDate: row["birth_date"]
        )
    }

    // MARK: Pairings

    /// Pairs a patient with a service, or finds their pairing again (same idPe), active and with this consent.
    public func pair(clientId: String, ins: String, consent: Bool) throws -> MESPairing {
        try store.writer.write { db in
            guard
                try Row.fetchOne(db, sql: "SELECT 1 FROM mes_service WHERE client_id = ?", arguments: [clientId]) != nil
            else {
                throw MESError(.notFound, "clientId: no Mon espace santé service '\(clientId)'")
            }
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM mes_patient WHERE ins = ?", arguments: [ins]) != nil else {
                throw MESError(.notFound, "ins: no patient with INS '\(ins)'")
            }
            let now = Self.now()
            try db.execute(
                sql: """
                    INSERT INTO mes_pairing (client_id, patient_ins, idpe, consent, state, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 'active', ?, ?)
                    ON CONFLICT (client_id, patient_ins) DO UPDATE SET consent = excluded.consent, state = 'active',
                        updated_at = excluded.updated_at
                    """,
                arguments: [clientId, ins, Self.newIdPe(), consent, now, now]
            )
            return try Self.pairing(
                Row.fetchOne(
                    db,
                    sql: "SELECT * FROM mes_pairing WHERE client_id = ? AND patient_ins = ?",
                    arguments: [clientId, ins]
                )!
            )
        }
    }

    public func pairings(clientId: String? = nil, ins: String? = nil) throws -> [MESPairing] {
        try store.writer.read { db in
            var conditions: [SQL] = []
            if let clientId { conditions.append("client_id = \(clientId)") }
            if let ins { conditions.append("patient_ins = \(ins)") }
            let filter: SQL = conditions.isEmpty ? "" : "WHERE \(conditions.joined(separator: " AND "))"
            return try SQLRequest<Row>(literal: "SELECT * FROM mes_pairing \(filter) ORDER BY id").fetchAll(db).map(
                Self.pairing
            )
        }
    }

    public func pairing(id: Int64) throws -> MESPairing? {
        try store.writer.read { db in
            try Self.pairing(id: id, in: db)
        }
    }

    /// Gives or withdraws the patient's consent (the patient's choice in Mon espace santé). Withdrawn, the service's
    /// calls are refused with 403 and its refresh tokens no longer work; given again, the same pairing goes on.
    @discardableResult
    public func setConsent(pairingID: Int64, consent: Bool) throws -> MESPairing {
        try store.writer.write { db in
            try db.execute(
                sql: "UPDATE mes_pairing SET consent = ?, updated_at = ? WHERE id = ?",
                arguments: [consent, Self.now(), pairingID]
            )
            guard db.changesCount == 1, let pairing = try Self.pairing(id: pairingID, in: db) else {
                throw MESError(.notFound, "no pairing \(pairingID)")
            }
            return pairing
        }
    }

    /// Ends a pairing (the patient unpairs the service): every token issued for it is revoked.
    @discardableResult
    public func revoke(pairingID: Int64) throws -> MESPairing {
        try store.writer.write { db in
            try db.execute(
                sql: "UPDATE mes_pairing SET state = 'revoked', updated_at = ? WHERE id = ?",
                arguments: [Self.now(), pairingID]
            )
            guard db.changesCount == 1, let pairing = try Self.pairing(id: pairingID, in: db) else {
                throw MESError(.notFound, "no pairing \(pairingID)")
            }
            try db.execute(sql: "UPDATE mes_token SET revoked = 1 WHERE pairing_id = ?", arguments: [pairingID])
            return pairing
        }
    }

    /// The pairing `id` inside a transaction.
    static func pairing(id: Int64, in db: Database) throws -> MESPairing? {
        try Row.fetchOne(db, sql: "SELECT * FROM mes_pairing WHERE id = ?", arguments: [id]).map(pairing)
    }

    static func pairing(_ row: Row) -> MESPairing {
        MESPairing(
            id: row["id"],
            clientId: row["client_id"],
            patientINS: row["patient_ins"],
            idPe: row["idpe"],
            consent: row["consent"],
            state: MESPairing.State(rawValue: row["state"]) ?? .revoked,
            createdAt: row["created_at"],
            updatedAt: row["updated_at"],
            tokensIssued: row["tokens_issued"],
            lastCallAt: row["last_call_at"]
        )
    }

    /// Records a service's call under a pairing (the console's "last call").
    func touched(pairingID: Int64) {
        _ = try? store.writer.write { db in
            try db.execute(
                sql: "UPDATE mes_pairing SET last_call_at = ? WHERE id = ?",
                arguments: [Self.now(), pairingID]
            )
        }
    }

    // MARK: Identifiers

    /// A pairing-specific patient identifier: 32 hexadecimal digits, unrelated to the INS.
    static func newIdPe() -> String { UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    /// Random URL-safe text (client secrets, codes, refresh tokens).
    static func randomToken(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/",
            with: "_"
        )
        .replacingOccurrences(of: "=", with: "")
    }

    /// How tokens are looked up without being stored: their SHA-256.
    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
