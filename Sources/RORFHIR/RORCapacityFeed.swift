import Access
import FHIRCore
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// The valid capacity indicators ("indicateurs capacitaires"). The ANS hands its list privately; the sandbox's is
/// `Seeds/terminology/capacity-indicators.json`, built from the indicators the brief documents and editable: each
/// entry lists, per qualifier, the accepted codes (`null` = qualifier absent) and the capacity natures allowed.
public struct RORCapacityIndicators: Sendable {
    public struct Indicator: Codable, Sendable {
        public var label: String
        /// Accepted codes by qualifier (`capacityStatus`, `temporalityCapacity`, …); a nil code = absent.
        public var qualifiers: [String: [String?]]
        /// Accepted `capacityType` codes (TRE_R329: 01 lits, 02 places).
        public var capacityType: [String]
    }

    /// The qualifiers whose combination identifies an indicator, in the order the ROR's message lists them.
    public static let key = [
        "capacityStatus", "temporalityCapacity", "genderCapacityAvailable", "capacityClosingType",
        "additionalBedType", "crisisType", "temporaryAssignement",
    ]
    /// Sub-extensions every indicator carries (1..1 in the profile).
    public static let required = [
        "capacityType", "capacityStatus", "temporalityCapacity", "nbCapacity", "capacitySourceType",
        "capacityUpdateDate", "temporaryAssignement",
    ]

    public var indicators: [Indicator]

    public init(indicators: [Indicator] = []) { self.indicators = indicators }

    /// `Seeds/terminology/capacity-indicators.json` (`{"indicators": [...]}`); none when the file is absent.
    public static func load(from seeds: URL?) throws -> RORCapacityIndicators {
        guard let file = seeds?.appendingPathComponent("terminology/capacity-indicators.json"),
            FileManager.default.fileExists(atPath: file.path)
        else { return RORCapacityIndicators() }
        struct File: Codable { var indicators: [Indicator] }
        do {
            return RORCapacityIndicators(
                indicators: try JSONDecoder().decode(File.self, from: Data(contentsOf: file)).indicators
            )
        } catch {
            throw ResourceError("\(file.path): \(error)")
        }
    }

    /// The indicator a combination of qualifiers names, if any.
    public func indicator(_ qualifiers: [String: String]) -> Indicator? {
        indicators.first { indicator in
            Self.key.allSatisfy { name in (indicator.qualifiers[name] ?? [nil]).contains(qualifiers[name]) }
        }
    }
}

/// `PATCH /ws-synchro-dispo-lits-fhir/Location?identifier=<idNatStructEtab>/<idExterne>`: the national ROR's bed and
/// place availability feed (FHIRPath Patch on the Location's `ror-location-supported-capacity` indicators), with the
/// real service's answers (`docs/services/ror-fhir.md`, "Capacity feed"): 404 for no matching indicator (the client then
/// sends `add`), 404 / 412 for an unknown / ambiguous Location, 400 `business-rule` for an invalid indicator.
public struct RORCapacityFeed: Sendable {
    public static let basePath = SandboxService.Path.rorCapacityFeed
    static let capacityURL = RORSearchParameters.structureDefinition + "ror-location-supported-capacity"
    /// The path prefix every operation must target (the indicators of the Location).
    static let capacityPath = "Location.extension.where(url='\(capacityURL)')"
    /// How every patch path starts, spaces aside: `Location.extension.where(url='…capacity')…` or
    /// `Location.extension.where(url='…capacity' and …)`.
    static let capacityPathStart = String(capacityPath.dropLast()).filter { $0 != " " }
    /// What a capacity patch may change (every path starts at `capacityPath`): the rest of the Location is the stored
    /// version's, already validated and indexed, so only this is checked and indexed again.
    static let patchedElements: Set<String> = ["extension"]

    let repository: ResourceRepository
    let tokens: RORTokenService
    let indicators: RORCapacityIndicators
    let validator: ProfileValidator
    let maximumBody: Int
    let parsedLocations = ParsedLocations()
    let turns = FeedTurns()
    /// How long a feed answered at once waits for a Location's turn held by another event loop before handing its
    /// PATCH to the route (held for a few hundred µs; longer means that loop is stalled: better not to wait).
    var turnWait: DispatchTimeInterval = .milliseconds(5)

    public init(
        repository: ResourceRepository,
        tokens: RORTokenService,
        indicators: RORCapacityIndicators,
        validator: ProfileValidator = ProfileValidator(),
        maximumBody: Int = 10 << 20
    ) {
        self.repository = repository
        self.tokens = tokens
        self.indicators = indicators
        self.validator = validator
        self.maximumBody = maximumBody
    }

    public func addRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        router.patch(RouterPath(Self.basePath + "/Location")) { request, context in
            try await self.patch(request, identity: context.identity, environment: context.environment)
        }
    }

    func patch(_ request: Request, identity: ClientIdentity?, environment: String) async throws -> Response {
        // Bearer token of a client whose whitelist entry may feed (no Ror-* headers on this endpoint).
        let (_, entry) = try await tokens.verify(
            authorization: request.headers[.authorization],
            identity: identity,
            environment: environment
        )
        let identifier = try identifier(request, entry: entry)
        let body = try await FHIRBody.json(request, maximumBody: maximumBody, what: Self.bodyWhat)
        let (patch, id) = try target(identifier, body: body)
        await turns.begin(id)
        defer { turns.end(id) }
        // Another write of the Location (the consumer API's writes, a reset) makes this one start again on the new
        // version (optimistic concurrency: each round lost is another write done, so it ends).
        while true {
            let (base, location) = try await location(id)
            if let stored = try attempt(patch, id: id, base: base, location: location, entry: entry, identity: identity)
            {
                let (head, json) = Self.answer(stored, previous: base.version)
                return Response(
                    status: head.status,
                    headers: head.headerFields,
                    body: .init(byteBuffer: ByteBuffer(bytes: json))
                )
            }
        }
    }

    /// The same PATCH answered at once, on the connection's event loop (`ImmediateAnswers`), when everything it needs
    /// is at hand: a token verified before, the Location cached, its turn free and its version unchanged while it is
    /// patched. Nil otherwise, and for every refusal: the route then answers (its errors have one form). Nothing is
    /// written unless the answer is the 200.
    /// The third value is the stored version the body is (the journal names it rather than copying the Location).
    public func patchNow(
        _ request: Request,
        body: ByteBuffer,
        identity: ClientIdentity?,
        environment: String
    ) -> (HTTPResponse, Data, StoredVersion)? {
        guard request.method == .patch, request.uri.path == Self.basePath + "/Location",
            body.readableBytes <= maximumBody
        else { return nil }
        do {
            guard
                let (_, entry) = try tokens.verifyNow(
                    authorization: request.headers[.authorization],
                    identity: identity,
                    environment: environment
                )
            else { return nil }
            let identifier = try identifier(request, entry: entry)
            let (patch, id) = try target(identifier, body: FHIRBody.json(request, body: body, what: Self.bodyWhat))
            // Waits if another event loop holds the turn (for a few hundred µs): see ``FeedTurns``.
            guard turns.take(id, waitingUpTo: turnWait) else { return nil }
            defer { turns.end(id) }
            guard let (base, location) = try cachedLocation(id),
                let stored = try attempt(
                    patch,
                    id: id,
                    base: base,
                    location: location,
                    entry: entry,
                    identity: identity
                )
            else { return nil }
            let (head, json) = Self.answer(stored, previous: base.version)
            return (head, json, StoredVersion(stored))
        } catch {
            return nil
        }
    }

    static let bodyWhat = "the capacity feed takes a FHIRPath Patch Parameters resource"

    /// The Location's identifier in the query, once the entry may feed (checked before the body is read).
    func identifier(_ request: Request, entry: WhitelistEntry) throws -> String {
        guard entry.role == .feed else {
            throw FHIRError(
                .forbidden,
                code: "forbidden",
                "Client '\(entry.clientId ?? "?")' is whitelisted to consume, not to feed capacities (role feed required)",
                expression: nil
            )
        }
        guard let identifier = request.uri.queryParameters["identifier"].map(String.init), !identifier.isEmpty else {
            throw FHIRError(
                .badRequest,
                code: "required",
                "The conditional PATCH names the Location: ?identifier=<idNatStructEtab>/<idExterne>",
                expression: ["identifier"]
            )
        }
        return identifier
    }

    /// The patch and the one Location it targets.
    func target(_ identifier: String, body: JSONObject) throws -> (FHIRPatch, String) {
        let patch = try Self.readPatch(body)
        // One index lookup, on this thread, kept until identifiers change.
        let matches = try repository.lookupIDs(type: "Location", parameter: "identifier", value: identifier)
        guard !matches.isEmpty else {
            throw FHIRError(
                .notFound,
                code: "not-found",
                "La Location avec l'identifiant externe de synchro OU l'identifiant unique de saisie : '\(identifier)' n'a pas été trouvée.",
                expression: ["Location"]
            )
        }
        guard matches.count == 1 else {
            throw FHIRError(
                .preconditionFailed,
                code: "multiple-matches",
                "La Location recherchée n'est pas unique, il y a '\(matches.count)' résultats",
                expression: ["Location"]
            )
        }
        return (patch, matches[0])
    }

    /// Patches, checks and serialises the Location as stored at `base` (the costly part, outside the writer), then
    /// writes it if the Location is still at that version. Nil: it changed meanwhile, nothing written.
    func attempt(
        _ patch: FHIRPatch,
        id: String,
        base: StoredResource,
        location: ParsedLocation,
        entry: WhitelistEntry,
        identity: ClientIdentity?
    ) throws -> StoredResource? {
        let object = location.object
        try authorise(entry: entry, identity: identity, location: object)
        var changes = ChangedElements()
        let patched = try FHIRPatchRequest.apply(patch, to: object, changes: &changes, answer: Self.rorAnswer)
        try validate(patched, original: object, patch: patch)
        // The Location against the RORLocation rules (the new indicators' structure, codes, types): the element
        // counts over all its extensions, the element checks on the indicators this patch wrote (the others are
        // the stored version's, checked when they were written).
        let issues = validator.validate(patched, changed: Self.patchedElements, changedElements: changes.byIndex)
        guard issues.isEmpty else { throw FHIRError(profileIssues: issues, resourceType: "Location") }
        let now = Date()
        // The indicators' search rows by difference: those of the indicators replaced or removed out, of the new in.
        let list = changes.origins["extension"].map {
            ResourceRepository.ListChange(
                name: "extension",
                original: object["extension"]?.array ?? [],
                origins: $0,
                rows: location.listRows
            )
        }
        let prepared = try repository.prepare(
            patched,
            version: base.version + 1,
            lastUpdated: now,
            partial: .init(
                elements: Self.patchedElements,
                list: list,
                layout: location.layout,
                previousRows: location.knownRows
            )
        )
        let repository = self.repository
        let written = try repository.store.writeInPlace { db -> Bool in
            guard try repository.currentVersion(type: "Location", id: id, in: db) == base.version else { return false }
            try repository.archive(base, replacedBy: prepared, in: db)
            try repository.write(prepared, in: db)
            return true
        }
        guard written else { return nil }
        parsedLocations.keep(
            ParsedLocation(
                json: prepared.stored.json,
                object: ResourceRepository.stamped(patched, version: prepared.stored.version, lastUpdated: now),
                layout: prepared.layout,
                listRows: prepared.listRows,
                knownRows: prepared.knownRows
            ),
            for: id
        )
        return prepared.stored
    }

    /// The 200: the new version, its validators, and the version it replaced.
    static func answer(_ stored: StoredResource, previous: Int) -> (HTTPResponse, Data) {
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = OperationOutcome.contentType
        head.headerFields[.eTag] = "W/\"\(stored.version)\""
        head.headerFields[.lastModified] = RORFHIRService.httpDate(stored.lastUpdated)
        head.headerFields[.contentLocation] = "\(basePath)/Location/\(stored.id)/_history/\(stored.version)"
        // The journal keeps response headers: this links the row to the version the PATCH replaced.
        head.headerFields[HTTPField.Name("X-Sandbox-Previous-Version")!] = "\(previous)"
        return (head, stored.json)
    }

    /// The stored Location and its JSON (a feed racing a reset can find it gone).
    func location(_ id: String) async throws -> (StoredResource, ParsedLocation) {
        if let stored = try await repository.read(type: "Location", id: id), let parsed = try parsed(stored, id: id) {
            return parsed
        }
        throw FHIRError(.notFound, code: "not-found", "Location/\(id) disappeared", expression: ["Location"])
    }

    /// The same when the Location is in the read cache; nil otherwise.
    func cachedLocation(_ id: String) throws -> (StoredResource, ParsedLocation)? {
        try repository.readIfCached(type: "Location", id: id).flatMap { try parsed($0, id: id) }
    }

    private func parsed(_ stored: StoredResource, id: String) throws -> (StoredResource, ParsedLocation)? {
        if let parsed = parsedLocations.location(for: id, json: stored.json) { return (stored, parsed) }
        guard case .object(let object) = try JSON(parsing: stored.json) else { return nil }
        let parsed = ParsedLocation(json: stored.json, object: object)
        parsedLocations.keep(parsed, for: id)
        return (stored, parsed)
    }

    /// Parses the body as a `Parameters` patch whose operations all target the capacity indicators.
    static func readPatch(_ object: JSONObject) throws -> FHIRPatch {
        let patch = try FHIRPatchRequest.read(object)
        for operation in patch.operations
        where !operation.pathText.utf8.lazy.filter({ $0 != 0x20 }).starts(with: capacityPathStart.utf8) {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "This endpoint only changes capacity indicators: every path starts with \(capacityPath)",
                expression: [operation.pathText]
            )
        }
        return patch
    }

    /// The ROR's own answers when a capacity patch does not apply (the client algorithm depends on the 404).
    static func rorAnswer(_ failure: FHIRPatch.Failure) -> FHIRError? {
        switch failure.kind {
        case .noMatch:
            return FHIRError(
                .notFound,
                code: "not-found",
                "\(failure.message) : Aucun indicateur présent en base ne correspond (envoyer un add pour le créer)",
                expression: ["Location.extension.where(url='\(capacityURL)')"]
            )
        case .multipleMatches:
            return FHIRError(
                .badRequest,
                code: "business-rule",
                "\(failure.message) : le chemin doit désigner un seul indicateur",
                expression: [failure.expression]
            )
        default:
            return nil
        }
    }

    /// The Location's establishment must be one the entry feeds (EAI/SaaS list) or the certificate's own (proprietary
    /// solutions: one certificate per establishment, FINESS in the OU as `1<FINESS>`).
    func authorise(entry: WhitelistEntry, identity: ClientIdentity?, location: JSONObject) throws {
        let owner = location["managingOrganization"]?["reference"]?.string?.split(separator: "/").last.map(String.init)
        // The establishment's identifiers from the search index (no JSON to read on this hot path), kept until
        // identifiers change.
        let codes =
            try owner.map { Set(try repository.indexedCodes(type: "Organization", id: $0, parameter: "identifier")) }
            ?? []
        // idNat_Struct is "1" + FINESS: either form names the establishment.
        let finess = Set(codes.flatMap { [$0, $0.hasPrefix("1") && $0.count == 10 ? String($0.dropFirst()) : $0] })
        let allowed = Set(entry.establishments)
        let own = identity?.subject.value(of: "OU").map { $0.hasPrefix("1") ? String($0.dropFirst()) : $0 }
        guard !finess.isDisjoint(with: allowed) || own.map({ finess.contains($0) }) == true else {
            let name = codes.sorted().first ?? owner ?? "?"
            throw FHIRError(
                .forbidden,
                code: "forbidden",
                "Client '\(entry.clientId ?? "?")' may not feed establishment \(name): not in its establishment list (\(entry.establishments.joined(separator: ", "))) nor its certificate's",
                expression: ["Location.managingOrganization"]
            )
        }
    }

    /// Every indicator added or replaced must be a valid one, of the Location's capacity nature, and unique.
    func validate(_ patched: JSONObject, original: JSONObject, patch: FHIRPatch) throws {
        let nature = Self.installedNature(original)
        for operation in patch.operations where operation.kind != .delete {
            guard case .object(let indicator)? = operation.value, indicator["url"]?.string == Self.capacityURL else {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "The value of \(operation.kind.rawValue) is a \(Self.capacityURL) extension (valueExtension)",
                    expression: [operation.pathText]
                )
            }
            let qualifiers = Self.qualifiers(indicator)
            for name in RORCapacityIndicators.required where qualifiers[name] == nil {
                throw FHIRError(
                    .badRequest,
                    code: "business-rule",
                    "Indicateur incomplet : la sous-extension '\(name)' est obligatoire",
                    expression: [operation.pathText]
                )
            }
            guard let known = indicators.indicator(qualifiers) else {
                let listed = RORCapacityIndicators.key.map { "\($0): \(qualifiers[$0] ?? "null")" }.joined(
                    separator: " / "
                )
                throw FHIRError(
                    .badRequest,
                    code: "business-rule",
                    "Les valeurs du nouvel objet ne correspondent pas à un indicateur valide : \(listed)",
                    expression: [operation.pathText]
                )
            }
            let type = qualifiers["capacityType"] ?? ""
            guard known.capacityType.contains(type), nature.map({ $0 == type }) ?? true else {
                throw FHIRError(
                    .badRequest,
                    code: "business-rule",
                    "Indicateur \(known.label) : L'attribut 'natureCapacite' a un code différent de celui attendu (\(type) ; attendu \(nature ?? known.capacityType.joined(separator: "|")))",
                    expression: [operation.pathText]
                )
            }
        }
        var seen = Set<[String?]>()
        for indicator in Self.indicatorsOf(patched) {
            let key = Self.qualifiers(indicator, RORCapacityIndicators.key)
            guard seen.insert(key).inserted else {
                throw FHIRError(
                    .badRequest,
                    code: "business-rule",
                    "L'indicateur \(key.map { $0 ?? "null" }.joined(separator: "/")) serait présent deux fois : utiliser replace",
                    expression: [Self.capacityPath]
                )
            }
        }
    }

    static func indicatorsOf(_ location: JSONObject) -> [JSONObject] {
        (location["extension"]?.array ?? []).compactMap { $0.object }.filter { $0["url"]?.string == capacityURL }
    }

    /// Sub-extension codes (and the count) of an indicator, by relative url.
    static func qualifiers(_ indicator: JSONObject) -> [String: String] {
        let parts = indicator["extension"]?.array ?? []
        var result: [String: String] = Dictionary(minimumCapacity: parts.count)
        for case .object(let part) in parts {
            guard let url = part["url"]?.string, let value = qualifier(part) else { continue }
            result[url] = value
        }
        return result
    }

    /// The sub-extensions `names` of an indicator, in that order (nil: absent): what ``qualifiers(_:)`` gives for
    /// them, without building a dictionary (the duplicate check reads every indicator of the Location, every PATCH).
    static func qualifiers(_ indicator: JSONObject, _ names: [String]) -> [String?] {
        var result = [String?](repeating: nil, count: names.count)
        for case .object(let part) in indicator["extension"]?.array ?? [] {
            guard let url = part["url"]?.string, let index = names.firstIndex(of: url), let value = qualifier(part)
            else { continue }
            result[index] = value
        }
        return result
    }

    /// A sub-extension's code (or count).
    private static func qualifier(_ part: JSONObject) -> String? {
        if let code = part["valueCode"]?.string { return code }
        if let code = part["valueCodeableConcept"]?["coding"]?.array?.first?["code"]?.string { return code }
        return part.first(withPrefix: "value").map { $0.value.string ?? $0.value.text }
    }

    /// The nature (TRE_R329) of the Location's installed capacity, when it has one: feeds keep to it.
    static func installedNature(_ location: JSONObject) -> String? {
        indicatorsOf(location).lazy.map { qualifiers($0, ["capacityStatus", "capacityType"]) }.first { $0[0] == "01" }?[
            1
        ] ?? nil
    }
}

/// Capacity feeds of one Location take turns. Two at once patched the same version, and the second redid all its work
/// on the version the first wrote: with 8 feeders on 4 places, a quarter of the PATCHes did (~10 % of the CPU).
///
/// A feed answered at once (``RORCapacityFeed/patchNow(_:body:identity:environment:)``) holds its turn for its
/// synchronous work only (~0.3 ms, on another event loop): one that finds the turn so held waits for it on its
/// thread rather than handing its PATCH to the route, which costs twice as much (figures in `docs/performance.md`).
/// A turn held by the route (asynchronous: it may
/// wait for a read) is never waited for on a thread.
final class FeedTurns: Sendable {
    /// A feed waiting for its turn: a task (the route), or a thread (an event loop answering at once).
    enum Waiter {
        case task(CheckedContinuation<Void, Never>)
        case thread(DispatchSemaphore)
    }

    /// A Location being fed: whether a thread holds the turn, and the feeds waiting for it, in arrival order.
    struct Turn {
        var heldByThread: Bool
        var waiting: [Waiter] = []
    }

    private let state = NIOLockedValueBox<[String: Turn]>([:])

    /// How many feeds wait for the turn of `id` (for tests that must know a waiter is queued).
    func waitingCount(_ id: String) -> Int {
        state.withLockedValue { $0[id]?.waiting.count ?? 0 }
    }

    /// Takes the turn for a thread: at once if it is free, after a wait of up to `timeout` if another thread holds it
    /// (and none of the feeds queued before is a task); false otherwise.
    func take(_ id: String, waitingUpTo timeout: DispatchTimeInterval) -> Bool {
        // The turn, a refusal, or a place in the queue (a semaphore only then: most feeds find their turn free).
        enum Outcome {
            case decided(Bool)
            case queued(DispatchSemaphore)
        }
        let outcome = state.withLockedValue { turns -> Outcome in
            guard var turn = turns[id] else {
                turns[id] = Turn(heldByThread: true)
                return .decided(true)
            }
            guard turn.heldByThread, turn.waiting.allSatisfy({ if case .thread = $0 { true } else { false } }) else {
                return .decided(false)
            }
            let semaphore = DispatchSemaphore(value: 0)
            turn.waiting.append(.thread(semaphore))
            turns[id] = turn
            return .queued(semaphore)
        }
        let semaphore: DispatchSemaphore
        switch outcome {
        case .decided(let taken): return taken
        case .queued(let queued): semaphore = queued
        }
        if semaphore.wait(timeout: .now() + timeout) == .success { return true }
        // Timed out, unless the turn was handed over meanwhile: then it is ours (its signal is taken).
        let withdrawn = state.withLockedValue { turns -> Bool in
            guard
                let index = turns[id]?.waiting.firstIndex(where: {
                    if case .thread(let other) = $0 { other === semaphore } else { false }
                })
            else { return false }
            turns[id]!.waiting.remove(at: index)
            return true
        }
        if withdrawn { return false }
        semaphore.wait()
        return true
    }

    /// Takes the turn for a task, waiting for it as long as it takes.
    func begin(_ id: String) async {
        if take(task: id) { return }
        await withCheckedContinuation { continuation in
            // Taken again under the lock: the turn may have been given up since the first look.
            let free = state.withLockedValue { turns in
                guard turns[id] != nil else {
                    turns[id] = Turn(heldByThread: false)
                    return true
                }
                turns[id]!.waiting.append(.task(continuation))
                return false
            }
            if free { continuation.resume() }
        }
    }

    /// Gives the turn to the next feed waiting, if any.
    func end(_ id: String) {
        let next = state.withLockedValue { turns -> Waiter? in
            guard var turn = turns[id], !turn.waiting.isEmpty else {
                turns[id] = nil
                return nil
            }
            let next = turn.waiting.removeFirst()
            if case .thread = next { turn.heldByThread = true } else { turn.heldByThread = false }
            turns[id] = turn
            return next
        }
        switch next {
        case .task(let continuation): continuation.resume()
        case .thread(let semaphore): semaphore.signal()
        case nil: break
        }
    }

    private func take(task id: String) -> Bool {
        state.withLockedValue { turns in
            guard turns[id] == nil else { return false }
            turns[id] = Turn(heldByThread: false)
            return true
        }
    }
}

/// The Locations fed recently, parsed: a feeder sends the same Locations all day, and parsing the stored JSON again
/// was a tenth of a capacity PATCH. An entry serves only while the stored JSON is byte for byte the one it was
/// parsed from (any other write, a reset, a reload makes it stale).
final class ParsedLocations: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: ParsedLocation] = [:]

    func location(for id: String, json: Data) -> ParsedLocation? {
        lock.withLock { entries[id].flatMap { $0.json == json ? $0 : nil } }
    }

    func keep(_ location: ParsedLocation, for id: String) {
        lock.withLock {
            if entries.count >= 4096, entries[id] == nil { entries.removeAll() }
            entries[id] = location
        }
    }
}

/// A stored Location's JSON, parsed, and what the `prepare` that wrote it knew: where its members sit in it
/// (``JSONLayout``), the search rows of its indicators.
struct ParsedLocation {
    var json: Data
    var object: JSONObject
    var layout: JSONLayout? = nil
    /// The search rows of its indicators, by position (``ResourceRepository/ListRows``).
    var listRows: ResourceRepository.ListRows? = nil
    /// Its search rows of the other parameters a capacity PATCH extracts again (`meta`'s).
    var knownRows: ResourceRepository.KnownRows? = nil
}
