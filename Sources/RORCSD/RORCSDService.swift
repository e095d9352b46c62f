import Access
import FHIRCore
import Foundation
import Hummingbird
import NIOCore
import SOAPCore

/// The national ROR's legacy SOAP 1.2 interface "CSD MEV2.4" (IHE CSD with ROR extensions, WSDL v2.4,
/// namespace `urn:asip:ror:2015`) at `POST /ROR/CSD`, over the same store as the FHIR API: a capacity written
/// through FHIR is in the next CSD answer. Facts: `docs/services/ror-csd.md`. Callers are whitelisted by
/// public key (the access layer does that before this code runs).
public final class RORCSDService: Sendable {
    public static let path = SandboxService.Path.rorCSD
    static let csd = "urn:ihe:iti:csd:2013"
    static let ror = "urn:asip:ror:2015"
    /// The only function URN MEV2.4 accepts (fixed in the XSD).
    public static let lectureURN = "urn:asip:ror:lecture:offreSoinEtablissement:2017"

    /// The two operations and their soapActions.
    public enum Operation: String, Sendable, CaseIterable, SOAPOperation {
        case lecture = "careServicesRequest_Request"
        case notification = "TR-Notif-ListeEtablissementsMajApresDate_Demande"

        public var action: String {
            switch self {
            case .lecture: "urn:asip:ror:2015:stored-function:ror-search"
            case .notification: "urn:asip:ror:2015:stored-function:ror-update"
            }
        }

        public func selects(_ body: SOAPElement) -> Bool {
            switch self {
            case .lecture: body.namespace == RORCSDService.csd && body.name == "careServicesRequest"
            case .notification:
                body.namespace == RORCSDService.ror && body.name == "TR-Notif-ListeEtablissementsMajApresDate_Demande"
            }
        }
    }

    let directory: CSDDirectory
    let parser = HardenedXMLParser(maximumBytes: 256 * 1024, maximumDepth: 32, maximumElements: 2_000)

    public init(repository: ResourceRepository) {
        self.directory = CSDDirectory(repository: repository)
    }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get(RouterPath(Self.path)) { request, _ in
            try RORCSDWSDL.response(request, baseURL: "https://\(request.head.authority ?? "localhost")\(Self.path)")
        }
        router.post(RouterPath(Self.path)) { request, _ in
            do {
                let soap = try await SOAPEndpoint.read(request, parser: self.parser, faults: CSDFault.self)
                let xml =
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"\(SOAPFault.envelopeNamespace)\"><soap:Body>"
                    + (try await self.handle(soap)) + "</soap:Body></soap:Envelope>"
                return SOAPEndpoint.answer(xml)
            } catch let fault as CSDFault {
                return fault.response
            }
        }
    }

    func handle(_ soap: SOAPRequest) async throws -> String {
        let payload = soap.envelope.body
        // WS-Addressing is optional (PLATINES sends none); an action given must be this operation's (ITI-73's generic
        // action names the same lecture).
        let operation: Operation
        switch SOAPEndpoint.dispatch(
            soap,
            among: Operation.allCases,
            requireAddressing: false,
            aliases: { $0 == .lecture ? ["urn:ihe:iti:csd:2013:GetCareServicesRequest"] : [] }
        )
        {
        case .success(let chosen): operation = chosen
        case .failure(.unknownElement(let body)):
            throw CSDFault(
                400,
                "Élément {\(body.namespace)}\(body.name) inconnu : le service attend csd:careServicesRequest ou ror:TR-Notif-ListeEtablissementsMajApresDate_Demande"
            )
        case .failure(.wrongAction(let origin, let action, let expected)):
            throw CSDFault(
                400,
                "soapAction '\(action)' (\(origin)) ne correspond pas à \(payload.name) : attendu \(expected)",
                subcode: "WrongSoapAction"
            )
        case .failure(.missingAction), .failure(.conflictingActions):
            throw CSDFault(400, "soapAction incohérente", subcode: "WrongSoapAction")
        }
        do {
            switch operation {
            case .lecture: return try await lecture(payload)
            case .notification: return try await notification(payload)
            }
        } catch let fault as CSDFault {
            throw fault
        } catch {
            throw CSDFault(500, "Erreur interne du bac à sable : \(error)", code: .receiver)
        }
    }

    // MARK: TR_Lecture

    func lecture(_ request: SOAPElement) async throws -> String {
        if request.child("expression", namespace: Self.csd) != nil {
            throw CSDFault(
                400,
                "Les requêtes ad hoc (expression) ne sont pas acceptées par le ROR : utiliser function urn=\"\(Self.lectureURN)\""
            )
        }
        guard let function = request.child("function", namespace: Self.csd) else {
            throw CSDFault(400, "careServicesRequest sans function")
        }
        guard let urn = function.attributes["urn"], urn == Self.lectureURN else {
            throw CSDFault(
                400,
                "Fonction inconnue '\(function.attributes["urn"] ?? "")' : seule \(Self.lectureURN) est servie"
            )
        }
        if let reading = function.child("TR_Lecture-OffresSanteEtablissement", namespace: Self.csd) {
            guard let demand = reading.child("etablissementDemandeLecture", namespace: Self.csd) else {
                throw CSDFault(400, "TR_Lecture-OffresSanteEtablissement sans etablissementDemandeLecture")
            }
            let filters = try Filters(demand, requireDate: false)
            guard let code = demand.child("id_etablissement", namespace: Self.csd)?.attributes["code"], !code.isEmpty
            else {
                throw CSDFault(400, "id_etablissement/@code absent")
            }
            let restricted = try Self.boolean(
                demand.child("restrictedOrganisation", namespace: Self.csd)?.text,
                field: "restrictedOrganisation"
            )
            guard let organization = try await directory.establishment(code: code),
                let tree = try await directory.establishments(of: organization)
            else {
                throw CSDFault(404, "Établissement inconnu : aucun EJ ni EG d'identifiant \(code)")
            }
            let units = try await directory.units(
                of: tree.establishments,
                fields: filters.fields,
                patients: filters.patients
            )
            return directory.answer(
                .init(legalEntity: tree.legalEntity, establishments: tree.establishments, units: units),
                restricted: restricted
            )
        }
        if let reading = function.child("TR_Lecture-OffreSanteOrganisationInterne", namespace: Self.csd) {
            guard let code = reading.child("organisationID", namespace: Self.csd)?.attributes["code"], !code.isEmpty
            else {
                throw CSDFault(400, "organisationID/@code absent")
            }
            return try await internalOrganisation(code: code)
        }
        throw CSDFault(
            400,
            "function attend TR_Lecture-OffresSanteEtablissement ou TR_Lecture-OffreSanteOrganisationInterne"
        )
    }

    /// An internal organisation (pôle: the UEs it holds) or a UE (its offer identifier), under its EG and EJ.
    func internalOrganisation(code: String) async throws -> String {
        guard code.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "," && $0 != "|" }) else {
            throw CSDFault(400, "organisationID/@code '\(code)' invalide")
        }
        var units: [FHIRObject] = []
        var establishmentID: String?
        if let pole = try await directory.search("Organization", [("identifier", code)]).first,
            let parent = pole.reference("partOf"),
            let parentOrganization = try await directory.read("Organization", parent),
            parentOrganization.reference("partOf") != nil
        {
            units = try await directory.search("HealthcareService", [("organization", pole.id), ("_sort", "_id")])
            establishmentID = parent
        } else if let unit = try await directory.search("HealthcareService", [("identifier", code)]).first,
            let owner = unit.reference("providedBy"),
            let organization = try await directory.read("Organization", owner)
        {
            units = [unit]
            // Provided by the EG itself, or by a pôle of it.
            establishmentID =
                try await directory.read("Organization", organization.reference("partOf") ?? "")?.reference("partOf")
                == nil
                ? organization.id : organization.reference("partOf")
        }
        guard let establishmentID, let establishment = try await directory.read("Organization", establishmentID),
            let tree = try await directory.establishments(of: establishment)
        else {
            throw CSDFault(404, "Organisation interne inconnue : aucun pôle ni unité d'identifiant \(code)")
        }
        var offer = CSDDirectory.Offer(legalEntity: tree.legalEntity, establishments: tree.establishments, units: [])
        for unit in units {
            let place = try await unit.reference("location").asyncFlatMap { try await directory.read("Location", $0) }
            offer.units.append((unit, establishmentID, place))
        }
        return directory.answer(offer, restricted: false)
    }

    // MARK: TR-Notif

    /// The establishments (EG) with anything updated since `dateRef`: the EG, its offers or their places.
    func notification(_ request: SOAPElement) async throws -> String {
        guard let params = request.child("params", namespace: Self.csd) else { throw CSDFault(400, "params absent") }
        let filters = try Filters(params, requireDate: true)
        let since = "ge" + filters.date!
        var changed = Set<String>()
        // The EG of each owner, read once: a far dateRef lists every offer and place of the country.
        var establishments: [String: String?] = [:]
        func establishment(ofOwner owner: String?) async throws -> String? {
            guard let owner else { return nil }
            if let known = establishments[owner] { return known }
            var result: String?
            if let organization = try await directory.read("Organization", owner),
                let parent = organization.reference("partOf")
            {
                let grandParent = try await directory.read("Organization", parent)?.reference("partOf")
                result = grandParent == nil ? organization.id : parent
            }
            establishments[owner] = result
            return result
        }
        for organization in try await directory.search("Organization", [("_lastUpdated", since)]) {
            if let id = try await establishment(ofOwner: organization.id) { changed.insert(id) }
        }
        for unit in try await directory.search("HealthcareService", [("_lastUpdated", since)]) {
            if let id = try await establishment(ofOwner: unit.reference("providedBy")) { changed.insert(id) }
        }
        for place in try await directory.search("Location", [("_lastUpdated", since)]) {
            if let id = try await establishment(ofOwner: place.reference("managingOrganization")) { changed.insert(id) }
        }
        var entries = ""
        var count = 0
        for id in changed.sorted() {
            guard let establishment = try await directory.read("Organization", id) else { continue }
            let units = try await directory.units(
                of: [establishment],
                fields: filters.fields,
                patients: filters.patients
            )
            if !filters.fields.isEmpty || !filters.patients.isEmpty, units.isEmpty { continue }
            let fields = Set(units.compactMap { $0.unit.activityField }).sorted()
            count += 1
            entries +=
                "<csd:etablissementReponseNotif><csd:id_etablissement code=\"\(XMLText.escape(establishment.identifier(typeCode: "40") ?? id))\" assigningAuthorityName=\"\(CSDDirectory.Scheme.establishmentID)\"/>"
            entries += fields.map {
                "<csd:typeActivity code=\"\(XMLText.escape($0))\" codingScheme=\"\(CSDDirectory.Scheme.activityField)\"/>"
            }.joined()
            entries += "<csd:restrictedOrganisation>false</csd:restrictedOrganisation></csd:etablissementReponseNotif>"
        }
        return
            "<ror:TR-Notif-ListeEtablissementMajApresDate_Reponse xmlns:ror=\"\(Self.ror)\" xmlns:csd=\"\(Self.csd)\">\(entries)<csd:result>\(count)</csd:result></ror:TR-Notif-ListeEtablissementMajApresDate_Reponse>"
    }

    // MARK: Parameters

    /// `dateRef`, `typeActivity`*, `supportedPatient`*.
    struct Filters {
        var date: String?
        var fields: Set<String>
        var patients: Set<String>

        init(_ element: SOAPElement, requireDate: Bool) throws {
            let text = element.child("dateRef", namespace: RORCSDService.csd)?.text
            if requireDate, (text ?? "").isEmpty { throw CSDFault(400, "dateRef absent (obligatoire)") }
            if let text, !text.isEmpty {
                guard let instant = RORCSDService.instant(text) else {
                    throw CSDFault(400, "dateRef '\(text)' n'est pas un xs:dateTime (AAAA-MM-JJThh:mm:ss[Z|±hh:mm])")
                }
                date = instant
            }
            func codes(_ name: String) throws -> Set<String> {
                Set(
                    try element.children(name, namespace: RORCSDService.csd).map { child in
                        guard let code = child.attributes["code"], !code.isEmpty else {
                            throw CSDFault(400, "\(name)/@code absent")
                        }
                        return code
                    }
                )
            }
            fields = try codes("typeActivity")
            patients = try codes("supportedPatient")
        }
    }

    /// An `xs:dateTime` as a FHIR instant (no offset: UTC, documented).
    static func instant(_ text: String) -> String? {
        let pattern = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"#
        guard text.range(of: pattern, options: .regularExpression) != nil else { return nil }
        let hasZone = text.hasSuffix("Z") || text.dropFirst(19).contains("+") || text.dropFirst(19).contains("-")
        let value = hasZone ? text : text + "Z"
        guard FHIRDate.range(of: value) != nil else { return nil }
        return value
    }

    static func boolean(_ text: String?, field: String) throws -> Bool {
        switch text {
        case nil, "", "false", "0": return false
        case "true", "1": return true
        default: throw CSDFault(400, "\(field) '\(text!)' n'est pas un xs:boolean")
        }
    }
}

/// A CSD error: SOAP 1.2 Fault whose detail is the WSDL's `ror:erreur` (`@code` integer, `@message`), HTTP 500
/// as SOAP stacks send faults.
struct CSDFault: Error, SOAPServiceFault {
    var fault: SOAPFault
    var status: HTTPResponse.Status

    init(
        _ code: Int,
        _ message: String,
        subcode: String? = nil,
        code soapCode: SOAPFault.Code = .sender,
        status: HTTPResponse.Status = .internalServerError
    ) {
        let detail =
            "<ror:erreur xmlns:ror=\"\(RORCSDService.ror)\" code=\"\(code)\" message=\"\(XMLText.escape(message))\"/>"
        self.fault = SOAPFault(
            code: soapCode,
            subcode: subcode.map { "sandbox:\($0)" },
            reason: message,
            detailXML: detail,
            language: "fr"
        )
        self.status = status
    }

    static func tooLarge(limit: Int) -> CSDFault {
        CSDFault(413, "Message refusé : plus de \(limit) octets", status: .contentTooLarge)
    }

    static func unsupportedMediaType(_ contentType: String?) -> CSDFault {
        CSDFault(
            415,
            "Content-Type '\(contentType ?? "")' : le service attend du SOAP 1.2 (application/soap+xml; action=\"…\")",
            status: .unsupportedMediaType
        )
    }

    init(envelope: SOAPFault) {
        self.init(
            400,
            envelope.reason,
            subcode: envelope.code == .versionMismatch ? nil : "MalformedMessage",
            code: envelope.code
        )
    }

    var response: Response { fault.response(status: status) }
}
