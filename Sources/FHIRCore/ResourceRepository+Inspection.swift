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

/// How the store answers one search: its SQL, SQLite's plan, and what running it took (`esante-sandbox explain`).
public struct SearchExplanation: Sendable {
    public var sql: String
    public var arguments: [String]
    /// `EXPLAIN QUERY PLAN`'s lines, indented by depth.
    public var plan: [String]
    public var matches: Int
    /// The query run once on a reader, uncached (ms).
    public var milliseconds: Double
}

extension ResourceRepository {
    /// The search's id query as the API runs it (uncached), explained and timed.
    public func explain(_ request: SearchRequest) async throws -> SearchExplanation {
        let query = try IDQuery(request)
        return try await store.writer.read { db in
            var depth: [Int: Int] = [:]
            let plan = try Row.fetchAll(
                db,
                sql: "EXPLAIN QUERY PLAN " + query.sql,
                arguments: StatementArguments(query.values)
            )
            .map { row -> String in
                let level = (depth[row["parent"] as Int] ?? -1) + 1
                depth[row["id"] as Int] = level
                return String(repeating: "  ", count: level) + (row["detail"] as String)
            }
            let started = ContinuousClock.now
            let ids = try query.run(db, cached: false)
            let elapsed = ContinuousClock.now - started
            return SearchExplanation(
                sql: query.sql,
                arguments: query.values.map(\.description),
                plan: plan,
                matches: ids.count,
                milliseconds: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            )
        }
    }
}
