import Foundation
import GRDB
import Store
import Testing

@testable import FHIRCore

/// The search cache under writes: a write forgets only the cached searches it can change — those reading a
/// parameter whose rows it changed, or any resource of a type in which it created one. Seen from outside by rows
/// removed behind the cache's back (that the partial rewrite below does not extract again): a search kept still
/// answers as before, a search forgotten reads the table again.
@Suite("Search cache under writes")
struct SearchCacheTests {
    typealias S = SearchEngineTests

    @Test func aWriteForgetsOnlyTheSearchesItCanChange() async throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: S.registry)
        var l1 = S.location("l1", system: "sys", value: "L1", name: "Nord", nb: 5, date: "2024-03-05", org: "o1")
        let l2 = S.location("l2", system: "sys", value: "L2", name: "Sud", nb: 0, date: "2024-03-05", org: "o1")
        let h1 = S.service("h1", specialty: "356", locations: ["l1"], ageLow: 18)
        let seeded = [l1, l2, h1].map { JSONObject(any: $0)! }
        try await store.write { db in
            for resource in seeded { _ = try repository.save(resource, in: db) }
        }
        func ids(_ type: String, _ items: [(String, String)]) async throws -> [String] {
            try await repository.searchIDs(try SearchRequest(type: type, items: items, registry: S.registry))
        }
        let byIdentifier = [("identifier", "sys|L1")]
        let byName = [("name", "Nord")]
        let byChain = [("location.name", "Nord")]
        #expect(try await ids("Location", byIdentifier) == ["l1"])
        #expect(try await ids("Location", byName) == ["l1"])
        #expect(try await ids("HealthcareService", byChain) == ["h1"])
        #expect(try await ids("HealthcareService", [("specialty", "356")]) == ["h1"])
        // Behind the cache's back: l1's identifier row and h1's specialty row are gone.
        try await store.writer.write { db in
            try db.execute(sql: "DELETE FROM fhir_index WHERE type = 'Location' AND id = 'l1' AND param = 'identifier'")
            try db.execute(
                sql: "DELETE FROM fhir_index WHERE type = 'HealthcareService' AND id = 'h1' AND param = 'specialty'"
            )
        }
        // l1 renamed as a PATCH writes: only the parameters reading `name` are extracted again, the others' rows kept.
        l1["name"] = "Ouest"
        let renamed = try repository.prepare(JSONObject(any: l1)!, version: 2, partial: .init(elements: ["name"]))
        try await store.write { db in try repository.write(renamed, in: db) }
        #expect(try await ids("Location", byIdentifier) == ["l1"], "kept: the rename did not touch identifiers")
        #expect(try await ids("Location", byName) == [], "forgotten: the name changed")
        #expect(try await ids("HealthcareService", byChain) == [], "forgotten: the chain reads Location names")
        #expect(
            try await ids("HealthcareService", [("specialty", "356")]) == ["h1"],
            "kept: a Location write cannot change a HealthcareService's own parameter"
        )
        // A new Location: searches reading Locations check it, and only it (a creation re-indexes all its parameters).
        let l3 = JSONObject(
            any: S.location("l3", system: "sys", value: "L3", name: "Est", nb: 1, date: "2024-03-05", org: "o1")
        )!
        try await store.write { db in _ = try repository.save(l3, in: db) }
        #expect(try await ids("Location", byIdentifier) == ["l1"], "brought up to date: l3 checked, l1 not re-read")
        #expect(try await ids("Location", [("identifier", "sys|L3")]) == ["l3"])
        #expect(try await ids("HealthcareService", [("specialty", "356")]) == ["h1"])
    }

    @Test func dependenciesFollowConditionsChainsAndSort() throws {
        let request = try SearchRequest(
            type: "HealthcareService",
            items: [("specialty", "356"), ("location.name", "Nord"), ("_sort", "-_lastUpdated")],
            registry: S.registry
        )
        #expect(request.dependencies == ["HealthcareService": ["specialty", "location", "*"], "Location": ["name"]])
        let plain = try SearchRequest(type: "Location", items: [("_count", "5")], registry: S.registry)
        #expect(plain.dependencies == ["Location": []])
    }

    /// A search with a chain is brought up to date after a write of the chain's target by checking again only the
    /// resources referring to it: seen by a row removed behind the cache's back from another one, which a full
    /// query would drop and the update keeps; the result stays in id order.
    @Test func aChainedSearchIsUpdatedFromTheWritesNotRecomputed() async throws {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: S.registry)
        var l1 = S.location("l1", system: "sys", value: "L1", name: "Nord", nb: 5, date: "2024-03-05", org: "o1")
        let seeded = [
            l1, S.location("l2", system: "sys", value: "L2", name: "Nord", nb: 0, date: "2024-03-05", org: "o1"),
            S.service("h1", specialty: "356", locations: ["l1"], ageLow: 18),
            S.service("h2", specialty: "356", locations: ["l2"], ageLow: 18),
        ].map { JSONObject(any: $0)! }
        try await store.write { db in
            for resource in seeded { _ = try repository.save(resource, in: db) }
        }
        let request = try SearchRequest(
            type: "HealthcareService",
            items: [("location.name", "Nord"), ("specialty", "356")],
            registry: S.registry
        )
        #expect(request.maintainedChains == ["Location": ["location"]])
        #expect(try await repository.searchIDs(request) == ["h1", "h2"])
        try await store.writer.write { db in
            try db.execute(
                sql: "DELETE FROM fhir_index WHERE type = 'HealthcareService' AND id = 'h2' AND param = 'location'"
            )
        }
        func rename(_ name: String, version: Int) async throws {
            l1["name"] = name
            let prepared = try repository.prepare(
                JSONObject(any: l1)!,
                version: version,
                partial: .init(elements: ["name"])
            )
            try await store.write { db in try repository.write(prepared, in: db) }
        }
        try await rename("Ouest", version: 2)
        #expect(try await repository.searchIDs(request) == ["h2"], "h1 checked again and dropped; h2 kept, not re-read")
        try await rename("Nord", version: 3)
        #expect(try await repository.searchIDs(request) == ["h1", "h2"], "h1 back, in id order")
        // A sorted search is not maintained: the write makes the cache forget it.
        let sorted = try SearchRequest(
            type: "HealthcareService",
            items: [("location.name", "Nord"), ("_sort", "-_id")],
            registry: S.registry
        )
        #expect(sorted.maintainedChains == nil)
        #expect(try await repository.searchIDs(sorted) == ["h1"], "read afresh: h2 has no location row any more")
    }

    /// The update's merge of a search's kept ids with its re-checked candidates equals the sorted recomputation,
    /// whatever the candidates' places (first, last, absent, present, matched or not), over many drawn cases.
    @Test func theMergeOfCheckedCandidatesEqualsARecomputation() {
        var generator = SystemRandomNumberGenerator()
        let universe = (0..<60).map { "r-\(String($0, radix: 7))" } + ["A", "Z", "a", "z", "r-", "r-0-1"]
        for _ in 0..<2_000 {
            let ids = universe.filter { _ in Bool.random(using: &generator) }.sorted {
                $0.utf8.lexicographicallyPrecedes($1.utf8)
            }
            let candidates = Set(universe.filter { _ in Int.random(in: 0..<8, using: &generator) == 0 })
            let matched = candidates.filter { _ in Bool.random(using: &generator) }
            let expected = Set(ids).subtracting(candidates).union(matched).sorted {
                $0.utf8.lexicographicallyPrecedes($1.utf8)
            }
            #expect(ResourceRepository.IDQuery.merge(ids, candidates: candidates, matched: matched) == expected)
        }
    }

    /// Locations l1…l`count`, named by `name`, saved in a new in-memory store.
    static func places(
        _ count: Int,
        name: (Int) -> String
    ) async throws -> (
        SandboxStore, ResourceRepository, [JSONObject]
    ) {
        let store = try SandboxStore.inMemory()
        let repository = ResourceRepository(store: store, registry: S.registry)
        let seeded = (1...count).map {
            JSONObject(
                any: S.location(
                    "l\($0)",
                    system: "sys",
                    value: "L\($0)",
                    name: name($0),
                    nb: 1,
                    date: "2024-03-05",
                    org: "o1"
                )
            )!
        }
        try await store.write { db in
            for resource in seeded { _ = try repository.save(resource, in: db) }
        }
        return (store, repository, seeded)
    }

    /// A `_lastUpdated` range is kept under writes and each write re-checked alone: a Location written into the
    /// range joins it in id order, one written out of it leaves (as a fresh query over the table says).
    @Test func aLastUpdatedRangeFollowsTheWrites() async throws {
        let (store, repository, seeded) = try await Self.places(5) { _ in "N" }
        let request = try SearchRequest(
            type: "Location",
            items: [("_lastUpdated", "ge2000-01-01")],
            registry: S.registry
        )
        #expect(request.maintainedChains == [:])
        #expect(try await repository.searchIDs(request) == ["l1", "l2", "l3", "l4", "l5"])
        // l3 moved out of the range behind the cache (its row's dates), then written again as a PATCH writes.
        try await store.writer.write { db in
            try db.execute(sql: "UPDATE fhir_index SET low = 0, high = 0 WHERE id = 'l3' AND param = '_lastUpdated'")
        }
        let renamed = try repository.prepare(seeded[1], version: 2, partial: .init(elements: ["name"]))
        try await store.write { db in try repository.write(renamed, in: db) }
        #expect(try await repository.searchIDs(request) == ["l1", "l2", "l3", "l4", "l5"], "l2 re-checked, l3 not")
        // l4 written with a date before the range leaves it; l3 written now comes back (its row is rewritten).
        let l4 = try repository.prepare(
            seeded[3],
            version: 2,
            lastUpdated: Date(timeIntervalSince1970: 900_000_000),
            partial: .init(elements: ["name"])
        )
        let l3 = try repository.prepare(seeded[2], version: 2, partial: .init(elements: ["name"]))
        try await store.write { db in
            try repository.write(l4, in: db)
            try repository.write(l3, in: db)
        }
        #expect(try await repository.searchIDs(request) == ["l1", "l2", "l3", "l5"])
    }

    /// Past the candidate limit the whole query runs instead of the re-check: the same ids either way.
    @Test func manyCandidatesRunTheWholeQuery() async throws {
        let (store, repository, _) = try await Self.places(6) { $0 % 2 == 0 ? "Nord" : "Sud" }
        let query = try ResourceRepository.IDQuery(
            SearchRequest(type: "Location", items: [("name", "Nord")], registry: S.registry)
        )
        // A stale cached result (l1 wrongly in, l4 missing) and three candidates: l1, l4 and l5.
        let stale = ["l1", "l2", "l6"]
        let pending = ["Location": Set(["l1", "l4", "l5"])]
        for limit in [1, 3] {
            let ids = try await store.writer.read { db in
                try query.update(stale, pending: pending, type: "Location", chains: [:], candidateLimit: limit, db)
            }
            #expect(ids == ["l2", "l4", "l6"], "limit \(limit)")
        }
    }
}
