import FHIRCore
import Foundation
import Hummingbird
import SOAPCore

/// TD3.3a–d through FHIR, as the PDSm4DMP draft maps them: `PATCH DocumentReference?identifier=<system>|urn:oid:<uniqueId>`
/// with a JSON Patch on `securityLabel` (masking to professionals, invisibility to the patient, `N` to undo), `status`
/// (`entered-in-error`: deletion, by the submitting structure only) or the isArchived extension. The patch becomes the
/// ITI-57 submission and is stored by the same checks; the answer is the updated DocumentReference.
extension DMPService {
    static let confidentialityLabels: Set<String> = [XDS.maskedToProfessionals, XDS.invisibleToPatient, "N"]

    func patchDocument(_ request: Request, structure: String) async throws -> Response {
        let query = try Self.query(request, allowed: ["identifier"])
        guard let identifier = query["identifier"] else {
            throw FHIRError(
                .badRequest,
                code: "required",
                "The PATCH names its document: ?identifier=urn:ietf:rfc:3986|urn:oid:<uniqueId>",
                expression: ["identifier"]
            )
        }
        let value = identifier.split(separator: "|", maxSplits: 1).last.map(String.init) ?? ""
        let uniqueId = value.hasPrefix("urn:oid:") ? String(value.dropFirst(8)) : value
        // A document masked to the caller is as absent to it as one that does not exist.
        guard let entry = try documentStore.entry(uniqueId: uniqueId), entry.status != XDS.deleted,
            entry.isVisible(to: structure)
        else {
            throw FHIRError(.notFound, code: "not-found", "No document \(uniqueId)", expression: ["identifier"])
        }
        let operations = try await FHIRBody.jsonPatch(request, maximumBody: 64 << 10)
        var labels = entry.confidentialityCodes
        var status = entry.status
        for (index, operation) in operations.enumerated() {
            let op = operation["op"]?.string ?? ""
            let path = operation["path"]?.string ?? ""
            func refused(_ text: String) -> FHIRError {
                FHIRError(.unprocessableContent, code: "invalid", "Operation \(index): \(text)", expression: [path])
            }
            if path.hasPrefix("/securityLabel/") {
                let position = path.dropFirst("/securityLabel/".count)
                let at = position == "-" ? labels.count : Int(position) ?? -1
                if op == "remove" {
                    guard labels.indices.contains(at) else { throw refused("no security label at \(position)") }
                    labels.remove(at: at)
                    continue
                }
                guard op == "add" || op == "replace" else { throw refused("op '\(op)' on a security label") }
                guard let code = operation["value"]?["coding"]?.array?.first?["code"]?.string,
                    Self.confidentialityLabels.contains(code)
                else {
                    throw refused(
                        "the label must be coded \(Self.confidentialityLabels.sorted().joined(separator: ", "))"
                    )
                }
                // The draft replaces /securityLabel/0 on a document that may have none: that is an add.
                guard (0...labels.count).contains(at) else { throw refused("no security label at \(position)") }
                if op == "replace", at < labels.count { labels[at] = code } else { labels.insert(code, at: at) }
            } else if path == "/status" {
                guard op == "replace", operation["value"]?.string == "entered-in-error" else {
                    throw refused("status may only be replaced by entered-in-error (deletion)")
                }
                guard entry.authorStructure == structure else {
                    throw FHIRError(
                        .forbidden,
                        code: "forbidden",
                        "Only the structure that submitted the document may delete it",
                        expression: [path]
                    )
                }
                status = XDS.deleted
            } else if path == "/extension[url:'\(Self.isArchivedExtension)']/valueBoolean" {
                guard op == "replace" || op == "add", let archived = operation["value"]?.bool else {
                    throw refused("the isArchived extension is replaced by a boolean")
                }
                status = archived ? XDS.archived : XDS.approved
            } else {
                throw refused(
                    "path must be /securityLabel/<n>, /status or /extension[url:'\(Self.isArchivedExtension)']/valueBoolean"
                )
            }
        }
        let codes = labels.reduce(into: [String]()) { kept, code in
            if code != "N", !kept.contains(code) { kept.append(code) }
        }
        var objects: [SOAPElement] = []
        if status != entry.status {
            objects.append(
                SOAPElement(
                    namespace: XDS.rim,
                    name: "Association",
                    attributes: [
                        "associationType": XDS.updateAvailabilityStatus, "sourceObject": "SubmissionSet01",
                        "targetObject": entry.entryUUID, "id": "urn:uuid:\(UUID().uuidString.lowercased())",
                    ],
                    children: [XDS.slot("OriginalStatus", entry.status), XDS.slot("NewStatus", status)]
                )
            )
        }
        if codes.joined(separator: ",") != entry.confidentiality {
            objects.append(
                SOAPElement(
                    namespace: XDS.rim,
                    name: "ExtrinsicObject",
                    attributes: ["id": entry.entryUUID, "lid": entry.entryUUID, "mimeType": entry.mimeType],
                    children: codes.map { XDS.classification(XDS.Scheme.confidentialityCode, $0, entry.entryUUID) }
                )
            )
        }
        // A document has a DMP (ITI-41 requires one); its OID is the patient's INS authority.
        let oid = try records.record(ins: entry.ins)?.insOID ?? ""
        if !objects.isEmpty {
            let update = SOAPElement(
                namespace: XDS.lcm,
                name: "SubmitObjectsRequest",
                children: [SOAPElement(namespace: XDS.rim, name: "RegistryObjectList", children: objects)]
            )
            let errors = try documentStore.update(update, patient: (entry.ins, oid), structure: structure)
            guard errors.isEmpty else { throw Self.refusal(errors, "The update was refused") }
        }
        let updated = try documentStore.entry(uniqueId: uniqueId) ?? entry
        return FHIRResponse.json(.ok, try FHIRJSON.data(Self.documentReference(updated, oid: oid)))
    }
}
