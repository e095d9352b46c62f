import Foundation
import GRDB
import Store

/// Reads for people looking at the store (the console): what is stored, newest first, and a resource's versions.
/// Not on any client's path, so they favour plainness over the caches the API reads use.
extension ResourceRepository {
    /// How many live resources of each type, by type name.
    public func typeCounts() async throws -> [(type: String, count: Int)] {
        try await store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT type, COUNT(*) AS n FROM fhir_resource WHERE deleted = 0 GROUP BY type ORDER BY type"
            )
            .map { (type: $0["type"] as String, count: $0["n"] as Int) }
        }
    }

    /// The live resources of `type` most recently updated first; with `containing`, only those whose JSON holds that
    /// text (a cheap filter, e.g. an extension URL).
    public func recentlyUpdated(
        type: String,
        containing text: String? = nil,
        limit: Int
    ) async throws -> [StoredResource] {
        try await store.writer.read { db in
            let filter: SQL = text.map { "AND instr(json, \($0)) > 0" } ?? ""
            let query: SQL = """
                SELECT type, id, version, last_updated, json FROM fhir_resource
                WHERE type = \(type) AND deleted = 0 \(filter) ORDER BY last_updated DESC LIMIT \(limit)
                """
            return try SQLRequest<Row>(literal: query).fetchAll(db).map(Self.stored)
        }
    }

    /// A resource's current version then up to `limit` kept versions, newest first; nil when it is not stored.
    public func versions(type: String, id: String, limit: Int) async throws -> [StoredResource]? {
        try await store.writer.read { db in
            guard let current = try self.current(type: type, id: id, in: db) else { return nil }
            return [current]
                + (try ResourceHistory.versions(type: type, id: id, limit: limit, in: db)).map {
                    StoredResource(type: type, id: id, version: $0.version, lastUpdated: $0.lastUpdated, json: $0.json)
                }
        }
    }
}
