import Crypto
import Foundation
import SOAPCore

/// IHE XDS.b over OASIS ebRIM/ebRS 3.0 (IHE ITI TF-3 §4): the identifiers, the metadata the DMP's document services
/// read in a submission, and the answers' forms (`RegistryResponse`, `RegistryErrorList`).
enum XDS {
    static let rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    static let rs = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
    static let lcm = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
    static let query = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
    static let xdsb = "urn:ihe:iti:xds-b:2007"

    static let success = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    static let failure = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    static let errorSeverity = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

    static let approved = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    static let deprecated = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"

    /// ExternalIdentifier and Classification schemes (ITI TF-3 Table 4.2.5-1).
    enum Scheme {
        static let documentUniqueId = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
        static let documentPatientId = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
        static let submissionSetUniqueId = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
        static let submissionSetPatientId = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
        static let submissionSetNode = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
        static let classCode = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
        static let typeCode = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
        static let formatCode = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
        static let confidentialityCode = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    }

    static let archived = "urn:asip:ci-sis:2010:StatusType:Archived"
    static let deleted = "urn:asip:ci-sis:2010:StatusType:Deleted"
    /// The statuses an ITI-57 availability change may set.
    static let statuses: Set<String> = [approved, deprecated, archived, deleted]
    static let updateAvailabilityStatus = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    /// Confidentiality codes of the DMP: masked to professionals, invisible to the patient (and to legal guardians).
    static let maskedToProfessionals = "MASQUE_PS"
    static let invisibleToPatient = "INVISIBLE_PATIENT"

    /// Every confidentiality code of an entry.
    static func confidentiality(_ object: SOAPElement) -> [String] {
        object.children.filter {
            $0.name == "Classification" && $0.attributes["classificationScheme"] == Scheme.confidentialityCode
        }
        .compactMap { $0.attributes["nodeRepresentation"] }
    }

    static let stableDocumentType = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    static let hasMember = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    static let replace = "urn:ihe:iti:2007:AssociationType:RPLC"

    /// The sandbox's repository (`repositoryUniqueId` of every stored document).
    static let repositoryUniqueId = "1.2.250.1.213.4.1.1.1.2"

    /// An error of a `RegistryErrorList`: an XDS error code, what it is about, where.
    struct Error: Swift.Error, Equatable {
        var code: String
        var context: String
        var location: String = ""
    }

    static func registryResponse(errors: [Error]) -> String {
        guard !errors.isEmpty else { return "<rs:RegistryResponse xmlns:rs=\"\(rs)\" status=\"\(success)\"/>" }
        return "<rs:RegistryResponse xmlns:rs=\"\(rs)\" status=\"\(failure)\">" + errorList(errors)
            + "</rs:RegistryResponse>"
    }

    static func errorList(_ errors: [Error]) -> String {
        "<rs:RegistryErrorList>"
            + errors.map {
                "<rs:RegistryError errorCode=\"\(XMLText.escape($0.code))\" codeContext=\"\(XMLText.escape($0.context))\" "
                    + "severity=\"\(errorSeverity)\" location=\"\(XMLText.escape($0.location))\"/>"
            }.joined() + "</rs:RegistryErrorList>"
    }

    // MARK: Reading metadata

    static func externalIdentifier(_ object: SOAPElement, scheme: String) -> String? {
        object.children.first { $0.name == "ExternalIdentifier" && $0.attributes["identificationScheme"] == scheme }?
            .attributes["value"]
    }

    static func slot(_ object: SOAPElement, _ name: String) -> [String] {
        object.children.first { $0.name == "Slot" && $0.attributes["name"] == name }?.child("ValueList")?
            .children.map(\.text) ?? []
    }

    static func classification(_ object: SOAPElement, scheme: String) -> String? {
        object.children.first { $0.name == "Classification" && $0.attributes["classificationScheme"] == scheme }?
            .attributes["nodeRepresentation"]
    }

    /// `<INS>^^^&<OID>&ISO` (an XDS patient id) as (INS, OID).
    static func patient(_ id: String) -> (ins: String, oid: String)? {
        let parts = id.components(separatedBy: "^^^&")
        guard parts.count == 2 else { return nil }
        let authority = parts[1].components(separatedBy: "&")
        guard authority.count >= 2, authority[1] == "ISO" else { return nil }
        return (parts[0], authority[0])
    }

    static func sha1(_ data: Data) -> String {
        Insecure.SHA1.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    // ebRIM elements for the submissions the FHIR face builds (ITI-65 → ITI-41, PATCH → ITI-57).
    static func external(_ scheme: String, _ value: String, _ object: String) -> SOAPElement {
        SOAPElement(
            namespace: XDS.rim,
            name: "ExternalIdentifier",
            attributes: [
                "identificationScheme": scheme, "value": value, "id": "urn:uuid:\(UUID().uuidString.lowercased())",
                "registryObject": object,
            ]
        )
    }
    static func classification(_ scheme: String, _ code: String, _ object: String) -> SOAPElement {
        SOAPElement(
            namespace: XDS.rim,
            name: "Classification",
            attributes: [
                "classificationScheme": scheme, "classifiedObject": object, "nodeRepresentation": code,
                "id": "urn:uuid:\(UUID().uuidString.lowercased())",
            ]
        )
    }
    static func slot(_ name: String, _ value: String) -> SOAPElement {
        SOAPElement(
            namespace: XDS.rim,
            name: "Slot",
            attributes: ["name": name],
            children: [
                SOAPElement(
                    namespace: XDS.rim,
                    name: "ValueList",
                    children: [SOAPElement(namespace: XDS.rim, name: "Value", rawText: value)]
                )
            ]
        )
    }
}
