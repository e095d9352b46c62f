import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import SOAPCore
import SwiftASN1
import Testing
import X509

@testable import DMP
@testable import SandboxServer
@testable import SandboxTestSupport

/// The DMP's document services over mutual TLS: ITI-41 submission (plain SOAP, base64), ITI-18 FindDocuments,
/// ITI-43 retrieval byte for byte, RPLC replacement, and the XDS errors in a RegistryErrorList.
@Suite("DMP document services")
struct DMPDocumentTests {
    typealias P = DMPPatientsTests
    static let patientId = "\(P.zoe)^^^&\(P.testOID)&ISO"

    static func cda(ins: String = P.zoe, text: String = "Compte rendu") -> Data {
        Data(
            """
            <?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>\
            <id root="\(P.testOID)" extension="\(ins)"/></patientRole></recordTarget><title>\(text)</title></ClinicalDocument>
            """.utf8
        )
    }

    static func classification(_ scheme: String, _ object: String, code: String) -> String {
        """
        <rim:Classification classificationScheme="\(scheme)" classifiedObject="\(object)" nodeRepresentation="\(code)" id="urn:uuid:\(UUID().uuidString.lowercased())">\
        <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.213.1.1.4.1</rim:Value></rim:ValueList></rim:Slot></rim:Classification>
        """
    }

    /// An ITI-41 request: one submission set, one document entry (`Document01`), optionally replacing `replaces`,
    /// and unless `signed` is false the submission set's XAdES signature (`Signature01`, made by `signature`,
    /// changed by `editSignature` for the refusals).
    static func submission(
        content: Data,
        uniqueId: String = "1.2.250.1.999.1.\(Int.random(in: 1...999_999_999))",
        patient: String = patientId,
        hash: String? = nil,
        withDocument: Bool = true,
        classCode: Bool = true,
        replaces: String? = nil,
        signed: Bool = true,
        editSignature: (String) -> String = { $0 }
    ) -> String {
        let rplc =
            replaces.map {
                "<rim:Association associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\" sourceObject=\"Document01\" targetObject=\"\($0)\" id=\"Replace01\"/>"
            } ?? ""
        let document = entry(
            "Document01",
            content: content,
            uniqueId: uniqueId,
            patient: patient,
            hash: hash,
            codes: [("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", "urn:ihe:pcc:xds-ms:2007")]
                + [("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", "11490-0")]
                + (classCode ? [("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", "10")] : [])
        )
        let signatureContent = Data(editSignature(signature(of: [(uniqueId, content)])).utf8)
        let signature =
            signed
            ? entry(
                "Signature01",
                content: signatureContent,
                uniqueId: uniqueId + ".8",
                patient: patient,
                codes: [
                    ("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", "urn:ihe:iti:dsg:detached:2014"),
                    ("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", "E1762"),
                    ("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"),
                ]
            ) + hasMember("Signature01") : ""
        let documents =
            (withDocument ? "<xdsb:Document id=\"Document01\">\(content.base64EncodedString())</xdsb:Document>" : "")
            + (signed
                ? "<xdsb:Document id=\"Signature01\">\(signatureContent.base64EncodedString())</xdsb:Document>" : "")
        return """
            <xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">\
            <lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">\
            <rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">\
            \(document)\
            <rim:RegistryPackage id="SubmissionSet01">\
            <rim:Slot name="submissionTime"><rim:ValueList><rim:Value>20261207100000</rim:Value></rim:ValueList></rim:Slot>\
            <rim:ExternalIdentifier identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="\(uniqueId).9" id="ei3" registryObject="SubmissionSet01"/>\
            <rim:ExternalIdentifier identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="\(XMLText.escape(patient))" id="ei4" registryObject="SubmissionSet01"/>\
            </rim:RegistryPackage>\
            <rim:Classification classifiedObject="SubmissionSet01" classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd" id="cl1"/>\
            \(hasMember("Document01"))\(signature)\(rplc)\
            </rim:RegistryObjectList></lcm:SubmitObjectsRequest>\
            \(documents)\
            </xdsb:ProvideAndRegisterDocumentSetRequest>
            """
    }

    /// A document entry (ExtrinsicObject) with its slots, codes, patient and uniqueId.
    static func entry(
        _ id: String,
        content: Data,
        uniqueId: String,
        patient: String,
        hash: String? = nil,
        codes: [(scheme: String, code: String)]
    ) -> String {
        """
        <rim:ExtrinsicObject id="\(id)" mimeType="text/xml" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">\
        <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20261207100000</rim:Value></rim:ValueList></rim:Slot>\
        <rim:Slot name="hash"><rim:ValueList><rim:Value>\(hash ?? content.sha1Hex)</rim:Value></rim:ValueList></rim:Slot>\
        <rim:Slot name="size"><rim:ValueList><rim:Value>\(content.count)</rim:Value></rim:ValueList></rim:Slot>\
        <rim:Name><rim:LocalizedString value="Compte rendu"/></rim:Name>\
        \(codes.map { classification($0.scheme, id, code: $0.code) }.joined())\
        <rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="\(XMLText.escape(patient))" id="\(id)-patient" registryObject="\(id)"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name></rim:ExternalIdentifier>\
        <rim:ExternalIdentifier identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="\(uniqueId)" id="\(id)-uniqueId" registryObject="\(id)"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name></rim:ExternalIdentifier>\
        </rim:ExtrinsicObject>
        """
    }

    static func hasMember(_ id: String) -> String {
        """
        <rim:Association associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" sourceObject="SubmissionSet01" targetObject="\(id)" id="HasMember-\(id)">\
        <rim:Slot name="SubmissionSetStatus"><rim:ValueList><rim:Value>Original</rim:Value></rim:ValueList></rim:Slot></rim:Association>
        """
    }

    /// The signer's certificate (self-signed: the sandbox reads it but does not verify its chain).
    static let signer: String = {
        let key = P256.Signing.PrivateKey()
        let name = try! DistinguishedName {
            CountryName("FR")
            OrganizationName("CENTRE SANDBOX")
            OrganizationalUnitName(P.structure)
            CommonName("SIGNATURE DU LOT")
        }
        let certificate = try! Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600),
            notValidAfter: Date().addingTimeInterval(86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: .init(),
            issuerPrivateKey: .init(key)
        )
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        return Data(serializer.serializedBytes).base64EncodedString()
    }()

    /// A detached XAdES signature as IHE DSG shapes it: SignedInfo signs the manifest and the signed properties,
    /// the manifest lists each document by `urn:oid:` uniqueId with its SHA-256.
    static func signature(of documents: [(uniqueId: String, content: Data)]) -> String {
        let ds = "http://www.w3.org/2000/09/xmldsig#"
        let references = documents.map {
            """
            <ds:Reference URI="urn:oid:\($0.uniqueId)"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>\
            <ds:DigestValue>\(Data(SHA256.hash(data: $0.content)).base64EncodedString())</ds:DigestValue></ds:Reference>
            """
        }
        return """
            <ds:Signature xmlns:ds="\(ds)" Id="signature-1"><ds:SignedInfo>\
            <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
            <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>\
            <ds:Reference URI="#manifest-1" Type="http://www.w3.org/2000/09/xmldsig#Manifest">\
            <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>\
            </ds:SignedInfo><ds:SignatureValue>c2lnbmF0dXJl</ds:SignatureValue>\
            <ds:KeyInfo><ds:X509Data><ds:X509Certificate>\(signer)</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
            <ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" Target="#signature-1">\
            <xades:SignedProperties Id="signed-properties-1"><xades:SignedSignatureProperties>\
            <xades:SigningTime>2026-12-07T10:00:00Z</xades:SigningTime><xades:SigningCertificate/>\
            </xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object>\
            <ds:Object><ds:Manifest Id="manifest-1">\(references.joined())</ds:Manifest></ds:Object></ds:Signature>
            """
    }

    static func findDocuments(
        _ patient: String = patientId,
        returnType: String = "LeafClass",
        status: String = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
        slots: [(String, String)] = []
    ) -> String {
        adhoc(
            "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
            [("$XDSDocumentEntryPatientId", "'\(patient)'"), ("$XDSDocumentEntryStatus", status)] + slots,
            returnType: returnType
        )
    }

    static func retrieve(_ uniqueId: String, repository: String = "1.2.250.1.213.4.1.1.1.2") -> String {
        """
        <xdsb:RetrieveDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"><xdsb:DocumentRequest>\
        <xdsb:RepositoryUniqueId>\(repository)</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>\(uniqueId)</xdsb:DocumentUniqueId>\
        </xdsb:DocumentRequest></xdsb:RetrieveDocumentSetRequest>
        """
    }

    static func call(
        _ running: RunningSandbox,
        path: String,
        action: String,
        _ body: String,
        client: ClientFiles,
        ins: String = P.zoe,
        structure: String = P.structure
    ) async throws -> (TestClient.Response, SOAPElement) {
        let xml = P.envelope("", body: body, security: P.vihf(ins: ins, structure: structure), action: action)
        let response = try await running.request(
            path,
            method: .post,
            client: client,
            headers: [.contentType: "application/soap+xml; charset=utf-8"],
            body: xml
        )
        return (response, try HardenedXMLParser(maximumBytes: 32 << 20).parse(Data(response.text.utf8)))
    }

    static func submit(
        _ running: RunningSandbox,
        _ body: String,
        client: ClientFiles,
        structure: String = P.structure
    ) async throws -> (TestClient.Response, SOAPElement) {
        try await call(
            running,
            path: DMPService.repositoryPath,
            action: "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
            body,
            client: client,
            structure: structure
        )
    }

    static func errorCodes(_ root: SOAPElement) -> [String] {
        root.descendants.filter { $0.name == "RegistryError" }.compactMap { $0.attributes["errorCode"] }
    }

    /// The XAdES signature of the submission set: required over SOAP, checked (structure, certificate, manifest
    /// digests) and kept apart from the patient's documents; each refusal names what is wrong and stores nothing.
    @Test func submissionSetSignature() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            let documents = running.sandbox.dmp.documentStore
            let content = Self.cda()
            let uniqueId = "1.2.250.1.999.1.3001"
            let (_, answer) = try await Self.submit(
                running,
                Self.submission(content: content, uniqueId: uniqueId),
                client: client
            )
            #expect(Self.errorCodes(answer).isEmpty, "\(answer)")
            let entry = try #require(try documents.entry(uniqueId: uniqueId))
            let signature = try #require(try documents.signature(ofEntry: entry.entryUUID))
            #expect(signature.uniqueId == uniqueId + ".8")
            #expect(signature.signer.contains("CN=SIGNATURE DU LOT"))
            #expect(signature.signingTime == "2026-12-07T10:00:00Z")
            // The signature is not one of the patient's documents.
            #expect(try documents.entry(uniqueId: uniqueId + ".8") == nil)
            let (_, found) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                Self.findDocuments(),
                client: client
            )
            #expect(found.descendants.filter { $0.name == "ExtrinsicObject" }.count == 1)

            let digest = Data(SHA256.hash(data: content)).base64EncodedString()
            let refusals: [(String, Bool, (String) -> String)] = [
                ("the submission set is not signed", false, { $0 }),
                ("the DigestValue for", true, { $0.replacingOccurrences(of: digest, with: "AAAA") }),
                (
                    "xades:SigningTime is missing", true,
                    {
                        $0.replacingOccurrences(
                            of: "<xades:SigningTime>2026-12-07T10:00:00Z</xades:SigningTime>",
                            with: ""
                        )
                    }
                ),
                (
                    "the signature is not XAdES", true,
                    {
                        $0.replacingOccurrences(of: "http://uri.etsi.org/01903/v1.3.2#", with: "urn:example:xades")
                    }
                ),
                (
                    "not a DER X.509 certificate", true,
                    { $0.replacingOccurrences(of: Self.signer, with: "bm90IGEgY2VydA==") }
                ),
                (
                    "has no ds:Reference URI=\"urn:oid:", true,
                    { $0.replacingOccurrences(of: "urn:oid:", with: "urn:oid:9.") }
                ),
                (
                    "the manifest is not signed", true,
                    {
                        $0.replacingOccurrences(of: "URI=\"#manifest-1\"", with: "URI=\"#elsewhere\"")
                    }
                ),
                (
                    "no SigningCertificate", true,
                    { $0.replacingOccurrences(of: "<xades:SigningCertificate/>", with: "") }
                ),
                (
                    "ds:SignatureValue is empty", true,
                    {
                        $0.replacingOccurrences(of: "c2lnbmF0dXJl", with: "")
                    }
                ),
                ("not ds:Signature", true, { _ in "<Signature xmlns=\"urn:example\"/>" }),
                ("not XML that can be read", true, { "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" + $0 }),
            ]
            for (index, (reason, signed, edit)) in refusals.enumerated() {
                let refusedId = "1.2.250.1.999.1.31\(index)"
                let (response, refused) = try await Self.submit(
                    running,
                    Self.submission(content: content, uniqueId: refusedId, signed: signed, editSignature: edit),
                    client: client
                )
                #expect(response.status == .ok)
                #expect(Self.errorCodes(refused) == ["XDSRegistryMetadataError"], "\(reason): \(response.text)")
                let context = refused.descendants.first { $0.name == "RegistryError" }?.attributes["codeContext"] ?? ""
                #expect(context.contains(reason), "\(reason): \(context)")
                #expect(try documents.entry(uniqueId: refusedId) == nil, "\(reason)")
            }
        }
    }

    @Test func submitFindRetrieveAndReplace() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            let content = Self.cda()
            let uniqueId = "1.2.250.1.999.1.1001"
            let (stored, answer) = try await Self.submit(
                running,
                Self.submission(content: content, uniqueId: uniqueId),
                client: client
            )
            #expect(stored.status == .ok, "\(stored.text)")
            #expect(
                P.first(answer, "RegistryResponse")?.attributes["status"]
                    == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success",
                "\(stored.text)"
            )
            #expect(P.first(answer, "Action")?.text == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse")

            // ITI-18: found, with its metadata and a registry-assigned UUID; ObjectRef form too.
            let (_, found) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                Self.findDocuments(),
                client: client
            )
            let entries = found.descendants.filter { $0.name == "ExtrinsicObject" }
            #expect(entries.count == 1)
            let entryUUID = try #require(entries.first?.attributes["id"])
            #expect(entryUUID.hasPrefix("urn:uuid:"))
            #expect(entries.first?.attributes["status"] == "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved")
            #expect(entries.first?.descendants.contains { $0.attributes["value"] == uniqueId } == true)
            let (_, refs) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                Self.findDocuments(returnType: "ObjectRef"),
                client: client
            )
            #expect(refs.descendants.filter { $0.name == "ObjectRef" }.map { $0.attributes["id"] } == [entryUUID])

            // ITI-43: the same bytes.
            let (_, retrieved) = try await Self.call(
                running,
                path: DMPService.repositoryPath,
                action: "urn:ihe:iti:2007:RetrieveDocumentSet",
                Self.retrieve(uniqueId),
                client: client
            )
            let base64 = try #require(P.first(retrieved, "Document")?.text)
            #expect(Data(base64Encoded: base64) == content)
            #expect(P.first(retrieved, "mimeType")?.text == "text/xml")

            // RPLC: the new version approved, the old one deprecated (found with the Deprecated status only).
            let replacement = Self.cda(text: "Compte rendu corrigé")
            let (_, replaced) = try await Self.submit(
                running,
                Self.submission(content: replacement, uniqueId: "1.2.250.1.999.1.1002", replaces: entryUUID),
                client: client
            )
            #expect(Self.errorCodes(replaced).isEmpty, "\(replaced)")
            let (_, approved) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                Self.findDocuments(),
                client: client
            )
            #expect(approved.descendants.filter { $0.name == "ExtrinsicObject" }.count == 1)
            #expect(approved.descendants.contains { $0.attributes["value"] == "1.2.250.1.999.1.1002" })
            let (_, deprecated) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                Self.findDocuments(status: "('urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated')"),
                client: client
            )
            #expect(
                deprecated.descendants.filter { $0.name == "ExtrinsicObject" }.map { $0.attributes["id"] } == [
                    entryUUID
                ]
            )
            let entriesStored = try running.sandbox.dmp.documentStore.entries(ins: P.zoe)
            #expect(
                entriesStored.map(\.status).sorted() == [
                    "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
                    "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated",
                ]
            )
            #expect(entriesStored.last?.replaces == entryUUID)
        }
    }

    @Test func submissionErrorsAreNamedAndNothingIsStored() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            let content = Self.cda()
            let cases: [(String, String)] = [
                (Self.submission(content: content, withDocument: false), "XDSMissingDocument"),
                (
                    Self.submission(content: content, hash: String(repeating: "0", count: 40)),
                    "XDSRepositoryMetadataError"
                ),
                (Self.submission(content: content, classCode: false), "XDSRegistryMetadataError"),
                (Self.submission(content: Self.cda(ins: P.nessi)), "XDSPatientIdDoesNotMatch"),
                (
                    Self.submission(content: content, replaces: "urn:uuid:00000000-0000-4000-8000-000000000000"),
                    "XDSRegistryMetadataError"
                ),
            ]
            for (body, code) in cases {
                let (response, answer) = try await Self.submit(running, body, client: client)
                #expect(response.status == .ok, "\(code)")
                #expect(
                    P.first(answer, "RegistryResponse")?.attributes["status"]
                        == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
                )
                #expect(Self.errorCodes(answer).contains(code), "\(code): \(response.text)")
            }
            // uniqueIds already registered: the document's, the submission set's and its signature's.
            let body = Self.submission(content: content, uniqueId: "1.2.250.1.999.1.2001")
            #expect(Self.errorCodes(try await Self.submit(running, body, client: client).1).isEmpty)
            #expect(
                Self.errorCodes(try await Self.submit(running, body, client: client).1)
                    == Array(repeating: "XDSDuplicateUniqueIdInRegistry", count: 3)
            )
            // A patient without an open DMP (CATARINA's is closed).
            let closedPatient = "\(P.catarina)^^^&\(P.testOID)&ISO"
            let closedXML = P.envelope(
                "",
                body: Self.submission(content: Self.cda(ins: P.catarina), patient: closedPatient),
                security: P.vihf(ins: P.catarina),
                action: "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
            )
            let closed = try await running.request(
                DMPService.repositoryPath,
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: closedXML
            )
            #expect(closed.text.contains("XDSUnknownPatientId"))
            // The VIHF's patient differs from the submission's: a Fault naming resource-id.
            let otherXML = P.envelope(
                "",
                body: Self.submission(content: content),
                security: P.vihf(ins: P.gatien),
                action: "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
            )
            let other = try await running.request(
                DMPService.repositoryPath,
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: otherXML
            )
            #expect(other.status == .badRequest)
            #expect(other.text.contains("resource-id"))
            #expect(
                try running.sandbox.dmp.documentStore.entries(ins: P.zoe).count == 1,
                "only the good submission is stored"
            )
            // Retrieval of an unknown document, another repository; an unknown stored query.
            let (_, missing) = try await Self.call(
                running,
                path: DMPService.repositoryPath,
                action: "urn:ihe:iti:2007:RetrieveDocumentSet",
                Self.retrieve("1.2.3.4"),
                client: client
            )
            #expect(Self.errorCodes(missing) == ["XDSDocumentUniqueIdError"])
            let (_, repository) = try await Self.call(
                running,
                path: DMPService.repositoryPath,
                action: "urn:ihe:iti:2007:RetrieveDocumentSet",
                Self.retrieve("1.2.250.1.999.1.2001", repository: "9.9"),
                client: client
            )
            #expect(Self.errorCodes(repository) == ["XDSUnknownRepositoryId"])
            let unknownQuery = Self.findDocuments().replacingOccurrences(
                of: "14d4debf-8f97-4251-9a74-a90016b0af0d",
                with: "00000000-0000-0000-0000-000000000000"
            )
            let (_, query) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                unknownQuery,
                client: client
            )
            #expect(Self.errorCodes(query) == ["XDSUnknownStoredQuery"])
            // The retrieve of another patient's document (VIHF of GATIEN): not found.
            let foreignXML = P.envelope(
                "",
                body: Self.retrieve("1.2.250.1.999.1.2001"),
                security: P.vihf(ins: P.gatien),
                action: "urn:ihe:iti:2007:RetrieveDocumentSet"
            )
            let foreign = try await running.request(
                DMPService.repositoryPath,
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: foreignXML
            )
            #expect(foreign.text.contains("XDSDocumentUniqueIdError"))
        }
    }

    static func adhoc(_ id: String, _ slots: [(String, String)], returnType: String = "LeafClass") -> String {
        let values = slots.map {
            "<rim:Slot name=\"\($0.0)\"><rim:ValueList><rim:Value>\(XMLText.escape($0.1))</rim:Value></rim:ValueList></rim:Slot>"
        }.joined()
        return """
            <query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">\
            <query:ResponseOption returnComposedObjects="true" returnType="\(returnType)"/><rim:AdhocQuery id="\(id)">\(values)</rim:AdhocQuery></query:AdhocQueryRequest>
            """
    }

    @Test func theOtherStoredQueries() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            #expect(
                Self.errorCodes(
                    try await Self.submit(
                        running,
                        Self.submission(content: Self.cda(), uniqueId: "1.2.250.1.999.1.6001"),
                        client: client
                    ).1
                ).isEmpty
            )
            let entry = try #require(try running.sandbox.dmp.documentStore.entries(ins: P.zoe).first?.entryUUID)
            func query(_ id: String, _ slots: [(String, String)]) async throws -> SOAPElement {
                try await Self.call(
                    running,
                    path: DMPService.registryPath,
                    action: "urn:ihe:iti:2007:RegistryStoredQuery",
                    Self.adhoc(id, slots),
                    client: client
                ).1
            }
            func names(_ root: SOAPElement) -> [String] {
                (P.first(root, "RegistryObjectList")?.children ?? []).map(\.name)
            }
            let sets = try await query(
                "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
                [("$XDSSubmissionSetPatientId", "'\(Self.patientId)'")]
            )
            #expect(names(sets) == ["RegistryPackage"])
            let byUnique = try await query(
                "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
                [("$XDSDocumentEntryUniqueId", "('1.2.250.1.999.1.6001')")]
            )
            #expect(names(byUnique) == ["ExtrinsicObject"])
            #expect(P.first(byUnique, "ExtrinsicObject")?.attributes["id"] == entry)
            let byUUID = try await query(
                "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
                [("$XDSDocumentEntryEntryUUID", "('\(entry)')")]
            )
            #expect(names(byUUID) == ["ExtrinsicObject"])
            let associations = try await query(
                "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
                [("$uuid", "('\(entry)')")]
            )
            #expect(names(associations) == ["Association"])
            #expect(P.first(associations, "Association")?.attributes["targetObject"] == entry)
            let both = try await query(
                "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
                [("$XDSDocumentEntryEntryUUID", "('\(entry)')")]
            )
            #expect(names(both) == ["ExtrinsicObject", "Association"])
            // Missing parameters; another patient's document (the VIHF's patient decides) is not returned.
            let none = try await query("urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4", [])
            #expect(Self.errorCodes(none) == ["XDSStoredQueryParamNumber"])
            let foreignXML = P.envelope(
                "",
                body: Self.adhoc(
                    "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
                    [("$XDSDocumentEntryEntryUUID", "('\(entry)')")]
                ),
                security: P.vihf(ins: P.gatien),
                action: "urn:ihe:iti:2007:RegistryStoredQuery"
            )
            let foreign = try await running.request(
                DMPService.registryPath,
                method: .post,
                client: client,
                headers: [.contentType: "application/soap+xml"],
                body: foreignXML
            )
            #expect(!foreign.text.contains("ExtrinsicObject"))
        }
    }

    /// An ITI-57 request: a submission set, then either an availability change of `target` or a metadata update of
    /// it with `confidentiality` codes.
    static func update(
        target: String,
        from original: String? = nil,
        to new: String? = nil,
        confidentiality: [String]? = nil
    ) -> String {
        let change =
            new.map { new in
                """
                <rim:Association associationType="urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus" sourceObject="SubmissionSet01" targetObject="\(target)" id="upd1">\
                <rim:Slot name="OriginalStatus"><rim:ValueList><rim:Value>\(original ?? "")</rim:Value></rim:ValueList></rim:Slot>\
                <rim:Slot name="NewStatus"><rim:ValueList><rim:Value>\(new)</rim:Value></rim:ValueList></rim:Slot></rim:Association>
                """
            } ?? ""
        let metadata =
            confidentiality.map { codes in
                "<rim:ExtrinsicObject id=\"urn:uuid:\(UUID().uuidString.lowercased())\" lid=\"\(target)\" mimeType=\"text/xml\" objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\">"
                    + codes.map { classification("urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", target, code: $0) }
                    .joined() + "</rim:ExtrinsicObject>"
            } ?? ""
        return """
            <lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">\
            <rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">\
            <rim:RegistryPackage id="SubmissionSet01">\
            <rim:ExternalIdentifier identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="1.2.250.1.999.2.\(Int.random(in: 1...999_999))" id="e1" registryObject="SubmissionSet01"/>\
            <rim:ExternalIdentifier identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="\(XMLText.escape(patientId))" id="e2" registryObject="SubmissionSet01"/>\
            </rim:RegistryPackage>\(metadata)\(change)</rim:RegistryObjectList></lcm:SubmitObjectsRequest>
            """
    }

    static func find(
        _ running: RunningSandbox,
        client: ClientFiles,
        status: String = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        structure: String = P.structure
    ) async throws -> [String] {
        let xml = P.envelope(
            "",
            body: findDocuments(status: "('\(status)')"),
            security: P.vihf(ins: P.zoe, structure: structure),
            action: "urn:ihe:iti:2007:RegistryStoredQuery"
        )
        let response = try await running.request(
            DMPService.registryPath,
            method: .post,
            client: client,
            headers: [.contentType: "application/soap+xml"],
            body: xml
        )
        return try HardenedXMLParser(maximumBytes: 32 << 20).parse(Data(response.text.utf8)).descendants.filter {
            $0.name == "ExtrinsicObject"
        }.compactMap { $0.attributes["id"] }
    }

    static func updating(
        _ running: RunningSandbox,
        _ body: String,
        client: ClientFiles,
        structure: String = P.structure
    ) async throws -> SOAPElement {
        try await call(
            running,
            path: DMPService.registryPath,
            action: "urn:ihe:iti:2010:UpdateDocumentSet",
            body,
            client: client,
            structure: structure
        ).1
    }

    @Test func updatesMaskArchiveAndDeleteAsFindDocumentsSees() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            #expect(
                Self.errorCodes(
                    try await Self.submit(
                        running,
                        Self.submission(content: Self.cda(), uniqueId: "1.2.250.1.999.1.5001"),
                        client: client
                    ).1
                ).isEmpty
            )
            let entry = try #require(try await Self.find(running, client: client).first)
            // Masked to professionals: the author still sees it, another structure no longer does.
            #expect(
                Self.errorCodes(
                    try await Self.updating(
                        running,
                        Self.update(target: entry, confidentiality: ["MASQUE_PS"]),
                        client: client
                    )
                ).isEmpty
            )
            #expect(try await Self.find(running, client: client) == [entry])
            #expect(try await Self.find(running, client: client, structure: "9999999999").isEmpty)
            let masked = try HardenedXMLParser().parse(
                Data(
                    try #require(
                        try running.sandbox.dmp.documentStore.findDocuments(
                            ins: P.zoe,
                            statuses: ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"],
                            structure: P.structure
                        ).first?.metadata
                    ).utf8
                )
            )
            #expect(
                masked.children.contains { $0.attributes["nodeRepresentation"] == "MASQUE_PS" },
                "the metadata FindDocuments returns carries the code"
            )
            #expect(
                Self.errorCodes(
                    try await Self.updating(running, Self.update(target: entry, confidentiality: []), client: client)
                ).isEmpty
            )
            #expect(try await Self.find(running, client: client, structure: "9999999999") == [entry], "unmasked")
            // Archived: no longer Approved; Deleted: not retrievable.
            let approved = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
            let archived = "urn:asip:ci-sis:2010:StatusType:Archived"
            #expect(
                Self.errorCodes(
                    try await Self.updating(
                        running,
                        Self.update(target: entry, from: approved, to: archived),
                        client: client
                    )
                ).isEmpty
            )
            #expect(try await Self.find(running, client: client).isEmpty)
            #expect(try await Self.find(running, client: client, status: archived) == [entry])
            // A change from a status the entry no longer has, to an unknown status, of an unknown entry: refused whole.
            #expect(
                Self.errorCodes(
                    try await Self.updating(
                        running,
                        Self.update(target: entry, from: approved, to: archived),
                        client: client
                    )
                ) == ["XDSMetadataUpdateError"]
            )
            #expect(
                Self.errorCodes(
                    try await Self.updating(
                        running,
                        Self.update(target: entry, from: archived, to: "Gone"),
                        client: client
                    )
                ) == ["XDSMetadataUpdateError"]
            )
            #expect(
                Self.errorCodes(
                    try await Self.updating(
                        running,
                        Self.update(
                            target: "urn:uuid:00000000-0000-4000-8000-000000000000",
                            from: approved,
                            to: archived
                        ),
                        client: client
                    )
                ) == ["XDSMetadataUpdateError"]
            )
            #expect(
                try await Self.find(running, client: client, status: archived) == [entry],
                "unchanged by the refusals"
            )
            let deleted = "urn:asip:ci-sis:2010:StatusType:Deleted"
            // Only the structure that submitted the document deletes it.
            let foreign = try await Self.updating(
                running,
                Self.update(target: entry, from: archived, to: deleted),
                client: client,
                structure: "9999999999"
            )
            #expect(Self.errorCodes(foreign) == ["XDSMetadataUpdateError"])
            #expect(try await Self.find(running, client: client, status: archived) == [entry], "still archived")
            #expect(
                Self.errorCodes(
                    try await Self.updating(
                        running,
                        Self.update(target: entry, from: archived, to: deleted),
                        client: client
                    )
                ).isEmpty
            )
            let (_, gone) = try await Self.call(
                running,
                path: DMPService.repositoryPath,
                action: "urn:ihe:iti:2007:RetrieveDocumentSet",
                Self.retrieve("1.2.250.1.999.1.5001"),
                client: client
            )
            #expect(Self.errorCodes(gone) == ["XDSDocumentUniqueIdError"])
        }
    }

    /// A multipart/related MTOM message: the envelope as root part, `document` as a binary part referenced by
    /// `xop:Include`.
    static func mtom(
        envelope: String,
        document: Data?,
        boundary: String = "MIMEBoundary_test",
        rootType: String = "application/xop+xml; charset=UTF-8; type=\"application/soap+xml\""
    ) -> (body: [UInt8], contentType: String) {
        var body = Data()
        func line(_ text: String) { body.append(Data((text + "\r\n").utf8)) }
        line("--\(boundary)")
        line("Content-Type: \(rootType)")
        line("Content-Transfer-Encoding: binary")
        line("Content-ID: <root@client>")
        line("")
        line(envelope)
        if let document {
            line("--\(boundary)")
            line("Content-Type: text/xml")
            line("Content-Transfer-Encoding: binary")
            line("Content-ID: <doc1@client>")
            line("")
            body.append(document)
            line("")
        }
        line("--\(boundary)--")
        return (
            Array(body),
            "multipart/related; type=\"application/xop+xml\"; boundary=\"\(boundary)\"; start=\"<root@client>\"; start-info=\"application/soap+xml\""
        )
    }

    @Test func mtomSubmissionAndRetrievalByteForByte() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            // Bytes a base64 round trip through XML text would not keep if mishandled: every byte value, CR LF pairs.
            var content = Self.cda()
            content.append(Data((0...255).map { UInt8($0) }))
            content.append(Data("\r\n--MIMEBoundary_tes\r\n".utf8))
            let uniqueId = "1.2.250.1.999.1.4001"
            let inline = Self.submission(content: content, uniqueId: uniqueId)
            let withInclude = inline.replacingOccurrences(
                of: "<xdsb:Document id=\"Document01\">\(content.base64EncodedString())</xdsb:Document>",
                with:
                    "<xdsb:Document id=\"Document01\"><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:doc1@client\"/></xdsb:Document>"
            )
            #expect(withInclude != inline)
            let envelope = P.envelope(
                "",
                body: withInclude,
                security: P.vihf(ins: P.zoe),
                action: "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
            )
            let (bytes, contentType) = Self.mtom(envelope: envelope, document: content)
            let stored = try await running.request(
                DMPService.repositoryPath,
                method: .post,
                client: client,
                headers: [.contentType: contentType],
                bytes: bytes
            )
            #expect(stored.status == .ok, "\(stored.text)")
            #expect(stored.text.contains("ResponseStatusType:Success"), "\(stored.text)")

            // ITI-43 over MTOM: a multipart answer whose document part is the bytes pushed.
            let retrieveEnvelope = P.envelope(
                "",
                body: Self.retrieve(uniqueId),
                security: P.vihf(ins: P.zoe),
                action: "urn:ihe:iti:2007:RetrieveDocumentSet"
            )
            let (retrieveBytes, retrieveType) = Self.mtom(envelope: retrieveEnvelope, document: nil)
            let retrieved = try await running.request(
                DMPService.repositoryPath,
                method: .post,
                client: client,
                headers: [.contentType: retrieveType],
                bytes: retrieveBytes
            )
            #expect(retrieved.status == .ok)
            let answerType = try #require(retrieved.headers[.contentType])
            #expect(answerType.hasPrefix("multipart/related"))
            let boundary = try #require(
                answerType.components(separatedBy: "boundary=\"").last?.components(separatedBy: "\"").first
            )
            let raw = Data(buffer: try #require(retrieved.body))
            let parts = raw.split(boundary: "--" + boundary)
            #expect(parts.count == 2, "root and document parts")
            let root = String(decoding: parts[0], as: UTF8.self)
            #expect(root.contains("xop:Include") && root.contains("ResponseStatusType:Success"))
            let documentPart = parts[1]
            let headerEnd = try #require(documentPart.range(of: Data("\r\n\r\n".utf8)))
            let document = documentPart[headerEnd.upperBound...]
            #expect(Data(document) == content, "the bytes pushed, byte for byte")

            // Malformed MTOM: a reference to no part, a wrong boundary, a root part of another type. Nothing stored.
            let before = try running.sandbox.dmp.documentStore.entries(ins: P.zoe).count
            let missing = Self.mtom(envelope: envelope.replacingOccurrences(of: "4001", with: "4002"), document: nil)
            let wrongBoundary = Self.mtom(envelope: envelope, document: content, boundary: "other")
            let wrongRoot = Self.mtom(envelope: envelope, document: content, rootType: "text/plain")
            for (body, type) in [missing, (wrongBoundary.body, contentType), wrongRoot] {
                let answer = try await running.request(
                    DMPService.repositoryPath,
                    method: .post,
                    client: client,
                    headers: [.contentType: type],
                    bytes: body
                )
                #expect(answer.status == .badRequest, "\(answer.text)")
                #expect(answer.text.contains("MalformedMTOM"), "\(answer.text)")
            }
            #expect(try running.sandbox.dmp.documentStore.entries(ins: P.zoe).count == before)
        }
    }

    /// The answers validate against the OASIS ebRS 3.0 and IHE XDS.b schemas, where a copy of them is on the machine.
    @Test(
        .enabled(
            if: Reference.exists(Reference.file("dmp/xds/ebRS/rs.xsd")) && Reference.xmllint,
            "needs the ebRS/XDS.b schemas and xmllint"
        )
    )
    func answersValidateAgainstTheXDSSchemas() async throws {
        let (running, client) = try await P.start()
        try await running.whileRunning {
            let content = Self.cda()
            let (_, stored) = try await Self.submit(
                running,
                Self.submission(content: content, uniqueId: "1.2.250.1.999.1.3001"),
                client: client
            )
            let (_, failed) = try await Self.submit(
                running,
                Self.submission(content: content, withDocument: false),
                client: client
            )
            let (_, found) = try await Self.call(
                running,
                path: DMPService.registryPath,
                action: "urn:ihe:iti:2007:RegistryStoredQuery",
                Self.findDocuments(),
                client: client
            )
            let (_, retrieved) = try await Self.call(
                running,
                path: DMPService.repositoryPath,
                action: "urn:ihe:iti:2007:RetrieveDocumentSet",
                Self.retrieve("1.2.250.1.999.1.3001"),
                client: client
            )
            let checks: [(SOAPElement, String, String)] = [
                (stored, "RegistryResponse", "dmp/xds/ebRS/rs.xsd"),
                (failed, "RegistryResponse", "dmp/xds/ebRS/rs.xsd"),
                (found, "AdhocQueryResponse", "dmp/xds/ebRS/query.xsd"),
                (retrieved, "RetrieveDocumentSetResponse", "dmp/xds/IHE/XDS.b_DocumentRepository.xsd"),
            ]
            for (root, element, schema) in checks {
                let answer = try #require(P.first(root, element))
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("dmp-\(UUID().uuidString).xml")
                try Data(answer.xml.utf8).write(to: file)
                let run = try await Shell.run(
                    "xmllint --nonet --noout --schema '\(Reference.file(schema).path)' '\(file.path)'"
                )
                #expect(run.status == 0, "\(element): \(run.stderr)")
            }
        }
    }
}

extension Data {
    var sha1Hex: String {
        let process = Process()
        let input = Pipe()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha1sum")
        process.standardInput = input
        process.standardOutput = output
        try? process.run()
        input.fileHandleForWriting.write(self)
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(40).description
    }
}

extension Data {
    /// The parts between `boundary` delimiters (the preamble and the closing delimiter's epilogue left out).
    func split(boundary: String) -> [Data] {
        let delimiter = Data(boundary.utf8)
        var parts: [Data] = []
        var start = startIndex
        var ranges: [Range<Index>] = []
        while let found = self[start...].range(of: delimiter) {
            ranges.append(found)
            start = found.upperBound
        }
        for (open, close) in zip(ranges, ranges.dropFirst()) {
            var part = self[open.upperBound..<close.lowerBound]
            if part.prefix(2) == Data("\r\n".utf8) { part = part.dropFirst(2) }
            if part.suffix(2) == Data("\r\n".utf8) { part = part.dropLast(2) }
            parts.append(Data(part))
        }
        return parts
    }
}
