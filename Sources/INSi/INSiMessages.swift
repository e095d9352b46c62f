import Access
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SOAPCore

/// An INSi error as the real service sends it: SOAP 1.2 `Fault`, HTTP 500, a `soap:Subcode` and a `siram:Erreur`
/// detail (`code`, `severite`, the request's `messageID`), reason in French. Codes the public material shows are
/// used as such (`siram_100`/`desir_550`, `DESIR_560`, `insi_101`); the others are the sandbox's, prefixed `sbx_`
/// (the CNAM's full list is not public).
struct INSiFault: Error, SOAPServiceFault {
    var fault: SOAPFault
    var status: HTTPResponse.Status

    init(
        _ code: SOAPFault.Code,
        _ errorCode: String,
        subcode: String? = nil,
        reason: String,
        message: String? = nil,
        messageID: String? = nil,
        status: HTTPResponse.Status = .internalServerError
    ) {
        let id = messageID.map { " messageID=\"\(XMLText.escape($0))\"" } ?? ""
        let detail =
            "<siram:Erreur xmlns:siram=\"\(INSiNamespace.siram)\" code=\"\(XMLText.escape(errorCode))\" severite=\"erreur\"\(id)>\(XMLText.escape(message ?? reason))</siram:Erreur>"
        self.fault = SOAPFault(
            code: code,
            subcode: "env:\(subcode ?? errorCode)",
            reason: reason,
            detailXML: detail,
            language: "fr"
        )
        self.status = status
    }

    init(
        _ code: SOAPFault.Code,
        _ errorCode: String,
        _ reason: String,
        messageID: String? = nil,
        status: HTTPResponse.Status = .internalServerError
    ) {
        self.init(code, errorCode, reason: reason, messageID: messageID, status: status)
    }

    /// A refusal of the envelope itself (malformed XML, DTD, limits, SOAP 1.1).
    static func tooLarge(limit: Int) -> INSiFault {
        INSiFault(.sender, "sbx_taille", "Message refusé : plus de \(limit) octets", status: .contentTooLarge)
    }

    static func unsupportedMediaType(_ contentType: String?) -> INSiFault {
        INSiFault(
            .sender,
            "sbx_content_type",
            "Content-Type '\(contentType ?? "")' : le service attend du SOAP 1.2 (application/soap+xml; action=\"…\")",
            status: .unsupportedMediaType
        )
    }

    init(envelope: SOAPFault) {
        self.init(
            envelope.code,
            envelope.code == .versionMismatch ? "sbx_version_soap" : "sbx_enveloppe",
            reason: envelope.reason
        )
        if envelope.code == .versionMismatch { fault.subcode = nil }
    }

    var response: Response { fault.response(status: status) }

    static func storage(_ error: any Error, messageID: String?) -> INSiFault {
        INSiFault(.receiver, "sbx_base", reason: "Erreur interne du bac à sable : \(error)", messageID: messageID)
    }

    /// A request field that breaks a rule: `sbx_requete` naming the element.
    static func invalid(_ field: String, _ message: String, messageID: String?) -> INSiFault {
        INSiFault(.sender, "sbx_requete", reason: "Requête invalide : \(field) : \(message)", messageID: messageID)
    }
}

/// Reading and checking one request, element by element, each refusal naming what is wrong.
struct INSiRequest {
    let envelope: SOAPEnvelope
    let messageID: String?

    init(envelope: SOAPEnvelope, messageID: String?) {
        self.envelope = envelope
        self.messageID = messageID
    }

    /// The operation, from the body element, checked against `wsa:Action` and the Content-Type's `action`.
    func operation(_ soap: SOAPRequest) throws(INSiFault) -> INSiOperation {
        switch SOAPEndpoint.dispatch(soap, among: INSiOperation.allCases, requireAddressing: true) {
        case .success(let operation): return operation
        case .failure(.unknownElement(let body)):
            throw INSiFault(
                .sender,
                "sbx_operation",
                "Élément {\(body.namespace)}\(body.name) inconnu : le service attend RECSANSVITALE (\(INSiNamespace.traitsRequest)) ou RECVITALE (\(INSiNamespace.vitaleRequest))",
                messageID: messageID
            )
        case .failure(.missingAction(let expected)):
            throw INSiFault(
                .sender,
                "sbx_action",
                "En-tête wsa:Action absent (attendu : \(expected))",
                messageID: messageID
            )
        case .failure(.wrongAction(_, let action, let expected)):
            throw INSiFault(
                .sender,
                "sbx_action",
                "wsa:Action '\(action)' ne correspond pas au corps \(envelope.body.name) (attendu : \(expected))",
                messageID: messageID
            )
        case .failure(.conflictingActions(let http, let addressing)):
            throw INSiFault(
                .sender,
                "sbx_action",
                "L'action du Content-Type '\(http)' diffère de wsa:Action '\(addressing)'",
                messageID: messageID
            )
        }
    }

    var assertions: [SOAPElement] {
        envelope.headerBlock("Security", namespace: INSiNamespace.security)?.children(
            "Assertion",
            namespace: INSiNamespace.saml2
        ) ?? []
    }

    /// The health professional's assertion (CPx mode): its NameID is qualified `CPS`.
    var professionalAssertion: SOAPElement? {
        assertions.first { $0.path("Subject", "NameID")?.attributes["NameQualifier"] == "CPS" }
    }

    /// mTLS mode: the certificate's CN is `INSI-AUTO` or `INSI-MANU`. CPx mode: the CPS assertion's structure
    /// (issuer DN, `NameID` qualified `CPS`, `identifiantFacturation` and `secteurActivite`, an enveloped
    /// signature). The signature is not verified: the sandbox has no CPS card PKI.
    func checkCaller(identity: ClientIdentity?) throws(INSiFault) {
        guard let assertion = professionalAssertion else {
            let commonName = identity?.subject.value(of: "CN")
            guard commonName == "INSI-AUTO" || commonName == "INSI-MANU" else {
                throw INSiFault(
                    .sender,
                    "DESIR_560",
                    reason: "Niveau d'accès insuffisant",
                    message:
                        "Vous ne disposez pas des droits suffisants pour accéder à ce service (CN du certificat : '\(commonName ?? "")' ; attendu INSI-AUTO ou INSI-MANU)",
                    messageID: messageID
                )
            }
            return
        }
        func refuse(_ message: String) -> INSiFault {
            INSiFault(.sender, "sbx_assertion", "Assertion CPS invalide : \(message)", messageID: messageID)
        }
        guard let issuer = assertion.child("Issuer", namespace: INSiNamespace.saml2), !issuer.text.isEmpty else {
            throw refuse("Issuer absent (le DN du certificat de la carte CPS)")
        }
        guard (try? SubjectDN(parsing: issuer.text)) != nil else {
            throw refuse("Issuer '\(issuer.text)' n'est pas un DN")
        }
        guard let nameID = assertion.path("Subject", "NameID"), !nameID.text.isEmpty else {
            throw refuse("Subject/NameID (identifiant de la carte) vide")
        }
        let attributes =
            assertion.child("AttributeStatement", namespace: INSiNamespace.saml2)?.children(
                "Attribute",
                namespace: INSiNamespace.saml2
            ) ?? []
        for name in ["identifiantFacturation", "secteurActivite"] {
            guard let attribute = attributes.first(where: { $0.attributes["Name"] == name }),
                attribute.children.contains(where: { $0.name == "AttributeValue" && !$0.text.isEmpty })
            else {
                throw refuse("attribut \(name) absent ou vide")
            }
        }
        guard assertion.child("Signature", namespace: "http://www.w3.org/2000/09/xmldsig#") != nil else {
            throw refuse("signature (ds:Signature) absente")
        }
    }

    /// `wsa:MessageID`, `ContexteBAM` (version 01_02) and `ContexteLPS` (version 01_00, `LPS/IDAM`).
    func checkContexts() throws(INSiFault) {
        func missing(_ what: String) -> INSiFault {
            INSiFault(.sender, "sbx_entete", "En-tête invalide : \(what)", messageID: messageID)
        }
        guard let messageID, messageID.hasPrefix("uuid:"), UUID(uuidString: String(messageID.dropFirst(5))) != nil
        else {
            throw missing("wsa:MessageID doit valoir uuid:<UUID> (reçu : '\(messageID ?? "")')")
        }
        guard let bam = envelope.headerBlock("ContexteBAM", namespace: INSiNamespace.contextBAM) else {
            throw missing("ctxbam:ContexteBAM absent (\(INSiNamespace.contextBAM))")
        }
        guard bam.attributes["Version"] == "01_02" else {
            throw missing("ContexteBAM/@Version '\(bam.attributes["Version"] ?? "")' (attendu 01_02)")
        }
        for name in ["Id", "Temps", "Emetteur"] where (bam.child(name)?.text ?? "").isEmpty {
            throw missing("ContexteBAM/\(name) absent")
        }
        guard bam.child("COUVERTURE") != nil else { throw missing("ContexteBAM/COUVERTURE absent (il peut être vide)") }
        guard let lps = envelope.headerBlock("ContexteLPS", namespace: INSiNamespace.contextLPS) else {
            throw missing("ctxlps:ContexteLPS absent (\(INSiNamespace.contextLPS))")
        }
        guard lps.attributes["Version"] == "01_00" else {
            throw missing("ContexteLPS/@Version '\(lps.attributes["Version"] ?? "")' (attendu 01_00)")
        }
        guard !idam.isEmpty else { throw missing("ContexteLPS/LPS/IDAM (numéro d'autorisation CNDA) absent") }
    }

    var idam: String {
        envelope.headerBlock("ContexteLPS", namespace: INSiNamespace.contextLPS)?.path("LPS", "IDAM")?.text ?? ""
    }

    /// The traits of `RECSANSVITALE`, checked by the Référentiel INS rules.
    func traits() throws(INSiFault) -> INSTraits {
        try traits(in: envelope.body)
    }

    /// The INS supplied and the traits of a verification (`RequeteUnitaire/IndividuVerifie`).
    func verification() throws(INSiFault) -> (HistoricINS, INSTraits) {
        guard let individual = envelope.body.child("IndividuVerifie") else {
            throw INSiFault.invalid("RequeteUnitaire/IndividuVerifie", "absent", messageID: messageID)
        }
        guard let supplied = individual.path("INSFourni", "IdIndividu"),
            let matricule = supplied.child("NumIdentifiant")?.text,
            let key = supplied.child("Cle")?.text
        else {
            throw INSiFault.invalid(
                "IndividuVerifie/INSFourni/IdIndividu",
                "NumIdentifiant et Cle requis",
                messageID: messageID
            )
        }
        do { try INSTraits.checkMatricule(matricule, field: "INSFourni/IdIndividu/NumIdentifiant") } catch {
            throw INSiFault.invalid(error.field, error.message, messageID: messageID)
        }
        guard let traits = individual.child("TraitsIdentiteIndividu") else {
            throw INSiFault.invalid("IndividuVerifie/TraitsIdentiteIndividu", "absent", messageID: messageID)
        }
        return (HistoricINS(matricule: matricule, key: key), try self.traits(in: traits))
    }

    func traits(in body: SOAPElement) throws(INSiFault) -> INSTraits {
        func value(_ name: String) throws(INSiFault) -> String {
            guard let text = body.child(name)?.text, !text.isEmpty else {
                throw INSiFault.invalid(name, "trait absent", messageID: messageID)
            }
            return text
        }
        guard body.children("Prenom").count <= 1 else {
            throw INSiFault.invalid(
                "Prenom",
                "un seul prénom par appel (chaque prénom tour à tour, puis la liste séparée par des espaces)",
                messageID: messageID
            )
        }
        let place = body.child("LieuNaissance")?.text
        let traits = INSTraits(
            birthName: try value("NomNaissance"),
            firstName: try value("Prenom"),
            sex: try value("Sexe"),
            birthDate: try value("DateNaissance"),
            birthPlace: place?.isEmpty == true ? nil : place
        )
        do {
            try traits.validate()
        } catch {
            throw INSiFault.invalid(error.field, error.message, messageID: messageID)
        }
        return traits
    }

    /// The beneficiary of `RECVITALE`, read with the card context (`ContexteBAM/COUVERTURE/BENEFICIAIRE`) and the
    /// card's assertion in `wsse:Security` (structure and validity dates checked; its content is not public).
    func beneficiary() throws(INSiFault) -> VitaleBeneficiary {
        let body = envelope.body
        func vitale(_ message: String) -> INSiFault {
            INSiFault(.sender, "sbx_vitale", "Lecture carte Vitale : \(message)", messageID: messageID)
        }
        guard let matricule = body.path("MatriculeIndividu", "NumIdentifiant")?.text, !matricule.isEmpty else {
            throw INSiFault.invalid("MatriculeIndividu/NumIdentifiant", "absent", messageID: messageID)
        }
        do { try INSTraits.checkMatricule(matricule, field: "MatriculeIndividu/NumIdentifiant") } catch {
            throw INSiFault.invalid(error.field, error.message, messageID: messageID)
        }
        var rank: Int?
        if let text = body.child("RangNaissance")?.text, !text.isEmpty {
            guard let value = Int(text), (1...9).contains(value) else {
                throw INSiFault.invalid("RangNaissance", "'\(text)' n'est pas un rang de 1 à 9", messageID: messageID)
            }
            rank = value
        }
        let birthDate = body.child("DateNaissance")?.text
        if let birthDate, !birthDate.isEmpty {
            do { try INSTraits.checkDate(birthDate, field: "DateNaissance") } catch {
                throw INSiFault.invalid(error.field, error.message, messageID: messageID)
            }
        }
        guard
            let covered = envelope.headerBlock("ContexteBAM", namespace: INSiNamespace.contextBAM)?.path(
                "COUVERTURE",
                "BENEFICIAIRE"
            )
        else {
            throw vitale("ContexteBAM/COUVERTURE/BENEFICIAIRE absent : le bénéficiaire lu sur la carte est requis")
        }
        if let nir = covered.path("Nir", "Num")?.text, !nir.isEmpty, nir != matricule {
            throw vitale("le NIR du bénéficiaire de la carte (\(nir)) diffère de MatriculeIndividu (\(matricule))")
        }
        guard let card = assertions.first(where: { $0.path("Subject", "NameID")?.attributes["NameQualifier"] != "CPS" })
        else {
            throw vitale("assertion de la carte Vitale absente de wsse:Security")
        }
        if let notOnOrAfter = card.child("Conditions")?.attributes["NotOnOrAfter"] {
            guard let date = Self.date(notOnOrAfter) else {
                throw vitale("Conditions/@NotOnOrAfter '\(notOnOrAfter)' illisible")
            }
            guard date > Date() else {
                throw vitale("assertion de la carte périmée depuis \(notOnOrAfter) (elle vaut environ 20 minutes)")
            }
        }
        let name = body.child("NomNaissance")?.text
        return VitaleBeneficiary(
            matricule: matricule,
            birthName: name?.isEmpty == true ? nil : name,
            birthDate: birthDate?.isEmpty == true ? nil : birthDate,
            rank: rank
        )
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// The beneficiary a `RECVITALE` asks about.
struct VitaleBeneficiary {
    var matricule: String
    var birthName: String?
    var birthDate: String?
    var rank: Int?

    /// The identity when a simulated card carries this beneficiary (with that rank) and the traits sent agree.
    func lookup(identities: [INSIdentity], cards: [VitaleCard]) -> [INSIdentity] {
        let onCard = cards.contains { card in
            card.beneficiaries.contains { $0.matricule == matricule && (rank == nil || $0.rank == rank) }
        }
        guard onCard else { return [] }
        return identities.filter {
            $0.matricule == matricule && (birthName == nil || $0.birthName == birthName)
                && (birthDate == nil || $0.birthDate == birthDate)
        }
    }
}

/// The `RESULTAT` answer, elements in the XSD's order (live answers: `ListePrenom`, no `Prenom`).
struct INSiResult {
    var found: [INSIdentity]
    var nirOID: String
    var niaOID: String

    var envelope: String {
        var result: String
        switch found.count {
        case 0: result = "<CR><CodeCR>01</CodeCR><LibelleCR>Aucune identite trouvee</LibelleCR></CR>"
        case 1: result = "<CR><CodeCR>00</CodeCR><LibelleCR>OK</LibelleCR></CR>" + individual(found[0])
        default: result = "<CR><CodeCR>02</CodeCR><LibelleCR>Plusieurs identites trouvees</LibelleCR></CR>"
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <soap:Envelope xmlns:soap="\(SOAPFault.envelopeNamespace)"><soap:Body>\
            <RESULTAT xmlns="\(INSiNamespace.result)">\(result)</RESULTAT></soap:Body></soap:Envelope>
            """
    }

    func individual(_ identity: INSIdentity) -> String {
        let oid = identity.kind == .nia ? niaOID : nirOID
        func ins(_ tag: String, _ matricule: String, _ key: String, start: String? = nil, end: String? = nil) -> String
        {
            var xml =
                "<\(tag)><IdIndividu><NumIdentifiant>\(e(matricule))</NumIdentifiant><Cle>\(e(key))</Cle></IdIndividu><OID>\(e(oid))</OID>"
            if let start { xml += "<DateDeb>\(e(start))</DateDeb>" }
            if let end { xml += "<DateFin>\(e(end))</DateFin>" }
            return xml + "</\(tag)>"
        }
        var xml = "<INDIVIDU>" + ins("INSACTIF", identity.matricule, identity.key)
        for previous in identity.history {
            xml += ins("INSHISTO", previous.matricule, previous.key, start: previous.start, end: previous.end)
        }
        xml +=
            "<TIQ><NomNaissance>\(e(identity.birthName))</NomNaissance><ListePrenom>\(e(identity.firstNames))</ListePrenom>"
        xml += "<Sexe>\(e(identity.sex))</Sexe><DateNaissance>\(e(identity.birthDate))</DateNaissance>"
        if let place = identity.birthPlace { xml += "<LieuNaissance>\(e(place))</LieuNaissance>" }
        return xml + "</TIQ></INDIVIDU>"
    }

    func e(_ text: String) -> String { XMLText.escape(text) }
}
