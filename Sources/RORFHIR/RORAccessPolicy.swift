import FHIRCore
import Foundation
import GRDB

/// The caller's access profile ("profil d'accès" 0–5) for the request being served, set once the bearer token is
/// verified (nil: no token checked, e.g. `metadata`).
public enum RORCaller {
    @TaskLocal public static var profile: Int?
}

/// What each access profile may see, applied to every resource the consumer API returns (read, search matches,
/// includes, bulk export). From the IG's FSH mappings ("Profil 1, Profil 2 si niveau de confidentialité … = public
/// ou restreint (sauf si uniteSensible = Oui), Profil 3 si champ d'activité MS …",)
/// and the DOC's access page (`docs/services/ror-fhir.md`, "Access profiles"):
///
/// | profile | sensitive units | bed/place indicators | contacts and telecoms, by confidentiality level (TRE_R283) |
/// |---|---|---|---|
/// | 1 | seen | all | all |
/// | 2 | hidden | all but supplementary (status 06) | 1 Accès libre, 2 Accès restreint (not 3 "très restreint") |
/// | 3 | hidden | medico-social places only, all but 06 | medico-social: 1 and 2; other fields: 1; places' and roles' telecoms: medico-social only |
/// | 0 | hidden | none | 1 only; places' and roles' telecoms: none |
/// | 4 | seen | all | none (contacts, telecoms and practitioners' names removed) |
/// | 5 | seen | installed beds only (status 01) | 1 and 2 |
///
/// A resource's activity field (champ d'activité, TRE_R227) is its own for an offer, and for a place, an
/// organisation or a role that of the offers located there / provided by it / it works in: it counts as
/// medico-social when all of them are (a mixed site shows a medico-social consumer only what other fields may see).
/// The mappings' "AMBULATOIRE" field has no code in the sandbox's data: places' telecoms are never public.
public struct RORAccessPolicy: Sendable {
    static let sensitiveUnit = RORSearchParameters.structureDefinition + "ror-healthcareservice-sensitive-unit"
    static let supportedCapacity = RORSearchParameters.structureDefinition + "ror-location-supported-capacity"
    static let healthcareServiceContact = RORSearchParameters.structureDefinition + "ror-healthcareservice-contact"
    static let healthcareServiceContactTelecom =
        RORSearchParameters.structureDefinition + "ror-healthcareservice-contact-telecom"
    static let medicoSocialField = RORDatasetGenerator.fieldCodes["MS"]!

    public let repository: ResourceRepository

    public init(repository: ResourceRepository) {
        self.repository = repository
    }

    /// Profiles that do not see sensitive units at all.
    public static func hidesSensitiveUnits(_ profile: Int?) -> Bool {
        guard let profile else { return false }
        return [0, 2, 3].contains(profile)
    }

    /// Confidentiality levels a profile may see; nil: every level.
    static func visibleLevels(_ profile: Int, medicoSocial: Bool) -> Set<String>? {
        switch profile {
        case 0: return ["1"]
        case 2, 5: return ["1", "2"]
        case 3: return medicoSocial ? ["1", "2"] : ["1"]
        case 4: return []
        default: return nil
        }
    }

    /// The resources as the current caller's profile may see them (dropped or trimmed).
    public func visible(_ resources: [StoredResource]) async throws -> [StoredResource] {
        try await visible(resources, profile: RORCaller.profile)
    }

    public func visible(_ resources: [StoredResource], profile: Int?) async throws -> [StoredResource] {
        if let seen = visibleNow(resources, profile: profile) { return seen }
        let medicoSocial = try await medicoSocialResources(resources)
        return resources.compactMap {
            Self.apply($0, profile: 3, medicoSocial: medicoSocial.contains("\($0.type)/\($0.id)"))
        }
    }

    /// ``visible(_:profile:)`` without reading anything: nil for profile 3, whose view of a place or a role depends
    /// on the offers related to it (medico-social or not).
    public func visibleNow(_ resources: [StoredResource], profile: Int?) -> [StoredResource]? {
        guard let profile, profile != 1, !resources.isEmpty else { return resources }
        guard profile != 3 else { return nil }
        return resources.compactMap { Self.apply($0, profile: profile, medicoSocial: false) }
    }

    /// The resource as `profile` may see it; nil when it may not see it at all.
    static func apply(_ stored: StoredResource, profile: Int, medicoSocial related: Bool) -> StoredResource? {
        guard var resource = (try? JSONSerialization.jsonObject(with: stored.json)) as? [String: Any] else {
            return stored
        }
        let original = resource
        let medicoSocial = stored.type == "HealthcareService" ? isMedicoSocialOffer(resource) : related
        if stored.type == "HealthcareService", hidesSensitiveUnits(profile), isSensitive(resource) { return nil }
        if stored.type == "Location" {
            resource["extension"] = filterCapacity(
                resource["extension"] as? [Any],
                profile: profile,
                medicoSocial: medicoSocial
            )
        }
        // Places' and roles' telecoms: profile 3 for medico-social ones only, never profile 0 (ambulatory only).
        if ["Location", "PractitionerRole"].contains(stored.type), profile == 0 || (profile == 3 && !medicoSocial) {
            resource["telecom"] = nil
        }
        if let levels = visibleLevels(profile, medicoSocial: medicoSocial) {
            resource = keepLevels(resource, levels)
        }
        if profile == 4, stored.type == "Practitioner" { resource["name"] = nil }
        for key in ["extension", "telecom", "contact"] where (resource[key] as? [Any])?.isEmpty == true {
            resource[key] = nil
        }
        guard !NSDictionary(dictionary: resource).isEqual(to: original) else { return stored }
        var filtered = stored
        filtered.json = (try? FHIRJSON.data(resource)) ?? stored.json
        return filtered
    }

    static func isSensitive(_ resource: [String: Any]) -> Bool {
        (resource["extension"] as? [[String: Any]])?.contains {
            $0["url"] as? String == sensitiveUnit && $0["valueBoolean"] as? Bool == true
        } ?? false
    }

    /// Bed/place indicators a profile may see.
    static func filterCapacity(_ extensions: [Any]?, profile: Int, medicoSocial: Bool) -> [Any]? {
        extensions?.filter { element in
            guard let ext = element as? [String: Any], ext["url"] as? String == supportedCapacity else { return true }
            let status = capacityStatus(ext)
            switch profile {
            case 0: return false
            case 2: return status != "06"
            case 3: return medicoSocial && status != "06"
            case 5: return status == "01"
            default: return true
            }
        }
    }

    static func capacityStatus(_ indicator: [String: Any]) -> String? {
        guard let parts = indicator["extension"] as? [[String: Any]],
            let status = parts.first(where: { $0["url"] as? String == "capacityStatus" })
        else { return nil }
        if let code = status["valueCode"] as? String { return code }
        return ((status["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"]
            as? String
    }

    /// The confidentiality level (TRE_R283 code) an element carries in its own extensions: the telecom, contact and
    /// offer-contact extensions all end in `confidentiality-level`. An element without one counts as level 1.
    static func level(_ element: [String: Any]) -> String {
        let levels = (element["extension"] as? [[String: Any]] ?? []).filter {
            ($0["url"] as? String)?.hasSuffix("confidentiality-level") == true
        }
        guard let level = levels.first else { return "1" }
        return
            (((level["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"]
            as? String) ?? "1"
    }

    /// Keeps the telecoms, contacts (with their telecoms) and offer contacts (with theirs) of the given levels.
    static func keepLevels(_ resource: [String: Any], _ levels: Set<String>) -> [String: Any] {
        func visible(_ element: Any) -> Bool {
            guard let object = element as? [String: Any] else { return true }
            return levels.contains(level(object))
        }
        var resource = resource
        if let telecom = resource["telecom"] as? [Any] { resource["telecom"] = telecom.filter(visible) }
        if let contacts = resource["contact"] as? [Any] {
            resource["contact"] = contacts.filter(visible).map { element -> Any in
                guard var contact = element as? [String: Any] else { return element }
                if let telecom = contact["telecom"] as? [Any] { contact["telecom"] = telecom.filter(visible) }
                return contact
            }
        }
        if let extensions = resource["extension"] as? [Any] {
            resource["extension"] = extensions.compactMap { element -> Any? in
                guard var contact = element as? [String: Any], contact["url"] as? String == healthcareServiceContact
                else { return element }
                guard visible(contact) else { return nil }
                contact["extension"] = (contact["extension"] as? [Any])?.filter { part in
                    guard let telecom = part as? [String: Any],
                        telecom["url"] as? String == healthcareServiceContactTelecom
                    else { return true }
                    return visible(telecom)
                }
                return contact
            }
        }
        return resource
    }

    // MARK: Activity field

    /// `Type/id` of the places, organisations and roles among `resources` that count as medico-social (see the type's comment).
    func medicoSocialResources(_ resources: [StoredResource]) async throws -> Set<String> {
        // Offers carry their own field: `apply` reads it from the JSON it parses anyway (`isMedicoSocialOffer`).
        let byType = Dictionary(grouping: resources, by: \.type).mapValues { $0.map(\.id) }
        let field = RORDatasetGenerator.activityField
        return try await repository.store.writer.read { db -> Set<String> in
            var result = Set<String>()
            // Places and organisations: through the offers that point at them (HealthcareService.location / providedBy).
            for (type, parameter) in [("Location", "location"), ("Organization", "organization")] {
                guard let ids = byType[type] else { continue }
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT r.ref_id AS id, MIN(t.code = ?) AS all_ms FROM fhir_index r
                        JOIN fhir_index t ON t.type = 'HealthcareService' AND t.id = r.id AND t.param = 'service-type' AND t.system = ?
                        WHERE r.type = 'HealthcareService' AND r.param = ? AND r.ref_type = ? AND r.ref_id IN (\(Self.placeholders(ids.count)))
                        GROUP BY r.ref_id
                        """,
                    arguments: StatementArguments([Self.medicoSocialField, field, parameter, type] + ids)
                )
                for row in rows where row["all_ms"] as Bool? == true { result.insert("\(type)/\(row["id"] as String)") }
            }
            // Roles: through the offers they work in (PractitionerRole.healthcareService).
            if let ids = byType["PractitionerRole"] {
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT r.id AS id, MIN(t.code = ?) AS all_ms FROM fhir_index r
                        JOIN fhir_index t ON t.type = 'HealthcareService' AND t.id = r.ref_id AND t.param = 'service-type' AND t.system = ?
                        WHERE r.type = 'PractitionerRole' AND r.param = 'service' AND r.id IN (\(Self.placeholders(ids.count)))
                        GROUP BY r.id
                        """,
                    arguments: StatementArguments([Self.medicoSocialField, field] + ids)
                )
                for row in rows where row["all_ms"] as Bool? == true {
                    result.insert("PractitionerRole/\(row["id"] as String)")
                }
            }
            return result
        }
    }

    /// An offer whose activity field (TRE_R227) is medico-social.
    static func isMedicoSocialOffer(_ offer: [String: Any]) -> Bool {
        let fields = ((offer["type"] as? [[String: Any]]) ?? []).flatMap { ($0["coding"] as? [[String: Any]]) ?? [] }
            .filter { $0["system"] as? String == RORDatasetGenerator.activityField }.compactMap {
                $0["code"] as? String
            }
        return !fields.isEmpty && fields.allSatisfy { $0 == medicoSocialField }
    }

    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ",")
    }
}
