import Foundation
import HTTPTypes
import HummingbirdTesting
import INSi
import SOAPCore

/// One INSi request, as a CNDA-conformant LPS builds it; each field can be broken by a test.
struct INSiCall {
    var operation = INSiOperation.traits
    var birthName = "ADRTROIS"
    var firstNames = ["DOMINIQUE"]
    var sex = "F"
    var birthDate = "1997-02-26"
    var birthPlace: String?
    var idam = "SANDBOX-LPS-0001"
    var messageID: String? = "uuid:\(UUID().uuidString.lowercased())"
    var action: String?
    var bamVersion = "01_02"
    var coverage = ""
    /// Raw XML of `wsse:Security` children (nil: no Security header, the mTLS mode).
    var security: String?
    /// Raw body element (nil: built from the traits).
    var body: String?

    var xml: String {
        let recSans = "http://www.cnamts.fr/INSiRecSans"
        let payload =
            body ?? """
                <rs:RECSANSVITALE xmlns:rs="\(recSans)"><rs:NomNaissance>\(birthName)</rs:NomNaissance>\
                \(firstNames.map { "<rs:Prenom>\($0)</rs:Prenom>" }.joined())<rs:Sexe>\(sex)</rs:Sexe>\
                <rs:DateNaissance>\(birthDate)</rs:DateNaissance>\(birthPlace.map { "<rs:LieuNaissance>\($0)</rs:LieuNaissance>" } ?? "")</rs:RECSANSVITALE>
                """
        let securityXML =
            security.map {
                "<wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\($0)</wsse:Security>"
            } ?? ""
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing" \
            xmlns:bam="urn:siram:bam:ctxbam" xmlns:lps="urn:siram:lps:ctxlps"><s:Header>\(securityXML)\
            <bam:ContexteBAM Version="\(bamVersion)"><bam:Id>\(UUID().uuidString)</bam:Id><bam:Temps>2026-11-22T10:00:00Z</bam:Temps>\
            <bam:Emetteur>tests</bam:Emetteur><bam:COUVERTURE>\(coverage)</bam:COUVERTURE></bam:ContexteBAM>\
            <lps:ContexteLPS Nature="CTXLPS" Version="01_00"><lps:Id>\(UUID().uuidString)</lps:Id><lps:Temps>2026-11-22T10:00:00Z</lps:Temps>\
            <lps:Emetteur>tests</lps:Emetteur><lps:LPS><lps:IDAM R="4">\(idam)</lps:IDAM><lps:Version>1</lps:Version>\
            <lps:Instance>\(UUID().uuidString)</lps:Instance><lps:Nom>urn:lps:tests:1</lps:Nom></lps:LPS></lps:ContexteLPS>\
            <a:Action>\(action ?? operation.action)</a:Action>\(messageID.map { "<a:MessageID>\($0)</a:MessageID>" } ?? "")\
            </s:Header><s:Body>\(payload)</s:Body></s:Envelope>
            """
    }

    /// A Vitale search for a beneficiary, with the card context and the card's assertion.
    static func vitale(
        matricule: String,
        name: String?,
        birthDate: String?,
        rank: Int?,
        assertion: String? = INSiCall.cardAssertion()
    ) -> INSiCall {
        var call = INSiCall()
        call.operation = .vitale
        call.body = """
            <rv:RECVITALE xmlns:rv="http://www.cnamts.fr/INSiRecVit"><rv:MatriculeIndividu><rv:NumIdentifiant>\(matricule)</rv:NumIdentifiant></rv:MatriculeIndividu>\
            \(name.map { "<rv:NomNaissance>\($0)</rv:NomNaissance>" } ?? "")\(birthDate.map { "<rv:DateNaissance>\($0)</rv:DateNaissance>" } ?? "")\
            \(rank.map { "<rv:RangNaissance>\($0)</rv:RangNaissance>" } ?? "")</rv:RECVITALE>
            """
        call.coverage =
            "<bam:BENEFICIAIRE><bam:Nir><bam:Num>\(matricule)</bam:Num></bam:Nir>\(rank.map { "<bam:Rang>\($0)</bam:Rang>" } ?? "")</bam:BENEFICIAIRE>"
        call.security = assertion
        return call
    }

    static func cardAssertion(notOnOrAfter: Date = Date().addingTimeInterval(1200)) -> String {
        """
        <saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_cv" Version="2.0"><saml2:Issuer>CN=CARTE VITALE SANDBOX</saml2:Issuer>\
        <saml2:Subject><saml2:NameID>CV-SBX-0003</saml2:NameID></saml2:Subject>\
        <saml2:Conditions NotOnOrAfter="\(ISO8601DateFormatter().string(from: notOnOrAfter))"/></saml2:Assertion>
        """
    }

    /// A CPS assertion (CPx mode) with the attributes the real service reads; `leaving` drops one of them.
    static func professionalAssertion(leaving: String? = nil) -> String {
        let attributes = ["identifiantFacturation": "991000123", "secteurActivite": "SA07"].filter { $0.key != leaving }
            .sorted { $0.key < $1.key }
            .map {
                "<saml2:Attribute Name=\"\($0.key)\"><saml2:AttributeValue>\($0.value)</saml2:AttributeValue></saml2:Attribute>"
            }.joined()
        return """
            <saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_cps" Version="2.0">\
            <saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">CN=899700001234,O=CABINET SANDBOX,C=FR</saml2:Issuer>\
            <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>\
            <saml2:Subject><saml2:NameID NameQualifier="CPS">899700001234</saml2:NameID></saml2:Subject>\
            <saml2:AttributeStatement>\(attributes)</saml2:AttributeStatement></saml2:Assertion>
            """
    }
}

/// What an INSi answer says: CR and identity, or the fault's codes.
struct INSiAnswer {
    var status: HTTPResponse.Status
    var xml: String
    var root: SOAPElement

    init(_ response: TestClient.Response) throws {
        status = response.status
        xml = response.text
        root = try HardenedXMLParser().parse(Data(xml.utf8))
    }

    var result: SOAPElement? { root.path("Body", "RESULTAT") }
    var code: String? { result?.path("CR", "CodeCR")?.text }
    var matricule: String? { result?.path("INDIVIDU", "INSACTIF", "IdIndividu", "NumIdentifiant")?.text }
    var fault: SOAPElement? { root.path("Body", "Fault") }
    var subcode: String? { fault?.path("Code", "Subcode", "Value")?.text }
    var errorCode: String? { fault?.path("Detail", "Erreur")?.attributes["code"] }
    var reason: String { fault?.path("Reason", "Text")?.text ?? "" }
}
