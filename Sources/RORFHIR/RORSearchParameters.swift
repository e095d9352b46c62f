import FHIRCore

/// The search parameters of the national ROR (production CapabilityStatement "ROR 3.2" and IG 0.6.0
/// SearchParameters), as data. Paths follow the SearchParameter expressions; capacity parameters index both
/// `valueCodeableConcept.coding` and `valueCode` (`value*`), since the upstream expressions say `code` while the
/// instances carry CodeableConcepts.
public enum RORSearchParameters {
    public static let structureDefinition = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"

    static func ext(_ name: String) -> String { "extension[url=\(structureDefinition)\(name)]" }

    static let supportedCapacity = ext("ror-location-supported-capacity")

    static func capacity(
        _ code: String,
        _ sub: String,
        _ type: SearchParameterType = .token
    ) -> SearchParameterDefinition {
        SearchParameterDefinition(code, type, paths: ["\(supportedCapacity).extension[url=\(sub)].value*"])
    }

    /// `_lastUpdated`, `_tag` (regionSource, TRE_R30), `_profile` on every resource.
    static let common: [SearchParameterDefinition] = [
        SearchParameterDefinition("_lastUpdated", .date, paths: ["meta.lastUpdated"]),
        SearchParameterDefinition("_tag", .token, paths: ["meta.tag"]),
        SearchParameterDefinition("_profile", .uri, paths: ["meta.profile"]),
    ]

    public static let location: [SearchParameterDefinition] =
        common + [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("type", .token, paths: ["type"]),
            SearchParameterDefinition("status", .token, paths: ["status"]),
            SearchParameterDefinition("operational-status", .token, paths: ["operationalStatus"]),
            SearchParameterDefinition("name", .string, paths: ["name", "alias"]),
            SearchParameterDefinition("address", .string, paths: ["address"]),
            SearchParameterDefinition("address-city", .string, paths: ["address.city"]),
            SearchParameterDefinition("address-postalcode", .string, paths: ["address.postalCode"]),
            SearchParameterDefinition(
                "organization",
                .reference,
                paths: ["managingOrganization"],
                targets: ["Organization"]
            ),
            SearchParameterDefinition("partof", .reference, paths: ["partOf"], targets: ["Location"]),
            capacity("capacity-status", "capacityStatus"),
            capacity("capacity-type", "capacityType"),
            capacity("temporality-capacity", "temporalityCapacity"),
            capacity("gender-capacity-available", "genderCapacityAvailable"),
            capacity("capacity-closing-type", "capacityClosingType"),
            capacity("additional-bed-type", "additionalBedType"),
            capacity("crisis-type", "crisisType"),
            capacity("temporary-assignement", "temporaryAssignement"),
            capacity("nb-capacity", "nbCapacity", .number),
            capacity("capacity-update-date", "capacityUpdateDate", .date),
            SearchParameterDefinition(
                "equipment-type",
                .token,
                paths: ["\(ext("ror-location-equipment")).extension[url=equipmentType].value*"]
            ),
            // The limit is nested in the equipment (profile) but top-level in the upstream SearchParameter: index both.
            SearchParameterDefinition(
                "equipment-feature",
                .token,
                paths: [
                    "\(ext("ror-location-equipment")).\(ext("ror-location-equipment-limit")).extension[url=equipmentFeature].value*",
                    "\(ext("ror-location-equipment-limit")).extension[url=equipmentFeature].value*",
                ]
            ),
            SearchParameterDefinition(
                "limit-value",
                .quantity,
                paths: [
                    "\(ext("ror-location-equipment")).\(ext("ror-location-equipment-limit")).extension[url=limitValue].value*",
                    "\(ext("ror-location-equipment-limit")).extension[url=limitValue].value*",
                ]
            ),
            SearchParameterDefinition(
                "residential-type",
                .token,
                paths: ["\(ext("ror-location-residential-capacity")).extension[url=residentialType].value*"]
            ),
            SearchParameterDefinition(
                "residential-number",
                .number,
                paths: ["\(ext("ror-location-residential-capacity")).extension[url=residentialNumber].value*"]
            ),
            SearchParameterDefinition("commune-cog", .token, paths: ["\(ext("ror-commune-cog")).value*"]),
        ]

    public static let healthcareService: [SearchParameterDefinition] =
        common + [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("name", .string, paths: ["name"]),
            SearchParameterDefinition("active", .token, paths: ["active"]),
            SearchParameterDefinition("service-category", .token, paths: ["category"]),
            SearchParameterDefinition("service-type", .token, paths: ["type"]),
            SearchParameterDefinition("specialty", .token, paths: ["specialty"]),
            SearchParameterDefinition("characteristic", .token, paths: ["characteristic"]),
            SearchParameterDefinition("location", .reference, paths: ["location"], targets: ["Location"]),
            SearchParameterDefinition("organization", .reference, paths: ["providedBy"], targets: ["Organization"]),
            SearchParameterDefinition(
                "age-range-low",
                .quantity,
                paths: ["\(ext("ror-healthcareservice-patient-type")).extension[url=ageRange].valueRange.low"]
            ),
            SearchParameterDefinition(
                "age-range-high",
                .quantity,
                paths: ["\(ext("ror-healthcareservice-patient-type")).extension[url=ageRange].valueRange.high"]
            ),
            SearchParameterDefinition(
                "patient-type",
                .token,
                paths: ["\(ext("ror-healthcareservice-patient-type")).extension[url=supportedPatientInfo].value*"]
            ),
            SearchParameterDefinition(
                "intervention-zone",
                .token,
                paths: ["\(ext("ror-territorial-division")).extension[url=codeTerritorialDivision].value*"]
            ),
            SearchParameterDefinition(
                "psychiatric-sector",
                .string,
                paths: ["\(ext("ror-healthcareservice-psychiatric-sector")).value*"]
            ),
            SearchParameterDefinition(
                "notavailable-closing-reopeningdate",
                .date,
                paths: ["notAvailable[id=closingReopeningDate].during"]
            ),
            SearchParameterDefinition(
                "sensitive-unit",
                .token,
                paths: ["\(ext("ror-healthcareservice-sensitive-unit")).value*"]
            ),
        ]

    public static let organization: [SearchParameterDefinition] =
        common + [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("name", .string, paths: ["name", "alias"]),
            SearchParameterDefinition("type", .token, paths: ["type"]),
            SearchParameterDefinition("active", .token, paths: ["active"]),
            SearchParameterDefinition("partof", .reference, paths: ["partOf"], targets: ["Organization"]),
            SearchParameterDefinition("address-city", .string, paths: ["address.city"]),
            SearchParameterDefinition("address-postalcode", .string, paths: ["address.postalCode"]),
            SearchParameterDefinition(
                "closing-type",
                .token,
                paths: ["\(ext("ror-organization-closing-type")).value*"]
            ),
            SearchParameterDefinition("drop-zone", .token, paths: ["\(ext("ror-organization-drop-zone")).value*"]),
            SearchParameterDefinition(
                "period-end",
                .date,
                paths: ["extension[url=http://hl7.org/fhir/StructureDefinition/organization-period].valuePeriod.end"]
            ),
            SearchParameterDefinition(
                "amount-value",
                .number,
                paths: ["\(ext("ror-organization-price")).extension[url=amount].value*.value"]
            ),
            SearchParameterDefinition(
                "price-type",
                .token,
                paths: ["\(ext("ror-organization-price")).extension[url=priceType].value*"]
            ),
            SearchParameterDefinition(
                "price-unit",
                .token,
                paths: ["\(ext("ror-organization-price")).extension[url=priceUnit].value*"]
            ),
            SearchParameterDefinition(
                "price-dependency-level",
                .token,
                paths: ["\(ext("ror-organization-price")).extension[url=dependencyLevel].value*"]
            ),
            SearchParameterDefinition(
                "price-residential-type",
                .token,
                paths: ["\(ext("ror-organization-price")).extension[url=residentialType].value*"]
            ),
            SearchParameterDefinition(
                "price-welcome-type",
                .token,
                paths: ["\(ext("ror-organization-price")).extension[url=welcomeType].value*"]
            ),
        ]

    public static let practitioner: [SearchParameterDefinition] =
        common + [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("name", .string, paths: ["name"]),
            SearchParameterDefinition("family", .string, paths: ["name.family"]),
            SearchParameterDefinition("given", .string, paths: ["name.given"]),
        ]

    public static let practitionerRole: [SearchParameterDefinition] =
        common + [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("role", .token, paths: ["code"]),
            SearchParameterDefinition("specialty", .token, paths: ["specialty"]),
            SearchParameterDefinition("practitioner", .reference, paths: ["practitioner"], targets: ["Practitioner"]),
            SearchParameterDefinition(
                "service",
                .reference,
                paths: ["healthcareService"],
                targets: ["HealthcareService"]
            ),
            SearchParameterDefinition("organization", .reference, paths: ["organization"], targets: ["Organization"]),
            SearchParameterDefinition("location", .reference, paths: ["location"], targets: ["Location"]),
        ]

    /// RORTask, the anomaly report (IG draft; DOC parameters `identifier`, `focus`, `business-status`, `authored-on`).
    public static let task: [SearchParameterDefinition] =
        common + [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition(
                "focus",
                .reference,
                paths: ["focus"],
                targets: ["Location", "HealthcareService", "Organization", "Practitioner", "PractitionerRole"]
            ),
            SearchParameterDefinition("business-status", .token, paths: ["businessStatus"]),
            SearchParameterDefinition("authored-on", .date, paths: ["authoredOn"]),
            SearchParameterDefinition("status", .token, paths: ["status"]),
        ]

    public static let registry = SearchParameterRegistry([
        "Location": location,
        "HealthcareService": healthcareService,
        "Organization": organization,
        "Practitioner": practitioner,
        "PractitionerRole": practitionerRole,
        "Task": task,
    ])
}
