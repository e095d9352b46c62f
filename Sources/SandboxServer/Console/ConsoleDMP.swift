import DMP
import Foundation
import Hummingbird

/// The console's DMP page: the DMPs (patient, status, structures authorised), per patient the documents with their
/// codes, status, masking and replacements, and each document shown (a CDA indented, a PDF inline).
struct ConsoleDMP: Sendable {
    let layout: ConsoleLayout
    let dmp: DMPService

    func add(to console: RouterGroup<AdminRequestContext>) {
        console.get("dmp") { _, _ in try page() }
        console.get("dmp/:ins") { _, context in try patientPage(ins: context.parameters.get("ins") ?? "") }
        console.get("dmp/documents/:id") { _, context in try documentPage(id: context.parameters.get("id") ?? "") }
        console.get("dmp/documents/:id/raw") { _, context in
            let id = context.parameters.get("id") ?? ""
            // No such document: the document page's 404 says so.
            guard let (content, mimeType) = try dmp.documentStore.content(entryUUID: "urn:uuid:" + id) else {
                return try documentPage(id: id)
            }
            return Response(
                status: .ok,
                headers: [.contentType: mimeType],
                body: .init(byteBuffer: ByteBuffer(bytes: content))
            )
        }
    }

    func page() throws -> Response {
        let rows = try dmp.records.records().map { record in
            [
                "<a href=\"/console/dmp/\(HTML.url(record.ins))\"><code>\(HTML.escape(record.ins))</code></a>",
                "<code>\(HTML.escape(record.insOID))</code>",
                HTML.badge(record.status == .open ? "ouvert" : "fermé", record.status == .open ? "ok" : "ko")
                    + (record.closureReason.map { " <small class=\"muted\">\(HTML.escape($0))</small>" } ?? ""),
                HTML.escape(record.authorisedStructures.joined(separator: ", ")), HTML.escape(record.updatedAt),
            ]
        }
        let content =
            HTML.table(
                ["INS", "OID", "Statut", "Structures autorisées", "Mis à jour"],
                rows,
                id: "dmp-records",
                empty: "Aucun DMP."
            )
            + "<p class=\"muted\">Les échanges bruts (SOAP, MTOM, FHIR) sont au <a href=\"/console/journal?service=dmp\">journal</a>.</p>"
        return layout.page("DMP", active: "/console/dmp", content)
    }

    func patientPage(ins: String) throws -> Response {
        guard let record = try dmp.records.record(ins: ins) else {
            return layout.page(
                "DMP introuvable",
                active: "/console/dmp",
                HTML.notice("Aucun DMP pour cet INS.", error: true),
                status: .notFound
            )
        }
        let rows = try dmp.documentStore.entries(ins: ins).reversed().map { entry in
            let id = entry.entryUUID.replacingOccurrences(of: "urn:uuid:", with: "")
            return [
                "<a href=\"/console/dmp/documents/\(HTML.url(id))\"><code>\(HTML.escape(entry.uniqueId))</code></a>",
                HTML.badge(
                    String(entry.status.split(separator: ":").last ?? ""),
                    entry.status.hasSuffix("Approved") ? "ok" : entry.status.hasSuffix("Deleted") ? "ko" : "wait"
                ),
                HTML.escape(
                    [entry.classCode, entry.typeCode, entry.formatCode].compactMap { $0 }.joined(separator: " · ")
                ),
                HTML.escape(entry.confidentiality.isEmpty ? "—" : entry.confidentiality), HTML.escape(entry.mimeType),
                "\(entry.size)", entry.replaces.map { "<code>\(HTML.escape($0))</code>" } ?? "—",
            ]
        }
        let content =
            "<p>DMP <code>\(HTML.escape(record.ins))</code> (\(record.status == .open ? "ouvert" : "fermé")) · structures autorisées : "
            + "\(HTML.escape(record.authorisedStructures.joined(separator: ", "))) · <a href=\"/console/dmp\">← DMP</a></p>"
            + HTML.table(
                ["uniqueId", "Statut", "Classe · type · format", "Masquage", "Type MIME", "Octets", "Remplace"],
                Array(rows),
                id: "dmp-documents",
                empty: "Aucun document."
            )
        return layout.page("Documents du DMP \(record.ins)", active: "/console/dmp", content)
    }

    func documentPage(id: String) throws -> Response {
        guard let (content, mimeType) = try dmp.documentStore.content(entryUUID: "urn:uuid:" + id) else {
            return layout.page(
                "Document introuvable",
                active: "/console/dmp",
                HTML.notice("Aucun document avec cet identifiant.", error: true),
                status: .notFound
            )
        }
        var body =
            "<p>\(HTML.escape(mimeType)), \(content.count) octets · <a href=\"/console/dmp/documents/\(HTML.url(id))/raw\">brut</a></p>"
        if let signature = try dmp.documentStore.signature(ofEntry: "urn:uuid:" + id) {
            body +=
                "<p id=\"dmp-signature\">Lot de soumission signé (XAdES) par \(HTML.escape(signature.signer)) le \(HTML.escape(signature.signingTime)) · signature \(HTML.escape(signature.uniqueId))</p>"
        } else {
            body +=
                "<p id=\"dmp-signature\">Lot de soumission sans signature (reçu par FHIR ou chargé des jeux de données).</p>"
        }
        if mimeType == "application/pdf" {
            body +=
                "<embed id=\"dmp-pdf\" src=\"/console/dmp/documents/\(HTML.url(id))/raw\" type=\"application/pdf\" width=\"100%\" height=\"600\">"
        } else {
            if let header = DMPService.cdaHeader(content) {
                body += HTML.table(
                    ["Champ de l'en-tête CDA", "Valeur"],
                    header.map { [HTML.escape($0.0), HTML.escape($0.1)] },
                    id: "cda-header"
                )
            }
            body += "<pre id=\"dmp-document\">\(HTML.escape(Pretty.print(content)))</pre>"
        }
        return layout.page("Document \(id)", active: "/console/dmp", body)
    }
}
