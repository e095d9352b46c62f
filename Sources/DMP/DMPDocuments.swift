import Foundation
import GRDB
import SOAPCore
import Store

/// The DMP's document store (XDS.b registry and repository in one): submissions (ITI-41), stored queries (ITI-18),
/// retrieval (ITI-43).
public final class DMPDocuments: Sendable {
    let store: SandboxStore

    public init(store: SandboxStore) { self.store = store }

    /// A document entry as stored.
    public struct Entry: Codable, Sendable, Equatable {
        public var entryUUID: String
        public var uniqueId: String
        public var ins: String
        public var status: String
        public var mimeType: String
        public var classCode: String?
        public var typeCode: String?
        public var formatCode: String?
        public var creationTime: String?
        public var hash: String
        public var size: Int
        public var replaces: String?
        /// Confidentiality codes (`MASQUE_PS`, `INVISIBLE_PATIENT`), comma-separated.
        public var confidentiality: String
        /// The structure that submitted the entry: the only professionals who still see it once masked.
        public var authorStructure: String

        /// Whether professionals of `structure` see the entry (`MASQUE_PS`: only its author's structure does).
        public func isVisible(to structure: String) -> Bool {
            !confidentialityCodes.contains(XDS.maskedToProfessionals) || authorStructure == structure
        }

        /// The confidentiality codes one by one.
        public var confidentialityCodes: [String] {
            confidentiality.split(separator: ",").map(String.init)
        }
    }

    /// ITI-41: checks a `ProvideAndRegisterDocumentSetRequest` and stores it whole, or returns the XDS errors and
    /// stores nothing. `patient`: the VIHF's patient, which every patient id of the submission must be.
    /// `requiresSignature`: the submission set must carry its XAdES signature (SOAP does; the FHIR face has none).
    func provideAndRegister(
        _ request: SOAPElement,
        patient: (ins: String, oid: String),
        structure: String,
        requiresSignature: Bool
    ) throws -> [XDS.Error] {
        guard let submit = request.children.first(where: { $0.name == "SubmitObjectsRequest" }),
            let list = submit.child("RegistryObjectList")
        else {
            return [
                XDS.Error(
                    code: "XDSRegistryMetadataError",
                    context: "the request has no SubmitObjectsRequest/RegistryObjectList"
                )
            ]
        }
        let contents = Dictionary(
            request.children.filter { $0.name == "Document" }.map { ($0.attributes["id"] ?? "", $0.rawText) },
            uniquingKeysWith: { first, _ in first }
        )
        let packages = list.children.filter { $0.name == "RegistryPackage" }
        let documents = list.children.filter { $0.name == "ExtrinsicObject" }
        let associations = list.children.filter { $0.name == "Association" }
        let expectedPatient = "\(patient.ins)^^^&\(patient.oid)&ISO"
        var errors: [XDS.Error] = []
        guard packages.count == 1, let set = packages.first else {
            return [
                XDS.Error(
                    code: "XDSRegistryMetadataError",
                    context: "a submission holds exactly one submission set (RegistryPackage), not \(packages.count)"
                )
            ]
        }
        let setUUID = set.attributes["id"] ?? ""
        guard let setUniqueId = XDS.externalIdentifier(set, scheme: XDS.Scheme.submissionSetUniqueId) else {
            return [
                XDS.Error(
                    code: "XDSRegistryMetadataError",
                    context: "the submission set has no uniqueId",
                    location: setUUID
                )
            ]
        }
        let setPatient = XDS.externalIdentifier(set, scheme: XDS.Scheme.submissionSetPatientId) ?? ""
        if setPatient != expectedPatient {
            errors.append(
                XDS.Error(
                    code: "XDSPatientIdDoesNotMatch",
                    context: "submission set patientId '\(setPatient)' is not the VIHF's patient \(expectedPatient)",
                    location: setUUID
                )
            )
        }
        let isSignature = { (entry: SOAPElement) in
            XDS.classification(entry, scheme: XDS.Scheme.formatCode) == SubmissionSignature.formatCode
        }
        if documents.allSatisfy(isSignature) {
            errors.append(
                XDS.Error(
                    code: "XDSRegistryMetadataError",
                    context: "the submission holds no document entry (ExtrinsicObject)"
                )
            )
        }
        struct Parsed {
            var element: SOAPElement
            var entryUUID: String
            var uniqueId: String
            var content: Data
            var hash: String
        }
        var parsed: [Parsed] = []
        for document in documents {
            let id = document.attributes["id"] ?? ""
            guard let uniqueId = XDS.externalIdentifier(document, scheme: XDS.Scheme.documentUniqueId),
                !uniqueId.isEmpty
            else {
                errors.append(
                    XDS.Error(
                        code: "XDSRegistryMetadataError",
                        context: "document entry without uniqueId",
                        location: id
                    )
                )
                continue
            }
            let documentPatient = XDS.externalIdentifier(document, scheme: XDS.Scheme.documentPatientId) ?? ""
            if documentPatient != expectedPatient {
                errors.append(
                    XDS.Error(
                        code: "XDSPatientIdDoesNotMatch",
                        context: "document patientId '\(documentPatient)' is not the VIHF's patient \(expectedPatient)",
                        location: id
                    )
                )
            }
            for (scheme, label) in [
                (XDS.Scheme.classCode, "classCode"), (XDS.Scheme.typeCode, "typeCode"),
                (XDS.Scheme.formatCode, "formatCode"),
            ]
            where XDS.classification(document, scheme: scheme) == nil {
                errors.append(
                    XDS.Error(
                        code: "XDSRegistryMetadataError",
                        context: "document entry without \(label)",
                        location: id
                    )
                )
            }
            if (document.attributes["mimeType"] ?? "").isEmpty {
                errors.append(
                    XDS.Error(
                        code: "XDSRegistryMetadataError",
                        context: "document entry without mimeType",
                        location: id
                    )
                )
            }
            guard let base64 = contents[id] else {
                errors.append(
                    XDS.Error(
                        code: "XDSMissingDocument",
                        context: "no Document with id '\(id)' for this entry",
                        location: id
                    )
                )
                continue
            }
            // Base64 without line breaks (what MTOM's substitution and most clients send) is decoded as it is; else
            // whitespace is dropped byte by byte first (filtering took 20 % of a 1 MB ITI-41, docs/performance.md).
            guard
                let content = Data(base64Encoded: base64)
                    ?? Data(base64Encoded: Data(base64.utf8.filter { $0 > 0x20 }))
            else {
                errors.append(
                    XDS.Error(
                        code: "XDSRepositoryMetadataError",
                        context: "the Document '\(id)' is not base64",
                        location: id
                    )
                )
                continue
            }
            let hash = XDS.sha1(content)
            if let given = XDS.slot(document, "hash").first, given.lowercased() != hash {
                errors.append(
                    XDS.Error(
                        code: "XDSRepositoryMetadataError",
                        context: "hash \(given) is not the document's SHA-1 \(hash)",
                        location: id
                    )
                )
            }
            if let given = XDS.slot(document, "size").first, Int(given) != content.count {
                errors.append(
                    XDS.Error(
                        code: "XDSRepositoryMetadataError",
                        context: "size \(given) is not the document's \(content.count) bytes",
                        location: id
                    )
                )
            }
            if let cdaPatient = CDA.patient(in: content), cdaPatient.ins != patient.ins {
                errors.append(
                    XDS.Error(
                        code: "XDSPatientIdDoesNotMatch",
                        context:
                            "the CDA's recordTarget INS \(cdaPatient.ins) is not the submission's patient \(patient.ins)",
                        location: id
                    )
                )
            }
            parsed.append(Parsed(element: document, entryUUID: id, uniqueId: uniqueId, content: content, hash: hash))
        }
        let signatures = parsed.filter { isSignature($0.element) }
        parsed.removeAll { isSignature($0.element) }
        var signature: (entry: Parsed, checked: SubmissionSignature)?
        if signatures.count > 1 {
            errors.append(
                XDS.Error(
                    code: "XDSRegistryMetadataError",
                    context: "the submission holds \(signatures.count) signature documents; a submission set has one"
                )
            )
        } else if let entry = signatures.first {
            do {
                let checked = try SubmissionSignature.check(
                    entry.content,
                    signing: parsed.map { ($0.uniqueId, $0.content) }
                )
                signature = (entry, checked)
            } catch {
                errors.append(
                    XDS.Error(
                        code: "XDSRegistryMetadataError",
                        context: "XAdES signature of the submission set: \(error.reason)",
                        location: entry.entryUUID
                    )
                )
            }
        } else if requiresSignature, !documents.isEmpty {
            errors.append(
                XDS.Error(
                    code: "XDSRegistryMetadataError",
                    context:
                        "the submission set is not signed: no document entry with formatCode \(SubmissionSignature.formatCode) (its XAdES signature)",
                    location: setUUID
                )
            )
        }
        let uniqueIds = (parsed + signatures).map(\.uniqueId) + [setUniqueId]
        if Set(uniqueIds).count != uniqueIds.count {
            errors.append(
                XDS.Error(
                    code: "XDSDuplicateUniqueIdInRegistry",
                    context: "a uniqueId is given twice in the submission"
                )
            )
        }
        let replacements = associations.filter { $0.attributes["associationType"] == XDS.replace }
        return try store.writer.write { db -> [XDS.Error] in
            var errors = errors
            for uniqueId in uniqueIds
            where try Bool.fetchOne(
                db,
                sql:
                    "SELECT EXISTS (SELECT 1 FROM dmp_document WHERE unique_id = ?1) OR EXISTS (SELECT 1 FROM dmp_submission_set WHERE unique_id = ?1) OR EXISTS (SELECT 1 FROM dmp_submission_signature WHERE unique_id = ?1)",
                arguments: [uniqueId]
            ) ?? false {
                errors.append(
                    XDS.Error(
                        code: "XDSDuplicateUniqueIdInRegistry",
                        context: "uniqueId \(uniqueId) is already registered"
                    )
                )
            }
            guard let record = try DMPRecords.record(ins: patient.ins, in: db), record.status == .open else {
                errors.append(
                    XDS.Error(code: "XDSUnknownPatientId", context: "patient \(expectedPatient) has no open DMP")
                )
                return errors
            }
            for replacement in replacements {
                let target = replacement.attributes["targetObject"] ?? ""
                let status = try String.fetchOne(
                    db,
                    sql: "SELECT status FROM dmp_document WHERE entry_uuid = ? AND ins = ?",
                    arguments: [target, patient.ins]
                )
                if status != XDS.approved {
                    errors.append(
                        XDS.Error(
                            code: "XDSRegistryMetadataError",
                            context: "RPLC target \(target) is not an approved document of this patient",
                            location: replacement.attributes["id"] ?? ""
                        )
                    )
                }
            }
            guard errors.isEmpty else { return errors }
            let now = ISO8601DateFormatter().string(from: Date())
            // Symbolic ids (`Document01`) become UUIDs, as a registry assigns them.
            var uuids: [String: String] = [:]
            func uuid(_ id: String) -> String {
                if id.hasPrefix("urn:uuid:") { return id }
                if let assigned = uuids[id] { return assigned }
                let assigned = "urn:uuid:" + UUID().uuidString.lowercased()
                uuids[id] = assigned
                return assigned
            }
            var setElement = set
            setElement.attributes["id"] = uuid(setUUID)
            setElement.attributes["status"] = XDS.approved
            try db.execute(
                sql:
                    "INSERT INTO dmp_submission_set (entry_uuid, unique_id, ins, submitted_at, metadata) VALUES (?, ?, ?, ?, ?)",
                arguments: [uuid(setUUID), setUniqueId, patient.ins, now, setElement.xml]
            )
            for document in parsed {
                var element = document.element
                let entryUUID = uuid(document.entryUUID)
                element.attributes["id"] = entryUUID
                let replaced = replacements.first { $0.attributes["sourceObject"] == document.entryUUID }?.attributes[
                    "targetObject"
                ]
                try db.execute(
                    sql: """
                        INSERT INTO dmp_document (entry_uuid, unique_id, ins, submission_set_uuid, status, mime_type, class_code,
                            type_code, format_code, creation_time, hash, size, replaces, metadata, content, stored_at,
                            confidentiality, author_structure)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        entryUUID, document.uniqueId, patient.ins, uuid(setUUID), XDS.approved,
                        element.attributes["mimeType"] ?? "",
                        XDS.classification(element, scheme: XDS.Scheme.classCode),
                        XDS.classification(element, scheme: XDS.Scheme.typeCode),
                        XDS.classification(element, scheme: XDS.Scheme.formatCode),
                        XDS.slot(element, "creationTime").first,
                        document.hash, document.content.count, replaced, element.xml, document.content, now,
                        XDS.confidentiality(element).joined(separator: ","), structure,
                    ]
                )
                if let replaced {
                    try db.execute(
                        sql: "UPDATE dmp_document SET status = ? WHERE entry_uuid = ?",
                        arguments: [XDS.deprecated, replaced]
                    )
                }
            }
            if let (entry, checked) = signature {
                var element = entry.element
                element.attributes["id"] = uuid(entry.entryUUID)
                try db.execute(
                    sql: """
                        INSERT INTO dmp_submission_signature (submission_set_uuid, entry_uuid, unique_id, signer, signing_time,
                            metadata, content)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        uuid(setUUID), uuid(entry.entryUUID), entry.uniqueId, checked.signer, checked.signingTime,
                        element.xml, entry.content,
                    ]
                )
            }
            for association in associations {
                try db.execute(
                    sql: "INSERT INTO dmp_association (entry_uuid, type, source, target) VALUES (?, ?, ?, ?)",
                    arguments: [
                        uuid(association.attributes["id"] ?? UUID().uuidString),
                        association.attributes["associationType"] ?? "",
                        uuid(association.attributes["sourceObject"] ?? ""),
                        uuid(association.attributes["targetObject"] ?? ""),
                    ]
                )
            }
            return []
        }
    }

    /// FindDocuments' optional parameters: codes (`code` of `code^^scheme`) and the creation time range (HL7 DTM,
    /// `from` inclusive, `to` exclusive, compared at the parameter's precision, as ITI-18 says).
    struct DocumentFilter: Sendable {
        var classCodes: [String] = []
        var typeCodes: [String] = []
        var formatCodes: [String] = []
        var createdFrom: String?
        var createdBefore: String?
    }

    /// ITI-18 FindDocuments: the patient's entries with one of `statuses`, newest first, as stored metadata (status
    /// brought up to date).
    /// Entries masked to professionals (`MASQUE_PS`) are left out, but for the structure that submitted them.
    func findDocuments(
        ins: String,
        statuses: [String],
        structure: String,
        filter: DocumentFilter = DocumentFilter()
    ) throws -> [(entryUUID: String, metadata: String)] {
        try store.writer.read { db in
            var sql: SQL = """
                SELECT entry_uuid, status, metadata FROM dmp_document WHERE ins = \(ins) AND status IN \(statuses)
                AND (instr(confidentiality, 'MASQUE_PS') = 0 OR author_structure = \(structure))
                """
            for (column, codes) in [
                ("class_code", filter.classCodes), ("type_code", filter.typeCodes),
                ("format_code", filter.formatCodes),
            ] where !codes.isEmpty {
                sql += " AND \(sql: column) IN \(codes)"
            }
            if let from = filter.createdFrom {
                sql += " AND substr(creation_time, 1, \(from.count)) >= \(from)"
            }
            if let before = filter.createdBefore {
                sql += " AND substr(creation_time, 1, \(before.count)) < \(before)"
            }
            sql += " ORDER BY rowid DESC"
            return try SQLRequest<Row>(literal: sql).fetchAll(db).map { row in
                var metadata: String = row["metadata"]
                if var element = try? HardenedXMLParser(maximumBytes: 1 << 20).parse(Data(metadata.utf8)) {
                    element.attributes["status"] = row["status"]
                    metadata = element.xml
                }
                return (row["entry_uuid"], metadata)
            }
        }
    }

    /// ITI-57 Update Document Set: availability changes (`UpdateAvailabilityStatus` associations: `OriginalStatus`
    /// must be the current one, `NewStatus` Approved, Deprecated, Archived or Deleted) and metadata updates of an
    /// entry (an `ExtrinsicObject` whose `lid` is a stored entry: its confidentiality codes — masking — taken). All or
    /// nothing; the XDS errors otherwise. Only the structure that submitted a document may delete it (`structure`: the
    /// caller's), as the DMP checks.
    func update(
        _ request: SOAPElement,
        patient: (ins: String, oid: String),
        structure: String
    ) throws -> [XDS.Error] {
        guard let list = request.child("RegistryObjectList") else {
            return [XDS.Error(code: "XDSRegistryMetadataError", context: "the request has no RegistryObjectList")]
        }
        let changes = list.children.filter {
            $0.name == "Association" && $0.attributes["associationType"] == XDS.updateAvailabilityStatus
        }
        let updates = list.children.filter { $0.name == "ExtrinsicObject" && $0.attributes["lid"] != nil }
        guard !changes.isEmpty || !updates.isEmpty else {
            return [
                XDS.Error(
                    code: "XDSMetadataUpdateError",
                    context:
                        "no availability change (UpdateAvailabilityStatus) nor entry update (ExtrinsicObject with lid)"
                )
            ]
        }
        return try store.writer.write { db -> [XDS.Error] in
            var errors: [XDS.Error] = []
            var statusChanges: [(String, String)] = []
            for change in changes {
                let target = change.attributes["targetObject"] ?? ""
                let original = XDS.slot(change, "OriginalStatus").first ?? ""
                let new = XDS.slot(change, "NewStatus").first ?? ""
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: "SELECT status, author_structure FROM dmp_document WHERE entry_uuid = ? AND ins = ?",
                        arguments: [target, patient.ins]
                    )
                else {
                    errors.append(
                        XDS.Error(
                            code: "XDSMetadataUpdateError",
                            context: "\(target) is not a document entry of this patient",
                            location: target
                        )
                    )
                    continue
                }
                let current: String = row["status"]
                guard original == current else {
                    errors.append(
                        XDS.Error(
                            code: "XDSMetadataUpdateError",
                            context: "OriginalStatus \(original) is not the entry's status \(current)",
                            location: target
                        )
                    )
                    continue
                }
                guard XDS.statuses.contains(new) else {
                    errors.append(
                        XDS.Error(
                            code: "XDSMetadataUpdateError",
                            context:
                                "NewStatus '\(new)' is not one of \(XDS.statuses.sorted().joined(separator: ", "))",
                            location: target
                        )
                    )
                    continue
                }
                guard new != XDS.deleted || row["author_structure"] == structure else {
                    errors.append(
                        XDS.Error(
                            code: "XDSMetadataUpdateError",
                            context: "only the structure that submitted \(target) may delete it",
                            location: target
                        )
                    )
                    continue
                }
                statusChanges.append((target, new))
            }
            var metadataChanges: [(String, SOAPElement, [String])] = []
            for update in updates {
                let lid = update.attributes["lid"] ?? ""
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: "SELECT metadata FROM dmp_document WHERE entry_uuid = ? AND ins = ?",
                        arguments: [lid, patient.ins]
                    ),
                    var stored = try? HardenedXMLParser(maximumBytes: 1 << 20).parse(
                        Data((row["metadata"] as String).utf8)
                    )
                else {
                    errors.append(
                        XDS.Error(
                            code: "XDSMetadataUpdateError",
                            context: "lid \(lid) is not a document entry of this patient",
                            location: lid
                        )
                    )
                    continue
                }
                let codes = XDS.confidentiality(update)
                stored.children.removeAll {
                    $0.name == "Classification"
                        && $0.attributes["classificationScheme"] == XDS.Scheme.confidentialityCode
                }
                let insertAt =
                    stored.children.firstIndex { $0.name == "ExternalIdentifier" } ?? stored.children.endIndex
                stored.children.insert(
                    contentsOf: update.children.filter {
                        $0.name == "Classification"
                            && $0.attributes["classificationScheme"] == XDS.Scheme.confidentialityCode
                    },
                    at: insertAt
                )
                metadataChanges.append((lid, stored, codes))
            }
            guard errors.isEmpty else { return errors }
            for (target, status) in statusChanges {
                try db.execute(
                    sql: "UPDATE dmp_document SET status = ? WHERE entry_uuid = ?",
                    arguments: [status, target]
                )
            }
            for (lid, metadata, codes) in metadataChanges {
                try db.execute(
                    sql: "UPDATE dmp_document SET metadata = ?, confidentiality = ? WHERE entry_uuid = ?",
                    arguments: [metadata.xml, codes.joined(separator: ","), lid]
                )
            }
            return []
        }
    }

    /// GetDocuments: the patient's entries by entry UUID or uniqueId (masked ones only for their author).
    func documents(
        ins: String,
        uuids: [String],
        uniqueIds: [String],
        structure: String
    ) throws -> [(id: String, xml: String)] {
        try findDocuments(ins: ins, statuses: Array(XDS.statuses), structure: structure)
            .filter { found in
                if !uuids.isEmpty { return uuids.contains(found.entryUUID) }
                guard let element = try? HardenedXMLParser(maximumBytes: 1 << 20).parse(Data(found.metadata.utf8))
                else { return false }
                return uniqueIds.contains(XDS.externalIdentifier(element, scheme: XDS.Scheme.documentUniqueId) ?? "")
            }
            .map { ($0.entryUUID, $0.metadata) }
    }

    /// FindSubmissionSets: the patient's submission sets, newest first.
    func submissionSets(ins: String) throws -> [(id: String, xml: String)] {
        try store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT entry_uuid, metadata FROM dmp_submission_set WHERE ins = ? ORDER BY rowid DESC",
                arguments: [ins]
            )
            .map { ($0["entry_uuid"], $0["metadata"]) }
        }
    }

    /// GetAssociations: the associations from or to the given objects, when they are the patient's.
    func associations(ins: String, of uuids: [String]) throws -> [(id: String, xml: String)] {
        guard !uuids.isEmpty else { return [] }
        return try store.writer.read { db in
            let marks = uuids.map { _ in "?" }.joined(separator: ",")
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT a.* FROM dmp_association a WHERE (a.source IN (\(marks)) OR a.target IN (\(marks)))
                    AND (EXISTS (SELECT 1 FROM dmp_document d WHERE d.ins = ? AND d.entry_uuid IN (a.source, a.target))
                         OR EXISTS (SELECT 1 FROM dmp_submission_set s WHERE s.ins = ? AND s.entry_uuid IN (a.source, a.target)))
                    ORDER BY a.rowid
                    """,
                arguments: StatementArguments(uuids + uuids + [ins, ins])
            ).map { row in
                let id: String = row["entry_uuid"]
                let xml =
                    "<Association xmlns=\"\(XDS.rim)\" id=\"\(XMLText.escape(id))\" associationType=\"\(XMLText.escape(row["type"]))\" "
                    + "sourceObject=\"\(XMLText.escape(row["source"]))\" targetObject=\"\(XMLText.escape(row["target"]))\"/>"
                return (id, xml)
            }
        }
    }

    /// ITI-43: the stored bytes and media type of a document, when it is the patient's.
    func retrieve(uniqueId: String, ins: String) throws -> (Data, String)? {
        try store.writer.read { db in
            try Row.fetchOne(
                db,
                sql:
                    "SELECT content, mime_type FROM dmp_document WHERE unique_id = ? AND ins = ? AND status != 'urn:asip:ci-sis:2010:StatusType:Deleted'",
                arguments: [uniqueId, ins]
            ).map { ($0["content"], $0["mime_type"]) }
        }
    }

    /// ITI-68: a document's bytes and media type by its entry UUID (deleted ones excepted).
    public func content(entryUUID: String) throws -> (Data, String)? {
        try store.writer.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT content, mime_type FROM dmp_document WHERE entry_uuid = ? AND status != ?",
                arguments: [entryUUID, XDS.deleted]
            ).map { ($0["content"], $0["mime_type"]) }
        }
    }

    public func entries(ins: String) throws -> [Entry] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM dmp_document WHERE ins = ? ORDER BY rowid", arguments: [ins])
                .map(Entry.init(row:))
        }
    }

    /// The entry of a document by its uniqueId, whatever its patient or status.
    /// The XAdES signature of the submission set that brought an entry (`entryUUID`): nil when that set came
    /// unsigned (through FHIR, or from the seeds).
    public func signature(ofEntry entryUUID: String) throws -> (uniqueId: String, signer: String, signingTime: String)?
    {
        try store.writer.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT s.unique_id, s.signer, s.signing_time FROM dmp_submission_signature s
                    JOIN dmp_document d ON d.submission_set_uuid = s.submission_set_uuid WHERE d.entry_uuid = ?
                    """,
                arguments: [entryUUID]
            ).map { ($0["unique_id"], $0["signer"], $0["signing_time"]) }
        }
    }

    public func entry(uniqueId: String) throws -> Entry? {
        try store.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dmp_document WHERE unique_id = ?", arguments: [uniqueId])
                .map(Entry.init(row:))
        }
    }
}

extension DMPDocuments.Entry {
    init(row: Row) {
        self.init(
            entryUUID: row["entry_uuid"],
            uniqueId: row["unique_id"],
            ins: row["ins"],
            status: row["status"],
            mimeType: row["mime_type"],
            classCode: row["class_code"],
            typeCode: row["type_code"],
            formatCode: row["format_code"],
            creationTime: row["creation_time"],
            hash: row["hash"],
            size: row["size"],
            replaces: row["replaces"],
            confidentiality: row["confidentiality"],
            authorStructure: row["author_structure"]
        )
    }
}

/// The patient of an HL7 CDA R2 document: `recordTarget/patientRole/id` with an INS OID (nil for other documents).
enum CDA {
    /// CDA documents are large and may carry a stylesheet processing instruction.
    static let parser = HardenedXMLParser(
        maximumBytes: 32 << 20,
        maximumDepth: 128,
        maximumElements: 500_000,
        allowsProcessingInstructions: true
    )

    static func patient(in data: Data) -> (ins: String, oid: String)? {
        guard
            let root = try? CDA.parser
                .parse(data),
            root.name == "ClinicalDocument", let role = root.child("recordTarget")?.child("patientRole")
        else { return nil }
        return role.children("id").compactMap { id -> (String, String)? in
            guard let oid = id.attributes["root"], DMPRecords.insOIDs.contains(oid),
                let ins = id.attributes["extension"]
            else { return nil }
            return (ins, oid)
        }.first
    }
}

extension DMPService {
    /// The header fields of a CDA a person looks for first: title, date, patient, author, custodian.
    public static func cdaHeader(_ data: Data) -> [(String, String)]? {
        guard
            let root = try? CDA.parser
                .parse(data),
            root.name == "ClinicalDocument"
        else { return nil }
        var fields: [(String, String)] = []
        if let title = root.child("title")?.text, !title.isEmpty { fields.append(("Titre", title)) }
        if let time = root.child("effectiveTime")?.attributes["value"] { fields.append(("Date", time)) }
        if let id = root.child("recordTarget")?.child("patientRole")?.children("id").first {
            fields.append(("Patient", "\(id.attributes["extension"] ?? "") (\(id.attributes["root"] ?? ""))"))
        }
        if let name = root.child("recordTarget")?.child("patientRole")?.child("patient")?.child("name") {
            fields.append(("Nom", name.descendants.map(\.text).filter { !$0.isEmpty }.joined(separator: " ")))
        }
        if let author = root.child("author")?.descendants.first(where: { $0.name == "assignedPerson" })?.child("name") {
            fields.append(("Auteur", author.descendants.map(\.text).filter { !$0.isEmpty }.joined(separator: " ")))
        }
        if let custodian = root.child("custodian")?.descendants.first(where: { $0.name == "name" })?.text {
            fields.append(("Gardien", custodian))
        }
        return fields
    }
}
