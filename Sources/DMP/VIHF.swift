import Foundation
import SOAPCore

/// The VIHF ("volet d'identification des habilitations et des fonctions"), the SAML 2.0 assertion a DMP client puts
/// in `wsse:Security`: who calls (the professional's role, the structure, the software) for which patient, in which
/// authentication mode. The sandbox checks that it is there and consistent; its signature is not verified
/// (`docs/services/dmp.md`).
public struct VIHF: Sendable, Equatable {
    static let saml = "urn:oasis:names:tc:SAML:2.0:assertion"
    static let security = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    static let hl7 = "urn:hl7-org:v3"

    /// Attribute names, as the DMP integration guide writes them.
    public enum Attribute {
        public static let version = "VIHF_Version"
        public static let role = "urn:oasis:names:tc:xacml:2.0:subject:role"
        public static let sector = "Secteur_Activite"
        public static let resourceURN = "Ressource_URN"
        public static let purposeOfUse = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
        public static let subjectID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
        public static let structure = "Identifiant_Structure"
        public static let softwareID = "LPS_ID"
        public static let softwareName = "LPS_Nom"
        public static let softwareVersion = "LPS_Version"
        public static let homologation = "LPS_ID_HOMOLOGATION_DMP"
        public static let resourceID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
        public static let authenticationMode = "Authentification_Mode"

        /// Required on every DMP call.
        static let required = [
            version, role, sector, resourceURN, purposeOfUse, subjectID, structure, softwareID, softwareName,
            softwareVersion, homologation, authenticationMode,
        ]
    }

    /// Code systems a professional's role may be given in: professions (TRE_G15, 1.2.250.1.71.1.2.7) and RPPS
    /// specialties (1.2.250.1.71.4.2.5); the DMP also knows non-professional roles (1.2.250.1.213.1.1.4.6, TRE_R85).
    public static let roleCodeSystems: Set<String> = [
        "1.2.250.1.71.1.2.7", "1.2.250.1.71.4.2.5", "1.2.250.1.213.1.1.4.6",
    ]
    public static let authenticationModes: Set<String> = ["DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE"]

    public var issuer: String
    /// Simple attributes by name (text values).
    public var attributes: [String: String]
    /// The role's code and code system (an HL7 CE).
    public var role: (code: String, codeSystem: String)?
    public var notOnOrAfter: Date?

    public static func == (lhs: VIHF, rhs: VIHF) -> Bool {
        lhs.issuer == rhs.issuer && lhs.attributes == rhs.attributes && lhs.role?.code == rhs.role?.code
            && lhs.role?.codeSystem == rhs.role?.codeSystem && lhs.notOnOrAfter == rhs.notOnOrAfter
    }

    public var structure: String { attributes[Attribute.structure] ?? "" }

    /// A VIHF refusal: the attribute at fault and why.
    public struct Refusal: Error, Sendable, Equatable {
        public var attribute: String
        public var reason: String
    }

    /// Reads the VIHF of an envelope and checks it: every required attribute, a role in a known code system, a
    /// known authentication mode, `Ressource_URN` = `urn:dmp`, not expired, and — when the request is about a
    /// patient — `resource-id` naming that patient (`<INS>^^^&<OID>&ISO^NH`).
    public static func check(
        _ envelope: SOAPEnvelope,
        patient: (ins: String, oid: String)?,
        now: Date = Date()
    ) throws(Refusal) -> VIHF {
        guard let security = envelope.headerBlock("Security", namespace: security) else {
            throw Refusal(attribute: "wsse:Security", reason: "no wsse:Security header: the VIHF assertion is required")
        }
        guard let assertion = security.children.first(where: { $0.name == "Assertion" && $0.namespace == saml }) else {
            throw Refusal(attribute: "saml:Assertion", reason: "wsse:Security holds no SAML 2.0 Assertion (the VIHF)")
        }
        let issuer = assertion.child("Issuer", namespace: saml)?.text ?? ""
        guard !issuer.isEmpty else { throw Refusal(attribute: "saml:Issuer", reason: "the VIHF has no Issuer") }
        var attributes: [String: String] = [:]
        var role: (String, String)?
        for statement in assertion.children where statement.name == "AttributeStatement" {
            for attribute in statement.children where attribute.name == "Attribute" {
                guard let name = attribute.attributes["Name"],
                    let value = attribute.children.first(where: { $0.name == "AttributeValue" })
                else { continue }
                if name == Attribute.role {
                    if let ce = value.children.first, let code = ce.attributes["code"],
                        let system = ce.attributes["codeSystem"]
                    {
                        role = (code, system)
                        attributes[name] = code
                    }
                } else if name == Attribute.purposeOfUse, let ce = value.children.first {
                    attributes[name] = ce.attributes["code"] ?? value.text
                } else {
                    attributes[name] = value.text
                }
            }
        }
        var vihf = VIHF(issuer: issuer, attributes: attributes, role: role.map { (code: $0.0, codeSystem: $0.1) })
        if let conditions = assertion.child("Conditions", namespace: saml),
            let text = conditions.attributes["NotOnOrAfter"]
        {
            guard let date = ISO8601DateFormatter.vihf.date(from: text) ?? ISO8601DateFormatter().date(from: text)
            else {
                throw Refusal(attribute: "NotOnOrAfter", reason: "'\(text)' is not an xs:dateTime")
            }
            vihf.notOnOrAfter = date
            guard date > now else { throw Refusal(attribute: "NotOnOrAfter", reason: "the VIHF expired at \(text)") }
        }
        for name in Attribute.required where (attributes[name] ?? "").isEmpty {
            throw Refusal(attribute: name, reason: "the VIHF has no \(name) attribute")
        }
        guard let role, roleCodeSystems.contains(role.1) else {
            throw Refusal(
                attribute: Attribute.role,
                reason:
                    "the role's codeSystem '\(role?.1 ?? "")' is not one of \(roleCodeSystems.sorted().joined(separator: ", "))"
            )
        }
        let mode = attributes[Attribute.authenticationMode] ?? ""
        guard authenticationModes.contains(mode) else {
            throw Refusal(
                attribute: Attribute.authenticationMode,
                reason: "'\(mode)' is not one of \(authenticationModes.sorted().joined(separator: ", "))"
            )
        }
        guard attributes[Attribute.resourceURN] == "urn:dmp" else {
            throw Refusal(attribute: Attribute.resourceURN, reason: "Ressource_URN must be urn:dmp")
        }
        if let patient {
            let expected = "\(patient.ins)^^^&\(patient.oid)&ISO^NH"
            guard let given = attributes[Attribute.resourceID], !given.isEmpty else {
                throw Refusal(
                    attribute: Attribute.resourceID,
                    reason: "the VIHF has no resource-id (expected \(expected))"
                )
            }
            guard given == expected else {
                throw Refusal(
                    attribute: Attribute.resourceID,
                    reason: "resource-id '\(given)' is not the request's patient \(expected)"
                )
            }
        }
        return vihf
    }
}

extension ISO8601DateFormatter {
    /// xs:dateTime with fractional seconds.
    static var vihf: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
