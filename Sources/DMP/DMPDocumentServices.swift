import Foundation
import Hummingbird
import SOAPCore
import Store

/// The document services: `/repository` (TD2.1 ITI-41 Provide and Register Document Set-b, TD3.2 ITI-43 Retrieve
/// Document Set) and `/registry` (TD3.1 ITI-18 Registry Stored Query, FindDocuments). XDS errors are answered as a
/// `RegistryResponse` with a `RegistryErrorList` (HTTP 200, as XDS does); SOAP-level errors as Faults.
extension DMPService {
    public static let repositoryPath = basePath + "/repository"
    public static let registryPath = basePath + "/registry"

    public enum DocumentOperation: String, SOAPOperation, CaseIterable {
        case provideAndRegister = "ProvideAndRegisterDocumentSet-b"
        case retrieve = "RetrieveDocumentSet"
        case storedQuery = "RegistryStoredQuery"
        /// ITI-57 (TD3.3): masking, visibility, archiving, deletion.
        case update = "UpdateDocumentSet"

        public var action: String { self == .update ? "urn:ihe:iti:2010:\(rawValue)" : "urn:ihe:iti:2007:\(rawValue)" }

        var element: (namespace: String, name: String) {
            switch self {
            case .provideAndRegister: (XDS.xdsb, "ProvideAndRegisterDocumentSetRequest")
            case .retrieve: (XDS.xdsb, "RetrieveDocumentSetRequest")
            case .storedQuery: (XDS.query, "AdhocQueryRequest")
            case .update: (XDS.lcm, "SubmitObjectsRequest")
            }
        }

        public func selects(_ body: SOAPElement) -> Bool {
            body.namespace == element.namespace && body.name == element.name
        }
    }

    func addDocumentRoutes<Context: RequestContext>(to router: Router<Context>) {
        for (path, operations) in [
            (Self.repositoryPath, [DocumentOperation.provideAndRegister, .retrieve]),
            (Self.registryPath, [.storedQuery, .update]),
        ] {
            router.post(RouterPath(path)) { request, _ in
                do throws(DMPFault) {
                    let soap = try await SOAPEndpoint.read(request, parser: self.documentParser, faults: DMPFault.self)
                    return try self.documents(soap, among: operations)
                } catch {
                    return error.response
                }
            }
        }
    }

    /// The answer: a SOAP 1.2 envelope, or for a retrieval that came as MTOM, an MTOM answer with the documents as
    /// binary parts.
    func documents(_ soap: SOAPRequest, among operations: [DocumentOperation]) throws(DMPFault) -> Response {
        var attachments: [(id: String, mimeType: String, data: Data)] = []
        let envelope = try documentEnvelope(soap, among: operations, attachments: &attachments)
        guard soap.isMTOM, !attachments.isEmpty else { return SOAPEndpoint.answer(envelope) }
        return MTOM.response(envelope: envelope, attachments: attachments)
    }

    /// The answer's envelope; `attachments`: the documents a retrieval over MTOM sends as parts.
    func documentEnvelope(
        _ soap: SOAPRequest,
        among operations: [DocumentOperation],
        attachments: inout [(id: String, mimeType: String, data: Data)]
    ) throws(DMPFault) -> String {
        let operation = try Self.dispatch(soap, among: operations)
        let body = soap.envelope.body
        let relatesTo = soap.addressing("MessageID")
        do {
            switch operation {
            case .provideAndRegister, .update:
                // Both carry a submission set naming the patient.
                let set = body.descendants.first { $0.name == "RegistryPackage" }
                let patientId =
                    set.flatMap { XDS.externalIdentifier($0, scheme: XDS.Scheme.submissionSetPatientId) } ?? ""
                guard let patient = XDS.patient(patientId) else {
                    return Self.envelope(
                        action: operation.action + "Response",
                        relatesTo: relatesTo,
                        XDS.registryResponse(errors: [
                            XDS.Error(
                                code: "XDSRegistryMetadataError",
                                context: "the submission set's patientId '\(patientId)' is not <INS>^^^&<OID>&ISO"
                            )
                        ])
                    )
                }
                let vihf = try checkVIHF(soap, patient: patient)
                let errors =
                    operation == .update
                    ? try documentStore.update(body, patient: patient, structure: vihf.structure)
                    : try documentStore.provideAndRegister(
                        body,
                        patient: patient,
                        structure: vihf.structure,
                        requiresSignature: true
                    )
                return Self.envelope(
                    action: operation.action + "Response",
                    relatesTo: relatesTo,
                    XDS.registryResponse(errors: errors)
                )
            case .storedQuery:
                return Self.envelope(
                    action: "urn:ihe:iti:2007:RegistryStoredQueryResponse",
                    relatesTo: relatesTo,
                    try storedQuery(soap)
                )
            case .retrieve:
                let patient = try checkVIHFNamingPatient(soap).patient
                var responses = ""
                var errors: [XDS.Error] = []
                for request in body.children where request.name == "DocumentRequest" {
                    let uniqueId = request.child("DocumentUniqueId")?.text ?? ""
                    let repository = request.child("RepositoryUniqueId")?.text ?? ""
                    guard repository == XDS.repositoryUniqueId else {
                        errors.append(
                            XDS.Error(
                                code: "XDSUnknownRepositoryId",
                                context: "repository \(repository) is not this one (\(XDS.repositoryUniqueId))",
                                location: uniqueId
                            )
                        )
                        continue
                    }
                    guard let (content, mimeType) = try documentStore.retrieve(uniqueId: uniqueId, ins: patient.ins)
                    else {
                        errors.append(
                            XDS.Error(
                                code: "XDSDocumentUniqueIdError",
                                context: "no document \(uniqueId) for this patient",
                                location: uniqueId
                            )
                        )
                        continue
                    }
                    let document: String
                    if soap.isMTOM {
                        let id = "document-\(attachments.count + 1)@esante-sandbox"
                        attachments.append((id, mimeType, content))
                        document = "<xop:Include xmlns:xop=\"\(MTOM.xopNamespace)\" href=\"cid:\(id)\"/>"
                    } else {
                        document = content.base64EncodedString()
                    }
                    responses +=
                        "<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>\(repository)</xdsb:RepositoryUniqueId>"
                        + "<xdsb:DocumentUniqueId>\(XMLText.escape(uniqueId))</xdsb:DocumentUniqueId><xdsb:mimeType>\(XMLText.escape(mimeType))</xdsb:mimeType>"
                        + "<xdsb:Document>\(document)</xdsb:Document></xdsb:DocumentResponse>"
                }
                return Self.envelope(
                    action: operation.action + "Response",
                    relatesTo: relatesTo,
                    "<xdsb:RetrieveDocumentSetResponse xmlns:xdsb=\"\(XDS.xdsb)\">\(XDS.registryResponse(errors: errors))\(responses)</xdsb:RetrieveDocumentSetResponse>"
                )
            }
        } catch let fault as DMPFault {
            throw fault
        } catch  where StorageSpace.isExhausted(error) && operation != .retrieve && operation != .storedQuery {
            // XDS answers a submission it cannot keep with its own error, in the RegistryResponse (ITI TF-3 4.2.4.1).
            return Self.envelope(
                action: operation.action + "Response",
                relatesTo: relatesTo,
                XDS.registryResponse(errors: [
                    XDS.Error(
                        code: operation == .update ? "XDSRegistryOutOfResources" : "XDSRepositoryOutOfResources",
                        context: StorageSpace.message
                    )
                ])
            )
        } catch {
            throw DMPFault.storage(error)
        }
    }

    /// A SOAP 1.2 answer with WS-Addressing.
    static func envelope(action: String, relatesTo: String?, _ body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="\(SOAPFault.envelopeNamespace)" \
        xmlns:wsa="\(SOAPEndpoint.addressingNamespace)"><soap:Header><wsa:Action>\(action)</wsa:Action>\
        <wsa:MessageID>urn:uuid:\(UUID().uuidString.lowercased())</wsa:MessageID>\
        \(relatesTo.map { "<wsa:RelatesTo>\(XMLText.escape($0))</wsa:RelatesTo>" } ?? "")</soap:Header>\
        <soap:Body>\(body)</soap:Body></soap:Envelope>
        """
    }
}
