import Foundation
import GRDB
import Store
import Testing

@testable import FHIRCore

/// The search engine on a small hand-written dataset: every parameter type, modifier and prefix, chains, `_has`,
/// includes and paging.
@Suite("FHIR search engine")
struct SearchEngineTests {
    static let registry = SearchParameterRegistry([
        "Location": [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("name", .string, paths: ["name"]),
            SearchParameterDefinition("type", .token, paths: ["type"]),
            SearchParameterDefinition("nb", .number, paths: ["extension[url=cap].extension[url=nb].value*"]),
            SearchParameterDefinition("updated", .date, paths: ["extension[url=cap].extension[url=date].value*"]),
            SearchParameterDefinition(
                "organization",
                .reference,
                paths: ["managingOrganization"],
                targets: ["Organization"]
            ),
            SearchParameterDefinition("_lastUpdated", .date, paths: ["meta.lastUpdated"]),
        ],
        "Organization": [
            SearchParameterDefinition("identifier", .token, paths: ["identifier"]),
            SearchParameterDefinition("name", .string, paths: ["name"]),
            SearchParameterDefinition("partof", .reference, paths: ["partOf"], targets: ["Organization"]),
        ],
        "HealthcareService": [
            SearchParameterDefinition("specialty", .token, paths: ["specialty"]),
            SearchParameterDefinition("location", .reference, paths: ["location"], targets: ["Location"]),
            SearchParameterDefinition("age-low", .quantity, paths: ["extension[url=age].valueRange.low"]),
        ],
    ])

    static func location(
        _ id: String,
        system: String,
        value: String,
        name: String,
        nb: Int?,
        date: String?,
        org: String
    ) -> [String: Any] {
        var capacity: [[String: Any]] = []
        if let nb { capacity.append(["url": "nb", "valueInteger": nb]) }
        if let date { capacity.append(["url": "date", "valueDateTime": date]) }
        return [
            "resourceType": "Location", "id": id, "name": name,
            "identifier": [["system": system, "value": value]],
            "type": [["coding": [["system": "T", "code": "001", "display": "Hébergement"]]]],
            "extension": capacity.isEmpty ? [] : [["url": "cap", "extension": capacity]],
            "managingOrganization": ["reference": "Organization/\(org)"],
        ]
    }

    static func service(_ id: String, specialty: String, locations: [String], ageLow: Int) -> [String: Any] {
        [
            "resourceType": "HealthcareService", "id": id,
            "specialty": [["coding": [["system": "S", "code": specialty]]]],
            "location": locations.map { ["reference": "Location/\($0)"] },
            "extension": [
                [
                    "url": "age",
                    "valueRange": ["low": ["value": ageLow, "system": "http://unitsofmeasure.org", "code": "a"]],
                ]
            ],
        ]
    }

    static func executor() throws -> SearchExecutor {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: registry)
        let resources: [[String: Any]] = [
            [
                "resourceType": "Organization", "id": "o1", "name": "Clinique Saint-Étienne",
                "identifier": [["system": "finess", "value": "111"]],
            ],
            ["resourceType": "Organization", "id": "o2", "name": "Pôle A", "partOf": ["reference": "Organization/o1"]],
            location(
                "l1",
                system: "sys",
                value: "L1",
                name: "Bâtiment Nord",
                nb: 5,
                date: "2024-03-05T10:00:00Z",
                org: "o1"
            ),
            location("l2", system: "sys", value: "L2", name: "Annexe", nb: 0, date: "2024-04-01", org: "o2"),
            location("l3", system: "other", value: "L3", name: "Nordic", nb: nil, date: nil, org: "o1"),
            service("h1", specialty: "356", locations: ["l1"], ageLow: 18),
            service("h2", specialty: "147", locations: ["l2"], ageLow: 0),
            service("h3", specialty: "356", locations: ["l1", "l2"], ageLow: 65),
        ]
        try store.writer.write { db in
            for resource in resources { try repository.save(resource, in: db) }
        }
        return SearchExecutor(repository: repository, snapshots: SearchSnapshots())
    }

    /// Runs `query` on `type`; returns (matches, includes, total, links).
    static func run(
        _ executor: SearchExecutor,
        _ type: String,
        _ query: String
    ) async throws
        -> (matches: [String], includes: [String], total: Int?, links: [String: String])
    {
        let items: [(String, String)] = query.split(separator: "&").map {
            let parts = $0.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }
        let request = try SearchRequest(type: type, items: items, registry: registry)
        let data = try await executor.search(request, baseURL: "https://x/base", query: query).body
        return try parse(data)
    }

    static func parse(
        _ data: Data
    ) throws -> (matches: [String], includes: [String], total: Int?, links: [String: String]) {
        let bundle = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entries = bundle["entry"] as? [[String: Any]] ?? []
        func ids(_ mode: String) -> [String] {
            entries.filter { ($0["search"] as? [String: String])?["mode"] == mode }
                .map { ($0["resource"] as! [String: Any])["id"] as! String }
        }
        var links: [String: String] = [:]
        for link in bundle["link"] as? [[String: String]] ?? [] { links[link["relation"]!] = link["url"] }
        return (ids("match"), ids("include"), bundle["total"] as? Int, links)
    }

    @Test(arguments: [
        ("identifier=sys|L1", ["l1"]),
        ("identifier=L3", ["l3"]),
        ("identifier=|L3", []),
        ("identifier=sys|", ["l1", "l2"]),
        ("identifier=sys|L1,sys|L2", ["l1", "l2"]),
        ("identifier:not=sys|L1", ["l2", "l3"]),
        ("identifier=sys|L1&identifier=sys|L2", []),
        ("type:text=heberg", ["l1", "l2", "l3"]),
        ("name=bat", ["l1"]),
        ("name=NORD", ["l3"]),
        ("name:contains=nord", ["l1", "l3"]),
        ("name:exact=Nordic", ["l3"]),
        ("name:exact=nordic", []),
        ("nb=5", ["l1"]),
        ("nb=gt0", ["l1"]),
        ("nb=le0", ["l2"]),
        ("nb=ne5", ["l2"]),
        ("nb:missing=true", ["l3"]),
        ("nb:missing=false", ["l1", "l2"]),
        ("updated=2024-03", ["l1"]),
        ("updated=2024", ["l1", "l2"]),
        ("updated=ge2024-03-06", ["l2"]),
        ("updated=lt2024-03-06", ["l1"]),
        ("updated=2024-03-05T10:00:00Z", ["l1"]),
        ("updated=2024-03-05T11:00:00%2B01:00", ["l1"]),
        ("updated=sa2024-03-31", ["l2"]),
        ("updated=eb2024-03-31", ["l1"]),
        ("organization=Organization/o1", ["l1", "l3"]),
        ("organization=o2", ["l2"]),
        ("organization.name=pole", ["l2"]),
        ("organization.partof.identifier=finess|111", ["l2"]),
        ("organization.name=clinique", ["l1", "l3"]),
        ("organization.name:above=clinique", ["l1", "l2", "l3"]),
        ("organization.name:above=pole", ["l2"]),
        ("organization.name:exact:above=Pôle A", ["l2"]),
        ("_id=l1,l3", ["l1", "l3"]),
        ("_has:HealthcareService:location:specialty=S|147", ["l2"]),
        ("_has:HealthcareService:location:age-low=ge60|http://unitsofmeasure.org|a", ["l1", "l2"]),
        ("_filter=name sw bat or name co ordic", ["l1", "l3"]),
        ("_filter=nb gt 0 and name eq \"Bâtiment Nord\"", ["l1"]),
        ("_filter=not (identifier eq sys|L1)", ["l2", "l3"]),
        ("_filter=updated ge 2024-03-10", ["l2"]),
        ("_filter=(updated ge 2024-03-10 or nb eq 5) and organization.name:above sw clinique", ["l1", "l2"]),
        ("_filter=organization.name:above sw pole", ["l2"]),
        ("_filter=identifier ne sys|L1 and nb:missing eq false", ["l2"]),
    ])
    func locationSearches(query: String, expected: [String]) async throws {
        let executor = try Self.executor()
        let decoded = query.replacingOccurrences(of: "%2B", with: "+")
        let result = try await Self.run(executor, "Location", decoded)
        #expect(Set(result.matches) == Set(expected), "\(query)")
        #expect(result.total == expected.count)
    }

    @Test func chainsAcrossTwoReferences() async throws {
        let executor = try Self.executor()
        let result = try await Self.run(executor, "HealthcareService", "location.nb=gt0&specialty=S|356")
        #expect(Set(result.matches) == ["h1", "h3"])
        let deep = try await Self.run(executor, "HealthcareService", "location.organization.name=pole")
        #expect(Set(deep.matches) == ["h2", "h3"])
        let quantity = try await Self.run(executor, "HealthcareService", "age-low=lt18")
        #expect(Set(quantity.matches) == ["h2"])
    }

    @Test func includesAndIterate() async throws {
        let executor = try Self.executor()
        let plain = try await Self.run(
            executor,
            "HealthcareService",
            "specialty=S|356&_include=HealthcareService:location"
        )
        #expect(Set(plain.matches) == ["h1", "h3"])
        #expect(Set(plain.includes) == ["l1", "l2"])
        let iterate = try await Self.run(
            executor,
            "HealthcareService",
            "specialty=S|356&_include=HealthcareService:location&_include:iterate=Location:organization"
        )
        #expect(Set(iterate.includes) == ["l1", "l2", "o1", "o2"])
        let all = try await Self.run(executor, "HealthcareService", "_id=h2&_include=*")
        #expect(Set(all.includes) == ["l2"])
        let reverse = try await Self.run(executor, "Location", "_id=l1&_revinclude=HealthcareService:location")
        #expect(Set(reverse.includes) == ["h1", "h3"])
        let iterateUp = try await Self.run(
            executor,
            "Location",
            "_id=l2&_include=Location:organization&_include:iterate=Organization:partof"
        )
        #expect(Set(iterateUp.includes) == ["o2", "o1"])
    }

    @Test func pagingKeepsWorkingWhileDataChanges() async throws {
        let executor = try Self.executor()
        let first = try await Self.run(executor, "Location", "_count=2&_sort=_id")
        #expect(first.matches == ["l1", "l2"])
        #expect(first.total == 3)
        let next = try #require(first.links["next"])
        #expect(next.contains("_getpages="))
        #expect(first.links["previous"] == nil)
        // A new resource sorted before the cursor does not shift the pages of the running search.
        _ = try await executor.repository.store.writer.write { db in
            try executor.repository.save(
                Self.location("l0", system: "sys", value: "L0", name: "Zéro", nb: 1, date: nil, org: "o1"),
                in: db
            )
        }
        let components = URLComponents(string: next)!
        let key = components.queryItems!.first { $0.name == "_getpages" }!.value!
        let data = try #require(try await executor.page(key: key, offset: 2, count: 2, baseURL: "https://x/base")).body
        let second = try Self.parse(data)
        #expect(second.matches == ["l3"])
        #expect(second.links["next"] == nil)
        #expect(second.links["previous"] != nil)
        #expect(try await executor.page(key: "unknown", offset: 0, count: 2, baseURL: "https://x/base") == nil)
    }

    /// A repeated search reuses its result until a write commits; a rolled-back write keeps it.
    @Test func repeatedSearchesSeeEveryCommittedWrite() async throws {
        let executor = try Self.executor()
        let repository = executor.repository
        #expect(try await Self.run(executor, "Location", "nb=gt0").matches == ["l1"])
        #expect(try await Self.run(executor, "Location", "nb=gt0").matches == ["l1"])
        _ = try await repository.store.writer.write { db in
            try repository.save(
                Self.location("l2", system: "sys", value: "L2", name: "Annexe", nb: 3, date: nil, org: "o2"),
                in: db
            )
        }
        #expect(try await Self.run(executor, "Location", "nb=gt0").matches == ["l1", "l2"])
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await repository.store.writer.write { db in
                try repository.save(
                    Self.location("l3", system: "other", value: "L3", name: "Nordic", nb: 9, date: nil, org: "o1"),
                    in: db
                )
                throw Abort()
            }
        }
        #expect(try await Self.run(executor, "Location", "nb=gt0").matches == ["l1", "l2"])
        // A raw change announced by `resourcesChanged(in:)` (seed reload) empties it too.
        _ = try await repository.store.writer.write { db in
            repository.resourcesChanged(in: db)
            try db.execute(sql: "DELETE FROM fhir_index WHERE id = 'l1'")
        }
        #expect(try await Self.run(executor, "Location", "nb=gt0").matches == ["l2"])
    }

    /// Reads by id see each committed version: a write replaces the cached entry, a rollback keeps it, a raw change
    /// (seed reload) forgets everything.
    @Test func readsByIdSeeEveryCommittedVersion() async throws {
        let executor = try Self.executor()
        let repository = executor.repository
        func name(_ id: String) async throws -> String? {
            guard let stored = try await repository.read(type: "Location", id: id) else { return nil }
            return (try JSONSerialization.jsonObject(with: stored.json) as? [String: Any])?["name"] as? String
        }
        #expect(try await name("l1") == "Bâtiment Nord")
        #expect(try await name("l2") == "Annexe")
        _ = try await repository.store.writer.write { db in
            try repository.save(
                Self.location("l1", system: "sys", value: "L1", name: "Bâtiment Sud", nb: 5, date: nil, org: "o1"),
                in: db
            )
        }
        #expect(try await name("l1") == "Bâtiment Sud")
        #expect(try await repository.read(type: "Location", id: "l1")?.version == 2)
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await repository.store.writer.write { db in
                try repository.save(
                    Self.location("l1", system: "sys", value: "L1", name: "Perdu", nb: 5, date: nil, org: "o1"),
                    in: db
                )
                throw Abort()
            }
        }
        #expect(try await name("l1") == "Bâtiment Sud")
        _ = try await repository.store.writer.write { db in
            repository.resourcesChanged(in: db)
            try db.execute(sql: "DELETE FROM fhir_resource WHERE id = 'l2'")
        }
        #expect(try await name("l2") == nil)
        #expect(try await name("l1") == "Bâtiment Sud")
    }

    @Test func sortAndSummary() async throws {
        let executor = try Self.executor()
        #expect(try await Self.run(executor, "Location", "_sort=-nb&nb:missing=false").matches == ["l1", "l2"])
        #expect(try await Self.run(executor, "Location", "_sort=name").matches == ["l2", "l1", "l3"])
        let count = try await Self.run(executor, "Location", "_summary=count")
        #expect(count.total == 3)
        #expect(count.matches.isEmpty)
        #expect(try await Self.run(executor, "Location", "_total=none").total == nil)
    }

    @Test func elementsSubsetsAndTags() async throws {
        let executor = try Self.executor()
        let request = try SearchRequest(
            type: "Location",
            items: [("_id", "l1"), ("_elements", "name")],
            registry: SearchEngineTests.registry
        )
        let data = try await executor.search(request, baseURL: "https://x", query: "").body
        let bundle = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let resource = ((bundle["entry"] as! [[String: Any]])[0]["resource"]) as! [String: Any]
        #expect(Set(resource.keys) == ["resourceType", "id", "meta", "name"])
        #expect("\(resource["meta"]!)".contains("SUBSETTED"))
    }

    @Test(arguments: [
        ("foo=bar", "Unknown search parameter 'foo'", "foo"),
        ("nb=xx5", "Invalid prefix 'xx'", "nb"),
        ("nb=five", "Invalid prefix", "nb"),
        ("nb=gtfive", "Invalid number", "nb"),
        ("updated=2024-13-01", "Invalid date", "updated"),
        ("updated=2023-02-30", "Invalid date", "updated"),
        ("_count=-1", "_count must be a non-negative integer", "_count"),
        ("_count=abc", "_count must be a non-negative integer", "_count"),
        ("_count=5000", "must not exceed", "_count"),
        ("name:below=x", "Modifier ':below' is not supported", "name:below"),
        ("nb:missing=maybe", ":missing takes true or false", "nb:missing"),
        ("_sort=nope", "Unknown sort parameter", "_sort"),
        ("_include=Location:name", "has no reference search parameter", "_include"),
        ("_include=bogus", "must be Type:parameter", "_include"),
        ("name=", "empty value", "name"),
        ("organization.bogus=1", "Unknown search parameter 'bogus'", "organization.bogus"),
        ("_has:HealthcareService:specialty:x=1", "no reference parameter", "_has:HealthcareService:specialty:x"),
        ("_summary=true", "_summary supports", "_summary"),
        ("_filter=name xx 1", "operator 'xx' is not supported", "_filter"),
        ("_filter=(name sw a", "missing ')'", "_filter"),
        ("_filter=bogus eq 1", "unknown parameter 'bogus'", "_filter"),
        ("_filter=nb co 1", "does not apply", "_filter"),
        ("_filter=name sw", "missing value", "_filter"),
    ])
    func badSearchesAreErrorsNamingTheParameter(query: String, message: String, parameter: String) {
        let parts = query.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        #expect {
            _ = try SearchRequest(type: "Location", items: [(parts[0], parts[1])], registry: SearchEngineTests.registry)
        } throws: { error in
            guard let error = error as? SearchError else { return false }
            return error.message.contains(message) && error.parameter == parameter
        }
    }

    @Test func lenientHandlingIgnoresUnknownParameters() throws {
        let request = try SearchRequest(
            type: "Location",
            items: [("foo", "1"), ("name", "x")],
            registry: Self.registry,
            lenient: true
        )
        #expect(request.ignored == ["foo"])
        #expect(request.conditions.count == 1)
    }

    @Test(arguments: [
        ("2024", "2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z"),
        ("2024-02", "2024-02-01T00:00:00Z", "2024-02-29T23:59:59Z"),
        ("2024-03-05", "2024-03-05T00:00:00Z", "2024-03-05T23:59:59Z"),
        ("2024-03-05T10:00", "2024-03-05T10:00:00Z", "2024-03-05T10:00:59Z"),
        ("2024-03-05T12:00:00+02:00", "2024-03-05T10:00:00Z", "2024-03-05T10:00:00Z"),
    ])
    func dateRanges(text: String, low: String, high: String) throws {
        let range = try #require(FHIRDate.range(of: text))
        let formatter = ISO8601DateFormatter()
        #expect(range.low == formatter.date(from: low)!.timeIntervalSince1970)
        #expect(floor(range.high) == formatter.date(from: high)!.timeIntervalSince1970)
    }

    @Test func savingBumpsTheVersionAndReindexes() async throws {
        let executor = try Self.executor()
        let repository = executor.repository
        _ = try await repository.store.writer.write { db in
            try repository.save(
                Self.location("l1", system: "sys", value: "L1-NEW", name: "Renamed", nb: 9, date: nil, org: "o1"),
                in: db
            )
        }
        let stored = try #require(try await repository.read(type: "Location", id: "l1"))
        #expect(stored.version == 2)
        #expect(String(decoding: stored.json, as: UTF8.self).contains("\"versionId\":\"2\""))
        #expect(try await Self.run(executor, "Location", "identifier=sys|L1").matches.isEmpty)
        #expect(try await Self.run(executor, "Location", "identifier=sys|L1-NEW").matches == ["l1"])
        await #expect(throws: ResourceError.self) {
            try await repository.store.writer.write { db in
                try repository.save(["resourceType": "Location", "id": "bad id!"], in: db)
            }
        }
    }
}

@Suite("Search query shapes")
struct SearchQueryShapeTests {
    /// A database error a query's shape causes is a search error naming the heaviest parameter; others are not.
    @Test func sqliteShapeErrorsBecomeSearchErrors() {
        let items = [("name", "a"), ("_filter", String(repeating: "name eq \"x\" or ", count: 50))]
        let tooLarge = DatabaseError(
            resultCode: .SQLITE_ERROR,
            message: "Expression tree is too large (maximum depth 1000)"
        )
        let shape = SearchError.queryShape(tooLarge, items: items)
        #expect(shape?.parameter == "_filter")
        #expect(shape?.message.contains("Expression tree is too large") == true)
        #expect(
            SearchError.queryShape(DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked"), items: items)
                == nil
        )
        #expect(SearchError.queryShape(CocoaError(.fileNoSuchFile), items: items) == nil)
    }
}

@Suite("Search index extraction")
struct SearchIndexTests {
    /// Parsed JSON (not Swift literals): on Linux `0` and `1` are NSNumbers that also cast to Bool.
    @Test func parsedZeroAndOneAreNumbersAndBooleansAreTokens() throws {
        let json =
            #"{"resourceType":"Location","id":"x","extension":[{"url":"cap","extension":[{"url":"nb","valueInteger":0}]},{"url":"cap","extension":[{"url":"nb","valueInteger":1}]},{"url":"flag","valueBoolean":true}]}"#
        let resource = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let rows = SearchIndexer.rows(
            for: resource,
            parameters: [
                SearchParameterDefinition("nb", .number, paths: ["extension[url=cap].extension[url=nb].value*"]),
                SearchParameterDefinition("flag", .token, paths: ["extension[url=flag].value*"]),
                SearchParameterDefinition("nb-token", .token, paths: ["extension[url=cap].extension[url=nb].value*"]),
            ]
        )
        #expect(rows.filter { $0.param == "nb" }.compactMap(\.number).sorted() == [0, 1])
        #expect(rows.first { $0.param == "flag" }?.code == "true")
        #expect(rows.filter { $0.param == "nb-token" }.isEmpty)  // an integer is not a token
    }
}

@Test func instantsAreWrittenLikeHAPI() {
    #expect(FHIRInstant.string(Date(timeIntervalSince1970: 1_795_316_723.303)) == "2026-11-22T03:05:23.303+00:00")
    #expect(FHIRInstant.string(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000+00:00")
}

@Suite("Index rows on rewrite")
struct IndexRewriteTests {
    /// A rewrite touches only the index rows that changed, and leaves exactly the rows of the new version.
    @Test func rewritingAResourceKeepsItsIndexExact() async throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        func rows() throws -> [SearchIndexRow] {
            try store.writer.read { db in
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT param, system, code, text, number, low, high, ref_type, ref_id FROM fhir_index WHERE type = 'Location' AND id = 'l9'"
                )
                .map { (row: Row) -> SearchIndexRow in
                    let numbers: (Double?, Double?, Double?) = (row[4], row[5], row[6])
                    return SearchIndexRow(
                        param: row[0],
                        system: row[1],
                        code: row[2],
                        text: row[3],
                        number: numbers.0,
                        low: numbers.1,
                        high: numbers.2,
                        refType: row[7],
                        refID: row[8]
                    )
                }
            }
        }
        func ids(_ items: [(String, String)]) async throws -> [String] {
            try await repository.searchIDs(
                try SearchRequest(type: "Location", items: items, registry: SearchEngineTests.registry)
            )
        }
        var location = SearchEngineTests.location(
            "l9",
            system: "sys",
            value: "A",
            name: "Nord",
            nb: 5,
            date: "2024-03-05",
            org: "o1"
        )
        func write(_ resource: [String: Any], version: Int) throws -> ResourceRepository.PreparedResource {
            let prepared = try repository.prepare(resource, version: version)
            try store.writer.write { db in try repository.write(prepared, in: db) }
            return prepared
        }
        _ = try write(location, version: 1)
        let first = try rows()
        #expect(try await ids([("identifier", "A")]) == ["l9"])
        location = SearchEngineTests.location(
            "l9",
            system: "sys",
            value: "B",
            name: "Nord",
            nb: 7,
            date: "2024-03-05",
            org: "o1"
        )
        // Two identical identifiers: duplicate rows are kept as many times as the resource has them.
        location["identifier"] = [["system": "sys", "value": "B"], ["system": "sys", "value": "B"]]
        let prepared = try write(location, version: 2)
        let second = try rows()
        #expect(second.count == prepared.rows.count)
        func counted(_ rows: [SearchIndexRow]) -> [SearchIndexRow: Int] {
            var counts: [SearchIndexRow: Int] = [:]
            for row in rows { counts[row, default: 0] += 1 }
            return counts
        }
        #expect(counted(second) == counted(prepared.rows))
        #expect(second.filter { $0.param == "identifier" }.count == 2)
        #expect(first.count + 1 == second.count)
        #expect(try await ids([("identifier", "A")]).isEmpty)
        #expect(try await ids([("identifier", "B")]) == ["l9"])
        #expect(try await ids([("nb", "7")]) == ["l9"])
        #expect(try await ids([("nb", "5")]).isEmpty)
    }

    /// A write prepared for changed top-level elements re-extracts only the parameters reading them (and `meta`),
    /// brings their rows to the new version, and keeps the stored rows of the others as they are.
    @Test func aPartialRewriteReindexesOnlyWhatItChanged() async throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        func ids(_ items: [(String, String)]) async throws -> [String] {
            try await repository.searchIDs(
                try SearchRequest(type: "Location", items: items, registry: SearchEngineTests.registry)
            )
        }
        let location = SearchEngineTests.location(
            "l8",
            system: "sys",
            value: "A",
            name: "Nord",
            nb: 5,
            date: "2024-03-05",
            org: "o1"
        )
        let first = try repository.prepare(
            location,
            version: 1,
            lastUpdated: Date(timeIntervalSince1970: 1_700_000_000)
        )
        try await store.writer.write { db in try repository.write(first, in: db) }
        // The capacity changed; the name too, but the caller says only `extension` may have (its contract).
        var changed = SearchEngineTests.location(
            "l8",
            system: "sys",
            value: "A",
            name: "Sud",
            nb: 9,
            date: "2025-01-02",
            org: "o1"
        )
        changed["name"] = "Sud"
        let partial = try repository.prepare(
            changed,
            version: 2,
            lastUpdated: Date(timeIntervalSince1970: 1_800_000_000),
            partial: .init(elements: ["extension"])
        )
        #expect(Set(partial.rows.map(\.param)) == ["nb", "updated", "_lastUpdated"])
        try await store.writer.write { db in try repository.write(partial, in: db) }
        #expect(try await ids([("nb", "9")]) == ["l8"])
        #expect(try await ids([("nb", "5")]).isEmpty)
        #expect(try await ids([("updated", "2025-01-02")]) == ["l8"])
        #expect(try await ids([("_lastUpdated", "gt2025-01-01")]) == ["l8"])
        #expect(try await ids([("identifier", "A")]) == ["l8"])
        #expect(try await ids([("organization", "Organization/o1")]) == ["l8"])
        // The name's rows are the stored ones: not re-extracted, not deleted.
        #expect(try await ids([("name", "Nord")]) == ["l8"])
        #expect(try await ids([("name", "Sud")]).isEmpty)
        let total = try await store.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fhir_index WHERE id = 'l8'")
        }
        #expect(total == first.rows.count)
    }

    /// Reads by id are cached until a committed change of `fhir_resource`: a write (not a rolled-back one), a delete
    /// that declares itself.
    @Test func readsFollowEveryCommittedWrite() async throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        func save(_ name: String) throws {
            let resource = SearchEngineTests.location(
                "l7",
                system: "sys",
                value: "A",
                name: name,
                nb: 1,
                date: nil,
                org: "o1"
            )
            try store.writer.write { db in _ = try repository.save(resource, in: db) }
        }
        try save("Premier")
        #expect(try await repository.read(type: "Location", id: "l7")?.version == 1)
        #expect(try await repository.read(type: "Location", id: "l7")?.version == 1, "from the cache")
        try save("Second")
        #expect(try await repository.read(type: "Location", id: "l7")?.version == 2)
        struct Abort: Error {}
        func failedWrite() throws {
            try store.writer.write { db in
                repository.resourcesChanged(in: db)
                try db.execute(sql: "UPDATE fhir_resource SET version = 99 WHERE id = 'l7'")
                throw Abort()
            }
        }
        #expect(throws: Abort.self) { try failedWrite() }
        #expect(
            try await repository.read(type: "Location", id: "l7")?.version == 2,
            "a rolled-back write changes nothing"
        )
        func deleteAll() throws {
            try store.writer.write { db in
                repository.resourcesChanged(in: db)
                try db.execute(sql: "DELETE FROM fhir_resource")
            }
        }
        try deleteAll()
        #expect(try await repository.read(type: "Location", id: "l7") == nil)
    }
}

@Suite("Bulk reads")
struct BulkReadTests {
    /// A bulk read (the database file mapped for the read) returns what a plain read returns, in the asked order, and
    /// leaves the connection unmapped afterwards (a kept mapping would count every page read into the resident size).
    @Test func aBulkReadReadsLikeAPlainOneAndUnmapsAfter() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("esante-bulk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await bulkRead(try SandboxStore.open(path: folder.appendingPathComponent("sandbox.sqlite").path))
    }

    private func bulkRead(_ store: SandboxStore) async throws {
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        let ids = (0..<600).map { "b\($0)" }
        try await store.writer.write { db in
            for (index, id) in ids.enumerated() {
                let location = SearchEngineTests.location(
                    id,
                    system: "sys",
                    value: "V\(index)",
                    name: "N\(index)",
                    nb: index,
                    date: "2024-03-05",
                    org: "o1"
                )
                try repository.write(try repository.prepare(location, version: 1), in: db)
            }
        }
        let asked = ids.reversed() + ["missing"]
        let plain = try await repository.resources(type: "Location", ids: Array(asked))
        let bulk = try await repository.resources(type: "Location", ids: Array(asked), bulk: true)
        #expect(bulk.count == 600)
        #expect(bulk == plain)
        #expect(bulk.first?.id == "b599")
        let mapped = try await store.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA mmap_size") }
        #expect(mapped == 0)
    }
}

@Suite("Lookups kept across writes")
struct LookupCacheTests {
    /// A lookup by identifier is answered from the cache while commits re-index other parameters only (a capacity
    /// PATCH), and read again after a commit that may change identifiers: a new resource, a full or identifier
    /// rewrite, a raw change. The same for a resource's indexed codes.
    @Test func lookupsFollowTheCommitsThatChangeIdentifiers() throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        func location(_ id: String, _ value: String, nb: Int) -> [String: Any] {
            SearchEngineTests.location(
                id,
                system: "sys",
                value: value,
                name: "Nord",
                nb: nb,
                date: "2024-03-05",
                org: "o1"
            )
        }
        func write(_ resource: [String: Any], version: Int, changed: Set<String>? = nil) throws {
            let prepared = try repository.prepare(
                resource,
                version: version,
                partial: changed.map { .init(elements: $0) }
            )
            try store.writer.write { db in try repository.write(prepared, in: db) }
        }
        func lookup() throws -> [String] {
            try repository.lookupIDs(type: "Location", parameter: "identifier", value: "A").sorted()
        }
        func codes() throws -> [String] {
            try repository.indexedCodes(type: "Location", id: "l1", parameter: "identifier")
        }
        /// Changes the index behind the repository's back: only a read from the cache still sees the old rows.
        func renameBehindTheCache(_ from: String, _ to: String) throws {
            try store.writer.write { db in
                try db.execute(sql: "UPDATE fhir_index SET code = ? WHERE code = ?", arguments: [to, from])
            }
        }

        try write(location("l1", "A", nb: 1), version: 1)
        #expect(try lookup() == ["l1"])
        #expect(try codes() == ["A"])
        // Answered from the cache: the rows changed behind it, then a capacity-like write (other parameters).
        try renameBehindTheCache("A", "hidden")
        try write(location("l1", "A", nb: 2), version: 2, changed: ["extension"])
        #expect(try lookup() == ["l1"], "kept across a write that re-indexes other parameters")
        #expect(try codes() == ["A"])
        try renameBehindTheCache("hidden", "A")
        // A new resource with the same identifier: read again, both found.
        try write(location("l2", "A", nb: 1), version: 1)
        #expect(try lookup() == ["l1", "l2"])
        // A rewrite that re-indexes identifiers (a full update here) moves l2 away.
        try write(location("l2", "B", nb: 1), version: 2)
        #expect(try lookup() == ["l1"])
        // A partial write that says it changed `identifier` is seen too.
        try write(location("l1", "C", nb: 3), version: 3, changed: ["identifier"])
        #expect(try lookup().isEmpty)
        #expect(try codes() == ["C"])
        // A raw change (a reset) forgets every lookup.
        try write(location("l1", "A", nb: 3), version: 4)
        #expect(try lookup() == ["l1"])
        try store.writer.write { db in
            repository.resourcesChanged(in: db)
            try db.execute(sql: "DELETE FROM fhir_index")
            try db.execute(sql: "DELETE FROM fhir_resource")
        }
        #expect(try lookup().isEmpty)
        #expect(try codes().isEmpty)
        // A rolled-back write changes nothing, and the lookups read after it stay valid.
        try write(location("l1", "A", nb: 1), version: 1)
        #expect(try lookup() == ["l1"])
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try store.writer.write { db in
                try repository.write(try repository.prepare(location("l3", "A", nb: 1), version: 1), in: db)
                throw Abort()
            }
        }
        #expect(try lookup() == ["l1"])
    }
}

@Suite("Index rows by difference")
struct IndexDifferenceTests {
    /// Patches replacing, adding, removing and changing inside list elements, written with their list change: the
    /// stored index rows are always exactly those a full extraction of the new version gives, and fewer are extracted.
    @Test func rowsByDifferenceMatchAFullExtraction() throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        func capacity(_ id: String, nb: Int, date: String?) -> [String: Any] {
            var parts: [[String: Any]] = [["url": "nb", "valueInteger": nb]]
            if let date { parts.append(["url": "date", "valueDateTime": date]) }
            return ["id": id, "url": "cap", "extension": parts]
        }
        var initial = SearchEngineTests.location(
            "d1",
            system: "sys",
            value: "A",
            name: "Nord",
            nb: nil,
            date: nil,
            org: "o1"
        )
        initial["extension"] = [
            capacity("e0", nb: 1, date: "2024-01-01"), ["url": "other", "valueString": "x"],
            capacity("e1", nb: 2, date: nil), capacity("e2", nb: 2, date: "2024-01-02"),
        ]
        var location = try #require(JSONObject(any: initial))
        var version = 1
        try store.writer.write { db in try repository.write(try repository.prepare(location, version: version), in: db)
        }
        func storedRows() throws -> [SearchIndexRow: Int] {
            try store.writer.read { db in
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT param, system, code, text, number, low, high, ref_type, ref_id FROM fhir_index WHERE type = 'Location' AND id = 'd1'"
                )
                .reduce(into: [SearchIndexRow: Int]()) { counts, row in
                    let numbers: (Double?, Double?, Double?) = (row[4], row[5], row[6])
                    counts[
                        SearchIndexRow(
                            param: row[0],
                            system: row[1],
                            code: row[2],
                            text: row[3],
                            number: numbers.0,
                            low: numbers.1,
                            high: numbers.2,
                            refType: row[7],
                            refID: row[8]
                        ),
                        default: 0
                    ] += 1
                }
            }
        }
        var generator = SeededGenerator(seed: 7)
        var next = 3
        for step in 0..<80 {
            let ids = (location["extension"]?.array ?? []).compactMap { $0["id"]?.string }
            let target = ids.isEmpty ? nil : ids[Int(generator.next() % UInt64(ids.count))]
            let nb = Int(generator.next() % 4)
            let date: String? =
                generator.next() % 3 == 0 ? nil : "2024-0\(1 + generator.next() % 9)-1\(generator.next() % 9)"
            var operations: [[String: Any]] = []
            switch (generator.next() % 5, target) {
            case (0, let target?):
                next += 1
                operations = [
                    [
                        "type": "replace", "path": "Location.extension.where(id='\(target)')",
                        "value": capacity("e\(next)", nb: nb, date: date),
                    ]
                ]
            case (1, let target?):
                operations = [["type": "delete", "path": "Location.extension.where(id='\(target)')"]]
            case (2, let target?):
                operations = [
                    [
                        "type": "replace",
                        "path": "Location.extension.where(id='\(target)').extension.where(url='nb').value", "value": nb,
                    ]
                ]
            case (3, let target?):
                next += 2
                operations = [
                    [
                        "type": "add", "path": "Location.extension",
                        "value": capacity("e\(next - 1)", nb: nb, date: date),
                    ],
                    ["type": "delete", "path": "Location.extension.where(id='\(target)')"],
                    ["type": "add", "path": "Location.extension", "value": capacity("e\(next)", nb: nb, date: nil)],
                ]
            default:
                next += 1
                operations = [
                    ["type": "add", "path": "Location.extension", "value": capacity("e\(next)", nb: nb, date: date)]
                ]
            }
            var changes = ChangedElements()
            let patched = try FHIRPatch(parameters: FHIRPathTests.patch(operations)).apply(
                to: location,
                changes: &changes
            )
            let list = changes.origins["extension"].map {
                ResourceRepository.ListChange(
                    name: "extension",
                    original: location["extension"]?.array ?? [],
                    origins: $0
                )
            }
            #expect(list != nil, "step \(step): \(operations)")
            version += 1
            let prepared = try repository.prepare(
                patched,
                version: version,
                partial: .init(elements: ["extension"], list: list)
            )
            #expect(prepared.difference?.parameters == ["nb", "updated"])
            #expect(prepared.rows.allSatisfy { $0.param == "_lastUpdated" })
            try store.writer.write { db in try repository.write(prepared, in: db) }
            let stamped = ResourceRepository.stamped(patched, version: version, lastUpdated: Date())
            let full = SearchIndexer.rows(
                for: stamped,
                parameters: Array(SearchEngineTests.registry.parameters["Location"]!.values)
            )
            .filter { $0.param != "_lastUpdated" }
            let stored = try storedRows().filter { $0.key.param != "_lastUpdated" }
            #expect(
                stored == full.reduce(into: [SearchIndexRow: Int]()) { $0[$1, default: 0] += 1 },
                "step \(step): \(operations)"
            )
            location = patched
        }
    }

    /// A row changed in place (the count of an indicator) that the index no longer holds is written anew: the
    /// stored rows still end as a full extraction gives them.
    @Test func aChangedRowTheIndexLostIsWrittenAnew() throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: SearchEngineTests.registry)
        var initial = SearchEngineTests.location(
            "d2",
            system: "sys",
            value: "A",
            name: "Nord",
            nb: nil,
            date: nil,
            org: "o1"
        )
        initial["extension"] = [["id": "e0", "url": "cap", "extension": [["url": "nb", "valueInteger": 1]]]]
        let location = try #require(JSONObject(any: initial))
        try store.writer.write { db in
            try repository.write(try repository.prepare(location, version: 1), in: db)
            try db.execute(sql: "DELETE FROM fhir_index WHERE id = 'd2' AND param = 'nb'")
        }
        var changes = ChangedElements()
        let patched = try FHIRPatch(
            parameters: FHIRPathTests.patch([
                [
                    "type": "replace", "path": "Location.extension.where(id='e0').extension.where(url='nb').value",
                    "value": 5,
                ]
            ])
        ).apply(to: location, changes: &changes)
        let list = changes.origins["extension"].map {
            ResourceRepository.ListChange(name: "extension", original: location["extension"]?.array ?? [], origins: $0)
        }
        try store.writer.write { db in
            try repository.write(
                try repository.prepare(patched, version: 2, partial: .init(elements: ["extension"], list: list)),
                in: db
            )
        }
        let numbers = try store.writer.read { db in
            try Double.fetchAll(db, sql: "SELECT number FROM fhir_index WHERE id = 'd2' AND param = 'nb'")
        }
        #expect(numbers == [5])
    }
}

/// A small deterministic generator (SplitMix64): the same patch sequence on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
