import Foundation
import Hummingbird
import SOAPCore

/// `GET /ROR/CSD?wsdl` and `GET /ROR/CSD?xsd=csd`: a WSDL and schema written for the sandbox with the ANS v2.4
/// interface's names (definitions `ROR_WebService`, namespace `urn:asip:ror:2015`, port type, binding, service and
/// port names, both operations, their soapActions and fault names, the `csd:` element names). The schema describes
/// the requests fully and the CSD directories loosely (any CSD content): answers follow the ANS XSD, which is not
/// redistributable and which the tests validate against when a copy of it is on the machine (`RORCSDTests`).
enum RORCSDWSDL {
    static func response(_ request: Request, baseURL: String) throws -> Response {
        try SOAPServiceDescription.response(
            request,
            path: RORCSDService.path,
            wsdl: { wsdl(baseURL: baseURL) },
            schemas: ["csd": schema]
        )
    }

    static func wsdl(baseURL: String) -> String {
        func binding(_ operation: RORCSDService.Operation, fault: String) -> String {
            """
                <wsdl:operation name="\(operation.rawValue)">
                  <soap12:operation soapAction="\(operation.action)" style="document"/>
                  <wsdl:input><soap12:body use="literal"/></wsdl:input>
                  <wsdl:output><soap12:body use="literal"/></wsdl:output>
                  <wsdl:fault name="\(fault)"><soap12:fault name="\(fault)" use="literal"/></wsdl:fault>
                </wsdl:operation>
            """
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- esante-sandbox: the ROR CSD MEV2.4 interface (v2.4 names and soapActions), written for the sandbox. -->
            <wsdl:definitions name="ROR_WebService" targetNamespace="\(RORCSDService.ror)" xmlns="\(RORCSDService.ror)"
                xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
                xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:csd="\(RORCSDService.csd)" xmlns:ror="\(RORCSDService.ror)">
              <wsdl:documentation>Version: 2.4 (esante-sandbox)</wsdl:documentation>
              <wsdl:types>
                <xs:schema targetNamespace="\(RORCSDService.ror)" elementFormDefault="qualified">
                  <xs:import namespace="\(RORCSDService.csd)" schemaLocation="\(baseURL)?xsd=csd"/>
                  <xs:element name="TR-Notif-ListeEtablissementsMajApresDate_Demande" type="csd:TR-Notif-ListeEtablissementsMajApresDate_Demande"/>
                  <xs:element name="TR-Notif-ListeEtablissementMajApresDate_Reponse" type="csd:TR-Notif-ListeEtablissementMajApresDate_Reponse"/>
                  <xs:element name="erreur" type="csd:error"/>
                </xs:schema>
              </wsdl:types>
              <wsdl:message name="TR-Notif-ListeEtablissementsMajApresDate_Demande"><wsdl:part name="parameters" element="ror:TR-Notif-ListeEtablissementsMajApresDate_Demande"/></wsdl:message>
              <wsdl:message name="TR-Notif-ListeEtablissementMajApresDate_Reponse"><wsdl:part name="parameters" element="ror:TR-Notif-ListeEtablissementMajApresDate_Reponse"/></wsdl:message>
              <wsdl:message name="TR-Notif-ListeEtablissementMajApresDate_Reponse_Error"><wsdl:part name="parameters" element="ror:erreur"/></wsdl:message>
              <wsdl:message name="careServicesRequest_Message"><wsdl:part name="parameters" element="csd:careServicesRequest"/></wsdl:message>
              <wsdl:message name="careServicesRequest_Message_Response"><wsdl:part name="parameters" element="csd:careServicesResponse"/></wsdl:message>
              <wsdl:message name="careServicesRequest_Message_Error"><wsdl:part name="parameters" element="ror:erreur"/></wsdl:message>
              <wsdl:portType name="CareServicesRequest_PortType">
                <wsdl:operation name="TR-Notif-ListeEtablissementsMajApresDate_Demande">
                  <wsdl:input message="ror:TR-Notif-ListeEtablissementsMajApresDate_Demande"/>
                  <wsdl:output message="ror:TR-Notif-ListeEtablissementMajApresDate_Reponse"/>
                  <wsdl:fault name="CodeErreur" message="ror:TR-Notif-ListeEtablissementMajApresDate_Reponse_Error"/>
                </wsdl:operation>
                <wsdl:operation name="careServicesRequest_Request">
                  <wsdl:input message="ror:careServicesRequest_Message"/>
                  <wsdl:output message="ror:careServicesRequest_Message_Response"/>
                  <wsdl:fault name="erreur" message="ror:careServicesRequest_Message_Error"/>
                </wsdl:operation>
              </wsdl:portType>
              <wsdl:binding name="CareServicesRequest_Binding" type="ror:CareServicesRequest_PortType">
                <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
            \(binding(.lecture, fault: "erreur"))
            \(binding(.notification, fault: "CodeErreur"))
              </wsdl:binding>
              <wsdl:service name="CareServicesRequest_Service">
                <wsdl:port name="CareServicesRequest_Port" binding="ror:CareServicesRequest_Binding">
                  <soap12:address location="\(baseURL)"/>
                </wsdl:port>
              </wsdl:service>
            </wsdl:definitions>
            """
    }

    static let schema = """
        <?xml version="1.0" encoding="UTF-8"?>
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:csd="\(RORCSDService.csd)" targetNamespace="\(RORCSDService.csd)"
            elementFormDefault="qualified" attributeFormDefault="unqualified">
          <xs:complexType name="otherID"><xs:simpleContent><xs:extension base="xs:string">
            <xs:attribute name="code" type="xs:string"/><xs:attribute name="assigningAuthorityName" type="xs:string"/>
          </xs:extension></xs:simpleContent></xs:complexType>
          <xs:complexType name="codedtype"><xs:simpleContent><xs:extension base="xs:string">
            <xs:attribute name="code" type="xs:string" use="required"/><xs:attribute name="codingScheme" type="xs:string" use="required"/>
          </xs:extension></xs:simpleContent></xs:complexType>
          <xs:complexType name="error"><xs:simpleContent><xs:extension base="xs:string">
            <xs:attribute name="code" type="xs:integer"/><xs:attribute name="message" type="xs:string"/>
          </xs:extension></xs:simpleContent></xs:complexType>
          <xs:complexType name="directory"><xs:sequence>
            <xs:any namespace="##targetNamespace" processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence></xs:complexType>
          <xs:complexType name="CSD"><xs:sequence>
            <xs:element name="organizationDirectory" type="csd:directory"/><xs:element name="serviceDirectory" type="csd:directory"/>
            <xs:element name="facilityDirectory" type="csd:directory"/><xs:element name="providerDirectory" type="csd:directory"/>
            <xs:element name="deviceDirectory" type="csd:directory"/>
          </xs:sequence></xs:complexType>
          <xs:complexType name="Result"><xs:sequence>
            <xs:element name="facilityNumber" type="xs:integer" minOccurs="0"/><xs:element name="queryResult" type="csd:CSD"/>
          </xs:sequence></xs:complexType>
          <xs:element name="careServicesRequest"><xs:complexType><xs:choice>
            <xs:element name="expression"><xs:complexType><xs:simpleContent><xs:extension base="xs:string">
              <xs:attribute name="encapsulated" type="xs:boolean" use="required"/><xs:attribute name="content-type" type="xs:string" use="required"/>
            </xs:extension></xs:simpleContent></xs:complexType></xs:element>
            <xs:element name="function"><xs:complexType><xs:choice>
              <xs:element name="TR_Lecture-OffresSanteEtablissement"><xs:complexType><xs:sequence>
                <xs:element name="etablissementDemandeLecture"><xs:complexType><xs:sequence>
                  <xs:element name="id_etablissement" type="csd:otherID"/>
                  <xs:element name="dateRef" type="xs:dateTime" minOccurs="0"/>
                  <xs:element name="typeActivity" type="csd:codedtype" minOccurs="0" maxOccurs="unbounded"/>
                  <xs:element name="supportedPatient" type="csd:codedtype" minOccurs="0" maxOccurs="unbounded"/>
                  <xs:element name="restrictedOrganisation" type="xs:boolean" minOccurs="0"/>
                </xs:sequence></xs:complexType></xs:element>
              </xs:sequence></xs:complexType></xs:element>
              <xs:element name="TR_Lecture-OffreSanteOrganisationInterne"><xs:complexType><xs:sequence>
                <xs:element name="organisationID" type="csd:otherID"/>
              </xs:sequence></xs:complexType></xs:element>
            </xs:choice>
            <xs:attribute name="urn" type="xs:anyURI" use="required" fixed="\(RORCSDService.lectureURN)"/>
            <xs:attribute name="encapsulated" type="xs:boolean" fixed="true"/>
            </xs:complexType></xs:element>
          </xs:choice></xs:complexType></xs:element>
          <xs:element name="careServicesResponse"><xs:complexType><xs:choice>
            <xs:element name="error" type="csd:error"/><xs:element name="result" type="csd:Result"/>
          </xs:choice></xs:complexType></xs:element>
          <xs:complexType name="RequestParams_TR-Notif-ListeEtablissementsMajApresDate_Demande"><xs:sequence>
            <xs:element name="dateRef" type="xs:dateTime"/>
            <xs:element name="typeActivity" type="csd:codedtype" minOccurs="0" maxOccurs="unbounded"/>
            <xs:element name="supportedPatient" type="csd:codedtype" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence></xs:complexType>
          <xs:complexType name="TR-Notif-ListeEtablissementsMajApresDate_Demande"><xs:sequence>
            <xs:element name="params" type="csd:RequestParams_TR-Notif-ListeEtablissementsMajApresDate_Demande"/>
          </xs:sequence></xs:complexType>
          <xs:complexType name="etablissementReponseNotif"><xs:sequence>
            <xs:element name="id_etablissement" type="csd:otherID"/>
            <xs:element name="typeActivity" type="csd:codedtype" minOccurs="0" maxOccurs="unbounded"/>
            <xs:element name="restrictedOrganisation" type="xs:boolean" minOccurs="0"/>
          </xs:sequence></xs:complexType>
          <xs:complexType name="TR-Notif-ListeEtablissementMajApresDate_Reponse"><xs:sequence>
            <xs:element name="etablissementReponseNotif" type="csd:etablissementReponseNotif" minOccurs="0" maxOccurs="unbounded"/>
            <xs:element name="result" type="xs:integer" minOccurs="0"/>
          </xs:sequence></xs:complexType>
        </xs:schema>
        """
}
