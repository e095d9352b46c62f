import Foundation
import GRDB
import Store

/// A patient's DMP ("dossier médical partagé") as the sandbox keeps it.
public struct DMPRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case open, closed }

    public var ins: String
    /// The OID of the INS (`1.2.250.1.213.1.4.8` NIR, `.9` NIA, `.10` test NIR, `.11` demonstration NIR).
    public var insOID: String
    public var status: Status
    public var createdAt: String
    public var updatedAt: String
    public var closureReason: String?
    /// Structures (`Identifiant_Structure`) authorised on this DMP.
    public var authorisedStructures: [String]
}

/// The `dmp_record` and `dmp_authorization` tables.
public final class DMPRecords: Sendable {
    let store: SandboxStore

    public init(store: SandboxStore) { self.store = store }

    /// The OIDs an INS may come with.
    public static let insOIDs: Set<String> = [
        "1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11",
    ]

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    public func records() throws -> [DMPRecord] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM dmp_record ORDER BY ins").map { try Self.record($0, db) }
        }
    }

    public func record(ins: String) throws -> DMPRecord? {
        try store.writer.read { db in try Self.record(ins: ins, in: db) }
    }

    static func record(ins: String, in db: Database) throws -> DMPRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM dmp_record WHERE ins = ?", arguments: [ins]).map { try record($0, db) }
    }

    static func record(_ row: Row, _ db: Database) throws -> DMPRecord {
        let ins: String = row["ins"]
        return DMPRecord(
            ins: ins,
            insOID: row["ins_oid"],
            status: DMPRecord.Status(rawValue: row["status"]) ?? .closed,
            createdAt: row["created_at"],
            updatedAt: row["updated_at"],
            closureReason: row["closure_reason"],
            authorisedStructures: try String.fetchAll(
                db,
                sql: "SELECT structure_id FROM dmp_authorization WHERE ins = ? ORDER BY structure_id",
                arguments: [ins]
            )
        )
    }

    /// What a creation did.
    public enum Creation: Sendable, Equatable {
        case created(DMPRecord)
        /// A DMP already exists for this patient (the DMP's `DMPFound`).
        case found(DMPRecord)
    }

    /// TD1.1: creates the patient's DMP, the creating structure authorised on it.
    public func create(ins: String, oid: String, structure: String) throws -> Creation {
        try store.writer.write { db in
            if let existing = try Self.record(ins: ins, in: db) { return .found(existing) }
            let now = Self.now()
            try db.execute(
                sql:
                    "INSERT INTO dmp_record (ins, ins_oid, status, created_at, updated_at) VALUES (?, ?, 'open', ?, ?)",
                arguments: [ins, oid, now, now]
            )
            try db.execute(
                sql: "INSERT INTO dmp_authorization (ins, structure_id, updated_at) VALUES (?, ?, ?)",
                arguments: [ins, structure, now]
            )
            return .created(try Self.record(ins: ins, in: db)!)
        }
    }

    /// TD1.2: closes or reactivates a DMP; nil when there is none.
    public func setStatus(ins: String, _ status: DMPRecord.Status, reason: String?) throws -> DMPRecord? {
        try store.writer.write { db in
            try db.execute(
                sql: "UPDATE dmp_record SET status = ?, closure_reason = ?, updated_at = ? WHERE ins = ?",
                arguments: [status.rawValue, status == .closed ? reason : nil, Self.now(), ins]
            )
            return try Self.record(ins: ins, in: db)
        }
    }

    /// TD0.3: authorises (or no longer authorises) a structure on a DMP; nil when there is none.
    public func setAuthorisation(ins: String, structure: String, granted: Bool) throws -> DMPRecord? {
        try store.writer.write { db in
            guard try Self.record(ins: ins, in: db) != nil else { return nil }
            if granted {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO dmp_authorization (ins, structure_id, updated_at) VALUES (?, ?, ?)",
                    arguments: [ins, structure, Self.now()]
                )
            } else {
                try db.execute(
                    sql: "DELETE FROM dmp_authorization WHERE ins = ? AND structure_id = ?",
                    arguments: [ins, structure]
                )
            }
            return try Self.record(ins: ins, in: db)
        }
    }

    struct Seeds: Codable {
        struct Record: Codable {
            var ins: String
            var insOID: String
            var status: DMPRecord.Status
            var authorisedStructures: [String]
        }
        var records: [Record]
    }

    /// `Seeds/dmp/records.json` on first start (no DMP yet) or, with `replace`, in place of every DMP (reset).
    @discardableResult
    public func loadSeeds(from seeds: URL?, replace: Bool) throws -> Int {
        let url = seeds?.appendingPathComponent("dmp/records.json")
        let file = try url.flatMap {
            FileManager.default.fileExists(atPath: $0.path)
                ? try JSONDecoder().decode(Seeds.self, from: Data(contentsOf: $0)) : nil
        }
        return try store.writer.write { db in
            if replace {
                for table in ["dmp_association", "dmp_document", "dmp_submission_signature", "dmp_submission_set"] {
                    try db.execute(sql: "DELETE FROM \(table)")
                }
                try db.execute(sql: "DELETE FROM dmp_authorization")
                try db.execute(sql: "DELETE FROM dmp_record")
            } else if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM dmp_record)") ?? false {
                return 0
            }
            let now = Self.now()
            for record in file?.records ?? [] {
                try db.execute(
                    sql: "INSERT INTO dmp_record (ins, ins_oid, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [record.ins, record.insOID, record.status.rawValue, now, now]
                )
                for structure in record.authorisedStructures {
                    try db.execute(
                        sql: "INSERT INTO dmp_authorization (ins, structure_id, updated_at) VALUES (?, ?, ?)",
                        arguments: [record.ins, structure, now]
                    )
                }
            }
            return file?.records.count ?? 0
        }
    }
}
