import FHIRCore
import Foundation

/// The caller's access profile ("profil d'accès" 0–5) for the request being served, set once the bearer token is
/// verified (nil: no token checked, e.g. `metadata`).
public enum RORCaller {
    @TaskLocal public static var profile: Int?
}

/// What each access profile may see, applied to every resource the consumer API returns (read, search matches and
/// includes). From `../shared/notes/ror-fhir.md` §1 (IG mappings) and §6 (DOC `acces-donnees/vue-ensemble.md`):
///
/// | profile | rule implemented |
/// |---|---|
/// | 1 | everything |
/// | 0 | public data: no sensitive unit (`uniteSensible`), no bed/place indicator, only contacts of confidentiality level 1 (Accès libre) |
/// | 2 | no sensitive unit, indicators except supplementary beds (status 06) |
/// | 3 | as 2 (the "medico-social offer only" refinement is left out, see README) |
/// | 4 | everything except contacts and personal data (telecom, contacts, practitioners' names) |
/// | 5 | no sensitive-unit restriction, indicators of installed beds only (status 01) |
///
/// Left out (documented): the "très restreint" level (no such data in the seeds), profile 3's medico-social rule.
public enum RORAccessPolicy {
    static let sensitiveUnit = RORSearchParameters.structureDefinition + "ror-healthcareservice-sensitive-unit"
    static let supportedCapacity = RORSearchParameters.structureDefinition + "ror-location-supported-capacity"
    static let confidentiality = RORSearchParameters.structureDefinition + "ror-telecom-confidentiality-level"
    static let healthcareServiceContact = RORSearchParameters.structureDefinition + "ror-healthcareservice-contact"

    /// Profiles that do not see sensitive units at all.
    public static func hidesSensitiveUnits(_ profile: Int?) -> Bool {
        guard let profile else { return false }
        return [0, 2, 3].contains(profile)
    }

    /// The resource as `profile` may see it; nil when it may not see it at all.
    public static func apply(_ stored: StoredResource, profile: Int?) -> StoredResource? {
        guard let profile, profile != 1 else { return stored }
        guard var resource = (try? JSONSerialization.jsonObject(with: stored.json)) as? [String: Any] else { return stored }
        let original = resource
        switch stored.type {
        case "HealthcareService":
            if hidesSensitiveUnits(profile), isSensitive(resource) { return nil }
        case "Location":
            resource["extension"] = filterCapacity(resource["extension"] as? [Any], profile: profile)
        default:
            break
        }
        if profile == 0 { resource = keepPublicContacts(resource) }
        if profile == 4 {
            resource["telecom"] = nil
            resource["contact"] = nil
            resource["extension"] = (resource["extension"] as? [Any])?.filter { ($0 as? [String: Any])?["url"] as? String != healthcareServiceContact }
            if stored.type == "Practitioner" { resource["name"] = nil }
        }
        if (resource["extension"] as? [Any])?.isEmpty == true { resource["extension"] = nil }
        guard !NSDictionary(dictionary: resource).isEqual(to: original) else { return stored }
        var filtered = stored
        filtered.json = (try? JSONSerialization.data(withJSONObject: resource, options: [.sortedKeys, .withoutEscapingSlashes])) ?? stored.json
        return filtered
    }

    static func isSensitive(_ resource: [String: Any]) -> Bool {
        (resource["extension"] as? [[String: Any]])?.contains { $0["url"] as? String == sensitiveUnit && $0["valueBoolean"] as? Bool == true } ?? false
    }

    /// Bed/place indicators a profile may see.
    static func filterCapacity(_ extensions: [Any]?, profile: Int) -> [Any]? {
        extensions?.filter { element in
            guard let ext = element as? [String: Any], ext["url"] as? String == supportedCapacity else { return true }
            let status = capacityStatus(ext)
            switch profile {
            case 0: return false
            case 2, 3: return status != "06"
            case 5: return status == "01"
            default: return true
            }
        }
    }

    static func capacityStatus(_ indicator: [String: Any]) -> String? {
        guard let parts = indicator["extension"] as? [[String: Any]],
              let status = parts.first(where: { $0["url"] as? String == "capacityStatus" }) else { return nil }
        if let code = status["valueCode"] as? String { return code }
        return ((status["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"] as? String
    }

    /// Profile 0 sees only contacts (and telecoms) of confidentiality level 1 (Accès libre) or without a level.
    static func keepPublicContacts(_ resource: [String: Any]) -> [String: Any] {
        var resource = resource
        func isPublic(_ element: Any) -> Bool {
            guard let object = element as? [String: Any] else { return true }
            let levels = (object["extension"] as? [[String: Any]] ?? []).filter {
                ($0["url"] as? String)?.hasSuffix("confidentiality-level") == true
            }
            return levels.allSatisfy { level in
                (((level["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"] as? String) == "1"
            }
        }
        if let telecom = resource["telecom"] as? [Any] { resource["telecom"] = telecom.filter(isPublic) }
        if let extensions = resource["extension"] as? [Any] {
            resource["extension"] = extensions.filter { element in
                guard let ext = element as? [String: Any], ext["url"] as? String == healthcareServiceContact else { return true }
                return isPublic(ext)
            }
        }
        return resource
    }
}
