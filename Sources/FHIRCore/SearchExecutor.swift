import Foundation

/// Runs searches and builds `searchset` Bundles with HAPI-style paging links (`_getpages`), as the production
/// ROR (HAPI FHIR 6.4) pages: `?_getpages=<id>&_getpagesoffset=200&_count=200&_bundletype=searchset`.
public struct SearchExecutor: Sendable {
    public let repository: ResourceRepository
    public let snapshots: SearchSnapshots
    /// Filter applied to every batch of resources leaving the server (access profiles): it may drop resources or
    /// trim them. A batch, so a filter that needs related data looks it up once per page, not once per resource.
    public let visibility: @Sendable ([StoredResource]) async throws -> [StoredResource]

    public init(
        repository: ResourceRepository,
        snapshots: SearchSnapshots,
        visibility: @escaping @Sendable ([StoredResource]) async throws -> [StoredResource] = { $0 }
    ) {
        self.repository = repository
        self.snapshots = snapshots
        self.visibility = visibility
    }

    /// First page of a new search. `baseURL` is the service base (`https://host/ws-diffusion-fhir`), `query` the
    /// request's query string (for the `self` link).
    public func search(_ request: SearchRequest, baseURL: String, query: String) async throws -> Data {
        let ids = try await repository.searchIDs(request)
        let summary = SearchSnapshots.SearchRequestSummary(
            includes: request.includes,
            revIncludes: request.revIncludes,
            elements: request.elements,
            includeTotal: request.includeTotal,
            query: query,
            ignored: request.ignored
        )
        let selfLink = "\(baseURL)/\(request.type)" + (query.isEmpty ? "" : "?\(query)")
        if request.summaryCount || request.count == 0 {
            return Self.bundle(total: ids.count, links: [("self", selfLink)], entries: [])
        }
        let snapshot = SearchSnapshots.Snapshot(type: request.type, ids: ids, request: summary, created: Date())
        let key = ids.count > request.count ? snapshots.store(snapshot) : nil
        return try await page(snapshot, key: key, offset: 0, count: request.count, baseURL: baseURL, selfLink: selfLink)
    }

    /// A later page of a stored search; nil when the snapshot expired or never existed.
    public func page(key: String, offset: Int, count: Int, baseURL: String) async throws -> Data? {
        guard let snapshot = snapshots.snapshot(key) else { return nil }
        let selfLink = Self.pageLink(baseURL: baseURL, key: key, offset: offset, count: count)
        return try await page(snapshot, key: key, offset: offset, count: count, baseURL: baseURL, selfLink: selfLink)
    }

    static func pageLink(baseURL: String, key: String, offset: Int, count: Int) -> String {
        "\(baseURL)?_getpages=\(key)&_getpagesoffset=\(offset)&_count=\(count)&_bundletype=searchset"
    }

    private func page(
        _ snapshot: SearchSnapshots.Snapshot,
        key: String?,
        offset: Int,
        count: Int,
        baseURL: String,
        selfLink: String
    ) async throws -> Data {
        let pageIDs = Array(snapshot.ids.dropFirst(offset).prefix(count))
        var links = [("self", selfLink)]
        if let key {
            if offset + count < snapshot.ids.count {
                links.append(("next", Self.pageLink(baseURL: baseURL, key: key, offset: offset + count, count: count)))
            }
            if offset > 0 {
                links.append(
                    (
                        "previous",
                        Self.pageLink(baseURL: baseURL, key: key, offset: max(0, offset - count), count: count)
                    )
                )
            }
        }
        let matches = try await visibility(repository.resources(type: snapshot.type, ids: pageIDs))
        var seen = Set(matches.map { "\($0.type)/\($0.id)" })
        var included: [StoredResource] = []
        try await addIncludes(snapshot.request, matches: matches, seen: &seen, into: &included)
        var entries = matches.map { (baseURL, $0, "match", snapshot.request.elements) }
        entries += included.map { (baseURL, $0, "include", nil as [String]?) }
        var entryData = entries.map { Self.entry(baseURL: $0.0, resource: $0.1, mode: $0.2, elements: $0.3) }
        if !snapshot.request.ignored.isEmpty {
            let outcome = OperationOutcome(
                severity: "warning",
                code: "not-supported",
                diagnostics:
                    "Ignored unknown search parameter(s) under Prefer: handling=lenient: \(snapshot.request.ignored.joined(separator: ", "))",
                expression: snapshot.request.ignored
            )
            entryData.append(
                Data("{\"resource\":".utf8) + outcome.jsonData() + Data(",\"search\":{\"mode\":\"outcome\"}}".utf8)
            )
        }
        return Self.bundle(
            total: snapshot.request.includeTotal ? snapshot.ids.count : nil,
            links: links,
            entries: entryData
        )
    }

    /// `_include` (with `:iterate` to a fixed point, 5 rounds at most) and `_revinclude`.
    private func addIncludes(
        _ request: SearchSnapshots.SearchRequestSummary,
        matches: [StoredResource],
        seen: inout Set<String>,
        into included: inout [StoredResource]
    ) async throws {
        var frontier = matches
        let primaryType = matches.first?.type
        // As HAPI (the production ROR) does, a plain `_include` naming another type than the searched one also
        // applies, once, to what the first round brought in: the ANS extraction query
        // `…&_revinclude=PractitionerRole:service&_include=PractitionerRole:practitioner` returns the practitioners.
        func applies(_ spec: IncludeSpec, round: Int) -> Bool {
            round == 0 || spec.iterate || (round == 1 && spec.sourceType != "*" && spec.sourceType != primaryType)
        }
        let crossType = request.includes.contains { $0.sourceType != "*" && $0.sourceType != primaryType }
        for round in 0..<5 {
            var found: [StoredResource] = []
            let byType = Dictionary(grouping: frontier, by: \.type)
            for spec in request.includes where applies(spec, round: round) {
                for (type, resources) in byType where spec.sourceType == "*" || spec.sourceType == type {
                    let references = try await repository.outgoingReferences(
                        type: type,
                        ids: resources.map(\.id),
                        parameters: spec.parameter.map { [$0] },
                        targetType: spec.targetType
                    )
                    for (targetType, ids) in Dictionary(grouping: references, by: \.0) {
                        let fresh = ids.map(\.1).filter { !seen.contains("\(targetType)/\($0)") }
                        for resource in try await visibility(repository.resources(type: targetType, ids: fresh)) {
                            if seen.insert("\(resource.type)/\(resource.id)").inserted { found.append(resource) }
                        }
                    }
                }
            }
            for spec in request.revIncludes where round == 0 || spec.iterate {
                for (type, resources) in byType {
                    let sources = spec.sourceType == "*" ? repository.registry.resourceTypes : [spec.sourceType]
                    for source in sources {
                        let ids = try await repository.incomingReferences(
                            sourceType: source,
                            parameters: spec.parameter.map { [$0] },
                            targetType: type,
                            ids: resources.map(\.id)
                        )
                        let fresh = ids.filter { !seen.contains("\(source)/\($0)") }
                        for resource in try await visibility(repository.resources(type: source, ids: fresh)) {
                            if seen.insert("\(resource.type)/\(resource.id)").inserted { found.append(resource) }
                        }
                    }
                }
            }
            included += found
            frontier = found
            let iterating =
                (request.includes + request.revIncludes).contains(where: \.iterate) || (crossType && round == 0)
            if found.isEmpty || !iterating { break }
        }
    }

    // MARK: JSON assembly (resource bytes are spliced in, never re-encoded)

    static func entry(baseURL: String, resource: StoredResource, mode: String, elements: [String]?) -> Data {
        var json = resource.json
        if let elements { json = Self.subset(json, elements: elements) }
        var data = Data("{\"fullUrl\":".utf8)
        data += Self.quoted("\(baseURL)/\(resource.type)/\(resource.id)")
        data += Data(",\"resource\":".utf8)
        data += json
        data += Data(",\"search\":{\"mode\":\"\(mode)\"}}".utf8)
        return data
    }

    public static func bundle(total: Int?, links: [(String, String)], entries: [Data]) -> Data {
        var data = Data("{\"resourceType\":\"Bundle\",\"id\":\"\(UUID().uuidString.lowercased())\",".utf8)
        data += Data("\"meta\":{\"lastUpdated\":\"\(FHIRInstant.string(Date()))\"},\"type\":\"searchset\",".utf8)
        if let total { data += Data("\"total\":\(total),".utf8) }
        data += Data("\"link\":[".utf8)
        for (index, link) in links.enumerated() {
            if index > 0 { data += Data(",".utf8) }
            data += Data("{\"relation\":\"\(link.0)\",\"url\":".utf8) + quoted(link.1) + Data("}".utf8)
        }
        data += Data("]".utf8)
        if !entries.isEmpty {
            data += Data(",\"entry\":[".utf8)
            for (index, entry) in entries.enumerated() {
                if index > 0 { data += Data(",".utf8) }
                data += entry
            }
            data += Data("]".utf8)
        }
        data += Data("}".utf8)
        return data
    }

    static func quoted(_ text: String) -> Data {
        var out: [UInt8] = []
        FHIRJSON.writeString(text, into: &out)
        return Data(out)
    }

    /// `_elements`: keep the listed top-level elements plus the mandatory ones, and tag the result SUBSETTED.
    static func subset(_ json: Data, elements: [String]) -> Data {
        guard var object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else { return json }
        let keep = Set(elements + ["resourceType", "id", "meta"])
        object = object.filter { keep.contains($0.key) }
        var meta = object["meta"] as? [String: Any] ?? [:]
        var tags = meta["tag"] as? [Any] ?? []
        tags.append(["system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"])
        meta["tag"] = tags
        object["meta"] = meta
        return (try? FHIRJSON.data(object)) ?? json
    }
}
