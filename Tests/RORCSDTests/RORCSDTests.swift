import Access
import FHIRCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RORCSD
import SOAPCore
import Testing
import X509

@testable import SandboxServer
@testable import SandboxTestSupport

@Suite("ROR CSD MEV2.4")
struct RORCSDTests {
    static let dn = "CN=CLIENT_WS_ROR_SANDBOX,OU=312345678900017,O=EDITEUR SANDBOX CSD,ST=Gironde (33),C=FR"
    static let reference = Reference.file("csd")
    static let schemaFile = reference.appendingPathComponent("ror-ans-mev2.4/IHE_ProfilCSD-ExtensionROR_fr-v2.4.xsd")

    /// A sandbox on the repository seeds and a CSD consumer whitelisted by its public key.
    static func start() async throws -> (RunningSandbox, ClientFiles) {
        let running = try await RunningSandbox.start(seeds: SharedPKI.repositorySeeds)
        let client = try SharedPKI.client(dn)
        try running.whitelist("ror-csd", spki: try SPKIDigest(publicKey: client.issued.certificate.publicKey).hex)
        return (running, client)
    }

    /// Offers (HealthcareService ids) the seeds hold under an EG, directly or through its internal organisations.
    static func seededUnits(of establishment: String) throws -> [(id: String, field: String)] {
        let data = try Data(contentsOf: SharedPKI.repositorySeeds.appendingPathComponent("ror/dataset.json"))
        let bundle = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let resources = (bundle["entry"] as! [[String: Any]]).map { $0["resource"] as! [String: Any] }
        let owners = Set(
            [establishment]
                + resources.filter {
                    $0["resourceType"] as? String == "Organization"
                        && ($0["partOf"] as? [String: Any])?["reference"] as? String == "Organization/\(establishment)"
                }.map { $0["id"] as! String }
        )
        return resources.filter {
            $0["resourceType"] as? String == "HealthcareService"
                && owners.contains(
                    String(
                        ((($0["providedBy"] as? [String: Any])?["reference"] as? String) ?? "").split(separator: "/")
                            .last ?? ""
                    )
                )
        }.map { resource in
            let field =
                ((resource["type"] as! [[String: Any]]).first!["coding"] as! [[String: Any]]).first!["code"] as! String
            return (resource["id"] as! String, field)
        }.sorted { $0.id < $1.id }
    }

    /// The answers of each operation and option validate against the ANS ROR v2.4 XSD (not redistributable: the test
    /// runs where a copy of it and xmllint are on the machine, and shows as skipped elsewhere).
    @Test(.enabled(if: Reference.exists(schemaFile) && Reference.xmllint, "needs the ANS v2.4 XSD and xmllint"))
    func answersValidateAgainstTheANSSchema() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let internalOrganisation = CSDCalls.lecture(
                "<csd:TR_Lecture-OffreSanteOrganisationInterne><csd:organisationID code=\"759000001-OI1\" assigningAuthorityName=\"1.2.250.1.71.1.2.14\"/></csd:TR_Lecture-OffreSanteOrganisationInterne>"
            )
            let lectures = [
                CSDCalls.establishment("1759000001", extra: "<csd:dateRef>2026-01-01T00:00:00</csd:dateRef>"),
                CSDCalls.establishment(
                    "759000001",
                    extra: "<csd:typeActivity code=\"04\" codingScheme=\"1.2.250.1.213.3.3.17\"/>"
                ),
                CSDCalls.establishment(
                    "1759000001",
                    extra: "<csd:restrictedOrganisation>1</csd:restrictedOrganisation>"
                ),
                internalOrganisation,
            ]
            for body in lectures {
                let (response, _) = try await CSDCalls.post(running, body, client: client)
                #expect(response.status == .ok, "\(response.text)")
                try await Self.validate(response, element: "csd:careServicesResponse")
            }
            let (notification, _) = try await CSDCalls.post(
                running,
                CSDCalls.notification("<csd:dateRef>2020-01-01T00:00:00Z</csd:dateRef>"),
                client: client,
                operation: .notification
            )
            #expect(notification.status == .ok)
            try await Self.validate(notification, element: "ror:TR-Notif-ListeEtablissementMajApresDate_Reponse")
        }
    }

    /// Validates the `soap:Body` child against the ANS ROR v2.4 XSD.
    static func validate(_ response: TestClient.Response, element: String) async throws {
        var schema = schemaFile
        if element.hasPrefix("ror:") {
            // The ror: elements are declared in the WSDL's types, over the XSD's types: the same declaration here.
            let wrapper = FileManager.default.temporaryDirectory.appendingPathComponent("ror-\(UUID().uuidString).xsd")
            try Data(
                """
                <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:csd="urn:ihe:iti:csd:2013" targetNamespace="urn:asip:ror:2015" elementFormDefault="qualified">
                <xs:import namespace="urn:ihe:iti:csd:2013" schemaLocation="\(schema.path)"/>
                <xs:element name="\(element.dropFirst(4))" type="csd:\(element.dropFirst(4))"/></xs:schema>
                """.utf8
            ).write(to: wrapper)
            schema = wrapper
        }
        let xml = response.text
        let start = try #require(xml.range(of: "<\(element)"))
        let end = try #require(xml.range(of: "</\(element)>", options: .backwards))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("csd-\(UUID().uuidString).xml")
        try Data(xml[start.lowerBound..<end.upperBound].utf8).write(to: file)
        let catalog = reference.appendingPathComponent("catalog.xml").path
        let run = try await Shell.run(
            "XML_CATALOG_FILES='\(catalog)' xmllint --nonet --noout --schema '\(schema.path)' '\(file.path)'"
        )
        #expect(run.status == 0, "\(run.stderr)")
    }

    @Test func lectureOfAnEstablishmentReturnsTheCSDTree() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let expected = try Self.seededUnits(of: "eg-00001")
            for code in ["1759000001", "759000001"] {  // idNat_Struct (1 + FINESS) or FINESS
                let (response, root) = try await CSDCalls.post(
                    running,
                    CSDCalls.establishment(code, extra: "<csd:dateRef>2026-01-01T00:00:00</csd:dateRef>"),
                    client: client
                )
                #expect(response.status == .ok, "\(response.text)")
                let result = try #require(root.path("Body", "careServicesResponse", "result"))
                #expect(result.child("facilityNumber")?.text == "\(expected.count)")
                let csd = try #require(result.child("queryResult"))
                #expect(
                    csd.children.map(\.name) == [
                        "organizationDirectory", "serviceDirectory", "facilityDirectory", "providerDirectory",
                        "deviceDirectory",
                    ]
                )
                let organizations = csd.child("organizationDirectory")!.children
                #expect(organizations.map { $0.attributes["entityID"] } == ["ej-00001", "eg-00001"])
                #expect(organizations[1].child("parent")?.attributes["entityID"] == "ej-00001")
                let facilities = csd.child("facilityDirectory")!.children
                #expect(facilities.map { $0.attributes["entityID"]! } == expected.map(\.id))
                #expect(facilities.allSatisfy { $0.child("codedType")?.attributes["code"] == "4" })
                #expect(
                    facilities.map { $0.path("extension", "typeActivity")?.attributes["code"] ?? "" }
                        == expected.map(\.field)
                )
                #expect(
                    facilities.allSatisfy {
                        $0.path("organizations", "organization")?.attributes["entityID"] == "eg-00001"
                    }
                )
                #expect(csd.child("serviceDirectory")!.children.count == expected.count)
                #expect(
                    facilities.contains {
                        $0.path("extension", "accommodationCapacity", "beds") != nil
                            || $0.path("extension", "accommodationCapacity", "space") != nil
                    }
                )
            }
            // An EJ's id: every EG of it.
            let (_, byLegalEntity) = try await CSDCalls.post(
                running,
                CSDCalls.establishment("1759000000"),
                client: client
            )
            #expect(
                byLegalEntity.path("Body", "careServicesResponse", "result", "queryResult", "organizationDirectory")?
                    .children.count == 2
            )
        }
    }

    @Test func filtersAndRestrictedOrganisation() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let expected = try Self.seededUnits(of: "eg-00001")
            let field = try #require(expected.first?.field)
            let (filtered, root) = try await CSDCalls.post(
                running,
                CSDCalls.establishment(
                    "1759000001",
                    extra: "<csd:typeActivity code=\"\(field)\" codingScheme=\"1.2.250.1.213.3.3.17\"/>"
                ),
                client: client
            )
            let facilities = try #require(
                root.path("Body", "careServicesResponse", "result", "queryResult", "facilityDirectory")?.children
            )
            #expect(facilities.map { $0.attributes["entityID"]! } == expected.filter { $0.field == field }.map(\.id))
            // No unit in that field: the EJ/EG tree, zero facilities (RG_ALIM_018/019).
            let (_, none) = try await CSDCalls.post(
                running,
                CSDCalls.establishment(
                    "1759000001",
                    extra: "<csd:typeActivity code=\"99\" codingScheme=\"1.2.250.1.213.3.3.17\"/>"
                ),
                client: client
            )
            #expect(none.path("Body", "careServicesResponse", "result", "facilityNumber")?.text == "0")
            #expect(
                none.path("Body", "careServicesResponse", "result", "queryResult", "organizationDirectory")?.children
                    .count == 2
            )
            // The seeds declare no supported public (supportedPatient): filtering on one leaves no unit.
            let (_, patients) = try await CSDCalls.post(
                running,
                CSDCalls.establishment(
                    "1759000001",
                    extra: "<csd:supportedPatient code=\"01\" codingScheme=\"1.2.250.1.213.3.3.29\"/>"
                ),
                client: client
            )
            #expect(patients.path("Body", "careServicesResponse", "result", "facilityNumber")?.text == "0")
            let (restricted, restrictedRoot) = try await CSDCalls.post(
                running,
                CSDCalls.establishment(
                    "1759000001",
                    extra: "<csd:restrictedOrganisation>1</csd:restrictedOrganisation>"
                ),
                client: client
            )
            let restrictedFacilities = try #require(
                restrictedRoot.path("Body", "careServicesResponse", "result", "queryResult", "facilityDirectory")?
                    .children
            )
            #expect(restrictedFacilities.count == expected.count)
            #expect(restrictedFacilities.allSatisfy { $0.path("extension", "accommodationCapacity") == nil })
        }
    }

    @Test func lectureOfAnInternalOrganisationOrAUnit() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let internalRequest = { (code: String) in
                CSDCalls.lecture(
                    "<csd:TR_Lecture-OffreSanteOrganisationInterne><csd:organisationID code=\"\(code)\" assigningAuthorityName=\"1.2.250.1.71.1.2.14\"/></csd:TR_Lecture-OffreSanteOrganisationInterne>"
                )
            }
            let (pole, poleRoot) = try await CSDCalls.post(running, internalRequest("759000001-OI1"), client: client)
            #expect(pole.status == .ok, "\(pole.text)")
            let poleFacilities = try #require(
                poleRoot.path("Body", "careServicesResponse", "result", "queryResult", "facilityDirectory")?.children
            )
            #expect(!poleFacilities.isEmpty)
            #expect(
                poleFacilities.allSatisfy {
                    $0.path("organizations", "organization")?.attributes["entityID"] == "eg-00001"
                }
            )
            let unitIdentifier = try #require(poleFacilities.first?.child("otherID")?.attributes["code"])
            let (_, unitRoot) = try await CSDCalls.post(running, internalRequest(unitIdentifier), client: client)
            #expect(unitRoot.path("Body", "careServicesResponse", "result", "facilityNumber")?.text == "1")
            let (unknown, unknownRoot) = try await CSDCalls.post(running, internalRequest("NOPE-42"), client: client)
            #expect(unknown.status == .internalServerError)
            #expect(unknownRoot.path("Body", "Fault", "Detail", "erreur")?.attributes["code"] == "404")
        }
    }

    @Test func notificationListsEstablishmentsUpdatedAfterADate() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let (all, allRoot) = try await CSDCalls.post(
                running,
                CSDCalls.notification("<csd:dateRef>2020-01-01T00:00:00Z</csd:dateRef>"),
                client: client,
                operation: .notification
            )
            #expect(all.status == .ok, "\(all.text)")
            let answer = try #require(allRoot.path("Body", "TR-Notif-ListeEtablissementMajApresDate_Reponse"))
            #expect(answer.child("result")?.text == "12")
            #expect(answer.children("etablissementReponseNotif").count == 12)
            // Filtered on an activity field: only the establishments with units in it, each listing its fields.
            let (_, msRoot) = try await CSDCalls.post(
                running,
                CSDCalls.notification(
                    "<csd:dateRef>2020-01-01T00:00:00Z</csd:dateRef><csd:typeActivity code=\"04\" codingScheme=\"1.2.250.1.213.3.3.17\"/>"
                ),
                client: client,
                operation: .notification
            )
            let ms = try #require(msRoot.path("Body", "TR-Notif-ListeEtablissementMajApresDate_Reponse"))
            let msCount = Int(ms.child("result")?.text ?? "") ?? -1
            #expect(msCount > 0 && msCount < 12, "\(msCount)")
            #expect(
                ms.children("etablissementReponseNotif").allSatisfy {
                    $0.children("typeActivity").map { $0.attributes["code"] } == ["04"]
                }
            )
            let future = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
            let (_, noneRoot) = try await CSDCalls.post(
                running,
                CSDCalls.notification("<csd:dateRef>\(future)</csd:dateRef>"),
                client: client,
                operation: .notification
            )
            #expect(noneRoot.path("Body", "TR-Notif-ListeEtablissementMajApresDate_Reponse", "result")?.text == "0")

            // A write through the FHIR store (what a capacity PATCH does) shows in the next notification and lecture.
            try await Task.sleep(for: .milliseconds(1100))  // seeds were written at start: let the clock move past them
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let since = formatter.string(from: Date())
            let repository = running.sandbox.ror.repository
            let stored = try #require(try await repository.read(type: "Location", id: "loc-00003-1"))
            var place = try #require(try JSONSerialization.jsonObject(with: stored.json) as? [String: Any])
            place["extension"] = (place["extension"] as! [[String: Any]]).map { indicator -> [String: Any] in
                guard (indicator["url"] as? String)?.hasSuffix("ror-location-supported-capacity") == true else {
                    return indicator
                }
                var parts = indicator["extension"] as! [[String: Any]]
                let installed = parts.contains {
                    ($0["valueCodeableConcept"] as? [String: Any]).map { "\($0)".contains("Installé") } ?? false
                }
                guard installed else { return indicator }
                parts = parts.map {
                    $0["url"] as? String == "nbCapacity" ? ["url": "nbCapacity", "valueInteger": 77] : $0
                }
                return ["url": indicator["url"]!, "extension": parts]
            }
            let updated = try JSONSerialization.data(withJSONObject: place)
            try await repository.store.writer.write { db in
                _ = try repository.save(try JSONSerialization.jsonObject(with: updated) as! [String: Any], in: db)
            }
            let (_, changedRoot) = try await CSDCalls.post(
                running,
                CSDCalls.notification("<csd:dateRef>\(since)</csd:dateRef>"),
                client: client,
                operation: .notification
            )
            let changed = try #require(changedRoot.path("Body", "TR-Notif-ListeEtablissementMajApresDate_Reponse"))
            #expect(changed.child("result")?.text == "1")
            #expect(changed.path("etablissementReponseNotif", "id_etablissement")?.attributes["code"] == "1139000005")
            let (_, lecture) = try await CSDCalls.post(running, CSDCalls.establishment("1139000005"), client: client)
            let totals = lecture.descendants.filter { $0.name == "beds" || $0.name == "space" }.compactMap {
                $0.attributes["total"]
            }
            #expect(totals.contains("77"), "\(totals)")
        }
    }

    struct FaultCase: Sendable, CustomStringConvertible {
        var label: String
        var body: String
        var operation: RORCSDService.Operation?
        var code: String
        var reason: String
        var description: String { label }
    }

    static let faultCases = [
        FaultCase(
            label: "unknown establishment",
            body: CSDCalls.establishment("1000000000"),
            operation: .lecture,
            code: "404",
            reason: "Établissement inconnu"
        ),
        FaultCase(
            label: "unknown function",
            body: CSDCalls.lecture(
                "<csd:TR_Lecture-OffresSanteEtablissement/>",
                urn: "urn:ihe:iti:csd:2014:stored-function:facility-search"
            ),
            operation: .lecture,
            code: "400",
            reason: "Fonction inconnue"
        ),
        FaultCase(
            label: "ad-hoc expression",
            body: CSDCalls.envelope(
                "<csd:careServicesRequest><csd:expression encapsulated=\"true\" content-type=\"text/xml\">//csd:facility</csd:expression></csd:careServicesRequest>"
            ),
            operation: .lecture,
            code: "400",
            reason: "ad hoc"
        ),
        FaultCase(
            label: "no id_etablissement",
            body: CSDCalls.lecture(
                "<csd:TR_Lecture-OffresSanteEtablissement><csd:etablissementDemandeLecture/></csd:TR_Lecture-OffresSanteEtablissement>"
            ),
            operation: .lecture,
            code: "400",
            reason: "id_etablissement"
        ),
        FaultCase(
            label: "bad dateRef",
            body: CSDCalls.establishment("1759000001", extra: "<csd:dateRef>hier</csd:dateRef>"),
            operation: .lecture,
            code: "400",
            reason: "dateRef"
        ),
        FaultCase(
            label: "bad restrictedOrganisation",
            body: CSDCalls.establishment(
                "1759000001",
                extra: "<csd:restrictedOrganisation>oui</csd:restrictedOrganisation>"
            ),
            operation: .lecture,
            code: "400",
            reason: "restrictedOrganisation"
        ),
        FaultCase(
            label: "typeActivity without code",
            body: CSDCalls.establishment("1759000001", extra: "<csd:typeActivity codingScheme=\"x\"/>"),
            operation: .lecture,
            code: "400",
            reason: "typeActivity"
        ),
        FaultCase(
            label: "notification without dateRef",
            body: CSDCalls.notification(""),
            operation: .notification,
            code: "400",
            reason: "dateRef"
        ),
        FaultCase(
            label: "notification without params",
            body: CSDCalls.envelope("<ror:TR-Notif-ListeEtablissementsMajApresDate_Demande/>"),
            operation: .notification,
            code: "400",
            reason: "params"
        ),
        FaultCase(
            label: "no function",
            body: CSDCalls.envelope("<csd:careServicesRequest/>"),
            operation: .lecture,
            code: "400",
            reason: "function"
        ),
        FaultCase(
            label: "function without a reading",
            body: CSDCalls.lecture("<csd:autre/>"),
            operation: .lecture,
            code: "400",
            reason: "TR_Lecture"
        ),
        FaultCase(
            label: "no etablissementDemandeLecture",
            body: CSDCalls.lecture("<csd:TR_Lecture-OffresSanteEtablissement/>"),
            operation: .lecture,
            code: "400",
            reason: "etablissementDemandeLecture"
        ),
        FaultCase(
            label: "no organisationID code",
            body: CSDCalls.lecture(
                "<csd:TR_Lecture-OffreSanteOrganisationInterne><csd:organisationID/></csd:TR_Lecture-OffreSanteOrganisationInterne>"
            ),
            operation: .lecture,
            code: "400",
            reason: "organisationID"
        ),
        FaultCase(
            label: "organisationID with a list",
            body: CSDCalls.lecture(
                "<csd:TR_Lecture-OffreSanteOrganisationInterne><csd:organisationID code=\"a,b\"/></csd:TR_Lecture-OffreSanteOrganisationInterne>"
            ),
            operation: .lecture,
            code: "400",
            reason: "invalide"
        ),
        FaultCase(
            label: "soapAction of the other operation",
            body: CSDCalls.establishment("1759000001"),
            operation: .notification,
            code: "400",
            reason: "soapAction"
        ),
        FaultCase(
            label: "unknown body element",
            body: CSDCalls.envelope("<csd:getModificationsRequest/>"),
            operation: nil,
            code: "400",
            reason: "inconnu"
        ),
        FaultCase(
            label: "XXE",
            body: "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                + CSDCalls.envelope("<x>&e;</x>"),
            operation: nil,
            code: "400",
            reason: "Document Type Declaration"
        ),
        FaultCase(
            label: "billion laughs",
            body: "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>"
                + CSDCalls.envelope("<x>&b;</x>"),
            operation: nil,
            code: "400",
            reason: "Document Type Declaration"
        ),
        FaultCase(
            label: "malformed",
            body: CSDCalls.envelope("<csd:careServicesRequest>"),
            operation: nil,
            code: "400",
            reason: "malformed"
        ),
        FaultCase(
            label: "too deep",
            body: CSDCalls.envelope(String(repeating: "<d>", count: 100) + String(repeating: "</d>", count: 100)),
            operation: nil,
            code: "400",
            reason: "deeper"
        ),
        FaultCase(
            label: "SOAP 1.1",
            body: "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body/></e:Envelope>",
            operation: nil,
            code: "400",
            reason: "SOAP 1.1"
        ),
    ]

    @Test(arguments: faultCases)
    func errorsAreSOAPFaultsWithRORErreur(_ test: FaultCase) async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let (response, root) = try await CSDCalls.post(
                running,
                test.body,
                client: client,
                operation: test.operation
            )
            #expect(response.status == .internalServerError, "\(response.text)")
            let fault = try #require(root.path("Body", "Fault"), "\(response.text)")
            let erreur = try #require(fault.path("Detail", "erreur"))
            #expect(erreur.namespace == "urn:asip:ror:2015")
            #expect(erreur.attributes["code"] == test.code)
            #expect(
                fault.path("Reason", "Text")?.text.contains(test.reason) == true,
                "\(fault.path("Reason", "Text")?.text ?? "")"
            )
            #expect(!response.text.contains("root:x:0"))
            // The server keeps serving.
            #expect(
                try await CSDCalls.post(running, CSDCalls.establishment("1759000001"), client: client).0.status == .ok
            )
        }
    }

    @Test func mediaTypeSizeAndWSDL() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let (text, _) = try await CSDCalls.post(
                running,
                CSDCalls.establishment("1759000001"),
                client: client,
                contentType: "text/xml"
            )
            #expect(text.status == .unsupportedMediaType)
            let huge = try await running.request(
                "/ROR/CSD",
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: String(repeating: "<a/>", count: 100_000)
            )
            #expect(huge.status == .contentTooLarge && huge.text.contains("erreur"))
            // Without any action (PLATINES sends no WS-Addressing): accepted.
            let (plain, _) = try await CSDCalls.post(
                running,
                CSDCalls.establishment("1759000001"),
                client: client,
                operation: nil
            )
            #expect(plain.status == .ok)

            let wsdl = try await running.request("/ROR/CSD?wsdl", client: client)
            let definitions = try HardenedXMLParser().parse(Data(wsdl.text.utf8))
            #expect(definitions.attributes["targetNamespace"] == "urn:asip:ror:2015")
            #expect(definitions.attributes["name"] == "ROR_WebService")
            let actions = Set(definitions.descendants.compactMap { $0.attributes["soapAction"] })
            #expect(
                actions == [
                    "urn:asip:ror:2015:stored-function:ror-search", "urn:asip:ror:2015:stored-function:ror-update",
                ]
            )
            #expect(definitions.child("portType")?.attributes["name"] == "CareServicesRequest_PortType")
            #expect(definitions.child("service")?.attributes["name"] == "CareServicesRequest_Service")
            let schema = try await running.request("/ROR/CSD?xsd=csd", client: client)
            #expect(schema.status == .ok && schema.text.contains("careServicesRequest"))
            #expect(try await running.request("/ROR/CSD?xsd=other", client: client).status == .notFound)
        }
    }

    /// The ANS whitelists CSD consumers by public key: a renewed certificate (same key, new DN) keeps access; the same
    /// DN on a new key does not, and the refusal quotes the presented key's SPKI SHA-256.
    @Test func whitelistedByPublicKeyNotByDN() async throws {
        let (running, client) = try await Self.start()
        try await running.whileRunning {
            let renewed = try SharedPKI.pki.issueClient(
                subject: try SubjectDN(parsing: "CN=AUTRE NOM,O=EDITEUR RENOMME,C=FR").distinguishedName(),
                algorithm: .p256,
                reusing: client.issued.privateKey
            )
            let folder = SharedPKI.directory.appendingPathComponent("clients/\(UUID().uuidString)")
            try SharedPKI.pki.write(renewed, to: folder)
            let sameKey = ClientFiles(folder: folder, issued: renewed)
            #expect(
                try await CSDCalls.post(running, CSDCalls.establishment("1759000001"), client: sameKey).0.status == .ok
            )
            let otherKey = try SharedPKI.client(Self.dn)
            let (refused, root) = try await CSDCalls.post(
                running,
                CSDCalls.establishment("1759000001"),
                client: otherKey
            )
            #expect(refused.status == .forbidden)
            #expect(root.path("Body", "Fault") != nil)
            #expect(refused.text.contains(try SPKIDigest(publicKey: otherKey.issued.certificate.publicKey).hex))
        }
    }
}
