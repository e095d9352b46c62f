import FHIRCore
import Foundation
import RORFHIR
import SOAPCore

/// Reads the ROR store (the FHIR resources the consumer API serves and the capacity feed writes) as the CSD MEV2.4
/// tree: EJ and EG → `organizationDirectory` (EG with `parent` = EJ), each offer (HealthcareService, the unité
/// élémentaire) → a UE `facility` (codedType 4) linked to its EG and to a `service` carrying its activité
/// opérationnelle (TRE_R211), installed beds/places → `accommodationCapacity`. Mapping in
/// `docs/services/ror-csd.md`. Internal organisations (pôles) are not emitted as facilities: the UEs they
/// hold are, under their EG.
struct CSDDirectory: Sendable {
    let repository: ResourceRepository

    /// Code systems (OIDs) of the CSD answers.
    enum Scheme {
        static let establishmentID = "1.2.250.1.71.1.2.14"
        static let structureID = "1.2.250.1.71.4.2.2"
        static let legalEntityType = "1.2.250.1.213.1.6.1.44"
        static let establishmentCategory = "1.2.250.1.213.1.6.1.45"
        static let operationalActivity = "1.2.250.1.213.3.3.12"
        static let internalOrganisationType = "1.2.250.1.213.3.3.8"
        static let activityField = "1.2.250.1.213.3.3.17"
        static let careMode = "1.2.250.1.213.3.3.13"
        static let ucum = "2.16.840.1.113883.6.8"
    }

    /// One establishment's offer as the CSD answer carries it.
    struct Offer {
        var legalEntity: FHIRObject?
        var establishments: [FHIRObject]
        var units: [(unit: FHIRObject, establishment: String, place: FHIRObject?)]
    }

    // MARK: Lookups

    func search(_ type: String, _ items: [(String, String)]) async throws -> [FHIRObject] {
        let request = try SearchRequest(type: type, items: items, registry: repository.registry)
        let ids = try await repository.searchIDs(request)
        return try await repository.resources(type: type, ids: ids).compactMap(FHIRObject.init)
    }

    func read(_ type: String, _ id: String) async throws -> FHIRObject? {
        try await repository.read(type: type, id: id).flatMap(FHIRObject.init)
    }

    /// The organisation an establishment id names: `1`+FINESS (idNat_Struct), FINESS or SIRET of an EJ or an EG.
    func establishment(code: String) async throws -> FHIRObject? {
        guard !code.isEmpty, code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        return try await search("Organization", [("identifier", code)]).first
    }

    /// The EGs of an EJ, or the EG itself; nil for an internal organisation.
    func establishments(
        of organization: FHIRObject
    ) async throws -> (legalEntity: FHIRObject?, establishments: [FHIRObject])? {
        guard let parentID = organization.reference("partOf") else {
            return (organization, try await search("Organization", [("partof", organization.id)]))
        }
        guard let parent = try await read("Organization", parentID) else { return nil }
        guard parent.reference("partOf") == nil else { return nil }
        return (parent, [organization])
    }

    /// The units (offers) of the EGs, with their EG and place, filtered by activity field and supported patient.
    func units(
        of establishments: [FHIRObject],
        fields: Set<String>,
        patients: Set<String>
    ) async throws -> [(unit: FHIRObject, establishment: String, place: FHIRObject?)] {
        var selected: [(FHIRObject, String)] = []
        for establishment in establishments {
            let poles = try await search("Organization", [("partof", establishment.id)]).map(\.id)
            let owners = ([establishment.id] + poles).joined(separator: ",")
            for unit in try await search("HealthcareService", [("organization", owners), ("_sort", "_id")]) {
                if !fields.isEmpty, !fields.contains(unit.activityField ?? "") { continue }
                if !patients.isEmpty, patients.isDisjoint(with: unit.supportedPatients) { continue }
                selected.append((unit, establishment.id))
            }
        }
        // The places in one read, not one per unit.
        let placeIDs = Array(Set(selected.compactMap { $0.0.reference("location") }))
        let places = Dictionary(
            uniqueKeysWithValues: try await repository.resources(type: "Location", ids: placeIDs)
                .compactMap(FHIRObject.init).map { ($0.id, $0) }
        )
        return selected.map { ($0.0, $0.1, $0.0.reference("location").flatMap { places[$0] }) }
    }

    // MARK: Writing

    func answer(_ offer: Offer, restricted: Bool) -> String {
        var organizations = ""
        if let ej = offer.legalEntity {
            organizations += organization(ej, codedType: ("01", Scheme.legalEntityType), parent: nil)
        }
        for eg in offer.establishments {
            organizations += organization(
                eg,
                codedType: ("109", Scheme.establishmentCategory),
                parent: offer.legalEntity?.id
            )
        }
        var services = ""
        var facilities = ""
        for (unit, establishment, place) in offer.units {
            let serviceID = "\(unit.id)_\(unit.operationalActivity ?? "000")"
            services +=
                "<csd:service entityID=\"\(e(serviceID))\"><csd:codedType code=\"\(e(unit.operationalActivity ?? "000"))\" codingScheme=\"\(Scheme.operationalActivity)\"/>\(record(unit))</csd:service>"
            facilities += facility(
                unit,
                establishment: establishment,
                serviceID: serviceID,
                place: place,
                restricted: restricted
            )
        }
        return """
            <csd:careServicesResponse xmlns:csd="urn:ihe:iti:csd:2013"><csd:result><csd:facilityNumber>\(offer.units.count)</csd:facilityNumber>\
            <csd:queryResult><csd:organizationDirectory>\(organizations)</csd:organizationDirectory>\
            <csd:serviceDirectory>\(services)</csd:serviceDirectory><csd:facilityDirectory>\(facilities)</csd:facilityDirectory>\
            <csd:providerDirectory/><csd:deviceDirectory/></csd:queryResult></csd:result></csd:careServicesResponse>
            """
    }

    func organization(_ organization: FHIRObject, codedType: (String, String), parent: String?) -> String {
        var xml = "<csd:organization entityID=\"\(e(organization.id))\">"
        if let id = organization.identifier(typeCode: "40") {
            xml += "<csd:otherID code=\"\(e(id))\" assigningAuthorityName=\"\(Scheme.structureID)\"/>"
        }
        xml +=
            "<csd:codedType code=\"\(codedType.0)\" codingScheme=\"\(codedType.1)\"/><csd:primaryName>\(e(organization.name ?? organization.id))</csd:primaryName>"
        if let parent { xml += "<csd:parent entityID=\"\(e(parent))\"/>" }
        return xml + record(organization) + "</csd:organization>"
    }

    func facility(
        _ unit: FHIRObject,
        establishment: String,
        serviceID: String,
        place: FHIRObject?,
        restricted: Bool
    ) -> String {
        var xml = "<csd:facility entityID=\"\(e(unit.id))\">"
        if let id = unit.identifier(typeCode: "35") {
            xml += "<csd:otherID code=\"\(e(id))\" assigningAuthorityName=\"\(Scheme.establishmentID)\"/>"
        }
        xml +=
            "<csd:codedType code=\"4\" codingScheme=\"\(Scheme.internalOrganisationType)\"/><csd:primaryName>\(e(unit.name ?? unit.id))</csd:primaryName>"
        xml +=
            "<csd:organizations><csd:organization entityID=\"\(e(establishment))\"><csd:service entityID=\"\(e(serviceID))\"/></csd:organization></csd:organizations>"
        xml += "<csd:extension type=\"Type1\" urn=\"Urn0\">"
        xml += "<csd:typeActivity code=\"\(e(unit.activityField ?? "01"))\" codingScheme=\"\(Scheme.activityField)\"/>"
        xml += "<csd:careMode code=\"\(e(unit.careMode ?? "07"))\" codingScheme=\"\(Scheme.careMode)\"/>"
        xml += "<csd:patientsType>"
        for code in unit.supportedPatients.sorted() {
            xml += "<csd:supportedPatient code=\"\(e(code))\" codingScheme=\"1.2.250.1.213.3.3.29\"/>"
        }
        let (low, high) = unit.ageRange
        if let low {
            xml +=
                "<csd:patientTypeAgeMin><csd:value>\(low)</csd:value><csd:unit code=\"a\" codingScheme=\"\(Scheme.ucum)\"/></csd:patientTypeAgeMin>"
        }
        if let high {
            xml +=
                "<csd:patientTypeAgeMax><csd:value>\(high)</csd:value><csd:unit code=\"a\" codingScheme=\"\(Scheme.ucum)\"/></csd:patientTypeAgeMax>"
        }
        xml += record(unit) + "</csd:patientsType>"
        // RG_ALIM_015: restrictedOrganisation drops the unit-specific attributes (here, the capacity).
        if !restricted, let place, let capacity = place.installedCapacity {
            let element = capacity.beds ? "beds" : "space"
            xml +=
                "<csd:accommodationCapacity><csd:\(element) total=\"\(capacity.total)\"\(capacity.updated.map { " updateDate=\"\(e($0))\"" } ?? "")/>\(record(place))</csd:accommodationCapacity>"
        }
        xml += "<csd:sensitiveUnit>\(unit.sensitive)</csd:sensitiveUnit></csd:extension>"
        return xml + record(unit) + "</csd:facility>"
    }

    func record(_ resource: FHIRObject) -> String {
        "<csd:record created=\"\(e(resource.created ?? resource.lastUpdated))\" updated=\"\(e(resource.lastUpdated))\" status=\"Ok\"/>"
    }

    func e(_ text: String) -> String { XMLText.escape(text) }
}

/// A stored FHIR resource with the few ROR fields the CSD mapping needs, read from its JSON in one pass (casting
/// Foundation's JSON objects again and again is slow on Linux; `JSONDecoder` measured slower still here).
struct FHIRObject: Sendable {
    let type: String
    let id: String
    let lastUpdated: String
    let name: String?
    let created: String?
    /// Reference ids by element (`partOf`, `providedBy`, `location`, `managingOrganization`): the first one.
    let references: [String: String]
    /// Identifier values by type code (TRE_G07 / TRE_R355 / TRE_R354).
    let identifiers: [String: String]
    let activityField: String?
    let operationalActivity: String?
    let careMode: String?
    let sensitive: Bool
    let supportedPatients: Set<String>
    let ageRange: (Int?, Int?)
    /// Installed capacity (status 01) of a place: beds (nature 01) or places.
    let installedCapacity: (total: Int, beds: Bool, updated: String?)?

    init?(_ stored: StoredResource) {
        guard let json = (try? JSONSerialization.jsonObject(with: stored.json)) as? [String: Any] else { return nil }
        type = stored.type
        id = stored.id
        lastUpdated = stored.lastUpdated
        name = json["name"] as? String
        var references: [String: String] = [:]
        for key in ["partOf", "providedBy", "location", "managingOrganization"] {
            let value = (json[key] as? [String: Any]) ?? (json[key] as? [[String: Any]])?.first
            references[key] = (value?["reference"] as? String)?.split(separator: "/").last.map(String.init)
        }
        self.references = references
        var identifiers: [String: String] = [:]
        for identifier in json["identifier"] as? [[String: Any]] ?? [] {
            guard let value = identifier["value"] as? String else { continue }
            for code in Self.codes(identifier["type"]) where identifiers[code] == nil { identifiers[code] = value }
        }
        self.identifiers = identifiers
        activityField = Self.codes(json["type"], system: RORDatasetGenerator.activityField).first
        operationalActivity = Self.codes(json["specialty"], system: RORDatasetGenerator.operationalActivity).first
        careMode = Self.codes(json["characteristic"]).first

        var created: String?
        var sensitive = false
        var patients = Set<String>()
        var ages: (Int?, Int?) = (nil, nil)
        var capacity: (total: Int, beds: Bool, updated: String?)?
        for ext in json["extension"] as? [[String: Any]] ?? [] {
            guard let url = ext["url"] as? String else { continue }
            let parts = ext["extension"] as? [[String: Any]] ?? []
            if url.hasSuffix("/ror-meta-creation-date") {
                created = ext["valueDateTime"] as? String
            } else if url.hasSuffix("/ror-healthcareservice-sensitive-unit") {
                sensitive = ext["valueBoolean"] as? Bool ?? false
            } else if url.hasSuffix("/ror-healthcareservice-patient-type") {
                for part in parts {
                    switch part["url"] as? String {
                    case "supportedPatientInfo": patients.formUnion(Self.codes(part["valueCodeableConcept"]))
                    case "ageRange":
                        let range = part["valueRange"] as? [String: Any]
                        func value(_ key: String) -> Int? {
                            ((range?[key] as? [String: Any])?["value"] as? NSNumber)?.intValue
                        }
                        ages = (value("low"), value("high"))
                    default: break
                    }
                }
            } else if url.hasSuffix("/ror-location-supported-capacity") {
                var codes: [String: String] = [:]
                var count = 0
                var updated: String?
                for part in parts {
                    guard let name = part["url"] as? String else { continue }
                    if let code = (part["valueCode"] as? String) ?? Self.codes(part["valueCodeableConcept"]).first {
                        codes[name] = code
                    }
                    if name == "nbCapacity" { count = (part["valueInteger"] as? NSNumber)?.intValue ?? 0 }
                    if name == "capacityUpdateDate" { updated = part["valueDateTime"] as? String }
                }
                guard codes["capacityStatus"] == "01" else { continue }
                capacity = ((capacity?.total ?? 0) + count, codes["capacityType"] != "02", updated ?? capacity?.updated)
            }
        }
        self.created = created
        self.sensitive = sensitive
        self.supportedPatients = patients
        self.ageRange = ages
        self.installedCapacity = capacity
    }

    func reference(_ key: String) -> String? { references[key] }

    func identifier(typeCode: String) -> String? { identifiers[typeCode] }

    static func codes(_ concept: Any?, system: String? = nil) -> [String] {
        let concepts = (concept as? [[String: Any]]) ?? ((concept as? [String: Any]).map { [$0] } ?? [])
        return concepts.flatMap { ($0["coding"] as? [[String: Any]]) ?? [] }
            .filter { system == nil || $0["system"] as? String == system }.compactMap { $0["code"] as? String }
    }
}

extension Optional {
    func asyncFlatMap<T>(_ transform: (Wrapped) async throws -> T?) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
