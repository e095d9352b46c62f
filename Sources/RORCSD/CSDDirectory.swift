import FHIRCore
import Foundation
import RORFHIR
import SOAPCore

/// Reads the ROR store (the FHIR resources the consumer API serves and the capacity feed writes) as the CSD MEV2.4
/// tree: EJ and EG → `organizationDirectory` (EG with `parent` = EJ), each offer (HealthcareService, the unité
/// élémentaire) → a UE `facility` (codedType 4) linked to its EG and to a `service` carrying its activité
/// opérationnelle (TRE_R211), installed beds/places → `accommodationCapacity`. Mapping from
/// `../shared/notes/csd-pki.md` §2.4. Internal organisations (pôles) are not emitted as facilities: the UEs they
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
    func establishments(of organization: FHIRObject) async throws -> (legalEntity: FHIRObject?, establishments: [FHIRObject])? {
        guard let parentID = organization.reference("partOf") else {
            return (organization, try await search("Organization", [("partof", organization.id)]))
        }
        guard let parent = try await read("Organization", parentID) else { return nil }
        guard parent.reference("partOf") == nil else { return nil }
        return (parent, [organization])
    }

    /// The units (offers) of the EGs, with their EG and place, filtered by activity field and supported patient.
    func units(of establishments: [FHIRObject], fields: Set<String>, patients: Set<String>) async throws -> [(unit: FHIRObject, establishment: String, place: FHIRObject?)] {
        var result: [(FHIRObject, String, FHIRObject?)] = []
        for establishment in establishments {
            let poles = try await search("Organization", [("partof", establishment.id)]).map(\.id)
            let owners = ([establishment.id] + poles).joined(separator: ",")
            for unit in try await search("HealthcareService", [("organization", owners), ("_sort", "_id")]) {
                if !fields.isEmpty, !fields.contains(unit.activityField ?? "") { continue }
                if !patients.isEmpty, patients.isDisjoint(with: unit.supportedPatients) { continue }
                let place = try await unit.reference("location").asyncFlatMap { try await read("Location", $0) }
                result.append((unit, establishment.id, place))
            }
        }
        return result
    }

    // MARK: Writing

    func answer(_ offer: Offer, restricted: Bool) -> String {
        var organizations = ""
        if let ej = offer.legalEntity {
            organizations += organization(ej, codedType: ("01", Scheme.legalEntityType), parent: nil)
        }
        for eg in offer.establishments {
            organizations += organization(eg, codedType: ("109", Scheme.establishmentCategory), parent: offer.legalEntity?.id)
        }
        var services = ""
        var facilities = ""
        for (unit, establishment, place) in offer.units {
            let serviceID = "\(unit.id)_\(unit.operationalActivity ?? "000")"
            services += "<csd:service entityID=\"\(e(serviceID))\"><csd:codedType code=\"\(e(unit.operationalActivity ?? "000"))\" codingScheme=\"\(Scheme.operationalActivity)\"/>\(record(unit))</csd:service>"
            facilities += facility(unit, establishment: establishment, serviceID: serviceID, place: place, restricted: restricted)
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
        if let id = organization.identifier(typeCode: "40") { xml += "<csd:otherID code=\"\(e(id))\" assigningAuthorityName=\"\(Scheme.structureID)\"/>" }
        xml += "<csd:codedType code=\"\(codedType.0)\" codingScheme=\"\(codedType.1)\"/><csd:primaryName>\(e(organization.string("name") ?? organization.id))</csd:primaryName>"
        if let parent { xml += "<csd:parent entityID=\"\(e(parent))\"/>" }
        return xml + record(organization) + "</csd:organization>"
    }

    func facility(_ unit: FHIRObject, establishment: String, serviceID: String, place: FHIRObject?, restricted: Bool) -> String {
        var xml = "<csd:facility entityID=\"\(e(unit.id))\">"
        if let id = unit.identifier(typeCode: "35") { xml += "<csd:otherID code=\"\(e(id))\" assigningAuthorityName=\"\(Scheme.establishmentID)\"/>" }
        xml += "<csd:codedType code=\"4\" codingScheme=\"\(Scheme.internalOrganisationType)\"/><csd:primaryName>\(e(unit.string("name") ?? unit.id))</csd:primaryName>"
        xml += "<csd:organizations><csd:organization entityID=\"\(e(establishment))\"><csd:service entityID=\"\(e(serviceID))\"/></csd:organization></csd:organizations>"
        xml += "<csd:extension type=\"Type1\" urn=\"Urn0\">"
        xml += "<csd:typeActivity code=\"\(e(unit.activityField ?? "01"))\" codingScheme=\"\(Scheme.activityField)\"/>"
        xml += "<csd:careMode code=\"\(e(unit.careMode ?? "07"))\" codingScheme=\"\(Scheme.careMode)\"/>"
        xml += "<csd:patientsType>"
        for code in unit.supportedPatients.sorted() { xml += "<csd:supportedPatient code=\"\(e(code))\" codingScheme=\"1.2.250.1.213.3.3.29\"/>" }
        let (low, high) = unit.ageRange
        if let low { xml += "<csd:patientTypeAgeMin><csd:value>\(low)</csd:value><csd:unit code=\"a\" codingScheme=\"\(Scheme.ucum)\"/></csd:patientTypeAgeMin>" }
        if let high { xml += "<csd:patientTypeAgeMax><csd:value>\(high)</csd:value><csd:unit code=\"a\" codingScheme=\"\(Scheme.ucum)\"/></csd:patientTypeAgeMax>" }
        xml += record(unit) + "</csd:patientsType>"
        // RG_ALIM_015: restrictedOrganisation drops the unit-specific attributes (here, the capacity).
        if !restricted, let place, let capacity = place.installedCapacity {
            let element = capacity.beds ? "beds" : "space"
            xml += "<csd:accommodationCapacity><csd:\(element) total=\"\(capacity.total)\"\(capacity.updated.map { " updateDate=\"\(e($0))\"" } ?? "")/>\(record(place))</csd:accommodationCapacity>"
        }
        xml += "<csd:sensitiveUnit>\(unit.sensitive)</csd:sensitiveUnit></csd:extension>"
        return xml + record(unit) + "</csd:facility>"
    }

    func record(_ resource: FHIRObject) -> String {
        "<csd:record created=\"\(e(resource.created ?? resource.lastUpdated))\" updated=\"\(e(resource.lastUpdated))\" status=\"Ok\"/>"
    }

    func e(_ text: String) -> String { XMLText.escape(text) }
}

/// A stored FHIR resource read as JSON, with the few ROR fields the CSD mapping needs.
struct FHIRObject: @unchecked Sendable {
    let type: String
    let id: String
    let lastUpdated: String
    let json: [String: Any]

    init?(_ stored: StoredResource) {
        guard let json = (try? JSONSerialization.jsonObject(with: stored.json)) as? [String: Any] else { return nil }
        self.type = stored.type
        self.id = stored.id
        self.lastUpdated = stored.lastUpdated
        self.json = json
    }

    func string(_ key: String) -> String? { json[key] as? String }

    /// The id a reference element (or the first of a list) points to.
    func reference(_ key: String) -> String? {
        let value = (json[key] as? [String: Any]) ?? (json[key] as? [[String: Any]])?.first
        return (value?["reference"] as? String)?.split(separator: "/").last.map(String.init)
    }

    func identifier(typeCode: String) -> String? {
        (json["identifier"] as? [[String: Any]])?.first { identifier in
            (((identifier["type"] as? [String: Any])?["coding"] as? [[String: Any]]) ?? []).contains { $0["code"] as? String == typeCode }
        }?["value"] as? String
    }

    var extensions: [[String: Any]] { json["extension"] as? [[String: Any]] ?? [] }

    func ext(_ name: String) -> [String: Any]? {
        extensions.first { ($0["url"] as? String)?.hasSuffix("/" + name) == true }
    }

    static func codes(_ concept: Any?, system: String? = nil) -> [String] {
        let concepts = (concept as? [[String: Any]]) ?? ((concept as? [String: Any]).map { [$0] } ?? [])
        return concepts.flatMap { ($0["coding"] as? [[String: Any]]) ?? [] }
            .filter { system == nil || $0["system"] as? String == system }.compactMap { $0["code"] as? String }
    }

    var created: String? { ext("ror-meta-creation-date")?["valueDateTime"] as? String }
    var activityField: String? { Self.codes(json["type"], system: RORDatasetGenerator.activityField).first }
    var operationalActivity: String? { Self.codes(json["specialty"], system: RORDatasetGenerator.operationalActivity).first }
    var careMode: String? { Self.codes(json["characteristic"]).first }
    var sensitive: Bool { ext("ror-healthcareservice-sensitive-unit")?["valueBoolean"] as? Bool ?? false }

    var supportedPatients: Set<String> {
        let parts = ext("ror-healthcareservice-patient-type")?["extension"] as? [[String: Any]] ?? []
        return Set(parts.filter { $0["url"] as? String == "supportedPatientInfo" }.flatMap { Self.codes($0["valueCodeableConcept"]) })
    }

    var ageRange: (Int?, Int?) {
        let parts = ext("ror-healthcareservice-patient-type")?["extension"] as? [[String: Any]] ?? []
        let range = parts.first { $0["url"] as? String == "ageRange" }?["valueRange"] as? [String: Any]
        func value(_ key: String) -> Int? { ((range?[key] as? [String: Any])?["value"] as? NSNumber)?.intValue }
        return (value("low"), value("high"))
    }

    /// Installed capacity (status 01, current temporality) of a place: beds (nature 01) or places.
    var installedCapacity: (total: Int, beds: Bool, updated: String?)? {
        var total = 0
        var beds = true
        var updated: String?
        var found = false
        for indicator in extensions where (indicator["url"] as? String)?.hasSuffix("ror-location-supported-capacity") == true {
            let parts = indicator["extension"] as? [[String: Any]] ?? []
            func code(_ name: String) -> String? {
                guard let part = parts.first(where: { $0["url"] as? String == name }) else { return nil }
                return (part["valueCode"] as? String) ?? Self.codes(part["valueCodeableConcept"]).first
            }
            guard code("capacityStatus") == "01" else { continue }
            found = true
            total += (parts.first { $0["url"] as? String == "nbCapacity" }?["valueInteger"] as? NSNumber)?.intValue ?? 0
            beds = code("capacityType") != "02"
            updated = parts.first { $0["url"] as? String == "capacityUpdateDate" }?["valueDateTime"] as? String ?? updated
        }
        return found ? (total, beds, updated) : nil
    }
}

extension Optional {
    func asyncFlatMap<T>(_ transform: (Wrapped) async throws -> T?) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
