import DMP
import Foundation
import HTTPTypes
import HummingbirdTesting
import SOAPCore
import Testing

@testable import SandboxServer
@testable import SandboxTestSupport

/// The DMP's patients service as DMP-compatible software calls it over mutual TLS: existence test and authorisation
/// (TD0.2), creation (TD1.1), closing and reactivation (TD1.2), each behind the VIHF checks.
@Suite("DMP patients service")
struct DMPPatientsTests {
    static let testOID = "1.2.250.1.213.1.4.10"
    /// ADRUN ZOE: a seeded open DMP, structure 1690099990 authorised.
    static let zoe = "275126322074974"
    /// HERMANN GATIEN: a seeded open DMP, no structure authorised.
    static let gatien = "181036322045660"
    /// TCHITCHI CATARINA: a seeded closed DMP.
    static let catarina = "236066322083656"
    /// NESSI MICHELANGELO: no DMP.
    static let nessi = "110086322083060"
    static let structure = "1690099990"

    static func start() async throws -> (RunningSandbox, ClientFiles) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        let files = try #require(running.info.clientCertificates["insi-lps"])
        return (
            running,
            ClientFiles(folder: files.certificate.deletingLastPathComponent(), issued: try SharedPKI.issued(files))
        )
    }

    /// A VIHF as a DMP client writes it; `attributes` override or (nil) remove the defaults.
    static func vihf(
        ins: String,
        oid: String = testOID,
        structure: String = structure,
        roleSystem: String = "1.2.250.1.71.1.2.7",
        notOnOrAfter: Date = Date().addingTimeInterval(3600),
        attributes: [String: String?] = [:]
    ) -> String {
        var values: [String: String?] = [
            "VIHF_Version": "3.0", "Secteur_Activite": "SA07^1.2.250.1.71.4.2.4", "Ressource_URN": "urn:dmp",
            "urn:oasis:names:tc:xspa:1.0:subject:subject-id": "DOCTEUR SANDBOX", "Identifiant_Structure": structure,
            "LPS_ID": "LPS-SANDBOX-1", "LPS_Nom": "Logiciel du bac à sable", "LPS_Version": "1.0",
            "LPS_ID_HOMOLOGATION_DMP": "HOMOLOGATION-42",
            "urn:oasis:names:tc:xacml:2.0:resource:resource-id": "\(ins)^^^&\(oid)&ISO^NH",
            "Authentification_Mode": "INDIRECTE",
        ]
        for (name, value) in attributes { values[name] = value }
        let simple = values.compactMap { name, value in
            value.map {
                "<saml2:Attribute Name=\"\(name)\"><saml2:AttributeValue>\(XMLText.escape($0))</saml2:AttributeValue></saml2:Attribute>"
            }
        }.joined()
        let expiry = ISO8601DateFormatter().string(from: notOnOrAfter)
        return """
            <wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">\
            <saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0" IssueInstant="2026-12-07T10:00:00Z">\
            <saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">CN=INSI-AUTO,OU=1690099990,O=CENTRE DE SANTE SANDBOX,C=FR</saml2:Issuer>\
            <saml2:Subject><saml2:NameID>899700000000</saml2:NameID></saml2:Subject>\
            <saml2:Conditions NotOnOrAfter="\(expiry)"/>\
            <saml2:AttributeStatement>\(simple)\
            <saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml2:AttributeValue>\
            <Role xmlns="urn:hl7-org:v3" code="10" codeSystem="\(roleSystem)" displayName="Médecin"/></saml2:AttributeValue></saml2:Attribute>\
            <saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"><saml2:AttributeValue>\
            <PurposeOfUse xmlns="urn:hl7-org:v3" code="normal" codeSystem="1.2.250.1.213.1.1.4.248"/></saml2:AttributeValue></saml2:Attribute>\
            </saml2:AttributeStatement></saml2:Assertion></wsse:Security>
            """
    }

    static func envelope(_ operation: String, body: String, security: String?, action: String? = nil) -> String {
        """
        <soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">\
        <soap:Header><wsa:Action soap:mustUnderstand="true">\(action ?? "urn:hl7-org:v3:\(operation)")</wsa:Action>\
        <wsa:MessageID>urn:uuid:3f2c1a2e-0000-4000-8000-000000000001</wsa:MessageID>\
        <wsa:To>https://sandbox/si-dmp-server/v2/services/patients</wsa:To>\(security ?? "")</soap:Header>\
        <soap:Body>\(body)</soap:Body></soap:Envelope>
        """
    }

    static let header = """
        <id root="1.3.6.1.4.1.99999.1" extension="msg-1"/><creationTime value="20261207100000"/>\
        <processingCode code="D"/><processingModeCode code="T"/><acceptAckCode code="AL"/>\
        <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.2.250.1.213.4.1.1.1"/></device></receiver>\
        <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.3.6.1.4.1.99999"/></device></sender>
        """

    static func existence(_ ins: String, oid: String = testOID) -> String {
        """
        <PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">\(header)\
        <interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201307UV02"/>\
        <controlActProcess classCode="CACT" moodCode="EVN"><reasonCode code="TEST_EXST" codeSystem="1.2.250.1.213.1.1.4.11"/>\
        <queryByParameter><queryId root="1.3.6.1.4.1.99999.2" extension="q-1"/><statusCode code="new"/><parameterList>\
        <patientIdentifier><value root="\(oid)" extension="\(ins)"/><semanticsText>Patient.id</semanticsText></patientIdentifier>\
        </parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02>
        """
    }

    static func creation(_ ins: String) -> String {
        """
        <PRPA_IN201311UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">\(header)\
        <controlActProcess classCode="CACT" moodCode="EVN"><subject typeCode="SUBJ"><registrationRequest classCode="REG" moodCode="RQO">\
        <subject1 typeCode="SBJ"><patient classCode="PAT"><id root="\(testOID)" extension="\(ins)"/><statusCode code="active"/>\
        <patientPerson><name><family qualifier="BR">NESSI</family><given>MICHELANGELO</given></name></patientPerson></patient></subject1>\
        </registrationRequest></subject></controlActProcess></PRPA_IN201311UV02>
        """
    }

    static func revision(_ ins: String, status: String) -> String {
        """
        <PRPA_IN201314UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">\(header)\
        <controlActProcess classCode="CACT" moodCode="EVN"><reasonCode code="FERMETURE" displayName="Demande du patient"/>\
        <subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN"><subject1 typeCode="SBJ"><patient classCode="PAT">\
        <id root="\(testOID)" extension="\(ins)"/><statusCode code="\(status)"/></patient></subject1></registrationEvent></subject>\
        </controlActProcess></PRPA_IN201314UV02>
        """
    }

    static func post(
        _ running: RunningSandbox,
        _ xml: String,
        client: ClientFiles,
        contentType: String = "application/soap+xml; charset=utf-8",
        path: String = DMPService.patientsPath
    ) async throws -> (TestClient.Response, SOAPElement) {
        let response = try await running.request(
            path,
            method: .post,
            client: client,
            headers: [.contentType: contentType],
            body: xml
        )
        return (response, try HardenedXMLParser().parse(Data(response.text.utf8)))
    }

    static func call(
        _ running: RunningSandbox,
        _ operation: String,
        _ body: String,
        ins: String,
        client: ClientFiles,
        vihf: String? = nil
    ) async throws -> (TestClient.Response, SOAPElement) {
        try await post(running, envelope(operation, body: body, security: vihf ?? Self.vihf(ins: ins)), client: client)
    }

    static func first(_ root: SOAPElement, _ name: String) -> SOAPElement? {
        root.descendants.first { $0.name == name }
    }

    @Test func existenceTestAnswersStatusAndAuthorisation() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let (found, root) = try await Self.call(
                running,
                "PRPA_IN201307UV02",
                Self.existence(Self.zoe),
                ins: Self.zoe,
                client: client
            )
            #expect(found.status == .ok, "\(found.text)")
            #expect(Self.first(root, "PRPA_IN201308UV02") != nil)
            #expect(Self.first(root, "queryResponseCode")?.attributes["code"] == "OK")
            #expect(Self.first(root, "registrationEvent")?.child("statusCode")?.attributes["code"] == "active")
            #expect(Self.first(root, "assignedEntity")?.child("code")?.attributes["code"] == "AUTORISATION_VALIDE")
            #expect(Self.first(root, "RelatesTo")?.text == "urn:uuid:3f2c1a2e-0000-4000-8000-000000000001")
            #expect(Self.first(root, "queryId")?.attributes["extension"] == "q-1")
            let (_, notAuthorised) = try await Self.call(
                running,
                "PRPA_IN201307UV02",
                Self.existence(Self.gatien),
                ins: Self.gatien,
                client: client
            )
            #expect(
                Self.first(notAuthorised, "assignedEntity")?.child("code")?.attributes["code"] == "AUTORISATION_ABSENTE"
            )
            let (_, closed) = try await Self.call(
                running,
                "PRPA_IN201307UV02",
                Self.existence(Self.catarina),
                ins: Self.catarina,
                client: client
            )
            #expect(Self.first(closed, "registrationEvent")?.child("statusCode")?.attributes["code"] == "completed")
            let (_, none) = try await Self.call(
                running,
                "PRPA_IN201307UV02",
                Self.existence(Self.nessi),
                ins: Self.nessi,
                client: client
            )
            #expect(Self.first(none, "queryResponseCode")?.attributes["code"] == "NF")
            #expect(Self.first(none, "registrationEvent") == nil)
            // The answers validate as XML the parser reads back; the exchange is journaled under dmp.
            let rows = try await running.journalRows { $0.service == "dmp" && $0.status == 200 }
            #expect(rows.count >= 1)
        }
    }

    @Test func setAuthorizationAddsAndRemovesTheStructure() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            func set(
                _ action: String,
                ins: String,
                attributes: [String: String?] = [:]
            ) async throws -> (TestClient.Response, SOAPElement) {
                let body =
                    "<setAuthorization xmlns=\"urn:si-dmp-habilitations\"><action>\(action)</action></setAuthorization>"
                let xml = Self.envelope(
                    "",
                    body: body,
                    security: Self.vihf(ins: ins, attributes: attributes),
                    action: "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
                )
                return try await Self.post(running, xml, client: client, path: DMPService.habilitationsPath)
            }
            // GATIEN's DMP: no structure authorised; AJOUT authorises the caller, TD0.2 then says so; SUPPRESSION removes it.
            let (added, addedRoot) = try await set("AJOUT", ins: Self.gatien)
            #expect(added.status == .ok, "\(added.text)")
            #expect(Self.first(addedRoot, "status")?.text == "OK")
            #expect(try running.sandbox.dmp.records.record(ins: Self.gatien)?.authorisedStructures == [Self.structure])
            let (_, existence) = try await Self.call(
                running,
                "PRPA_IN201307UV02",
                Self.existence(Self.gatien),
                ins: Self.gatien,
                client: client
            )
            #expect(Self.first(existence, "assignedEntity")?.child("code")?.attributes["code"] == "AUTORISATION_VALIDE")
            #expect(Self.first(try await set("SUPPRESSION", ins: Self.gatien).1, "status")?.text == "OK")
            #expect(try running.sandbox.dmp.records.record(ins: Self.gatien)?.authorisedStructures == [])
            #expect(Self.first(try await set("AJOUT", ins: Self.nessi).1, "status")?.text == "DMPNotFound")
            #expect(Self.first(try await set("AJOUT", ins: Self.catarina).1, "status")?.text == "DMPClosed")
            let (invalid, _) = try await set("PEUT-ETRE", ins: Self.gatien)
            #expect(invalid.status == .badRequest)
            #expect(invalid.text.contains("InvalidMessage"))
            let (noPatient, _) = try await set(
                "AJOUT",
                ins: Self.gatien,
                attributes: ["urn:oasis:names:tc:xacml:2.0:resource:resource-id": nil]
            )
            #expect(noPatient.status == .badRequest)
            #expect(noPatient.text.contains("resource-id"))
        }
    }

    @Test func creationClosingAndReactivation() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let (created, root) = try await Self.call(
                running,
                "PRPA_IN201311UV02",
                Self.creation(Self.nessi),
                ins: Self.nessi,
                client: client
            )
            #expect(created.status == .ok, "\(created.text)")
            #expect(Self.first(root, "PRPA_IN201312UV02") != nil)
            #expect(Self.first(root, "acknowledgement")?.child("typeCode")?.attributes["code"] == "AA")
            let record = try #require(try running.sandbox.dmp.records.record(ins: Self.nessi))
            #expect(record.status == .open)
            #expect(record.authorisedStructures == [Self.structure], "the creating structure is authorised")
            // Again: DMPFound, nothing changed.
            let (_, again) = try await Self.call(
                running,
                "PRPA_IN201311UV02",
                Self.creation(Self.nessi),
                ins: Self.nessi,
                client: client
            )
            #expect(Self.first(again, "PRPA_IN201313UV02") != nil)
            #expect(Self.first(again, "acknowledgementDetail")?.child("code")?.attributes["code"] == "DMPFound")
            // Close, close again (DMPClosed), reactivate.
            let (_, closed) = try await Self.call(
                running,
                "PRPA_IN201314UV02",
                Self.revision(Self.nessi, status: "completed"),
                ins: Self.nessi,
                client: client
            )
            #expect(Self.first(closed, "PRPA_IN201315UV02") != nil)
            #expect(try running.sandbox.dmp.records.record(ins: Self.nessi)?.status == .closed)
            #expect(try running.sandbox.dmp.records.record(ins: Self.nessi)?.closureReason == "Demande du patient")
            let (_, twice) = try await Self.call(
                running,
                "PRPA_IN201314UV02",
                Self.revision(Self.nessi, status: "completed"),
                ins: Self.nessi,
                client: client
            )
            #expect(Self.first(twice, "acknowledgementDetail")?.child("code")?.attributes["code"] == "DMPClosed")
            let (_, reopened) = try await Self.call(
                running,
                "PRPA_IN201314UV02",
                Self.revision(Self.nessi, status: "active"),
                ins: Self.nessi,
                client: client
            )
            #expect(Self.first(reopened, "PRPA_IN201315UV02") != nil)
            #expect(try running.sandbox.dmp.records.record(ins: Self.nessi)?.status == .open)
            // A structure not authorised may not close it; a patient without DMP: DMPNotFound.
            let other = Self.vihf(ins: Self.gatien, structure: "9999999999")
            let (_, refused) = try await Self.call(
                running,
                "PRPA_IN201314UV02",
                Self.revision(Self.gatien, status: "completed"),
                ins: Self.gatien,
                client: client,
                vihf: other
            )
            #expect(
                Self.first(refused, "acknowledgementDetail")?.child("code")?.attributes["code"]
                    == "DMPAuthorizationRequired"
            )
            let unknownINS = "109076322083489"
            let (_, missing) = try await Self.call(
                running,
                "PRPA_IN201314UV02",
                Self.revision(unknownINS, status: "completed"),
                ins: unknownINS,
                client: client
            )
            #expect(Self.first(missing, "acknowledgementDetail")?.child("code")?.attributes["code"] == "DMPNotFound")
            // The admin API lists the DMPs; reset brings the seeds back.
            let listed = try await running.admin("/admin/dmp/records")
            #expect(listed.text.contains(Self.nessi))
            #expect(try await running.admin("/admin/reset", method: .post).status == .ok)
            #expect(try running.sandbox.dmp.records.record(ins: Self.nessi) == nil)
            #expect(try running.sandbox.dmp.records.records().count == 3)
        }
    }

    /// Each VIHF problem is a SOAP Fault naming the attribute; nothing is created.
    @Test(arguments: [
        (nil as String?, "wsse:Security"),
        (
            "<wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\"/>",
            "saml:Assertion"
        ),
        (
            DMPPatientsTests.vihf(ins: DMPPatientsTests.nessi, attributes: ["LPS_ID_HOMOLOGATION_DMP": nil]),
            "LPS_ID_HOMOLOGATION_DMP"
        ),
        (
            DMPPatientsTests.vihf(ins: DMPPatientsTests.nessi, attributes: ["Identifiant_Structure": nil]),
            "Identifiant_Structure"
        ),
        (
            DMPPatientsTests.vihf(ins: DMPPatientsTests.nessi, roleSystem: "9.9.9"),
            "urn:oasis:names:tc:xacml:2.0:subject:role"
        ),
        (
            DMPPatientsTests.vihf(ins: DMPPatientsTests.nessi, attributes: ["Authentification_Mode": "MAGIQUE"]),
            "Authentification_Mode"
        ),
        (DMPPatientsTests.vihf(ins: DMPPatientsTests.nessi, attributes: ["Ressource_URN": "urn:ror"]), "Ressource_URN"),
        (DMPPatientsTests.vihf(ins: DMPPatientsTests.zoe), "urn:oasis:names:tc:xacml:2.0:resource:resource-id"),
        (
            DMPPatientsTests.vihf(ins: DMPPatientsTests.nessi, notOnOrAfter: Date().addingTimeInterval(-60)),
            "NotOnOrAfter"
        ),
    ])
    func vihfRefusalsNameTheAttribute(security: String?, attribute: String) async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let (response, root) = try await Self.post(
                running,
                Self.envelope("PRPA_IN201311UV02", body: Self.creation(Self.nessi), security: security),
                client: client
            )
            #expect(response.status == .badRequest, "\(response.text)")
            #expect(Self.first(root, "Fault") != nil)
            #expect(Self.first(root, "attribute")?.text == attribute, "\(response.text)")
            #expect(try running.sandbox.dmp.records.record(ins: Self.nessi) == nil, "nothing created")
        }
    }

    @Test func malformedAndHostileMessagesGetFaults() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let good = Self.envelope(
                "PRPA_IN201307UV02",
                body: Self.existence(Self.zoe),
                security: Self.vihf(ins: Self.zoe)
            )
            let cases: [(String, String, HTTPResponse.Status, String)] = [
                (good, "text/xml", .unsupportedMediaType, "MediaType"),
                (
                    "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" + good, "application/soap+xml",
                    .badRequest, "MalformedMessage"
                ),
                (
                    "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body><x",
                    "application/soap+xml", .badRequest, "MalformedMessage"
                ),
                (
                    Self.envelope(
                        "PRPA_IN201301UV02",
                        body: "<PRPA_IN201301UV02 xmlns=\"urn:hl7-org:v3\"/>",
                        security: Self.vihf(ins: Self.zoe)
                    ), "application/soap+xml", .badRequest, "UnknownMessage"
                ),
                (
                    Self.envelope(
                        "PRPA_IN201307UV02",
                        body: Self.existence(Self.zoe),
                        security: Self.vihf(ins: Self.zoe),
                        action: "urn:hl7-org:v3:PRPA_IN201311UV02"
                    ), "application/soap+xml", .badRequest, "WrongAction"
                ),
                (
                    Self.envelope(
                        "PRPA_IN201307UV02",
                        body: Self.existence("12345"),
                        security: Self.vihf(ins: "12345")
                    ), "application/soap+xml", .badRequest, "InvalidINS"
                ),
                (
                    Self.envelope(
                        "PRPA_IN201307UV02",
                        body: Self.existence(Self.zoe, oid: "1.2.3"),
                        security: Self.vihf(ins: Self.zoe)
                    ), "application/soap+xml", .badRequest, "UnknownPatientIdentifier"
                ),
                (
                    Self.envelope(
                        "PRPA_IN201314UV02",
                        body: Self.revision(Self.zoe, status: "maybe"),
                        security: Self.vihf(ins: Self.zoe)
                    ), "application/soap+xml", .badRequest, "InvalidMessage"
                ),
            ]
            for (xml, contentType, status, subcode) in cases {
                let response = try await running.request(
                    DMPService.patientsPath,
                    method: .post,
                    client: client,
                    headers: [.contentType: contentType],
                    body: xml
                )
                #expect(response.status == status, "\(subcode): \(response.text)")
                #expect(response.text.contains(subcode), "\(subcode): \(response.text)")
            }
            let large = try await running.request(
                DMPService.patientsPath,
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                bytes: Array(repeating: UInt8(ascii: " "), count: (1 << 20) + 1)
            )
            #expect(large.status == .contentTooLarge)
            // Still serving.
            let (after, _) = try await Self.post(running, good, client: client)
            #expect(after.status == .ok)
        }
    }
}
