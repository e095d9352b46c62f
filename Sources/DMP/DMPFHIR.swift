import Access
import FHIRCore
import Foundation
import GRDB
import HTTPCommon
import Hummingbird
import SOAPCore

/// The DMP's FHIR face, after the ANS draft IG PDSm4DMP (IHE MHD over the same store as the SOAP services):
/// `GET Patient?identifier=` (TD0.2), ITI-65 `POST` transaction (SubmissionSet List, DocumentReference, Binary:
/// TD2.1), ITI-67 `GET DocumentReference?patient.identifier=` (TD3.1), ITI-68 `GET Binary/{id}` (TD3.2). A document
/// pushed one way is found and retrieved the other: an ITI-65 submission is turned into the ebRIM submission the
/// SOAP service checks and stores, and stored entries are read back as DocumentReferences.
extension DMPService {
    public static let fhirPath = SandboxService.Path.dmpFHIR

    func addFHIRRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        let fhir = router.group(RouterPath(Self.fhirPath))
        fhir.get("Patient") { request, _ in try self.patientSearch(request) }
        fhir.get("DocumentReference") { request, context in
            try self.documentSearch(request, structure: Self.structure(of: context))
        }
        fhir.patch("DocumentReference") { request, context in
            try await self.patchDocument(request, structure: Self.structure(of: context))
        }
        fhir.get("Binary/:id") { _, context in try self.binary(context.parameters.get("id") ?? "") }
        fhir.post { request, context in
            try await self.transaction(request, structure: Self.structure(of: context))
        }
    }

    /// No VIHF on the FHIR side: the caller's structure is its certificate's OU.
    static func structure(of context: some CallerContext) -> String {
        context.identity?.subject.value(of: "OU") ?? "fhir"
    }

    /// `urn:oid:<OID>|<INS>` (or `<OID>|<INS>`) as (INS, OID).
    static func insToken(_ value: String, parameter: String) throws -> (ins: String, oid: String) {
        let parts = value.split(separator: "|", maxSplits: 1).map(String.init)
        let oid = parts.first.map { $0.hasPrefix("urn:oid:") ? String($0.dropFirst(8)) : $0 } ?? ""
        guard parts.count == 2, DMPRecords.insOIDs.contains(oid) else {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "\(parameter) must be urn:oid:<INS OID>|<INS> (OIDs \(DMPRecords.insOIDs.sorted().joined(separator: ", ")))",
                expression: [parameter]
            )
        }
        return (parts[1], oid)
    }

    static func query(_ request: Request, allowed: Set<String>) throws -> [String: String] {
        var values: [String: String] = [:]
        for (name, value) in FormEncoding.items(request.uri.query ?? "") {
            guard allowed.contains(name) else {
                throw FHIRError(
                    .badRequest,
                    code: "not-supported",
                    "Unknown search parameter '\(name)' (\(allowed.sorted().joined(separator: ", ")))",
                    expression: [name]
                )
            }
            values[name] = value
        }
        return values
    }

    static func searchset(_ entries: [[String: Any]]) throws -> Response {
        FHIRResponse.json(
            .ok,
            try FHIRJSON.data(["resourceType": "Bundle", "type": "searchset", "total": entries.count, "entry": entries])
        )
    }

    /// TD0.2: the patient, when a DMP exists, with its status (`active` false when the DMP is closed).
    func patientSearch(_ request: Request) throws -> Response {
        let query = try Self.query(request, allowed: ["identifier"])
        guard let token = query["identifier"] else {
            throw FHIRError(.badRequest, code: "required", "identifier is required", expression: ["identifier"])
        }
        let (ins, oid) = try Self.insToken(token, parameter: "identifier")
        guard let record = try records.record(ins: ins) else { return try Self.searchset([]) }
        let patient: [String: Any] = [
            "resourceType": "Patient", "id": ins, "active": record.status == .open,
            "identifier": [["system": "urn:oid:\(oid)", "value": ins]],
        ]
        return try Self.searchset([["resource": patient, "search": ["mode": "match"]]])
    }

    /// ITI-67: the patient's document entries as DocumentReferences (`status` current = Approved, superseded =
    /// Deprecated; archived and deleted are not FHIR statuses and are left out).
    /// `structure`: the caller's (its certificate's OU, as for ITI-65): documents masked to professionals
    /// (`MASQUE_PS`) are left out but for the structure that submitted them, as ITI-18 does.
    func documentSearch(_ request: Request, structure: String) throws -> Response {
        let query = try Self.query(request, allowed: ["patient.identifier", "status"])
        guard let token = query["patient.identifier"] else {
            throw FHIRError(
                .badRequest,
                code: "required",
                "patient.identifier is required",
                expression: ["patient.identifier"]
            )
        }
        let (ins, oid) = try Self.insToken(token, parameter: "patient.identifier")
        let statuses = (query["status"] ?? "current").split(separator: ",").map(String.init)
        let mapping = ["current": XDS.approved, "superseded": XDS.deprecated]
        guard statuses.allSatisfy({ mapping[$0] != nil }) else {
            throw FHIRError(.badRequest, code: "invalid", "status may be current or superseded", expression: ["status"])
        }
        let wanted = Set(statuses.compactMap { mapping[$0] })
        let entries = try documentStore.entries(ins: ins).filter {
            wanted.contains($0.status) && $0.isVisible(to: structure)
        }.reversed().map { entry -> [String: Any] in
            [
                "fullUrl": "DocumentReference/\(Self.fhirID(entry.entryUUID))",
                "resource": Self.documentReference(entry, oid: oid), "search": ["mode": "match"],
            ]
        }
        return try Self.searchset(Array(entries))
    }

    /// XDS errors as one 422 OperationOutcome, an issue each (`expression`: the object the error is about).
    static func refusal(_ errors: [XDS.Error], _ text: String) -> FHIRError {
        var refusal = FHIRError(
            .unprocessableContent,
            code: "processing",
            "\(text) (\(errors.count) problem(s))",
            expression: nil
        )
        refusal.issues = errors.map {
            OperationOutcome.Issue(
                code: "processing",
                diagnostics: "\($0.code): \($0.context)",
                expression: $0.location.isEmpty ? nil : [$0.location]
            )
        }
        return refusal
    }

    /// The PDSm4DMP extension that says a document is archived.
    static let isArchivedExtension =
        "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived"

    /// An entry as a DocumentReference: `id` the entryUUID, `masterIdentifier` the uniqueId, the status (an
    /// archived entry is `current` with the isArchived extension, a deleted one `entered-in-error`, as the draft's
    /// TD3.3c–d pages say), the codes, the confidentiality codes as `securityLabel`, a replacement as `relatesTo`.
    static func documentReference(_ entry: DMPDocuments.Entry, oid: String) -> [String: Any] {
        let status =
            switch entry.status {
            case XDS.deprecated: "superseded"
            case XDS.deleted: "entered-in-error"
            default: "current"
            }
        var reference: [String: Any] = [
            "resourceType": "DocumentReference", "id": fhirID(entry.entryUUID),
            "masterIdentifier": ["system": "urn:ietf:rfc:3986", "value": "urn:oid:\(entry.uniqueId)"],
            "identifier": [["system": "urn:ietf:rfc:3986", "value": entry.entryUUID]],
            "status": status,
            "subject": ["identifier": ["system": "urn:oid:\(oid)", "value": entry.ins]],
            "content": [
                [
                    "attachment": [
                        "contentType": entry.mimeType, "size": entry.size,
                        "hash": Data(bytes(hex: entry.hash)).base64EncodedString(),
                        "url": "\(fhirPath)/Binary/\(fhirID(entry.entryUUID))",
                    ],
                    "format": ["code": entry.formatCode ?? ""],
                ]
            ],
        ]
        if entry.status == XDS.archived {
            reference["extension"] = [["url": isArchivedExtension, "valueBoolean": true]]
        }
        if let type = entry.typeCode { reference["type"] = ["coding": [["code": type]]] }
        if let category = entry.classCode { reference["category"] = [["coding": [["code": category]]]] }
        let labels = entry.confidentialityCodes.map { ["coding": [["code": $0]]] }
        if !labels.isEmpty { reference["securityLabel"] = labels }
        if let replaced = entry.replaces {
            reference["relatesTo"] = [
                ["code": "replaces", "target": ["reference": "DocumentReference/\(fhirID(replaced))"]]
            ]
        }
        return reference
    }

    /// ITI-68: the document's bytes.
    func binary(_ id: String) throws -> Response {
        guard let (content, mimeType) = try documentStore.content(entryUUID: "urn:uuid:" + id) else {
            throw FHIRError(.notFound, code: "not-found", "Binary/\(id) is not a stored document", expression: nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: mimeType],
            body: .init(byteBuffer: ByteBuffer(bytes: content))
        )
    }

    static func fhirID(_ entryUUID: String) -> String {
        entryUUID.hasPrefix("urn:uuid:") ? String(entryUUID.dropFirst(9)) : entryUUID
    }

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }

    /// ITI-65: a `transaction` Bundle of one SubmissionSet `List`, `DocumentReference`s and their `Binary`s, turned
    /// into the ebRIM submission of ITI-41 and stored by the same checks; XDS errors come back as an OperationOutcome
    /// (422), one issue each.
    func transaction(_ request: Request, structure: String) async throws -> Response {
        let bundle = try await FHIRBody.json(
            request,
            maximumBody: 16 << 20,
            what: "an ITI-65 submission takes a transaction Bundle"
        )
        guard bundle["resourceType"]?.string == "Bundle", bundle["type"]?.string == "transaction" else {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "The body must be a transaction Bundle",
                expression: ["Bundle.type"]
            )
        }
        let entries = bundle["entry"]?.array ?? []
        let resources = entries.compactMap { entry -> (String, JSONObject)? in
            guard let resource = entry["resource"]?.object else { return nil }
            return (entry["fullUrl"]?.string ?? "", resource)
        }
        guard let list = resources.first(where: { $0.1["resourceType"]?.string == "List" })?.1 else {
            throw FHIRError(
                .unprocessableContent,
                code: "required",
                "The Bundle holds no SubmissionSet List",
                expression: ["Bundle.entry"]
            )
        }
        let references = resources.filter { $0.1["resourceType"]?.string == "DocumentReference" }
        let binaries = Dictionary(
            resources.filter { $0.1["resourceType"]?.string == "Binary" }.map { ($0.0, $0.1) },
            uniquingKeysWith: { first, _ in first }
        )
        guard !references.isEmpty else {
            throw FHIRError(
                .unprocessableContent,
                code: "required",
                "The Bundle holds no DocumentReference",
                expression: ["Bundle.entry"]
            )
        }
        let subject = references[0].1["subject"]?["reference"]?.string ?? list["subject"]?["reference"]?.string ?? ""
        guard let range = subject.range(of: "identifier=") else {
            throw FHIRError(
                .unprocessableContent,
                code: "required",
                "DocumentReference.subject must be Patient?identifier=urn:oid:<OID>|<INS>",
                expression: ["DocumentReference.subject"]
            )
        }
        let patient = try Self.insToken(String(subject[range.upperBound...]), parameter: "DocumentReference.subject")
        let patientId = "\(patient.ins)^^^&\(patient.oid)&ISO"
        var objects: [SOAPElement] = []
        var documents: [SOAPElement] = []
        let setID = "SubmissionSet01"
        for (index, (fullUrl, reference)) in references.enumerated() {
            let id = "Document\(index + 1)"
            let attachment = reference["content"]?.array?.first?["attachment"]
            guard let url = attachment?["url"]?.string, let binary = binaries[url], let data = binary["data"]?.string
            else {
                throw FHIRError(
                    .unprocessableContent,
                    code: "required",
                    "DocumentReference \(fullUrl): content.attachment.url must name a Binary of the Bundle",
                    expression: ["DocumentReference.content.attachment.url"]
                )
            }
            var children: [SOAPElement] = []
            if let size = attachment?["size"]?.number { children.append(XDS.slot("size", String(Int(size)))) }
            if let hash = attachment?["hash"]?.string, let raw = Data(base64Encoded: hash) {
                children.append(XDS.slot("hash", raw.map { String(format: "%02x", $0) }.joined()))
            }
            if let code = reference["category"]?.array?.first?["coding"]?.array?.first?["code"]?.string {
                children.append(XDS.classification(XDS.Scheme.classCode, code, id))
            }
            if let code = reference["content"]?.array?.first?["format"]?["code"]?.string {
                children.append(XDS.classification(XDS.Scheme.formatCode, code, id))
            }
            if let code = reference["type"]?["coding"]?.array?.first?["code"]?.string {
                children.append(XDS.classification(XDS.Scheme.typeCode, code, id))
            }
            for label in reference["securityLabel"]?.array ?? [] {
                if let code = label["coding"]?.array?.first?["code"]?.string,
                    code == XDS.maskedToProfessionals || code == XDS.invisibleToPatient
                {
                    children.append(XDS.classification(XDS.Scheme.confidentialityCode, code, id))
                }
            }
            let master = reference["masterIdentifier"]?["value"]?.string ?? ""
            children.append(XDS.external(XDS.Scheme.documentPatientId, patientId, id))
            children.append(
                XDS.external(
                    XDS.Scheme.documentUniqueId,
                    master.hasPrefix("urn:oid:") ? String(master.dropFirst(8)) : master,
                    id
                )
            )
            objects.append(
                SOAPElement(
                    namespace: XDS.rim,
                    name: "ExtrinsicObject",
                    attributes: [
                        "id": id, "mimeType": attachment?["contentType"]?.string ?? binary["contentType"]?.string ?? "",
                        "objectType": XDS.stableDocumentType,
                    ],
                    children: children
                )
            )
            documents.append(SOAPElement(namespace: XDS.xdsb, name: "Document", attributes: ["id": id], rawText: data))
            if let target = reference["relatesTo"]?.array?.first(where: { $0["code"]?.string == "replaces" })?[
                "target"
            ]?["reference"]?.string {
                objects.append(
                    SOAPElement(
                        namespace: XDS.rim,
                        name: "Association",
                        attributes: [
                            "associationType": XDS.replace, "sourceObject": id,
                            "id": "urn:uuid:\(UUID().uuidString.lowercased())",
                            "targetObject": "urn:uuid:" + (target.split(separator: "/").last.map(String.init) ?? target)
                            ,
                        ]
                    )
                )
            }
            objects.append(
                SOAPElement(
                    namespace: XDS.rim,
                    name: "Association",
                    attributes: [
                        "associationType": XDS.hasMember, "sourceObject": setID, "targetObject": id,
                        "id": "urn:uuid:\(UUID().uuidString.lowercased())",
                    ]
                )
            )
        }
        let setUnique =
            list["identifier"]?.array?.first?["value"]?.string.map {
                $0.hasPrefix("urn:oid:") ? String($0.dropFirst(8)) : $0
            }
            ?? "2.25.\(UUID().uuid.0)\(Int.random(in: 1...999_999_999))"
        objects.insert(
            SOAPElement(
                namespace: XDS.rim,
                name: "RegistryPackage",
                attributes: ["id": setID],
                children: [
                    XDS.external(XDS.Scheme.submissionSetUniqueId, setUnique, setID),
                    XDS.external(XDS.Scheme.submissionSetPatientId, patientId, setID),
                ]
            ),
            at: 0
        )
        let submission = SOAPElement(
            namespace: XDS.xdsb,
            name: "ProvideAndRegisterDocumentSetRequest",
            children: [
                SOAPElement(
                    namespace: XDS.lcm,
                    name: "SubmitObjectsRequest",
                    children: [SOAPElement(namespace: XDS.rim, name: "RegistryObjectList", children: objects)]
                )
            ] + documents
        )
        let errors = try documentStore.provideAndRegister(
            submission,
            patient: patient,
            structure: structure,
            requiresSignature: false
        )
        guard errors.isEmpty else { throw Self.refusal(errors, "The submission was refused") }
        return FHIRResponse.json(
            .ok,
            try FHIRJSON.data([
                "resourceType": "Bundle", "type": "transaction-response",
                "entry": entries.map { entry in ["response": ["status": "201 Created"]] },
            ])
        )
    }
}
