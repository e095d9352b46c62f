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

    /// A page's bytes and what they are made of: the resources answered as stored, and the bytes between them (a
    /// journal keeps the page as that recipe rather than the megabyte).
    public struct Page: Sendable {
        public enum Part: Sendable {
            case bytes(Data)
            /// Answered byte for byte as stored (not trimmed by the visibility filter, not subsetted).
            case resource(StoredResource)
        }

        public private(set) var body = Data()
        public private(set) var parts: [Part] = []

        mutating func append(_ bytes: Data) {
            body += bytes
            if case .bytes(let last) = parts.last {
                parts[parts.count - 1] = .bytes(last + bytes)
            } else {
                parts.append(.bytes(bytes))
            }
        }

        mutating func append(_ resource: StoredResource) {
            body += resource.json
            parts.append(.resource(resource))
        }
    }

    /// First page of a new search. `baseURL` is the service base (`https://host/ws-diffusion-fhir`), `query` the
    /// request's query string (for the `self` link).
    public func search(_ request: SearchRequest, baseURL: String, query: String) async throws -> Page {
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
    public func page(key: String, offset: Int, count: Int, baseURL: String) async throws -> Page? {
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
    ) async throws -> Page {
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
        var trimmed = Set<String>()
        let matches = try await visible(repository.resources(type: snapshot.type, ids: pageIDs), trimmed: &trimmed)
        var seen = Set(matches.map { "\($0.type)/\($0.id)" })
        var included: [StoredResource] = []
        try await addIncludes(snapshot.request, matches: matches, seen: &seen, trimmed: &trimmed, into: &included)
        var entries = matches.map { (baseURL, $0, "match", snapshot.request.elements) }
        entries += included.map { (baseURL, $0, "include", nil as [String]?) }
        var entryData = entries.map {
            Self.entry(
                baseURL: $0.0,
                resource: $0.1,
                mode: $0.2,
                elements: $0.3,
                verbatim: !trimmed.contains("\($0.1.type)/\($0.1.id)")
            )
        }
        if !snapshot.request.ignored.isEmpty {
            let outcome = OperationOutcome(
                severity: "warning",
                code: "not-supported",
                diagnostics:
                    "Ignored unknown search parameter(s) under Prefer: handling=lenient: \(snapshot.request.ignored.joined(separator: ", "))",
                expression: snapshot.request.ignored
            )
            entryData.append(
                [
                    .bytes(
                        Data("{\"resource\":".utf8) + outcome.jsonData()
                            + Data(",\"search\":{\"mode\":\"outcome\"}}".utf8)
                    )
                ]
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
        trimmed: inout Set<String>,
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
                        let read = try await repository.resources(type: targetType, ids: fresh)
                        for resource in try await visible(read, trimmed: &trimmed) {
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
                        let read = try await repository.resources(type: source, ids: fresh)
                        for resource in try await visible(read, trimmed: &trimmed) {
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

    /// Resources through the visibility filter; those it changed (an access profile's trimming) are added to
    /// `trimmed`, by `type/id`: their bytes are not the stored version's.
    private func visible(_ read: [StoredResource], trimmed: inout Set<String>) async throws -> [StoredResource] {
        let shown = try await visibility(read)
        let stored = Dictionary(read.map { ("\($0.type)/\($0.id)", $0.json) }, uniquingKeysWith: { first, _ in first })
        for resource in shown where stored["\(resource.type)/\(resource.id)"] != resource.json {
            trimmed.insert("\(resource.type)/\(resource.id)")
        }
        return shown
    }

    // MARK: JSON assembly (resource bytes are spliced in, never re-encoded)

    /// An entry's parts: the resource as stored when `verbatim` and not subsetted by `_elements`, else its bytes.
    static func entry(
        baseURL: String,
        resource: StoredResource,
        mode: String,
        elements: [String]?,
        verbatim: Bool
    ) -> [Page.Part] {
        let head =
            Data("{\"fullUrl\":".utf8) + Self.quoted("\(baseURL)/\(resource.type)/\(resource.id)")
            + Data(",\"resource\":".utf8)
        let json: Page.Part =
            if let elements {
                .bytes(Self.subset(resource.json, elements: elements))
            } else {
                verbatim ? .resource(resource) : .bytes(resource.json)
            }
        return [.bytes(head), json, .bytes(Data(",\"search\":{\"mode\":\"\(mode)\"}}".utf8))]
    }

    public static func bundle(total: Int?, links: [(String, String)], entries: [[Page.Part]]) -> Page {
        var page = Page()
        var head = Data("{\"resourceType\":\"Bundle\",\"id\":\"\(UUID().uuidString.lowercased())\",".utf8)
        head += Data("\"meta\":{\"lastUpdated\":\"\(FHIRInstant.string(Date()))\"},\"type\":\"searchset\",".utf8)
        if let total { head += Data("\"total\":\(total),".utf8) }
        head += Data("\"link\":[".utf8)
        for (index, link) in links.enumerated() {
            if index > 0 { head += Data(",".utf8) }
            head += Data("{\"relation\":\"\(link.0)\",\"url\":".utf8) + quoted(link.1) + Data("}".utf8)
        }
        head += Data("]".utf8)
        page.append(head)
        if !entries.isEmpty {
            page.append(Data(",\"entry\":[".utf8))
            for (index, entry) in entries.enumerated() {
                if index > 0 { page.append(Data(",".utf8)) }
                for part in entry {
                    switch part {
                    case .bytes(let bytes): page.append(bytes)
                    case .resource(let resource): page.append(resource)
                    }
                }
            }
            page.append(Data("]".utf8))
        }
        page.append(Data("}".utf8))
        return page
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
