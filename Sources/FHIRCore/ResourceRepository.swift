import Foundation
import GRDB
import NIOConcurrencyHelpers
import Store

/// A resource as stored: canonical JSON bytes with `meta.versionId` and `meta.lastUpdated` set.
public struct StoredResource: Sendable, Hashable {
    public var type: String
    public var id: String
    public var version: Int
    public var lastUpdated: String
    public var json: Data
}

/// A resource that cannot be stored (not JSON, no resourceType/id…).
public struct ResourceError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// FHIR resources and their search index in the sandbox store. Every write indexes in the same transaction.
public final class ResourceRepository: Sendable {
    public let store: SandboxStore
    public let registry: SearchParameterRegistry
    /// Resources read by id and search results (a read then costs no hop to a database thread: consumers re-read the
    /// same Locations all day), brought up to date by every commit. Every change goes through `write` here or calls
    /// `resourcesChanged(in:)`.
    let readCache = ReadCache()
    /// ``ExtractionPlan``s by type and change.
    private let plans = NIOLockedValueBox<[String: ExtractionPlan]>([:])

    public init(store: SandboxStore, registry: SearchParameterRegistry) {
        self.store = store
        self.registry = registry
    }

    // MARK: Writing

    /// Stores (creating or replacing) a resource, bumping its version; `lastUpdated` defaults to now.
    @discardableResult
    public func save(_ resource: [String: Any], lastUpdated: Date = Date(), in db: Database) throws -> StoredResource {
        guard let resource = JSONObject(any: resource) else { throw ResourceError("not a JSON resource") }
        return try save(resource, lastUpdated: lastUpdated, in: db)
    }

    /// Stores (creating or replacing) a resource, bumping its version; `lastUpdated` defaults to now.
    @discardableResult
    public func save(_ resource: JSONObject, lastUpdated: Date = Date(), in db: Database) throws -> StoredResource {
        let (type, id) = try identify(resource)
        let previous = try Int.fetchOne(
            db,
            sql: "SELECT version FROM fhir_resource WHERE type = ? AND id = ?",
            arguments: [type, id]
        )
        let prepared = try prepare(resource, version: (previous ?? 0) + 1, lastUpdated: lastUpdated)
        try write(prepared, in: db)
        return prepared.stored
    }

    /// Keeps a version that a write is about to replace (`fhir_history`): what changed stays visible. `next`: the
    /// version replacing it, when prepared from it (its JSON copied the kept one's bytes: the kept version is a delta).
    public func archive(_ stored: StoredResource, replacedBy next: PreparedResource? = nil, in db: Database) throws {
        let next = next.flatMap {
            $0.stored.version == stored.version + 1 ? ($0.stored.lastUpdated, $0.stored.json, $0.layout.copies) : nil
        }
        try ResourceHistory.keep(
            type: stored.type,
            id: stored.id,
            version: stored.version,
            lastUpdated: stored.lastUpdated,
            json: stored.json,
            next: next,
            in: db
        )
    }

    /// The current stored version of a resource, read inside a write transaction.
    public func current(type: String, id: String, in db: Database) throws -> StoredResource? {
        try Row.fetchOne(
            db.cachedStatement(
                sql:
                    "SELECT type, id, version, last_updated, json FROM fhir_resource WHERE type = ? AND id = ? AND deleted = 0"
            ),
            arguments: [type, id]
        ).map(Self.stored)
    }

    /// The current version number of a resource, read inside a write transaction (without its JSON, which
    /// SQLite would read from its overflow pages: a Location is three of them).
    public func currentVersion(type: String, id: String, in db: Database) throws -> Int? {
        try Int.fetchOne(
            db.cachedStatement(sql: "SELECT version FROM fhir_resource WHERE type = ? AND id = ? AND deleted = 0"),
            arguments: [type, id]
        )
    }

    /// A resource ready to be written: its final JSON and index rows (pure work, may run on any thread).
    public struct PreparedResource: @unchecked Sendable {
        public var stored: StoredResource
        var rows: [SearchIndexRow]
        /// The parameters `rows` were extracted for; nil = all the type's. `write` keeps the stored rows of the others.
        var parameters: Set<String>?
        /// Parameters indexed by difference (``ListChange``): of their stored rows, `write` removes `removed` and adds
        /// `added` (`rows` has none of theirs).
        var difference: Difference?
        /// Where the members of `stored.json` sit, for the `prepare` of the next version.
        public var layout: JSONLayout
        /// The rows of the list's elements (those known), for the `prepare` of the next version (``ListChange/rows``).
        public var listRows: ListRows?
        /// The rows of the other parameters extracted, for the `prepare` of the next version (`previousRows`).
        public var knownRows: KnownRows
        typealias Difference = (parameters: Set<String>, removed: [SearchIndexRow], added: [SearchIndexRow])
    }

    /// A top-level list changed element by element (``ChangedElements``): the stored version's list, and where each
    /// element of the new list comes from in it (nil: new or changed). The parameters that read only this list
    /// (every path starts at it: a Location's capacity parameters at its `extension`) are then indexed by difference:
    /// each of their rows comes from one element, so the stored rows lose those of the elements gone and gain those
    /// of the new ones. A capacity PATCH extracts one or two indicators' rows instead of all of them
    /// (figures in `docs/performance.md`).
    public struct ListChange {
        public var name: String
        public var original: [JSON]
        public var origins: [Int?]
        /// The rows of `original`'s elements as the `prepare` that wrote it returned (``PreparedResource/listRows``):
        /// those of the elements gone are not extracted again.
        public var rows: ListRows?

        public init(name: String, original: [JSON], origins: [Int?], rows: ListRows? = nil) {
            self.name = name
            self.original = original
            self.origins = origins
            self.rows = rows
        }
    }

    /// The search rows a version has for some parameters (as `write` left them in the index).
    public struct KnownRows: Sendable {
        var parameters: [String]
        var rows: [SearchIndexRow]
    }

    /// The search rows of each element of a list (nil: not known), for the parameters indexed by difference.
    public struct ListRows: Sendable {
        var parameters: [String]
        var rows: [[SearchIndexRow]?]
    }

    func identify(_ resource: JSONObject) throws -> (String, String) {
        guard let type = resource["resourceType"]?.string, registry.parameters[type] != nil else {
            throw ResourceError("resourceType missing or not served here")
        }
        guard let id = resource["id"]?.string, FHIRID.isValid(id) else {
            throw ResourceError("\(type): id missing or not a FHIR id")
        }
        return (type, id)
    }

    /// What a write that changes part of a resource knows of the version it changes (the capacity feed's PATCH),
    /// so that `prepare` redoes only that part.
    public struct PartialChange {
        /// The top-level elements that may differ from the stored version: only the parameters reading one of them
        /// (or `meta`, stamped by `prepare`) are extracted again, the stored rows of the others are kept.
        public var elements: Set<String>
        /// `elements` is that one list, changed element by element (``ListChange``).
        public var list: ListChange?
        /// Where the members of the changed version sit in its JSON, as the `prepare` that wrote it returned
        /// (``PreparedResource/layout``): their bytes are copied rather than written again.
        public var layout: JSONLayout?
        /// That version's rows as its `prepare` returned them (``PreparedResource/knownRows``), when it was written by
        /// it: the rows of the parameters extracted again are then indexed by difference.
        public var previousRows: KnownRows?

        public init(
            elements: Set<String>,
            list: ListChange? = nil,
            layout: JSONLayout? = nil,
            previousRows: KnownRows? = nil
        ) {
            self.elements = elements
            self.list = list
            self.layout = layout
            self.previousRows = previousRows
        }
    }

    /// Sets `meta.versionId`/`meta.lastUpdated`, serialises, and extracts the index rows; with `partial`, only what
    /// the change can have changed (``PartialChange``).
    public func prepare(
        _ resource: JSONObject,
        version: Int,
        lastUpdated: Date = Date(),
        partial: PartialChange? = nil
    ) throws -> PreparedResource {
        let (changed, list, layout, previousRows) = (
            partial?.elements, partial?.list, partial?.layout, partial?.previousRows
        )
        let (type, id) = try identify(resource)
        let instant = FHIRInstant.string(lastUpdated)
        let resource = Self.stamped(resource, version: version, lastUpdated: lastUpdated)
        // Members in their order (as written by the client, `meta` where it was): no sorting, which was a third of
        // the load time of a national dataset.
        let (json, newLayout) = JSONLayout.write(
            resource,
            list: list,
            changed: changed.map { $0.union(["meta"]) },
            previous: layout
        )
        let plan = extractionPlan(type: type, changed: changed, list: list?.name)
        var parameters = plan.reading
        var codes = plan.readingCodes
        let extracted = plan.extracted
        var difference: PreparedResource.Difference?
        var listRows: ListRows?
        if let changed {
            if let list, changed == [list.name], case .array(let current)? = resource[list.name],
                current.count == list.origins.count
            {
                let byDifference = plan.listOnly
                let listCodes = plan.listOnlyCodes
                (parameters, codes) = (plan.outsideList, plan.outsideListCodes)
                let kept = Set(list.origins.compactMap { $0 })
                // The rows of the elements gone, as the prepare that added them extracted them when it is known.
                let known = list.rows.flatMap {
                    $0.parameters == listCodes && $0.rows.count == list.original.count ? $0.rows : nil
                }
                func rows(_ element: JSON) -> [SearchIndexRow] {
                    SearchIndexer.rows(
                        for: JSONObject(["resourceType": .string(type), list.name: .array([element])]),
                        parameters: byDifference
                    )
                }
                var removed: [SearchIndexRow] = []
                for index in list.original.indices where !kept.contains(index) {
                    removed += known?[index] ?? rows(list.original[index])
                }
                var added: [SearchIndexRow] = []
                var elementRows: [[SearchIndexRow]?] = []
                for (position, element) in current.enumerated() {
                    if let origin = list.origins[position] {
                        elementRows.append(known?[origin])
                    } else {
                        let new = rows(element)
                        added += new
                        elementRows.append(new)
                    }
                }
                difference = (Set(listCodes), removed, added)
                listRows = ListRows(parameters: listCodes, rows: elementRows)
            }
        }
        var rows = SearchIndexer.rows(for: resource, parameters: parameters)
        let known = KnownRows(parameters: codes, rows: rows)
        if changed != nil, let previous = previousRows, previous.parameters == codes {
            // The stored rows of these parameters are the previous version's: indexed by difference too (all out, all
            // in: `write` cancels the rows that stay), so that `write` need not read them back (a capacity PATCH:
            // `meta`'s rows, `_lastUpdated` changed).
            difference = (
                (difference?.parameters ?? []).union(codes), (difference?.removed ?? []) + previous.rows,
                (difference?.added ?? []) + rows
            )
            rows = []
        }
        return PreparedResource(
            stored: StoredResource(type: type, id: id, version: version, lastUpdated: instant, json: json),
            rows: rows,
            parameters: extracted,
            difference: difference,
            layout: newLayout,
            listRows: listRows,
            knownRows: known
        )
    }

    /// Which parameters `prepare` extracts for a change (the same few shapes every time: a capacity PATCH changes
    /// `extension`), worked out once: filtering and sorting the type's ~30 definitions was a twentieth of `prepare`.
    struct ExtractionPlan {
        /// The parameters reading the changed elements or `meta` (all of the type's when any element may change).
        var reading: [SearchParameterDefinition]
        var readingCodes: [String]
        var extracted: Set<String>?
        /// Of `reading`, those whose every path starts at the list (indexed by difference) and the others.
        var listOnly: [SearchParameterDefinition] = []
        var listOnlyCodes: [String] = []
        var outsideList: [SearchParameterDefinition] = []
        var outsideListCodes: [String] = []
    }

    func extractionPlan(type: String, changed: Set<String>?, list: String?) -> ExtractionPlan {
        let key = type + "|" + (changed.map { $0.sorted().joined(separator: ",") } ?? "*") + "|" + (list ?? "")
        if let plan = plans.withLockedValue({ $0[key] }) { return plan }
        let all = Array(registry.parameters[type]!.values)
        var plan = ExtractionPlan(reading: all, readingCodes: all.map(\.code).sorted(), extracted: nil)
        if let changed {
            let elements = changed.union(["meta"])
            plan.reading = all.filter { $0.reads(elements) }
            plan.readingCodes = plan.reading.map(\.code).sorted()
            plan.extracted = Set(plan.reading.map(\.code))
            if let list {
                plan.listOnly = plan.reading.filter { $0.paths.allSatisfy { $0.steps.first?.name == list } }
                plan.listOnlyCodes = plan.listOnly.map(\.code).sorted()
                plan.outsideList = plan.reading.filter { $0.paths.contains { $0.steps.first?.name != list } }
                plan.outsideListCodes = plan.outsideList.map(\.code).sorted()
            }
        }
        plans.withLockedValue { $0[key] = plan }
        return plan
    }

    /// The same for a `JSONSerialization` tree.
    public func prepare(
        _ resource: [String: Any],
        version: Int,
        lastUpdated: Date = Date(),
        partial: PartialChange? = nil
    ) throws -> PreparedResource {
        guard let object = JSONObject(any: resource) else { throw ResourceError("not a JSON resource") }
        return try prepare(object, version: version, lastUpdated: lastUpdated, partial: partial)
    }

    /// The resource with `meta.versionId` and `meta.lastUpdated` as `prepare` stores them.
    public static func stamped(_ resource: JSONObject, version: Int, lastUpdated: Date) -> JSONObject {
        var resource = resource
        var meta = resource["meta"]?.object ?? JSONObject()
        meta["versionId"] = .string(String(version))
        meta["lastUpdated"] = .string(FHIRInstant.string(lastUpdated))
        resource["meta"] = .object(meta)
        return resource
    }

    /// Writes a prepared resource and brings its index rows (of the parameters it was prepared for) to `prepared.rows`,
    /// touching only the rows that differ:
    /// a capacity PATCH changes a few of a Location's ~100 rows, and each row written costs three or four B-tree updates.
    public func write(_ prepared: PreparedResource, in db: Database) throws {
        let resource = prepared.stored
        // An UPDATE rewrites the row where it is (SQLite skips the pages whose bytes did not change when the JSON
        // keeps its length, as most capacity PATCHes do); REPLACE deleted it and appended a new one on fresh pages.
        try db.cachedStatement(
            sql:
                "UPDATE fhir_resource SET version = ?, last_updated = ?, deleted = 0, json = ? WHERE type = ? AND id = ?"
        )
        .execute(arguments: [resource.version, resource.lastUpdated, resource.json, resource.type, resource.id])
        let created = db.changesCount == 0
        // The parameters whose rows this write changed, for the read cache (a new resource: all of them).
        var changed: Set<String> = []
        defer {
            readCache.writing(
                resource,
                key: resource.type + "/" + resource.id,
                parameters: created ? nil : changed,
                in: db
            )
        }
        if created {
            try db.cachedStatement(
                sql:
                    "INSERT INTO fhir_resource (type, id, version, last_updated, deleted, json) VALUES (?, ?, ?, ?, 0, ?)"
            )
            .execute(arguments: [resource.type, resource.id, resource.version, resource.lastUpdated, resource.json])
        }
        var wanted: [SearchIndexRow: Int] = [:]
        for row in prepared.rows { wanted[row, default: 0] += 1 }
        // Indexed by difference: the rows of elements gone that the new ones do not bring back are removed, the
        // others of the new ones added. Removed by value (the rows of one resource and parameter, found by the
        // resource index): reading all of a Location's ~100 rows to find two was half of writing a capacity PATCH.
        var scanned: Set<String>? = prepared.parameters
        if let difference = prepared.difference {
            var removed: [SearchIndexRow: Int] = [:]
            for row in difference.removed { removed[row, default: 0] += 1 }
            var added: [SearchIndexRow] = []
            for row in difference.added {
                if let count = removed[row], count > 0 { removed[row] = count - 1 } else { added.append(row) }
            }
            for row in added { changed.insert(row.param) }
            for (row, count) in removed where count > 0 { changed.insert(row.param) }
            // A row gone and a row new of the same parameter (a count, `_lastUpdated`): the stored row takes the new
            // values in place, so only the indexes on the columns that differ change (a delete and an insert touched
            // the table and four indexes each).
            var gone: [String: [SearchIndexRow]] = [:]
            for (row, count) in removed where count > 0 {
                gone[row.param, default: []] += Array(repeating: row, count: count)
            }
            for row in added {
                guard let old = gone[row.param]?.popLast() else {
                    wanted[row, default: 0] += 1
                    continue
                }
                if try !update(old, to: row, of: resource, in: db) { wanted[row, default: 0] += 1 }
            }
            let delete = try db.cachedStatement(
                sql:
                    "DELETE FROM fhir_index WHERE rowid IN (SELECT rowid FROM fhir_index WHERE \(Self.rowMatch) LIMIT ?)"
            )
            for rows in gone.values {
                for row in rows { try delete.execute(arguments: Self.rowMatchArguments(row, of: resource) + [1]) }
            }
            scanned?.subtract(difference.parameters)
        }
        // The stored rows of the other parameters extracted (all of them when the whole resource was), compared.
        var stale: [Int64] = []
        if scanned?.isEmpty != true {
            let columns = "rowid, param, system, code, text, number, low, high, ref_type, ref_id"
            let existing = try Row.fetchCursor(
                scanned.map { parameters in
                    try db.cachedStatement(
                        sql:
                            "SELECT \(columns) FROM fhir_index WHERE type = ? AND id = ? AND param IN (\(parameters.sorted().map { _ in "?" }.joined(separator: ",")))"
                    )
                } ?? db.cachedStatement(sql: "SELECT \(columns) FROM fhir_index WHERE type = ? AND id = ?"),
                arguments: StatementArguments([resource.type, resource.id] + (scanned?.sorted() ?? []))
            )
            while let row = try existing.next() {
                let current = SearchIndexRow(
                    param: row[1],
                    system: row[2],
                    code: row[3],
                    text: row[4],
                    number: row[5],
                    low: row[6],
                    high: row[7],
                    refType: row[8],
                    refID: row[9]
                )
                if let count = wanted[current], count > 0 {
                    wanted[current] = count - 1
                } else {
                    stale.append(row[0])
                    changed.insert(current.param)
                }
            }
        }
        let delete = try db.cachedStatement(sql: "DELETE FROM fhir_index WHERE rowid = ?")
        for rowid in stale { try delete.execute(arguments: [rowid]) }
        for (row, count) in wanted where count > 0 { changed.insert(row.param) }
        try insertRows(wanted.flatMap { row, count in Array(repeating: row, count: count) }, of: resource, in: db)
    }

    /// One stored index row of a resource, by all its values (the resource index finds its few rows of the parameter).
    static let rowMatch = """
        type = ? AND id = ? AND param = ? AND system IS ? AND code IS ? AND text IS ? AND number IS ? AND low IS ? AND high IS ?
        AND ref_type IS ? AND ref_id IS ?
        """

    static func rowMatchArguments(_ row: SearchIndexRow, of resource: StoredResource) -> StatementArguments {
        [
            resource.type, resource.id, row.param, row.system, row.code, row.text, row.number, row.low, row.high,
            row.refType, row.refID,
        ]
    }

    /// Gives one stored row `old` the values of `new` (same parameter), setting only the columns that differ: SQLite
    /// then updates only the indexes on them. False when no such row is stored.
    private func update(
        _ old: SearchIndexRow,
        to new: SearchIndexRow,
        of resource: StoredResource,
        in db: Database
    ) throws -> Bool {
        var columns: [String] = []
        var values: [(any DatabaseValueConvertible)?] = []
        func set<Value: DatabaseValueConvertible & Equatable>(_ column: String, _ before: Value?, _ after: Value?) {
            guard before != after else { return }
            columns.append(column)
            values.append(after)
        }
        set("system", old.system, new.system)
        set("code", old.code, new.code)
        set("text", old.text, new.text)
        set("number", old.number, new.number)
        set("low", old.low, new.low)
        set("high", old.high, new.high)
        set("ref_type", old.refType, new.refType)
        set("ref_id", old.refID, new.refID)
        guard !columns.isEmpty else { return true }
        let assignments = columns.map { "\($0) = ?" }.joined(separator: ", ")
        try db.cachedStatement(
            sql:
                "UPDATE fhir_index SET \(assignments) WHERE rowid = (SELECT rowid FROM fhir_index WHERE \(Self.rowMatch) LIMIT 1)"
        )
        .execute(arguments: StatementArguments(values) + Self.rowMatchArguments(old, of: resource))
        return db.changesCount == 1
    }

    /// Writes a resource that has no row yet (bulk loads into emptied tables: no index rows to compare with).
    /// The caller tells the read cache once (``resourcesChanged(in:)``).
    public func insert(_ prepared: PreparedResource, in db: Database) throws {
        let resource = prepared.stored
        try db.cachedStatement(
            sql: "INSERT INTO fhir_resource (type, id, version, last_updated, deleted, json) VALUES (?, ?, ?, ?, 0, ?)"
        )
        .execute(arguments: [resource.type, resource.id, resource.version, resource.lastUpdated, resource.json])
        try insertRows(prepared.rows, of: resource, in: db)
    }

    private func insertRows(_ rows: [SearchIndexRow], of resource: StoredResource, in db: Database) throws {
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO fhir_index (type, id, param, system, code, text, number, low, high, ref_type, ref_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        for row in rows {
            try insert.execute(arguments: [
                resource.type, resource.id, row.param, row.system, row.code, row.text, row.number,
                row.low, row.high, row.refType, row.refID,
            ])
        }
    }

    /// Tells the read cache that this transaction changes `fhir_resource` (for writes not made through `write`,
    /// e.g. emptying the table before loading seeds): it is emptied when the transaction commits.
    public func resourcesChanged(in db: Database) {
        readCache.changing(in: db)
    }

    /// Brings the resource tables back to those of `prebuilt`, a database made by `SandboxStore.build` with these
    /// migrations and search parameters, rewriting only the resources that differ from it (another version, deleted,
    /// created since): a reset after a day of feeds costs what the feeds changed, not a reload of the dataset, and
    /// leaves every resource as a new data folder has it. The prebuilt file is only read. Returns the resources
    /// rewritten.
    public func restore(fromPrebuilt prebuilt: String) throws -> Int {
        try store.writer.writeWithoutTransaction { db in
            // ATTACH cannot run inside a transaction.
            try db.execute(sql: "ATTACH DATABASE ? AS prebuilt", arguments: [prebuilt])
            defer { try? db.execute(sql: "DETACH DATABASE prebuilt") }
            var restored = 0
            try db.inTransaction(.immediate) {
                resourcesChanged(in: db)
                try db.execute(
                    sql: """
                        CREATE TEMP TABLE restored (type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (type, id))
                            WITHOUT ROWID;
                        INSERT INTO restored
                            SELECT m.type, m.id FROM main.fhir_resource m
                            LEFT JOIN prebuilt.fhir_resource p ON p.type = m.type AND p.id = m.id
                            WHERE p.id IS NULL OR p.version IS NOT m.version OR p.last_updated IS NOT m.last_updated
                                OR p.deleted IS NOT m.deleted
                            UNION
                            SELECT p.type, p.id FROM prebuilt.fhir_resource p
                            WHERE NOT EXISTS (SELECT 1 FROM main.fhir_resource m WHERE m.type = p.type AND m.id = p.id);
                        DELETE FROM main.fhir_index WHERE (type, id) IN restored;
                        DELETE FROM main.fhir_resource WHERE (type, id) IN restored;
                        INSERT INTO main.fhir_resource
                            SELECT * FROM prebuilt.fhir_resource WHERE (type, id) IN restored;
                        INSERT INTO main.fhir_index SELECT * FROM prebuilt.fhir_index WHERE (type, id) IN restored;
                        DELETE FROM main.fhir_history;
                        INSERT INTO main.fhir_history SELECT * FROM prebuilt.fhir_history;
                        """
                )
                restored = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM restored") ?? 0
                try db.execute(sql: "DROP TABLE restored")
                return .commit
            }
            return restored
        }
    }

    // MARK: Reading

    /// The resource if the read cache holds it (no database access).
    public func readIfCached(type: String, id: String) -> StoredResource? {
        readCache.get(type + "/" + id)
    }

    public func read(type: String, id: String) async throws -> StoredResource? {
        if let hit = readIfCached(type: type, id: id) { return hit }
        let key = type + "/" + id
        let generation = readCache.generation
        let stored = try await store.writer.read { db in
            let statement = try db.cachedStatement(
                sql:
                    "SELECT type, id, version, last_updated, json FROM fhir_resource WHERE type = ? AND id = ? AND deleted = 0"
            )
            return try Row.fetchOne(statement, arguments: [type, id]).map(Self.stored)
        }
        if let stored { readCache.put(key, stored, ifGeneration: generation) }
        return stored
    }

    /// Ids matching a search, in result order.
    public func searchIDs(_ request: SearchRequest) async throws -> [String] {
        let query = try IDQuery(request)
        if let cached = readCache.search(query.key) {
            guard !cached.pending.isEmpty, let chains = cached.chains else { return cached.ids }
            // Written since: only the resources those writes can have moved in or out of the result are checked
            // again (a capacity PATCH: the offers at that place), not the whole match set.
            let ids = try await store.writer.read { db in
                try query.update(cached.ids, pending: cached.pending, type: request.type, chains: chains, db)
            }
            readCache.resolvePending(query.key, ids, version: cached.pendingVersion)
            return ids
        }
        let generation = readCache.generation
        let ids = try await store.writer.read { db in try query.run(db, cached: false) }
        readCache.putSearch(
            query.key,
            ids,
            dependencies: request.dependencies,
            type: request.type,
            chains: request.maintainedChains,
            ifGeneration: generation
        )
        return ids
    }

    /// Ids of the resources of `type` whose token parameter `parameter` matches `value` (`identifier=…`: a feed's
    /// conditional target), read on the calling thread: one index lookup, where the hop to a reader's queue and back
    /// cost several times the query. Kept across the commits that cannot change it (``ReadCache/lookupParameters``):
    /// a capacity PATCH re-indexes its Location's indicators, never its identifiers, so each PATCH no longer reads
    /// again what the one before it read (figures in `docs/performance.md`).
    public func lookupIDs(type: String, parameter: String, value: String) throws -> [String] {
        try lookup(key: "ids\u{0}\(type)\u{0}\(parameter)\u{0}\(value)", parameter: parameter) { db in
            try IDQuery(SearchRequest(type: type, items: [(parameter, value)], registry: registry)).run(
                db,
                cached: true
            )
        }
    }

    /// The codes (`system|code` or `code` columns' `code`) a resource's `parameter` is indexed with, read on the
    /// calling thread and kept like ``lookupIDs(type:parameter:value:)`` (an establishment's identifiers, checked by
    /// every capacity PATCH).
    public func indexedCodes(type: String, id: String, parameter: String) throws -> [String] {
        try lookup(key: "codes\u{0}\(type)\u{0}\(id)\u{0}\(parameter)", parameter: parameter) { db in
            try String.fetchAll(
                db.cachedStatement(
                    sql: "SELECT code FROM fhir_index WHERE type = ? AND id = ? AND param = ? AND code IS NOT NULL"
                ),
                arguments: [type, id, parameter]
            )
        }
    }

    /// A lookup by one parameter: from the cache when the parameter's rows cannot have changed since it was read.
    /// One statement, so no transaction around it.
    private func lookup(key: String, parameter: String, _ read: (Database) throws -> [String]) throws -> [String] {
        let cached = ReadCache.lookupParameters.contains(parameter)
        if cached, let values = readCache.lookup(key) { return values }
        let generation = readCache.lookupGeneration
        let values = try store.writer.unsafeRead(read)
        if cached { readCache.putLookup(key, values, ifGeneration: generation) }
        return values
    }

    /// A search's id query and its result cache key.
    struct IDQuery {
        let sql: String
        let values: [DatabaseValue]
        /// Identical searches reuse their result until the next change, as HAPI (the ROR's server) reuses cached
        /// search results; the key is the SQL and its values, so the sensitive-unit filter of a profile is in it.
        let key: String
        let request: SearchRequest

        init(_ request: SearchRequest) throws {
            var builder = SearchSQL()
            sql = try builder.idQuery(request)
            values = builder.arguments.map(\.databaseValue)
            key = sql + "\u{0}" + values.map(\.description).joined(separator: "\u{0}")
            self.request = request
        }

        /// `cached`: the statement is kept by the connection — only for the few fixed shapes of internal lookups, not
        /// for clients' searches, whose shapes are theirs to vary (a connection's statement cache is not bounded).
        func run(_ db: Database, cached: Bool) throws -> [String] {
            let statement = cached ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
            return try String.fetchAll(statement, arguments: StatementArguments(values))
        }

        /// `ids` (sorted by id, as the query sorts) brought up to date after writes of `pending` (by type): the
        /// resources of the searched type written, and those whose chained reference points at a written target,
        /// are checked again by the query restricted to them; the others keep their place.
        func update(
            _ ids: [String],
            pending: [String: Set<String>],
            type: String,
            chains: [String: Set<String>],
            candidateLimit: Int = Self.candidateLimit,
            _ db: Database
        ) throws -> [String] {
            var candidates = pending[type] ?? []
            for (target, written) in pending {
                guard let references = chains[target] else { continue }
                let referring = try String.fetchAll(
                    db,
                    sql: Self.referringSQL,
                    arguments: [target, Self.jsonArray(written), type, Self.jsonArray(references)]
                )
                candidates.formUnion(referring)
            }
            guard !candidates.isEmpty else { return ids }
            // Past this many, the whole query costs less than checking each (and stays within SQLite's variables).
            guard candidates.count <= candidateLimit else { return try run(db, cached: false) }
            // The candidates drive and every condition is checked per candidate through the index on resource ids:
            // the search's own first condition as a list would be built in full again (40 000 ids for a
            // `_lastUpdated` range, ~8 ms) for the handful of resources a write touched.
            var restricted = request
            restricted.conditions.insert(.ids(Array(candidates)), at: 0)
            var builder = SearchSQL()
            let matched = Set(
                try String.fetchAll(
                    db,
                    sql: try builder.idQuery(restricted),
                    arguments: StatementArguments(builder.arguments.map(\.databaseValue))
                )
            )
            return Self.merge(ids, candidates: candidates, matched: matched)
        }

        /// `ids` (in SQLite's BINARY order: ids are ASCII) with each candidate in it if it matched and out of it if
        /// not: the kept ids are copied a run at a time between the candidates' places, found by binary search,
        /// instead of each of the 40 000 being hashed against the candidates.
        static func merge(_ ids: [String], candidates: Set<String>, matched: Set<String>) -> [String] {
            func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
            var merged: [String] = []
            merged.reserveCapacity(ids.count + matched.count)
            var start = 0
            for candidate in candidates.sorted(by: precedes) {
                var low = start
                var high = ids.count
                while low < high {
                    let middle = (low + high) / 2
                    if precedes(ids[middle], candidate) { low = middle + 1 } else { high = middle }
                }
                merged.append(contentsOf: ids[start..<low])
                if matched.contains(candidate) { merged.append(candidate) }
                start = low < ids.count && ids[low] == candidate ? low + 1 : low
            }
            merged.append(contentsOf: ids[start...])
            return merged
        }

        static let candidateLimit = 10_000

        /// The resources of a type whose reference parameter (one of a JSON list) points at one of the written targets.
        static let referringSQL =
            "SELECT DISTINCT id FROM fhir_index INDEXED BY fhir_index_ref WHERE ref_id IS NOT NULL AND ref_type = ? "
            + "AND ref_id IN (SELECT value FROM json_each(?)) AND type = ? AND param IN (SELECT value FROM json_each(?))"

        static func jsonArray(_ values: some Collection<String>) -> String {
            String(
                decoding: (try? JSONSerialization.data(withJSONObject: Array(values))) ?? Data("[]".utf8),
                as: UTF8.self
            )
        }
    }

    /// Resources by id, in the order given (missing ones skipped: deleted since a snapshot was taken).
    ///
    /// `bulk` (a bulk export reading the whole base): the database file is memory-mapped for the read, so SQLite reads
    /// the page cache in place instead of copying each page out with `pread` (`docs/performance.md`). Only for the
    /// read: a mapping kept would count every
    /// page ever read into the process's resident size.
    public func resources(type: String, ids: [String], bulk: Bool = false) async throws -> [StoredResource] {
        guard !ids.isEmpty else { return [] }
        let found = try await store.writer.read { db -> [String: StoredResource] in
            if bulk { try db.execute(sql: "PRAGMA mmap_size = \(Self.bulkMapSize)") }
            defer { if bulk { try? db.execute(sql: "PRAGMA mmap_size = 0") } }
            var found: [String: StoredResource] = [:]
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let rows = try Row.fetchAll(
                    db,
                    sql:
                        "SELECT type, id, version, last_updated, json FROM fhir_resource WHERE type = ? AND deleted = 0 AND id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))",
                    arguments: StatementArguments([type] + chunk)
                )
                for row in rows { found[row["id"]] = Self.stored(row) }
            }
            return found
        }
        return ids.compactMap { found[$0] }
    }

    /// How much of the database file a bulk read maps: SQLite's usual compile-time cap (2 GiB − 64 KiB).
    static let bulkMapSize = 0x7fff_0000

    /// References made by resources (`type`, `ids`) through reference parameters `parameters` (nil = all).
    public func outgoingReferences(
        type: String,
        ids: [String],
        parameters: [String]?,
        targetType: String?
    ) async throws -> [(String, String)] {
        guard !ids.isEmpty else { return [] }
        return try await store.writer.read { db in
            var sql =
                "SELECT DISTINCT ref_type, ref_id FROM fhir_index WHERE type = ? AND ref_type IS NOT NULL AND id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
            var arguments: [any DatabaseValueConvertible] = [type] + ids
            if let parameters {
                sql += " AND param IN (\(Array(repeating: "?", count: parameters.count).joined(separator: ",")))"
                arguments += parameters
            }
            if let targetType {
                sql += " AND ref_type = ?"
                arguments.append(targetType)
            }
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map {
                ($0["ref_type"], $0["ref_id"])
            }
        }
    }

    /// Resources of `sourceType` that reference (`targetType`, `ids`) through `parameters` (nil = any).
    public func incomingReferences(
        sourceType: String,
        parameters: [String]?,
        targetType: String,
        ids: [String]
    ) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        return try await store.writer.read { db in
            var sql =
                "SELECT DISTINCT id FROM fhir_index WHERE type = ? AND ref_type = ? AND ref_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
            var arguments: [any DatabaseValueConvertible] = [sourceType, targetType] + ids
            if let parameters {
                sql += " AND param IN (\(Array(repeating: "?", count: parameters.count).joined(separator: ",")))"
                arguments += parameters
            }
            return try String.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
        }
    }

    public func count(type: String) async throws -> Int {
        try await store.writer.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM fhir_resource WHERE type = ? AND deleted = 0",
                arguments: [type]
            ) ?? 0
        }
    }

    static func stored(_ row: Row) -> StoredResource {
        StoredResource(
            type: row["type"],
            id: row["id"],
            version: row["version"],
            lastUpdated: row["last_updated"],
            json: row["json"]
        )
    }
}

/// FHIR `id`: 1–64 of `[A-Za-z0-9\-\.]`.
public enum FHIRID {
    public static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy {
                $0 == 0x2d || $0 == 0x2e || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0)
                    || (0x61...0x7a).contains($0)
            }
    }
}

/// FHIR `instant` text in UTC with milliseconds, as HAPI writes `meta.lastUpdated` (`2026-11-22T03:05:23.303+00:00`).
public enum FHIRInstant {
    /// Formatted by hand: an `ISO8601DateFormatter` per call cost 8 % of a dataset load.
    public static func string(_ date: Date) -> String {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var whole = time_t(totalMillis / 1000)
        let millis = Int(totalMillis % 1000)
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return
            "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))+00:00"
    }
}

/// Result id lists kept for paging (HAPI's `_getpages`): links keep working while data changes, until they expire.
public final class SearchSnapshots: Sendable {
    public struct Snapshot: Sendable {
        public var type: String
        public var ids: [String]
        public var request: SearchRequestSummary
        public var created: Date
    }

    /// What a page needs besides the ids.
    public struct SearchRequestSummary: Sendable {
        public var includes: [IncludeSpec]
        public var revIncludes: [IncludeSpec]
        public var elements: [String]?
        public var includeTotal: Bool
        public var query: String
        /// Parameters ignored under `Prefer: handling=lenient`, reported in an `outcome` entry.
        public var ignored: [String] = []
    }

    private let snapshots = NIOLockedValueBox<[String: Snapshot]>([:])
    public let lifetime: TimeInterval
    public let capacity: Int

    public init(lifetime: TimeInterval = 3600, capacity: Int = 200) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    public func store(_ snapshot: Snapshot) -> String {
        let key = UUID().uuidString.lowercased()
        snapshots.withLockedValue { all in
            let now = Date()
            all = all.filter { now.timeIntervalSince($0.value.created) < lifetime }
            if all.count >= capacity, let oldest = all.min(by: { $0.value.created < $1.value.created })?.key {
                all[oldest] = nil
            }
            all[key] = snapshot
        }
        return key
    }

    public func snapshot(_ key: String) -> Snapshot? {
        snapshots.withLockedValue { all in
            guard let snapshot = all[key], Date().timeIntervalSince(snapshot.created) < lifetime else { return nil }
            return snapshot
        }
    }

    public func removeAll() {
        snapshots.withLockedValue { $0.removeAll() }
    }
}

/// The repository's read cache. After every committed transaction that changed `fhir_resource`, the searches it can
/// have changed are forgotten (those reading a parameter it re-indexed, or any resource of a type in which it created
/// one; ``SearchRequest/dependencies``) and the resources written take their new version (every resource when the change was a raw one,
/// ``ResourceRepository/resourcesChanged(in:)``): a feeder's PATCHes no longer empty the cache consumers read from.
/// A read puts its result only if no such commit happened since it began (so a read that raced a write never caches
/// the old version: either its generation changed, or the commit's update comes after the put). It observes the
/// writer's commits and rollbacks only (no database events: an update hook would run for every index row), and acts
/// on those of transactions that told it of a change.
final class ReadCache: TransactionObserver, @unchecked Sendable {
    private struct State {
        var generation = 0
        var entries: [String: StoredResource] = [:]
        /// JSON bytes of `entries`.
        var bytes = 0
        var searches: [String: CachedSearch] = [:]
        /// Ids in `searches`.
        var searchIDs = 0
        /// The latest commits' re-indexed parameters by type, newest last, with their generation: a search that
        /// ran across commits is kept only if none of them touched what it read.
        var commits: [(generation: Int, reindexed: [String: Set<String>?])] = []
        /// Lookups by one of ``ReadCache/lookupParameters``, and the commits that changed one of those parameters' rows.
        var lookups: [String: [String]] = [:]
        var lookupGeneration = 0
    }

    /// A search's ids, what they depend on, and — for a search that can be brought up to date (``SearchRequest/
    /// maintainedChains``) — the resources written since, by type, whose membership is to be checked again.
    struct CachedSearch {
        var ids: [String]
        var dependencies: [String: Set<String>]
        var type: String
        /// Chains one level deep: target type → the reference parameters leading to it (nil: not maintained).
        var chains: [String: Set<String>]?
        var pending: [String: Set<String>] = [:]
        /// Bumped with every pending addition: an update computed from older pending ids is not kept.
        var pendingVersion = 0
    }

    /// Written resources a search may have pending before it is forgotten instead (its next read checks each).
    static let pendingCapacity = 1_000

    private let state = NIOLockedValueBox(State())
    /// The connection this cache observes (the repository's writer). Registered once, at its first write: adding an
    /// observer makes GRDB drop its cached DELETE statements, which a hook added per transaction did on every write
    /// (3 statements compiled again per capacity PATCH).
    private weak var observed: Database?
    /// The current write transaction's changes (writer's queue only: transactions are serial).
    private var written: [String: StoredResource] = [:]
    private var rawChange = false
    /// Parameters re-indexed by the transaction's writes, by resource type (nil: all of them).
    private var reindexed: [String: Set<String>?] = [:]
    /// Parameters whose lookups are kept across commits that re-index none of them: identifiers change on creation,
    /// a full update or a reset, never by a capacity PATCH.
    static let lookupParameters: Set<String> = ["identifier"]
    static let lookupCount = 4_096
    /// JSON bytes of resources kept (a national Location is 5–30 KB): the cache stays within the memory budget.
    static let byteCapacity = 48 << 20
    /// Search results kept: ids in all (a national search can match 40 000 places; ~16 bytes each), and searches
    /// (each key is its SQL, ~1 KB: a client looking places up one identifier at a time makes many small ones).
    static let searchCapacity = 500_000
    static let searchCount = 4_096

    var generation: Int { state.withLockedValue { $0.generation } }

    func get(_ key: String) -> StoredResource? { state.withLockedValue { $0.entries[key] } }

    func put(_ key: String, _ value: StoredResource, ifGeneration generation: Int) {
        state.withLockedValue { state in
            guard state.generation == generation, value.json.count <= Self.byteCapacity / 16 else { return }
            if state.bytes + value.json.count > Self.byteCapacity {
                state.entries.removeAll()
                state.bytes = 0
            }
            state.bytes += value.json.count - (state.entries.updateValue(value, forKey: key)?.json.count ?? 0)
        }
    }

    func search(_ key: String) -> CachedSearch? { state.withLockedValue { $0.searches[key] } }

    /// Stores the ids an update computed from a search's pending writes, if no write was added to them since.
    func resolvePending(_ key: String, _ ids: [String], version: Int) {
        state.withLockedValue { state in
            guard var search = state.searches[key], search.pendingVersion == version else { return }
            state.searchIDs += ids.count - search.ids.count
            search.ids = ids
            search.pending = [:]
            state.searches[key] = search
        }
    }

    /// Keeps a search's ids, unless a commit since `generation` (when the search began) touched what it read.
    func putSearch(
        _ key: String,
        _ ids: [String],
        dependencies: [String: Set<String>],
        type: String,
        chains: [String: Set<String>]?,
        ifGeneration generation: Int
    ) {
        state.withLockedValue { state in
            guard ids.count <= Self.searchCapacity else { return }
            if state.generation != generation {
                // The commits since then must all be in the log, and none may touch the search.
                let since = state.commits.filter { $0.generation > generation }
                guard since.count == state.generation - generation,
                    !since.contains(where: { Self.affects($0.reindexed, dependencies) })
                else { return }
            }
            if state.searchIDs + ids.count > Self.searchCapacity || state.searches.count >= Self.searchCount {
                state.searches.removeAll()
                state.searchIDs = 0
            }
            let search = CachedSearch(ids: ids, dependencies: dependencies, type: type, chains: chains)
            state.searchIDs += ids.count - (state.searches.updateValue(search, forKey: key)?.ids.count ?? 0)
        }
    }

    /// Commits remembered for searches that ran across them.
    static let commitLog = 64

    /// Whether a commit that re-indexed `reindexed` (by type; nil: every parameter, a creation) can change a search
    /// reading `dependencies`. `*` in a search's parameters: any write of that type (`_lastUpdated`, read from the
    /// resource row every write stamps).
    static func affects(_ reindexed: [String: Set<String>?], _ dependencies: [String: Set<String>]) -> Bool {
        reindexed.contains { type, parameters in
            guard let read = dependencies[type] else { return false }
            guard let parameters else { return true }
            return read.contains("*") || !parameters.isDisjoint(with: read)
        }
    }

    var lookupGeneration: Int { state.withLockedValue { $0.lookupGeneration } }

    func lookup(_ key: String) -> [String]? { state.withLockedValue { $0.lookups[key] } }

    func putLookup(_ key: String, _ values: [String], ifGeneration generation: Int) {
        state.withLockedValue { state in
            guard state.lookupGeneration == generation else { return }
            if state.lookups.count >= Self.lookupCount { state.lookups.removeAll() }
            state.lookups[key] = values
        }
    }

    /// A raw change of `fhir_resource` in this transaction: everything is forgotten at commit.
    func changing(in db: Database) {
        observe(db)
        rawChange = true
    }

    /// A resource written in this transaction, re-indexed for `parameters` (nil: all): its new version replaces the
    /// cached one at commit.
    func writing(_ resource: StoredResource, key: String, parameters: Set<String>?, in db: Database) {
        observe(db)
        written[key] = resource
        if let parameters, let known = reindexed[resource.type] {
            reindexed[resource.type] = known.map { $0.union(parameters) }
        } else {
            reindexed[resource.type] = .some(parameters)
        }
    }

    private func observe(_ db: Database) {
        guard observed !== db else { return }
        observed = db
        db.add(transactionObserver: self, extent: .observerLifetime)
    }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }

    func databaseDidChange(with event: DatabaseEvent) {}

    func databaseDidCommit(_ db: Database) {
        guard rawChange || !written.isEmpty else { return }
        let (raw, resources, reindexed) = (rawChange, written, self.reindexed)
        let lookupsChanged =
            raw || reindexed.values.contains { $0.map { !$0.isDisjoint(with: Self.lookupParameters) } ?? true }
        reset()
        state.withLockedValue { state in
            let generation = state.generation + 1
            let lookupGeneration = state.lookupGeneration + (lookupsChanged ? 1 : 0)
            if lookupsChanged { state.lookups.removeAll() }
            if raw {
                state = State()
            } else {
                for (key, var search) in state.searches where Self.affects(reindexed, search.dependencies) {
                    // Kept with the written resources to check again when each written type is its own or a
                    // chain's target; forgotten otherwise.
                    if let chains = search.chains,
                        reindexed.keys.allSatisfy({
                            $0 == search.type || chains[$0] != nil || search.dependencies[$0] == nil
                        })
                    {
                        for resource in resources.values
                        where resource.type == search.type || chains[resource.type] != nil {
                            search.pending[resource.type, default: []].insert(resource.id)
                        }
                        search.pendingVersion += 1
                        if search.pending.values.reduce(0, { $0 + $1.count }) <= Self.pendingCapacity {
                            state.searches[key] = search
                            continue
                        }
                    }
                    state.searches[key] = nil
                    state.searchIDs -= search.ids.count
                }
                state.commits.append((generation, reindexed))
                if state.commits.count > Self.commitLog { state.commits.removeFirst() }
                for (key, resource) in resources {
                    state.bytes -= state.entries.removeValue(forKey: key)?.json.count ?? 0
                    if state.bytes + resource.json.count <= Self.byteCapacity {
                        state.entries[key] = resource
                        state.bytes += resource.json.count
                    }
                }
            }
            state.generation = generation
            state.lookupGeneration = lookupGeneration
        }
    }

    func databaseDidRollback(_ db: Database) {
        reset()
    }

    private func reset() {
        written.removeAll()
        reindexed.removeAll()
        rawChange = false
    }
}
