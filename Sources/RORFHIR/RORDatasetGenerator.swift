import FHIRCore
import Foundation
import NIOConcurrencyHelpers

/// Generates a synthetic ROR dataset — legal entities (EJ), establishments (EG), internal organisations (OI),
/// places (Location) with bed/place indicators, operational offers (HealthcareService), practitioners and their
/// roles — deterministically from a seed. Every name and identifier is fictitious (FINESS `9…` numbers, SIRET
/// `3…`). Codes come from the NOS terminologies named in `docs/services/ror-fhir.md`; where they give no
/// label, a neutral one is used.
public struct RORDatasetGenerator {
    public var establishments: Int
    public var seed: UInt64
    /// The establishments to produce (all by default): lets a national dataset be written in parts.
    public var range: Range<Int>

    public init(establishments: Int, seed: UInt64, range: Range<Int>? = nil) {
        self.establishments = establishments
        self.seed = seed
        self.range = range ?? 0..<establishments
    }

    // MARK: Terminology (system URLs as in the IG examples)

    public static func nos(_ tre: String) -> String {
        "https://mos.esante.gouv.fr/NOS/\(tre)/FHIR/\(tre.replacingOccurrences(of: "_", with: "-"))"
    }

    public static let region = nos("TRE_R30-RegionOM")
    public static let capacityType = nos("TRE_R329-NatureCapacite")
    public static let capacityStatus = nos("TRE_R330-TypeStatutCapacite")
    public static let temporality = nos("TRE_R331-TemporaliteCapacite")
    public static let gender = nos("TRE_R332-GenreCapacite")
    public static let source = nos("TRE_R335-TypeSourceCapacite")
    public static let temporaryAssignment = nos("TRE_R337-AffectationTemporaire")
    public static let operationalActivity = nos("TRE_R211-ActiviteOperationnelle")
    public static let activityField = nos("TRE_R227-ChampActivite")
    public static let careMode = nos("TRE_R213-ModePriseEnCharge")
    public static let offerIdentifierType = nos("TRE_R355-TypeIdentifiantOffre")
    public static let resourceIdentifierType = nos("TRE_R354-TypeIdentifiantRessourceOperationnelle")
    public static let structureIdentifierType = nos("TRE_G07-TypeIdentifiantStructure")
    public static let communes = nos("TRE_R13-CommuneOM")
    public static let placeFunction = nos("TRE_R343-FonctionLieu")
    public static let profession = nos("TRE_G15-ProfessionSante")
    public static let unitExerciseMode = nos("TRE_R23-ModeExercice")
    public static let expertiseType = nos("TRE_R97-TypeSavoirFaire")
    public static let communicationChannel = nos("TRE_R200-CanalCommunication")
    public static let confidentialityLevel = nos("TRE_R283-NiveauConfidentialite")
    public static let contactNature = nos("TRE_R287-NatureContact")
    public static let sd = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/"

    /// Regions used (TRE_R30 codes) with a département, its main town and INSEE commune code.
    static let regions: [(code: String, name: String, department: String, city: String, cog: String, postal: String)] =
        [
            ("11", "Île-de-France", "75", "Paris", "75056", "75013"),
            ("84", "Auvergne-Rhône-Alpes", "69", "Lyon", "69123", "69003"),
            ("93", "Provence-Alpes-Côte d'Azur", "13", "Marseille", "13055", "13005"),
            ("53", "Bretagne", "35", "Rennes", "35238", "35000"),
        ]

    /// Activity fields (champ d'activité, TRE_R227 codes) of the offers: the access policy reads the medico-social one.
    public static let fieldCodes = ["MCO": "01", "PSY": "02", "SSR": "03", "MS": "04"]

    /// Operational activities (TRE_R211 codes) with the field (champ d'activité) and capacity nature they use.
    static let activities: [(code: String, field: String, nature: String)] = [
        ("356", "MCO", "01"), ("147", "MCO", "01"), ("201", "MCO", "01"), ("070", "PSY", "01"),
        ("089", "PSY", "02"), ("310", "SSR", "01"), ("412", "MS", "02"), ("430", "MS", "01"),
    ]

    // MARK: Output

    /// All resources, dependencies first (organisations, places, offers, practitioners, roles).
    public func resources() -> [[String: Any]] {
        var organizations: [[String: Any]] = []
        var locations: [[String: Any]] = []
        var services: [[String: Any]] = []
        var practitioners: [[String: Any]] = []
        var roles: [[String: Any]] = []
        let created = "2019-01-15T09:00:00+00:00"

        for index in range {
            // One random stream per establishment: any part of the dataset is generated identically on its own.
            var random = SeededRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9)
            let region = Self.regions[index % Self.regions.count]
            let number = String(format: "%05d", index + 1)
            let finessEJ = "\(region.department)\(String(format: "%07d", 9_000_000 + index * 2))".prefix(9)
            let finessEG = "\(region.department)\(String(format: "%07d", 9_000_001 + index * 2))".prefix(9)
            let siret = "3\(String(format: "%013d", 1_000_000_000 + UInt64(index) * 7919))"
            let ejID = "ej-\(number)"
            let egID = "eg-\(number)"
            let kind = index % 3 == 0 ? "Centre hospitalier" : (index % 3 == 1 ? "Clinique" : "EHPAD")
            let name = "\(kind.uppercased()) SANDBOX \(region.city.uppercased()) \(index + 1)"
            let tag = [["system": Self.region, "code": region.code]]
            let address: [String: Any] = [
                "line": ["\(10 + index) rue de la Santé"], "city": region.city, "postalCode": region.postal,
            ]

            organizations.append(
                organization(
                    id: ejID,
                    name: "GROUPE \(name)",
                    tag: tag,
                    created: created,
                    address: address,
                    identifiers: [
                        structureIdentifier("1\(finessEJ)", type: "40"), finess(String(finessEJ)),
                        siretIdentifier(siret),
                    ],
                    partOf: nil
                )
            )
            organizations.append(
                organization(
                    id: egID,
                    name: name,
                    tag: tag,
                    created: created,
                    address: address,
                    identifiers: [structureIdentifier("1\(finessEG)", type: "40"), finess(String(finessEG))],
                    partOf: ejID,
                    phone: index * 100
                )
            )
            let oiID = "oi-\(number)"
            organizations.append(
                organization(
                    id: oiID,
                    name: "PÔLE MÉDICAL \(index + 1)",
                    tag: tag,
                    created: created,
                    address: address,
                    identifiers: [["system": "https://oi.esante.gouv.fr", "value": "\(finessEG)-OI1"]],
                    partOf: egID
                )
            )

            let locationCount = 1 + Int(random.next() % 3)
            var locationIDs: [String] = []
            for l in 0..<locationCount {
                let id = "loc-\(number)-\(l + 1)"
                locationIDs.append(id)
                let activity = Self.activities[Int(random.next() % UInt64(Self.activities.count))]
                locations.append(
                    location(
                        id: id,
                        tag: tag,
                        created: created,
                        region: region,
                        egID: egID,
                        finessEG: String(finessEG),
                        externalID: "LIT\(number)\(l + 1)",
                        nature: activity.nature,
                        phone: index * 100 + 10 * (l + 1),
                        random: &random
                    )
                )
            }

            let serviceCount = 4 + Int(random.next() % 3)
            for s in 0..<serviceCount {
                let id = "hs-\(number)-\(s + 1)"
                let activity = Self.activities[(index + s) % Self.activities.count]
                let sensitive = index == 1 && s == 0  // one sensitive unit (unité sensible) in the dataset
                services.append(
                    healthcareService(
                        id: id,
                        tag: tag,
                        created: created,
                        region: region,
                        number: number,
                        serial: s + 1,
                        activity: activity,
                        organization: s % 2 == 0 ? egID : oiID,
                        location: locationIDs[s % locationIDs.count],
                        sensitive: sensitive,
                        phone: index * 100 + 40 + 4 * s,
                        random: &random
                    )
                )
                if s < 2 {
                    let practitionerID = "pr-\(number)-\(s + 1)"
                    practitioners.append(
                        practitioner(
                            id: practitionerID,
                            tag: tag,
                            created: created,
                            serial: index * 10 + s,
                            random: &random
                        )
                    )
                    roles.append(
                        practitionerRole(
                            id: "prr-\(number)-\(s + 1)",
                            tag: tag,
                            created: created,
                            practitioner: practitionerID,
                            service: id,
                            organization: egID,
                            phone: index * 100 + 80 + s
                        )
                    )
                }
            }
        }
        return organizations + locations + services + practitioners + roles
    }

    /// A FHIR `collection` Bundle of ``resources()``.
    public func bundle() -> [String: Any] {
        [
            "resourceType": "Bundle",
            "type": "collection",
            "entry": resources().map {
                ["fullUrl": "urn:esante-sandbox:\($0["resourceType"]!)/\($0["id"]!)", "resource": $0]
            },
        ]
    }

    /// Writes the dataset as seed files under `folder` (`Seeds/ror` layout) and returns how many resources it holds.
    /// Small datasets (≤ 100 establishments): one readable `dataset.json`. National ones: compact
    /// `dataset-NNNN.json` files of 250 establishments each, generated and written on every core (one random
    /// stream per establishment makes the parts independent), so loading parses one at a time.
    /// `progress` receives the establishments done so far, from any thread. An earlier generation's files in
    /// `folder` (parts, and the prebuilt database that stood for them) are removed first: a smaller dataset written
    /// over a larger one would otherwise keep its extra parts.
    public static func write(
        establishments: Int,
        seed: UInt64,
        to folder: URL,
        progress: @Sendable (Int) -> Void = { _ in }
    ) throws -> Int {
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path)
        where name == "dataset.json" || name == RORSeedDataset.prebuiltName
            || (name.hasPrefix("dataset-") && name.hasSuffix(".json"))
        {
            try FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
        let chunk = establishments <= 100 ? establishments : 250
        let firsts = Array(stride(from: 0, to: establishments, by: chunk))
        let state = NIOLockedValueBox((establishments: 0, resources: 0, error: (any Error)?.none))
        DispatchQueue.concurrentPerform(iterations: firsts.count) { index in
            let range = firsts[index]..<min(firsts[index] + chunk, establishments)
            do {
                let bundle = RORDatasetGenerator(establishments: establishments, seed: seed, range: range).bundle()
                let data: Data
                let name: String
                if chunk == establishments {
                    data = try JSONSerialization.data(
                        withJSONObject: bundle,
                        options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                    )
                    name = "dataset.json"
                } else {
                    // Foundation's writer took 80% of a national generation; the FHIR writer walks the tree once.
                    data = try FHIRJSON.data(bundle, sortedKeys: false)
                    name = String(format: "dataset-%04d.json", index + 1)
                }
                try data.write(to: folder.appendingPathComponent(name), options: .atomic)
                let done = state.withLockedValue { state -> Int in
                    state.establishments += range.count
                    state.resources += (bundle["entry"] as? [Any])?.count ?? 0
                    return state.establishments
                }
                progress(done)
            } catch {
                state.withLockedValue { if $0.error == nil { $0.error = error } }
            }
        }
        let result = state.withLockedValue { $0 }
        if let error = result.error { throw error }
        return result.resources
    }

    // MARK: Builders

    func coding(_ system: String, _ code: String, _ display: String? = nil) -> [String: Any] {
        var coding: [String: Any] = ["system": system, "code": code]
        if let display { coding["display"] = display }
        return coding
    }

    func concept(_ system: String, _ code: String, _ display: String? = nil) -> [String: Any] {
        ["coding": [coding(system, code, display)]]
    }

    func meta(_ profile: String, tag: [[String: String]]) -> [String: Any] {
        ["profile": [Self.sd + profile], "tag": tag]
    }

    func creationDate(_ created: String) -> [String: Any] {
        ["url": Self.sd + "ror-meta-creation-date", "valueDateTime": created]
    }

    func structureIdentifier(_ value: String, type: String) -> [String: Any] {
        ["type": concept(Self.structureIdentifierType, type), "system": "urn:oid:1.2.250.1.71.4.2.2", "value": value]
    }

    func finess(_ value: String) -> [String: Any] {
        ["type": concept(Self.structureIdentifierType, "1"), "system": "http://finess.sante.gouv.fr", "value": value]
    }

    func siretIdentifier(_ value: String) -> [String: Any] {
        ["type": concept(Self.structureIdentifierType, "3"), "system": "http://sirene.fr", "value": value]
    }

    func organization(
        id: String,
        name: String,
        tag: [[String: String]],
        created: String,
        address: [String: Any],
        identifiers: [[String: Any]],
        partOf: String?,
        phone: Int? = nil
    ) -> [String: Any] {
        var resource: [String: Any] = [
            "resourceType": "Organization", "id": id, "meta": meta("ror-organization", tag: tag),
            "extension": [creationDate(created)], "identifier": identifiers, "active": true, "name": name,
            "address": [address],
        ]
        if let partOf { resource["partOf"] = ["reference": "Organization/\(partOf)"] }
        if let phone {
            // A geographical establishment's switchboard, and one contact per confidentiality level.
            resource["telecom"] = [telecom(phone, level: "1")]
            resource["contact"] = Self.contactLevels.map { level, nature, label in
                [
                    "extension": [
                        [
                            "url": Self.sd + "ror-contact-confidentiality-level",
                            "valueCodeableConcept": levelConcept(level),
                        ]
                    ],
                    "purpose": concept(Self.contactNature, nature, label),
                    "name": ["text": label],
                    "telecom": [telecom(phone + Int(level)!, level: level)],
                ] as [String: Any]
            }
        }
        return resource
    }

    /// Contacts written for each confidentiality level (TRE_R283): level, nature (TRE_R287), label.
    static let contactLevels = [
        ("1", "06", "Standard"), ("2", "03", "Secrétariat de direction"), ("3", "09", "Astreinte administrative"),
    ]

    func levelConcept(_ level: String) -> [String: Any] {
        concept(
            Self.confidentialityLevel,
            level,
            ["1": "Accès libre", "2": "Accès restreint", "3": "Accès très restreint"][level]
        )
    }

    /// A landline (ContactPoint) with the ROR channel and confidentiality extensions.
    func telecom(_ number: Int, level: String) -> [String: Any] {
        [
            "system": "phone", "value": String(format: "01%08d", number % 100_000_000),
            "extension": [
                [
                    "url": Self.sd + "ror-telecom-communication-channel",
                    "valueCodeableConcept": concept(Self.communicationChannel, "2", "Téléphone fixe"),
                ],
                ["url": Self.sd + "ror-telecom-confidentiality-level", "valueCodeableConcept": levelConcept(level)],
            ],
        ]
    }

    func location(
        id: String,
        tag: [[String: String]],
        created: String,
        region: (code: String, name: String, department: String, city: String, cog: String, postal: String),
        egID: String,
        finessEG: String,
        externalID: String,
        nature: String,
        phone: Int,
        random: inout SeededRandom
    ) -> [String: Any] {
        let installed = 10 + Int(random.next() % 30)
        var indicators: [[String: Any]] = [
            capacityIndicator(nature: nature, status: "01", temporality: "01", gender: nil, count: installed)
        ]
        var free = Int(random.next() % 6)
        for gender in ["01", "02", "03"] {
            indicators.append(
                capacityIndicator(nature: nature, status: "02", temporality: "01", gender: gender, count: free)
            )
            free = Int(random.next() % 4)
        }
        indicators.append(
            capacityIndicator(
                nature: nature,
                status: "02",
                temporality: "03",
                gender: "03",
                count: Int(random.next() % 5)
            )
        )
        indicators.append(
            capacityIndicator(
                nature: nature,
                status: "05",
                temporality: "01",
                gender: nil,
                count: Int(random.next() % 3)
            )
        )
        indicators.append(
            capacityIndicator(
                nature: nature,
                status: "06",
                temporality: "01",
                gender: nil,
                count: Int(random.next() % 3)
            )
        )
        return [
            "resourceType": "Location", "id": id, "meta": meta("ror-location", tag: tag),
            "extension": [
                [
                    "url": Self.sd + "ror-commune-cog",
                    "valueCodeableConcept": concept(Self.communes, region.cog, region.city),
                ],
                creationDate(created),
            ] + indicators,
            "identifier": [
                ["type": concept(Self.resourceIdentifierType, "26"), "value": "1\(finessEG)/\(externalID)"],
                ["type": concept(Self.resourceIdentifierType, "25"), "value": "\(region.code)/\(id)"],
            ],
            "status": "active",
            "name": "Lieu \(id)",
            "type": [concept(Self.placeFunction, "001", "Hébergement")],
            "address": ["line": ["Bâtiment \(id.suffix(1))"], "city": region.city, "postalCode": region.postal],
            "managingOrganization": ["reference": "Organization/\(egID)"],
            "telecom": Self.contactLevels.map { telecom(phone + Int($0.0)!, level: $0.0) },
        ]
    }

    func capacityIndicator(
        nature: String,
        status: String,
        temporality: String,
        gender: String?,
        count: Int
    ) -> [String: Any] {
        let statusLabels = ["01": "Installé", "02": "Disponible", "05": "Fermé", "06": "Supplémentaire"]
        let temporalityLabels = ["01": "Courant", "03": "Prévisionnel 24 h"]
        let genderLabels = ["01": "Femme", "02": "Homme", "03": "Indifférencié"]
        var parts: [[String: Any]] = [
            [
                "url": "capacityType",
                "valueCodeableConcept": concept(Self.capacityType, nature, nature == "01" ? "Lit" : "Place"),
            ],
            [
                "url": "capacityStatus",
                "valueCodeableConcept": concept(Self.capacityStatus, status, statusLabels[status]),
            ],
            [
                "url": "temporalityCapacity",
                "valueCodeableConcept": concept(Self.temporality, temporality, temporalityLabels[temporality]),
            ],
            ["url": "nbCapacity", "valueInteger": count],
            ["url": "capacitySourceType", "valueCodeableConcept": concept(Self.source, "01", "Saisie manuelle")],
            ["url": "capacityUpdateDate", "valueDateTime": "2026-11-20T08:00:00+00:00"],
            ["url": "temporaryAssignement", "valueCodeableConcept": concept(Self.temporaryAssignment, "01", "Aucune")],
        ]
        if let gender {
            parts.append([
                "url": "genderCapacityAvailable",
                "valueCodeableConcept": concept(Self.gender, gender, genderLabels[gender]),
            ])
        }
        return ["url": Self.sd + "ror-location-supported-capacity", "extension": parts]
    }

    func healthcareService(
        id: String,
        tag: [[String: String]],
        created: String,
        region: (code: String, name: String, department: String, city: String, cog: String, postal: String),
        number: String,
        serial: Int,
        activity: (code: String, field: String, nature: String),
        organization: String,
        location: String,
        sensitive: Bool,
        phone: Int,
        random: inout SeededRandom
    ) -> [String: Any] {
        let low = activity.field == "MS" ? 60 : (activity.code == "201" ? 0 : 18)
        let high = activity.code == "201" ? 17 : 120
        return [
            "resourceType": "HealthcareService", "id": id, "meta": meta("ror-healthcareservice", tag: tag),
            "extension": [
                ["url": Self.sd + "ror-healthcareservice-sensitive-unit", "valueBoolean": sensitive],
                [
                    "url": Self.sd + "ror-healthcareservice-patient-type",
                    "extension": [
                        [
                            "url": "ageRange",
                            "valueRange": [
                                "low": ["value": low, "system": "http://unitsofmeasure.org", "code": "a"],
                                "high": ["value": high, "system": "http://unitsofmeasure.org", "code": "a"],
                            ],
                        ]
                    ],
                ],
                creationDate(created),
            ]
                + Self.contactLevels.map { level, nature, label in
                    // The offer's contacts (ror-healthcareservice-contact), one per confidentiality level.
                    [
                        "url": Self.sd + "ror-healthcareservice-contact",
                        "extension": [
                            [
                                "url": "purposeContact",
                                "valueCodeableConcept": concept(Self.contactNature, nature, label),
                            ],
                            [
                                "url": Self.sd + "ror-confidentiality-level",
                                "valueCodeableConcept": levelConcept(level),
                            ],
                            [
                                "url": Self.sd + "ror-healthcareservice-contact-telecom",
                                "extension": [
                                    [
                                        "url": Self.sd + "ror-telecom-communication-channel",
                                        "valueCodeableConcept": concept(
                                            Self.communicationChannel,
                                            "2",
                                            "Téléphone fixe"
                                        ),
                                    ],
                                    [
                                        "url": Self.sd + "ror-telecom-confidentiality-level",
                                        "valueCodeableConcept": levelConcept(level),
                                    ],
                                    [
                                        "url": "telecomAddress",
                                        "valueString": String(format: "01%08d", (phone + Int(level)!) % 100_000_000),
                                    ],
                                ],
                            ],
                        ],
                    ] as [String: Any]
                },
            "identifier": [
                ["type": concept(Self.offerIdentifierType, "35"), "value": "\(region.code)/\(number)\(serial)"]
            ],
            "active": true,
            "providedBy": ["reference": "Organization/\(organization)"],
            "type": [concept(Self.activityField, Self.fieldCodes[activity.field]!, activity.field)],
            "specialty": [concept(Self.operationalActivity, activity.code, "Activité opérationnelle \(activity.code)")],
            "characteristic": [concept(Self.careMode, random.next() % 2 == 0 ? "07" : "10", nil)],
            "location": [["reference": "Location/\(location)"]],
            "name": "Unité \(activity.field) \(serial) — \(region.city)",
        ]
    }

    static let givenNames = ["Camille", "Dominique", "Claude", "Alix", "Sacha", "Maxime", "Charlie", "Andréa"]
    static let familyNames = [
        "MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEFÈVRE",
    ]

    func practitioner(
        id: String,
        tag: [[String: String]],
        created: String,
        serial: Int,
        random: inout SeededRandom
    ) -> [String: Any] {
        let given = Self.givenNames[Int(random.next() % UInt64(Self.givenNames.count))]
        let family = Self.familyNames[Int(random.next() % UInt64(Self.familyNames.count))]
        return [
            "resourceType": "Practitioner", "id": id, "meta": meta("ror-practitioner", tag: tag),
            "extension": [creationDate(created)],
            "identifier": [["system": "urn:oid:1.2.250.1.71.4.2.1", "value": "899\(String(format: "%08d", serial))"]],
            "name": [["family": family, "given": [given]]],
        ]
    }

    func practitionerRole(
        id: String,
        tag: [[String: String]],
        created: String,
        practitioner: String,
        service: String,
        organization: String,
        phone: Int
    ) -> [String: Any] {
        [
            "resourceType": "PractitionerRole", "id": id, "meta": meta("ror-practitionerrole", tag: tag),
            "extension": [
                creationDate(created),
                [
                    "url": Self.sd + "ror-practitionerrole-unit-exercise-mode",
                    "valueCodeableConcept": concept(Self.unitExerciseMode, "S"),
                ],
            ],
            "practitioner": ["reference": "Practitioner/\(practitioner)"],
            "healthcareService": [["reference": "HealthcareService/\(service)"]],
            "organization": ["reference": "Organization/\(organization)"],
            "code": [concept(Self.profession, "10", "Médecin")],
            "specialty": [concept(Self.expertiseType, "S", nil)],
            "telecom": [telecom(phone, level: "2")],
        ]
    }
}

/// SplitMix64: the same seed gives the same dataset on every machine.
public struct SeededRandom {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
