import Foundation
import Hummingbird
import NIOCore
import SOAPCore

/// The WSDL `GET /lps?wsdl` serves and the schemas it imports (`GET /lps?xsd=NAME`), written for the sandbox:
/// same definitions name, target namespace, service/port/binding names, operations, actions, header parts and
/// element names as the CNAM's `DESIR_ICIR_EXP_1.5.0` (`docs/services/insi.md`), with
/// schemas reduced to what the messages carry. Code generated from either reads the same messages.
enum INSiWSDL {
    static func response(_ request: Request, baseURL: String) throws -> Response {
        try SOAPServiceDescription.response(
            request,
            path: INSiService.path,
            wsdl: { wsdl(baseURL: baseURL) },
            schemas: schemas
        )
    }

    static func wsdl(baseURL: String) -> String {
        let header = { (message: String) in
            ["Security", "ContexteLPS", "MessageID", "ContexteBAM"].map {
                "<soap12:header message=\"tns:\(message)\" part=\"NO1_\($0)\" use=\"literal\"/>"
            }.joined()
        }
        let messages = INSiOperation.published.map { operation in
            """
              <wsdl:message name="\(operation.rawValue)">
                <wsdl:part name="\(operation.rawValue)" element="\(operation == .traits ? "recsans:RECSANSVITALE" : "recvit:RECVITALE")"/>
                <wsdl:part name="NO1_Security" element="wsse:Security"/>
                <wsdl:part name="NO1_ContexteLPS" element="ctxlps:ContexteLPS"/>
                <wsdl:part name="NO1_MessageID" element="wsa:MessageID"/>
                <wsdl:part name="NO1_ContexteBAM" element="ctxbam:ContexteBAM"/>
              </wsdl:message>
              <wsdl:message name="\(operation.rawValue)Response">
                <wsdl:part name="\(operation.rawValue)Response" element="resultat:RESULTAT"/>
              </wsdl:message>
            """
        }.joined(separator: "\n")
        let portOperations = INSiOperation.published.map { operation in
            """
                <wsdl:operation name="\(operation.rawValue)">
                  <wsdl:input name="\(operation.rawValue)" message="tns:\(operation.rawValue)" wsaw:Action="\(operation.action)"/>
                  <wsdl:output name="\(operation.rawValue)Response" message="tns:\(operation.rawValue)Response" wsaw:Action="\(operation.action)Response"/>
                  <wsdl:fault name="Erreur" message="tns:Erreur"/>
                </wsdl:operation>
            """
        }.joined(separator: "\n")
        let bindingOperations = INSiOperation.published.map { operation in
            """
                <wsdl:operation name="\(operation.rawValue)">
                  <soap12:operation soapAction="\(operation.action)"/>
                  <wsdl:input name="\(operation.rawValue)"><soap12:body parts="\(operation.rawValue)" use="literal"/>\(header(operation.rawValue))</wsdl:input>
                  <wsdl:output name="\(operation.rawValue)Response"><soap12:body parts="\(operation.rawValue)Response" use="literal"/></wsdl:output>
                  <wsdl:fault name="Erreur"><soap12:fault name="Erreur" use="literal"/></wsdl:fault>
                </wsdl:operation>
            """
        }.joined(separator: "\n")
        let imports = schemaNamespaces.map {
            "      <xs:import namespace=\"\($0.namespace)\" schemaLocation=\"\(baseURL)?xsd=\($0.name)\"/>"
        }
        .joined(separator: "\n")
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- esante-sandbox: the INSi teleservice interface (DESIR_ICIR_EXP_1.5.0), written for the sandbox. -->
            <wsdl:definitions name="ServiceIdentiteCertifiee-v1" targetNamespace="\(INSiNamespace.service)"
                xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:tns="\(INSiNamespace.service)"
                xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:wsaw="http://www.w3.org/2006/02/addressing/wsdl"
                xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:recsans="\(INSiNamespace.traitsRequest)"
                xmlns:recvit="\(INSiNamespace.vitaleRequest)" xmlns:resultat="\(INSiNamespace.result)"
                xmlns:wsa="\(INSiNamespace.addressing)" xmlns:wsse="\(INSiNamespace.security)"
                xmlns:ctxbam="\(INSiNamespace.contextBAM)" xmlns:ctxlps="\(INSiNamespace.contextLPS)" xmlns:siram="\(INSiNamespace.siram)">
              <wsdl:documentation>INS search by identity traits and by Vitale card (esante-sandbox)</wsdl:documentation>
              <wsdl:types>
                <xs:schema targetNamespace="\(INSiNamespace.service)">
            \(imports)
                </xs:schema>
              </wsdl:types>
            \(messages)
              <wsdl:message name="Erreur"><wsdl:part name="Erreur" element="siram:Erreur"/></wsdl:message>
              <wsdl:portType name="ICIRService">
            \(portOperations)
              </wsdl:portType>
              <wsdl:binding name="ICIRServiceBinding" type="tns:ICIRService">
                <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
            \(bindingOperations)
              </wsdl:binding>
              <wsdl:service name="ICIR-v1">
                <wsdl:port name="ICIRService" binding="tns:ICIRServiceBinding">
                  <soap12:address location="\(baseURL)"/>
                </wsdl:port>
              </wsdl:service>
            </wsdl:definitions>
            """
    }

    static let schemaNamespaces: [(name: String, namespace: String)] = [
        ("recsans", INSiNamespace.traitsRequest), ("recvit", INSiNamespace.vitaleRequest),
        ("resultat", INSiNamespace.result),
        ("wsse", INSiNamespace.security), ("wsa", INSiNamespace.addressing), ("ctxlps", INSiNamespace.contextLPS),
        ("ctxbam", INSiNamespace.contextBAM), ("siram", INSiNamespace.siram),
    ]

    static func schema(_ namespace: String, _ body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="\(namespace)" targetNamespace="\(namespace)"
            elementFormDefault="qualified" attributeFormDefault="unqualified">
        \(body)
        </xs:schema>
        """
    }

    static func sequence(_ elements: [(String, String, String)]) -> String {
        "<xs:sequence>" + elements.map { "<xs:element name=\"\($0.0)\" type=\"\($0.1)\" \($0.2)/>" }.joined()
            + "</xs:sequence>"
    }

    static let optional = "minOccurs=\"0\""

    static let matricule = """
        <xs:complexType name="Matricule">\(sequence([("NumIdentifiant", "xs:string", optional), ("Cle", "xs:string", optional), ("TypeMatricule", "xs:string", optional)]))</xs:complexType>
        """

    static let schemas: [String: String] = [
        "recsans": schema(
            INSiNamespace.traitsRequest,
            """
            <xs:element name="RECSANSVITALE" type="t:TraitsDIdentite"/>
            <xs:complexType name="TraitsDIdentite"><xs:sequence>
              <xs:element name="NomNaissance" type="xs:string" minOccurs="0"/>
              <xs:element name="Prenom" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
              <xs:element name="Sexe" type="xs:string" minOccurs="0"/>
              <xs:element name="DateNaissance" type="xs:string" minOccurs="0"/>
              <xs:element name="LieuNaissance" type="xs:string" minOccurs="0"/>
            </xs:sequence></xs:complexType>
            """
        ),
        "recvit": schema(
            INSiNamespace.vitaleRequest,
            """
            <xs:element name="RECVITALE" type="t:Beneficiaire"/>
            <xs:complexType name="Beneficiaire">\(sequence([("MatriculeIndividu", "t:Matricule", optional), ("MatriculeOD", "t:Matricule", optional), ("NomNaissance", "xs:string", optional), ("DateNaissance", "xs:string", optional), ("RangNaissance", "xs:string", optional)]))</xs:complexType>
            \(matricule)
            """
        ),
        "resultat": schema(
            INSiNamespace.result,
            """
            <xs:element name="RESULTAT" type="t:Resultat"/>
            <xs:complexType name="Resultat">\(sequence([("CR", "t:CompteRendu", ""), ("INDIVIDU", "t:Individu", optional)]))</xs:complexType>
            <xs:complexType name="CompteRendu">\(sequence([("CodeCR", "xs:string", ""), ("LibelleCR", "xs:string", "")]))</xs:complexType>
            <xs:complexType name="Individu"><xs:sequence>
              <xs:element name="INSACTIF" type="t:IdentifiantNationalSante"/>
              <xs:element name="INSHISTO" type="t:IdentifiantNationalSante" minOccurs="0" maxOccurs="unbounded"/>
              <xs:element name="TIQ" type="t:TraitsDIdentite"/>
            </xs:sequence></xs:complexType>
            <xs:complexType name="IdentifiantNationalSante">\(sequence([("IdIndividu", "t:Matricule", ""), ("OID", "xs:string", ""), ("DateDeb", "xs:date", optional), ("DateFin", "xs:date", optional)]))</xs:complexType>
            <xs:complexType name="Matricule">\(sequence([("NumIdentifiant", "xs:string", ""), ("Cle", "xs:string", optional), ("TypeMatricule", "xs:string", optional)]))</xs:complexType>
            <xs:complexType name="TraitsDIdentite">\(sequence([("NomNaissance", "xs:string", optional), ("Prenom", "xs:string", optional), ("ListePrenom", "xs:string", optional), ("Sexe", "xs:string", optional), ("DateNaissance", "xs:string", optional), ("LieuNaissance", "xs:string", optional)]))</xs:complexType>
            """
        ),
        "wsse": schema(
            INSiNamespace.security,
            """
            <xs:element name="Security"><xs:complexType><xs:sequence>
              <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence><xs:anyAttribute processContents="lax"/></xs:complexType></xs:element>
            """
        ),
        "wsa": schema(
            INSiNamespace.addressing,
            """
            <xs:element name="MessageID" type="xs:string"/>
            <xs:element name="Action" type="xs:string"/>
            <xs:element name="RelatesTo" type="xs:string"/>
            """
        ),
        "ctxlps": schema(
            INSiNamespace.contextLPS,
            """
            <xs:element name="ContexteLPS" type="t:ContexteLPS"/>
            <xs:complexType name="ContexteLPS">
              \(sequence([("Id", "xs:string", ""), ("Temps", "xs:dateTime", ""), ("Emetteur", "xs:string", ""), ("LPS", "t:LOGICIEL", optional)]))
              <xs:attribute name="Nature" type="xs:string"/><xs:attribute name="Version" type="xs:string"/>
            </xs:complexType>
            <xs:complexType name="LOGICIEL">\(sequence([("IDAM", "t:IdentiteStringRef", ""), ("Version", "xs:string", ""), ("Instance", "xs:string", ""), ("Nom", "xs:string", "")]))</xs:complexType>
            <xs:complexType name="IdentiteStringRef"><xs:simpleContent><xs:extension base="xs:string"><xs:attribute name="R" type="xs:string"/></xs:extension></xs:simpleContent></xs:complexType>
            """
        ),
        "ctxbam": schema(
            INSiNamespace.contextBAM,
            """
            <xs:element name="ContexteBAM" type="t:ContexteBAM"/>
            <xs:complexType name="ContexteBAM">
              \(sequence([("Id", "xs:string", ""), ("Temps", "xs:dateTime", ""), ("Emetteur", "xs:string", ""), ("DateRef", "xs:dateTime", optional), ("COUVERTURE", "t:Couverture", "")]))
              <xs:attribute name="Nature" type="xs:string"/><xs:attribute name="Version" type="xs:string"/>
            </xs:complexType>
            <xs:complexType name="Couverture">\(sequence([("GrandRegime", "xs:string", optional), ("Organisme", "xs:string", optional), ("CodeCentre", "xs:string", optional), ("ASSURE", "t:Assure", optional), ("BENEFICIAIRE", "t:Beneficiaire", optional)]))</xs:complexType>
            <xs:complexType name="Assure">\(sequence([("Id", "t:NIR", optional)]))</xs:complexType>
            <xs:complexType name="NIR">\(sequence([("Num", "xs:string", ""), ("Cle", "xs:string", optional)]))</xs:complexType>
            <xs:complexType name="Beneficiaire">\(sequence([("Nir", "t:NIR", optional), ("DateNai", "xs:string", optional), ("Rang", "xs:integer", optional), ("Porteur", "xs:string", optional)]))</xs:complexType>
            """
        ),
        "siram": schema(
            INSiNamespace.siram,
            """
            <xs:element name="Erreur"><xs:complexType><xs:simpleContent><xs:extension base="xs:string">
              <xs:attribute name="severite" type="xs:string" use="required"/>
              <xs:attribute name="code" type="xs:string" use="required"/>
              <xs:attribute name="messageID" type="xs:string"/>
            </xs:extension></xs:simpleContent></xs:complexType></xs:element>
            """
        ),
    ]
}
