import Foundation
import HTTPTypes
import HummingbirdTesting
import RORCSD
import SOAPCore

/// A ROR CSD MEV2.4 consumer's requests: SOAP 1.2 envelopes of the v2.4 WSDL's two operations.
enum CSDCalls {
    static func envelope(_ body: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:csd=\"urn:ihe:iti:csd:2013\" xmlns:ror=\"urn:asip:ror:2015\"><soap:Header/><soap:Body>\(body)</soap:Body></soap:Envelope>"
    }

    static func lecture(_ demand: String, urn: String = RORCSDService.lectureURN) -> String {
        envelope(
            "<csd:careServicesRequest><csd:function urn=\"\(urn)\" encapsulated=\"true\">\(demand)</csd:function></csd:careServicesRequest>"
        )
    }

    static func establishment(_ code: String, extra: String = "") -> String {
        lecture(
            "<csd:TR_Lecture-OffresSanteEtablissement><csd:etablissementDemandeLecture><csd:id_etablissement code=\"\(code)\" assigningAuthorityName=\"1.2.250.1.71.1.2.14\"/>\(extra)</csd:etablissementDemandeLecture></csd:TR_Lecture-OffresSanteEtablissement>"
        )
    }

    static func notification(_ params: String) -> String {
        envelope(
            "<ror:TR-Notif-ListeEtablissementsMajApresDate_Demande><csd:params>\(params)</csd:params></ror:TR-Notif-ListeEtablissementsMajApresDate_Demande>"
        )
    }

    static func post(
        _ running: RunningSandbox,
        _ body: String,
        client: ClientFiles,
        operation: RORCSDService.Operation? = .lecture,
        contentType: String? = nil
    ) async throws -> (TestClient.Response, SOAPElement) {
        let type =
            contentType ?? "application/soap+xml; charset=UTF-8" + (operation.map { "; action=\"\($0.action)\"" } ?? "")
        let response = try await running.request(
            "/ROR/CSD",
            method: .post,
            client: client,
            headers: [.contentType: type],
            body: body
        )
        return (response, try HardenedXMLParser().parse(Data(response.text.utf8)))
    }
}
