import Foundation
import SOAPCore

/// ITI-18 Registry Stored Query (TD3.1), the queries the DMP's clients use: FindDocuments, FindSubmissionSets,
/// GetDocuments, GetAssociations, GetDocumentsAndAssociations. The patient is the query's patient id, or for the
/// queries by identifier the VIHF's `resource-id`; nothing of another patient is ever returned.
extension DMPService {
    enum StoredQuery: String, CaseIterable {
        case findDocuments = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
        case findSubmissionSets = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
        case getDocuments = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
        case getAssociations = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
        case getDocumentsAndAssociations = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
    }

    /// The values of a query parameter: `'a'`, `('a','b')` or several `Value`s, quotes and parentheses removed.
    static func values(_ query: SOAPElement, _ name: String) -> [String] {
        XDS.slot(query, name).flatMap { value in
            value.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
                .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "' ")) }
        }.filter { !$0.isEmpty }
    }

    static func queryFailure(_ code: String, _ context: String) -> String {
        "<query:AdhocQueryResponse xmlns:query=\"\(XDS.query)\" status=\"\(XDS.failure)\">"
            + XDS.errorList([XDS.Error(code: code, context: context)]) + "</query:AdhocQueryResponse>"
    }

    /// The `AdhocQueryResponse` of a request.
    func storedQuery(_ soap: SOAPRequest) throws(DMPFault) -> String {
        let body = soap.envelope.body
        guard let query = body.child("AdhocQuery", namespace: XDS.rim),
            let kind = StoredQuery(rawValue: query.attributes["id"] ?? "")
        else {
            return Self.queryFailure(
                "XDSUnknownStoredQuery",
                "stored query \(body.child("AdhocQuery", namespace: XDS.rim)?.attributes["id"] ?? "(none)") is not offered (\(StoredQuery.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let objectRefs = body.child("ResponseOption", namespace: XDS.query)?.attributes["returnType"] == "ObjectRef"
        let patient: (ins: String, oid: String)
        let vihf: VIHF
        switch kind {
        case .findDocuments, .findSubmissionSets:
            let parameter = kind == .findDocuments ? "$XDSDocumentEntryPatientId" : "$XDSSubmissionSetPatientId"
            guard let found = Self.values(query, parameter).first.flatMap(XDS.patient) else {
                return Self.queryFailure(
                    "XDSStoredQueryParamNumber",
                    "\(parameter) is required as '<INS>^^^&<OID>&ISO'"
                )
            }
            patient = found
            vihf = try checkVIHF(soap, patient: patient)
        case .getDocuments, .getAssociations, .getDocumentsAndAssociations:
            (vihf, patient) = try checkVIHFNamingPatient(soap)
        }
        var objects: [(id: String, xml: String)] = []
        do {
            switch kind {
            case .findDocuments:
                let statuses = Self.values(query, "$XDSDocumentEntryStatus")
                func codes(_ name: String) -> [String] {
                    Self.values(query, name).map { String($0.prefix { $0 != "^" }) }
                }
                let filter = DMPDocuments.DocumentFilter(
                    classCodes: codes("$XDSDocumentEntryClassCode"),
                    typeCodes: codes("$XDSDocumentEntryTypeCode"),
                    formatCodes: codes("$XDSDocumentEntryFormatCode"),
                    createdFrom: Self.values(query, "$XDSDocumentEntryCreationTimeFrom").first,
                    createdBefore: Self.values(query, "$XDSDocumentEntryCreationTimeTo").first
                )
                objects = try documentStore.findDocuments(
                    ins: patient.ins,
                    statuses: statuses.isEmpty ? [XDS.approved] : statuses,
                    structure: vihf.structure,
                    filter: filter
                )
                .map { ($0.entryUUID, $0.metadata) }
            case .findSubmissionSets:
                objects = try documentStore.submissionSets(ins: patient.ins)
            case .getDocuments, .getDocumentsAndAssociations:
                let uuids = Self.values(query, "$XDSDocumentEntryEntryUUID")
                let uniqueIds = Self.values(query, "$XDSDocumentEntryUniqueId")
                guard uuids.isEmpty != uniqueIds.isEmpty else {
                    return Self.queryFailure(
                        "XDSStoredQueryParamNumber",
                        "give $XDSDocumentEntryEntryUUID or $XDSDocumentEntryUniqueId (one of them)"
                    )
                }
                objects = try documentStore.documents(
                    ins: patient.ins,
                    uuids: uuids,
                    uniqueIds: uniqueIds,
                    structure: vihf.structure
                )
                if kind == .getDocumentsAndAssociations {
                    objects += try documentStore.associations(ins: patient.ins, of: objects.map(\.id))
                }
            case .getAssociations:
                let uuids = Self.values(query, "$uuid")
                guard !uuids.isEmpty else { return Self.queryFailure("XDSStoredQueryParamNumber", "$uuid is required") }
                objects = try documentStore.associations(ins: patient.ins, of: uuids)
            }
        } catch {
            throw DMPFault(.receiver, "Storage", "the sandbox could not read its database: \(error)")
        }
        let list = objects.map { objectRefs ? "<rim:ObjectRef xmlns:rim=\"\(XDS.rim)\" id=\"\($0.id)\"/>" : $0.xml }
            .joined()
        return "<query:AdhocQueryResponse xmlns:query=\"\(XDS.query)\" status=\"\(XDS.success)\">"
            + "<rim:RegistryObjectList xmlns:rim=\"\(XDS.rim)\">\(list)</rim:RegistryObjectList></query:AdhocQueryResponse>"
    }
}
