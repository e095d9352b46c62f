import FHIRCore
import Foundation

/// The ROR store as the console shows it: resources found by identifier, and the capacity board — Locations with
/// their bed and place indicators and the establishment they belong to. The console renders; this reads.
public struct RORInspection: Sendable {
    let repository: ResourceRepository
    /// The last segment of the supported-capacity extension's URL (the IG's canonical base has changed over versions).
    static let capacityExtension = "ror-location-supported-capacity"

    public init(repository: ResourceRepository) {
        self.repository = repository
    }

    /// One supported-capacity indicator of a Location (extension `ror-location-supported-capacity`), by its codes.
    public struct CapacityIndicator: Sendable, Equatable {
        /// capacityStatus (TRE_R330: 01 installés, 02 disponibles…).
        public var status: String?
        /// genderCapacityAvailable (TRE_R332).
        public var gender: String?
        /// temporalityCapacity (TRE_R331).
        public var temporality: String?
        /// capacityType (TRE_R329: 01 lits, 02 places).
        public var type: String?
        /// nbCapacity.
        public var count: Int
    }

    /// A Location of the capacity board.
    public struct BoardLocation: Sendable {
        public var stored: StoredResource
        public var name: String?
        public var identifier: String?
        /// The managing organisation's id, and its name and first identifier when stored.
        public var organizationID: String?
        public var organizationLabel: String?
        public var indicators: [CapacityIndicator]
    }

    /// Resources of `type` whose `identifier` matches (a FHIR token search), newest first, at most `limit`.
    public func resources(type: String, identifier: String, limit: Int) async throws -> [StoredResource] {
        let ids = try await repository.searchIDs(
            try SearchRequest(type: type, items: [("identifier", identifier)], registry: repository.registry)
        )
        return Array(
            try await repository.resources(type: type, ids: ids).sorted { $0.lastUpdated > $1.lastUpdated }.prefix(
                limit
            )
        )
    }

    /// The board: the Locations of the establishment `finess` (nil when no Organization has that identifier), or
    /// without one the 60 Locations with indicators updated last.
    public func capacityBoard(finess: String?) async throws -> [BoardLocation]? {
        let locations: [StoredResource]
        if let finess, !finess.isEmpty {
            let organizations = try await repository.searchIDs(
                try SearchRequest(type: "Organization", items: [("identifier", finess)], registry: repository.registry)
            )
            guard !organizations.isEmpty else { return nil }
            let ids = try await repository.searchIDs(
                try SearchRequest(
                    type: "Location",
                    items: [("organization", organizations.map { "Organization/\($0)" }.joined(separator: ","))],
                    registry: repository.registry
                )
            )
            locations = Array(
                try await repository.resources(type: "Location", ids: ids).sorted { $0.lastUpdated > $1.lastUpdated }
                    .prefix(200)
            )
        } else {
            locations = try await repository.recentlyUpdated(
                type: "Location",
                containing: Self.capacityExtension,
                limit: 60
            )
        }
        var board = locations.map { stored -> BoardLocation in
            let object = Self.object(stored.json)
            return BoardLocation(
                stored: stored,
                name: object["name"] as? String,
                identifier: Self.identifiers(object).first,
                organizationID: ((object["managingOrganization"] as? [String: Any])?["reference"] as? String)?
                    .split(separator: "/").last.map(String.init),
                indicators: Self.indicators(in: object)
            )
        }
        let organizationIDs = Array(Set(board.compactMap(\.organizationID)))
        var labels: [String: String] = [:]
        for stored in try await repository.resources(type: "Organization", ids: organizationIDs) {
            let object = Self.object(stored.json)
            labels[stored.id] = "\(object["name"] as? String ?? stored.id) (\(Self.identifiers(object).first ?? ""))"
        }
        for index in board.indices {
            board[index].organizationLabel = board[index].organizationID.flatMap { labels[$0] }
        }
        return board
    }

    /// The supported-capacity indicators of a Location; codes read from `valueCodeableConcept.coding` or `valueCode`
    /// (both are found in published instances).
    public static func indicators(in location: [String: Any]) -> [CapacityIndicator] {
        (location["extension"] as? [[String: Any]] ?? []).filter {
            ($0["url"] as? String)?.hasSuffix(Self.capacityExtension) == true
        }
        .map { indicator in
            let parts = indicator["extension"] as? [[String: Any]] ?? []
            func code(_ url: String) -> String? {
                let part = parts.first { $0["url"] as? String == url }
                return ((part?["valueCodeableConcept"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?[
                    "code"
                ]
                    as? String ?? part?["valueCode"] as? String
            }
            return CapacityIndicator(
                status: code("capacityStatus"),
                gender: code("genderCapacityAvailable"),
                temporality: code("temporalityCapacity"),
                type: code("capacityType"),
                count: parts.first { $0["url"] as? String == "nbCapacity" }?["valueInteger"] as? Int ?? 0
            )
        }
    }

    /// The `identifier.value`s of a resource, in order.
    public static func identifiers(_ object: [String: Any]) -> [String] {
        (object["identifier"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? String }
    }

    public static func object(_ json: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] ?? [:]
    }
}
