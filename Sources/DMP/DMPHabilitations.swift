import Foundation
import Hummingbird
import SOAPCore

/// TD0.3 `setAuthorization` (`/habilitations`): the calling structure (the VIHF's `Identifiant_Structure`) adds or
/// removes its authorisation on the DMP of the VIHF's patient (`resource-id`). The message's schema is not public:
/// the sandbox reads `action` (`AJOUT` or `SUPPRESSION`) below `setAuthorization` and answers a `status`.
extension DMPService {
    public static let habilitationsPath = basePath + "/habilitations"
    static let habilitationsNamespace = "urn:si-dmp-habilitations"

    public enum HabilitationOperation: String, SOAPOperation, CaseIterable {
        case setAuthorization

        public var action: String { "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization" }

        public func selects(_ body: SOAPElement) -> Bool {
            body.namespace == DMPService.habilitationsNamespace && body.name == "setAuthorization"
        }
    }

    func addHabilitationRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post(RouterPath(Self.habilitationsPath)) { request, _ in
            do throws(DMPFault) {
                let soap = try await SOAPEndpoint.read(request, parser: self.parser, faults: DMPFault.self)
                return SOAPEndpoint.answer(try self.setAuthorization(soap))
            } catch {
                return error.response
            }
        }
    }

    func setAuthorization(_ soap: SOAPRequest) throws(DMPFault) -> String {
        _ = try Self.dispatch(soap, among: HabilitationOperation.allCases)
        let (vihf, patient) = try checkVIHFNamingPatient(soap)
        let action = soap.envelope.body.descendants.first { $0.name == "action" }?.text ?? ""
        guard action == "AJOUT" || action == "SUPPRESSION" else {
            throw DMPFault(
                .sender,
                "InvalidMessage",
                "setAuthorization/action must be AJOUT or SUPPRESSION, not '\(action)'"
            )
        }
        let status: String
        do {
            if let record = try records.record(ins: patient.ins) {
                if record.status == .closed, action == "AJOUT" {
                    status = "DMPClosed"
                } else {
                    _ = try records.setAuthorisation(
                        ins: patient.ins,
                        structure: vihf.structure,
                        granted: action == "AJOUT"
                    )
                    status = "OK"
                }
            } else {
                status = "DMPNotFound"
            }
        } catch {
            throw DMPFault.storage(error)
        }
        return Self.envelope(
            action: HabilitationOperation.setAuthorization.action + "Response",
            relatesTo: soap.addressing("MessageID"),
            "<setAuthorizationResponse xmlns=\"\(Self.habilitationsNamespace)\"><status>\(status)</status></setAuthorizationResponse>"
        )
    }
}
