import Access
import Foundation
import Hummingbird
import SOAPCore
import Store

/// The DMP's SOAP 1.2 web services for DMP-compatible software ("DMPi"), under `/si-dmp-server/v2/services/…`
/// (facts and assumptions: `docs/services/dmp.md`). This part: the patients service (`/patients`) — TD0.2 existence
/// test and authorisation status, TD1.1 creation, TD1.2 closing and reactivation — behind the VIHF checks. The
/// document services (`/registry`, `/repository`: ITI-41, ITI-18, ITI-43, ITI-57) come next.
public final class DMPService: Sendable {
    public static let basePath = SandboxService.Path.dmp + "/v2/services"
    public static let patientsPath = basePath + "/patients"

    public let records: DMPRecords
    public let documentStore: DMPDocuments
    let parser = HardenedXMLParser(maximumBytes: 1 << 20, maximumDepth: 48, maximumElements: 5_000)
    /// Submissions carry documents in base64 (MTOM/XOP is to come): up to 16 MiB.
    let documentParser = HardenedXMLParser(maximumBytes: 16 << 20, maximumDepth: 64, maximumElements: 50_000)

    public init(records: DMPRecords, documents: DMPDocuments) {
        self.records = records
        self.documentStore = documents
    }

    /// HL7 v3 patient topic operations ("PRPA"), selected by their message element.
    public enum PatientOperation: String, SOAPOperation, CaseIterable {
        /// TD0.2: does the patient have a DMP, and is the calling structure authorised on it?
        case existence = "PRPA_IN201307UV02"
        /// TD1.1: create the DMP.
        case creation = "PRPA_IN201311UV02"
        /// TD1.2: close or reactivate the DMP.
        case revision = "PRPA_IN201314UV02"

        public var action: String { "urn:hl7-org:v3:\(rawValue)" }

        public func selects(_ body: SOAPElement) -> Bool { body.namespace == HL7v3.namespace && body.name == rawValue }
    }

    public func addRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        router.post(RouterPath(Self.patientsPath)) { request, _ in
            do throws(DMPFault) {
                let soap = try await SOAPEndpoint.read(request, parser: self.parser, faults: DMPFault.self)
                return SOAPEndpoint.answer(try self.patients(soap))
            } catch {
                return error.response
            }
        }
        addDocumentRoutes(to: router)
        addHabilitationRoutes(to: router)
        addFHIRRoutes(to: router)
    }

    /// The operation the body selects among `operations`, or the Fault.
    static func dispatch<Operation: SOAPOperation>(
        _ soap: SOAPRequest,
        among operations: [Operation]
    ) throws(DMPFault) -> Operation
    where Operation: RawRepresentable, Operation.RawValue == String {
        switch SOAPEndpoint.dispatch(soap, among: operations, requireAddressing: true) {
        case .success(let chosen): return chosen
        case .failure(.unknownElement(let body)):
            throw DMPFault(
                .sender,
                "UnknownMessage",
                "{\(body.namespace)}\(body.name) is not a message of this service (\(operations.map(\.rawValue).joined(separator: ", ")))"
            )
        case .failure(.missingAction(let expected)):
            throw DMPFault(
                .sender,
                "MissingAction",
                "wsa:Action is required (WS-Addressing, mustUnderstand): expected \(expected)"
            )
        case .failure(.wrongAction(let origin, let action, let expected)):
            throw DMPFault(
                .sender,
                "WrongAction",
                "\(origin) '\(action)' does not match the body: expected \(expected)"
            )
        case .failure(.conflictingActions(let http, let addressing)):
            throw DMPFault(
                .sender,
                "WrongAction",
                "the Content-Type action '\(http)' differs from wsa:Action '\(addressing)'"
            )
        }
    }

    /// The VIHF of a request, checked (for `patient` when the request is about one), or the Fault naming the attribute.
    func checkVIHF(_ soap: SOAPRequest, patient: (ins: String, oid: String)?) throws(DMPFault) -> VIHF {
        do {
            return try VIHF.check(soap.envelope, patient: patient)
        } catch {
            throw DMPFault(.sender, "VIHF", "VIHF \(error.attribute): \(error.reason)", detail: error.attribute)
        }
    }

    /// The VIHF checked, and the patient its `resource-id` names: the request has no patient of its own to compare
    /// with (a retrieve, a query by document, an authorisation), so the VIHF's patient is the one served.
    func checkVIHFNamingPatient(
        _ soap: SOAPRequest
    ) throws(DMPFault) -> (vihf: VIHF, patient: (ins: String, oid: String)) {
        let vihf = try checkVIHF(soap, patient: nil)
        guard
            let patient = vihf.attributes[VIHF.Attribute.resourceID].flatMap({
                XDS.patient($0.replacingOccurrences(of: "^NH", with: ""))
            })
        else {
            throw DMPFault(
                .sender,
                "VIHF",
                "VIHF resource-id: the patient (<INS>^^^&<OID>&ISO^NH) is required",
                detail: VIHF.Attribute.resourceID
            )
        }
        return (vihf, patient)
    }

    /// The answer envelope of a patients-service request.
    func patients(_ soap: SOAPRequest) throws(DMPFault) -> String {
        let operation = try Self.dispatch(soap, among: PatientOperation.allCases)
        let message = soap.envelope.body
        let patient = try HL7v3.patient(in: message, operation: operation)
        let vihf = try checkVIHF(soap, patient: patient)
        let reply = HL7v3.Reply(request: message, relatesTo: soap.addressing("MessageID"))
        do {
            switch operation {
            case .existence:
                let record = try records.record(ins: patient.ins)
                return reply.existence(record: record, structure: vihf.structure, patient: patient)
            case .creation:
                switch try records.create(ins: patient.ins, oid: patient.oid, structure: vihf.structure) {
                case .created: return reply.accepted("PRPA_IN201312UV02", patient: patient)
                case .found:
                    return reply.refused(
                        "PRPA_IN201313UV02",
                        code: "DMPFound",
                        "A DMP already exists for this patient",
                        patient: patient
                    )
                }
            case .revision:
                guard let current = try records.record(ins: patient.ins) else {
                    return reply.refused(
                        "PRPA_IN201316UV02",
                        code: "DMPNotFound",
                        "This patient has no DMP",
                        patient: patient
                    )
                }
                guard current.authorisedStructures.contains(vihf.structure) else {
                    return reply.refused(
                        "PRPA_IN201316UV02",
                        code: "DMPAuthorizationRequired",
                        "The structure \(vihf.structure) is not authorised on this DMP",
                        patient: patient
                    )
                }
                let wanted = try HL7v3.revision(in: message)
                if wanted.status == current.status {
                    return reply.refused(
                        "PRPA_IN201316UV02",
                        code: wanted.status == .closed ? "DMPClosed" : "DMPFound",
                        wanted.status == .closed ? "The DMP is already closed" : "The DMP is already open",
                        patient: patient
                    )
                }
                _ = try records.setStatus(ins: patient.ins, wanted.status, reason: wanted.reason)
                return reply.accepted("PRPA_IN201315UV02", patient: patient)
            }
        } catch let fault as DMPFault {
            throw fault
        } catch {
            throw DMPFault.storage(error)
        }
    }
}

/// A DMP fault: SOAP 1.2 `Fault` with a `sandbox:` subcode, the reason, and the VIHF attribute at fault when there is one.
/// HTTP status per SOAP 1.2's HTTP binding: 400 for the caller's faults, 500 for the sandbox's.
struct DMPFault: Error, SOAPServiceFault {
    static let namespace = "urn:esante-sandbox:dmp"
    var fault: SOAPFault
    var status: HTTPResponse.Status
    /// Seconds, on a refusal the client may send again later.
    var retryAfter: Int?

    init(
        _ code: SOAPFault.Code,
        _ subcode: String,
        _ reason: String,
        detail: String? = nil,
        status: HTTPResponse.Status? = nil
    ) {
        let detailXML = detail.map {
            "<dmp:attribute xmlns:dmp=\"\(Self.namespace)\">\(XMLText.escape($0))</dmp:attribute>"
        }
        fault = SOAPFault(code: code, subcode: "sandbox:\(subcode)", reason: reason, detailXML: detailXML)
        self.status = status ?? (code == .receiver ? .internalServerError : .badRequest)
    }

    /// The database failed under a request: a full disk is a temporary refusal (503, Retry-After), anything else ours.
    static func storage(_ error: any Error) -> DMPFault {
        guard StorageSpace.isExhausted(error) else {
            return DMPFault(.receiver, "Storage", "the sandbox could not read or write its database: \(error)")
        }
        var fault = DMPFault(.receiver, "InsufficientStorage", StorageSpace.message, status: .serviceUnavailable)
        fault.retryAfter = StorageSpace.retryAfterSeconds
        return fault
    }

    static func tooLarge(limit: Int) -> DMPFault {
        DMPFault(.sender, "TooLarge", "the message is over \(limit) bytes", status: .contentTooLarge)
    }

    static func unsupportedMediaType(_ contentType: String?) -> DMPFault {
        DMPFault(
            .sender,
            "MediaType",
            "Content-Type '\(contentType ?? "")': SOAP 1.2 (application/soap+xml) is expected",
            status: .unsupportedMediaType
        )
    }

    init(envelope: SOAPFault) {
        fault = envelope
        status = .badRequest
    }

    var response: Response { fault.response(status: status, retryAfter: retryAfter) }
}
