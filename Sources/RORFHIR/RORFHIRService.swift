import Access
import FHIRCore
import Foundation
import GRDB
import HTTPCommon
import HTTPTypes
import Hummingbird
import JWTKit
import Store

/// The national ROR's FHIR consumer API under `/ws-diffusion-fhir`: `metadata`, read, search (GET and
/// `POST _search`), HAPI-style paging. JSON only (`application/fhir+json`), as the sandbox states in a 406.
public final class RORFHIRService: Sendable {
    public static let basePath = SandboxService.Path.rorConsumer
    public let repository: ResourceRepository
    public let executor: SearchExecutor
    public let snapshots = SearchSnapshots()
    public let tokens: RORTokenService
    public let export: RORBulkExport
    public let policy: RORAccessPolicy
    /// The capacity feed (`/ws-synchro-dispo-lits-fhir`).
    public let feed: RORCapacityFeed

    /// The ROR profile rules every write is checked against (`Seeds/terminology`).
    public let validator: ProfileValidator
    /// Largest write body (`--max-body`).
    public let maximumBody: Int

    public init(
        store: SandboxStore,
        tokens: RORTokenService,
        indicators: RORCapacityIndicators = RORCapacityIndicators(),
        validator: ProfileValidator = ProfileValidator(),
        maximumBody: Int = 10 << 20
    ) {
        self.validator = validator
        self.maximumBody = maximumBody
        self.repository = ResourceRepository(store: store, registry: RORSearchParameters.registry)
        let policy = RORAccessPolicy(repository: repository)
        self.policy = policy
        self.executor = SearchExecutor(repository: repository, snapshots: snapshots, visibility: policy.visible)
        self.tokens = tokens
        self.export = RORBulkExport(repository: repository, policy: policy)
        self.feed = RORCapacityFeed(
            repository: repository,
            tokens: tokens,
            indicators: indicators,
            validator: validator,
            maximumBody: maximumBody
        )
    }

    // MARK: Data

    /// Loads `Seeds/ror/*.json` (``RORSeedDataset``) when the store holds no ROR resource yet, or, with `replace`
    /// (reset), in place of what is stored. Returns the number of resources stored.
    @discardableResult
    public func loadSeeds(
        from seeds: URL?,
        replace: Bool,
        progress: (_ filesDone: Int, _ files: Int) -> Void = { _, _ in }
    ) throws -> Int {
        let files = try seeds.map { try RORSeedDataset(seeds: $0).jsonFiles() } ?? []
        // A reset over a prebuilt database that still stands for the JSON rewrites only what changed since.
        if replace, let seeds, repository.store.path != nil {
            let dataset = RORSeedDataset(seeds: seeds)
            if try dataset.prebuiltMismatch(registry: repository.registry) == nil {
                progress(0, files.count)
                let restored = try repository.restore(fromPrebuilt: dataset.prebuiltFile.path)
                progress(files.count, files.count)
                return restored
            }
        }
        let count = try repository.store.writer.write { db -> Int in
            // EXISTS, not COUNT(*): this runs at every start, on tables of hundreds of thousands of rows.
            if !replace, try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM fhir_resource)") == true { return 0 }
            if replace {
                // In the same transaction as the reload: a broken seed file leaves the previous data in place.
                repository.resourcesChanged(in: db)
                try db.execute(sql: "DELETE FROM fhir_index")
                try db.execute(sql: "DELETE FROM fhir_resource")
                try db.execute(sql: "DELETE FROM fhir_history")
            }
            progress(0, files.count)
            return try RORSeedDataset.load(files, into: repository, db: db, progress: progress)
        }
        // Fold the load's large WAL into the database now rather than at the next start.
        if count > 0, repository.store.path != nil {
            try? repository.store.writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        }
        return count
    }

    // MARK: Routes

    public func addRoutes<Context: RequestContext & CallerContext>(to router: Router<Context>) {
        tokens.addRoutes(to: router)
        feed.addRoutes(to: router)
        // `metadata` is open, as HAPI serves its CapabilityStatement (assumption: the real gateway's behaviour
        // there is not documented); everything else goes through the consumer checks.
        router.get(RouterPath(Self.basePath + "/metadata")) { request, _ in
            try self.negotiate(request)
            return FHIRResponse.json(.ok, RORCapabilityStatement.json(registry: self.repository.registry))
        }
        let group = router.group(RouterPath(Self.basePath)).add(
            middleware: ConsumerAuthorization<Context>(tokens: tokens)
        )
        group.get { request, _ in try await self.page(request) }
        group.get("OperationDefinition/:id") { request, context in
            try self.negotiate(request)
            let id = context.parameters.get("id") ?? ""
            guard let definition = RORCapabilityStatement.operationDefinitions[id] else {
                throw FHIRError(
                    .notFound,
                    code: "not-found",
                    "OperationDefinition/\(id) is not known (known: \(RORCapabilityStatement.operationDefinitions.keys.sorted().joined(separator: ", ")))",
                    expression: ["OperationDefinition"]
                )
            }
            return FHIRResponse.json(
                .ok,
                try JSONSerialization.data(withJSONObject: definition, options: [.sortedKeys, .withoutEscapingSlashes])
            )
        }
        group.get("$export") { request, _ in try self.export.kickOff(request, baseURL: self.baseURL(request)) }
        group.get("$export-poll-status") { request, _ in try self.export.poll(request, baseURL: self.baseURL(request)) }
        group.get("$export-get-file") { request, _ in try self.export.file(request) }
        addWriteRoutes(to: group)
        group.get(":type") { request, context in
            try self.negotiate(request)
            return try await self.search(request, type: try self.type(context), items: Self.queryItems(request))
        }
        group.post(":type/_search") { request, context in
            var request = request
            try self.negotiate(request)
            let body = try await request.collectBody(upTo: 1024 * 1024)
            let form = FormEncoding.items(String(buffer: body))
            return try await self.search(request, type: try self.type(context), items: Self.queryItems(request) + form)
        }
        group.get(":type/:id") { request, context in
            try self.negotiate(request)
            let type = try self.type(context)
            let id = context.parameters.get("id") ?? ""
            guard let stored = try await self.repository.read(type: type, id: id),
                let resource = try await self.policy.visible([stored]).first
            else {
                throw FHIRError(.notFound, code: "not-found", "Resource \(type)/\(id) is not known", expression: [type])
            }
            let (head, body) = Self.readAnswer(resource)
            return Response(
                status: head.status,
                headers: head.headerFields,
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
        // Other methods on the base (transactions, batches) are not offered. Unmatched paths under the base reach
        // the router's 404, which the access layer writes as an OperationOutcome.
        for method in [HTTPRequest.Method.post, .put, .patch, .delete] {
            group.on("", method: method) { request, _ -> Response in
                throw FHIRError(
                    .methodNotAllowed,
                    code: "not-supported",
                    "No ROR operation answers \(request.method.rawValue) \(request.uri.path) (transactions and batches are not offered)",
                    expression: nil
                )
            }
        }
        for path in [":type/:id/_history", ":type/:id/_history/:version", ":type/_history", "_history"] {
            group.get(RouterPath(path)) { _, _ -> Response in
                throw FHIRError(
                    .methodNotAllowed,
                    code: "not-supported",
                    "The national ROR keeps no history: vread and _history are not supported",
                    expression: nil
                )
            }
        }
    }

    func type<Context: RequestContext>(_ context: Context) throws -> String {
        let type = context.parameters.get("type") ?? ""
        guard repository.registry.parameters[type] != nil else {
            throw FHIRError(
                .badRequest,
                code: "not-supported",
                "Unknown resource type '\(type)': this server serves \(repository.registry.resourceTypes.joined(separator: ", "))",
                expression: nil
            )
        }
        return type
    }

    func search(_ request: Request, type: String, items: [(String, String)]) async throws -> Response {
        let lenient = request.headers[HTTPField.Name("Prefer")!]?.contains("handling=lenient") == true
        var search: SearchRequest
        do {
            search = try SearchRequest(type: type, items: items, registry: repository.registry, lenient: lenient)
        } catch let error as SearchError {
            throw FHIRError(.badRequest, code: "invalid", error.message, expression: [error.parameter])
        }
        if type == "HealthcareService", RORAccessPolicy.hidesSensitiveUnits(RORCaller.profile),
            let sensitive = repository.registry.parameter("sensitive-unit", of: type)
        {
            // Filtered in the query, so totals and pages count only what this profile may see.
            search.conditions.append(
                .parameter(sensitive, modifier: "not", values: ["true"], raw: "sensitive-unit:not")
            )
        }
        let query = items.map { "\(FormEncoding.encode($0.0))=\(FormEncoding.encode($0.1))" }.joined(separator: "&")
        let page: SearchExecutor.Page
        do {
            page = try await executor.search(search, baseURL: baseURL(request), query: query)
        } catch {
            guard let shape = SearchError.queryShape(error, items: items) else { throw error }
            throw FHIRError(.badRequest, code: "too-costly", shape.message, expression: [shape.parameter])
        }
        return Self.answer(page)
    }

    func page(_ request: Request) async throws -> Response {
        try negotiate(request)
        let query = request.uri.queryParameters
        guard let key = query["_getpages"].map(String.init) else {
            throw FHIRError(
                .badRequest,
                code: "not-supported",
                "A search names a resource type: \(Self.basePath)/[type]?…",
                expression: nil
            )
        }
        let offset = Int(query["_getpagesoffset"].map(String.init) ?? "0") ?? -1
        let count = Int(query["_count"].map(String.init) ?? "\(SearchRequest.defaultCount)") ?? -1
        guard offset >= 0, (1...SearchRequest.maximumCount).contains(count) else {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "_getpagesoffset and _count must be non-negative integers",
                expression: ["_getpagesoffset"]
            )
        }
        guard let page = try await executor.page(key: key, offset: offset, count: count, baseURL: baseURL(request))
        else {
            throw FHIRError(
                .gone,
                code: "not-found",
                "Search \(key) has expired or never existed: run the search again",
                expression: ["_getpages"]
            )
        }
        return Self.answer(page)
    }

    /// A searchset page answered, the journal told what it is made of (it keeps the resources' versions, not a copy).
    static func answer(_ page: SearchExecutor.Page) -> Response {
        JournalNotes.answering(
            page.body,
            madeAs: JournalPage(
                parts: page.parts.map { part in
                    switch part {
                    case .bytes(let bytes): .bytes(bytes)
                    case .resource(let resource): .version(StoredVersion(resource))
                    }
                },
                length: page.body.count
            )
        )
        return FHIRResponse.json(.ok, page.body)
    }

    /// The base URL clients used (host header), so links work through port mappings.
    func baseURL(_ request: Request) -> String {
        let host = request.head.authority ?? "localhost"
        return "https://\(host)\(Self.basePath)"
    }

    // MARK: Reads answered at once

    /// `GET [type]/[id]` answered without waiting, on the connection's own thread, when everything it needs is in
    /// memory: a token whose signature was verified before, the resource in the read cache, a profile whose view
    /// of it depends on the resource alone (all but 3). The same checks in the same order, the same bytes as the
    /// `:type/:id` route (they share ``readAnswer(_:)`` and the checks); nil for anything else — an error included,
    /// which the route then answers, so every error keeps one form and one place.
    public func readNow(_ request: Request, identity: ClientIdentity?, environment: String) -> (HTTPResponse, Data)? {
        guard request.method == .get, request.uri.query == nil, let (type, id) = Self.readTarget(request.uri.path),
            repository.registry.parameters[type] != nil
        else { return nil }
        do {
            guard
                let (token, entry) = try tokens.verifyNow(
                    authorization: request.headers[.authorization],
                    identity: identity,
                    environment: environment
                )
            else { return nil }
            try RORConsumerHeaders.check(request.headers, entry: entry)
            try negotiate(request)
            guard let stored = repository.readIfCached(type: type, id: id),
                let resource = policy.visibleNow([stored], profile: RORConsumerHeaders.profile(token, entry))?.first
            else { return nil }
            return Self.readAnswer(resource)
        } catch {
            return nil
        }
    }

    /// The type and id of a path only the `:type/:id` route answers (`/ws-diffusion-fhir/Location/loc-1`): FHIR id
    /// characters, no other route's names.
    static func readTarget(_ path: String) -> (String, String)? {
        guard path.hasPrefix(basePath + "/") else { return nil }
        let parts = path.utf8.dropFirst(basePath.utf8.count + 1).split(
            separator: UInt8(ascii: "/"),
            omittingEmptySubsequences: false
        )
        guard parts.count == 2, let type = String(parts[0]), let id = String(parts[1]), type != "OperationDefinition",
            (1...64).contains(id.utf8.count),
            id.utf8.allSatisfy({
                $0 == 0x2D || $0 == 0x2E || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
                    || (0x61...0x7A).contains($0)
            })
        else { return nil }
        return (type, id)
    }

    /// The 200 of a read: the resource as the caller may see it, its version as `ETag`, `Last-Modified`.
    static func readAnswer(_ resource: StoredResource) -> (HTTPResponse, Data) {
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = OperationOutcome.contentType
        head.headerFields[.eTag] = "W/\"\(resource.version)\""
        head.headerFields[.lastModified] = httpDate(resource.lastUpdated)
        return (head, resource.json)
    }

    /// JSON only: `_format=xml` or an XML-only `Accept` is a 406.
    func negotiate(_ request: Request) throws {
        let format =
            request.uri.query == nil ? nil : request.uri.queryParameters["_format"].map { String($0).lowercased() }
        if let format,
            !["json", "application/json", "application/fhir+json"].contains(
                format.split(separator: ";").first.map(String.init) ?? format
            )
        {
            throw FHIRError(
                .notAcceptable,
                code: "not-supported",
                "This sandbox answers in JSON only (application/fhir+json); _format=\(format) is not supported",
                expression: ["_format"]
            )
        }
        // Lowercased only when it has capitals (`*/*` and `application/fhir+json` are the usual values).
        if let sent = request.headers[.accept], !sent.isEmpty,
            case let accept = sent.utf8.contains(where: { (0x41...0x5A).contains($0) }) ? sent.lowercased() : sent,
            !Self.mentions(accept, "json"), !Self.mentions(accept, "*/*")
        {
            throw FHIRError(
                .notAcceptable,
                code: "not-supported",
                "This sandbox answers in JSON only (application/fhir+json); Accept: \(accept) cannot be honoured",
                expression: nil
            )
        }
    }

    // MARK: Helpers

    /// Whether `text` contains `word`, byte for byte (Foundation's `contains` bridged to NSString: 2 % of a read).
    static func mentions(_ text: String, _ word: String) -> Bool {
        let text = Array(text.utf8)
        let word = Array(word.utf8)
        guard word.count <= text.count else { return false }
        return (0...(text.count - word.count)).contains { start in
            text[start..<(start + word.count)].elementsEqual(word)
        }
    }

    /// Query items in order, percent-decoded (`+` is a space in forms).
    static func queryItems(_ request: Request) -> [(String, String)] {
        FormEncoding.items(request.uri.query ?? "")
    }

    /// `Last-Modified` from a stored `meta.lastUpdated` (`2026-11-22T03:05:23.303+00:00`).
    static func httpDate(_ instant: String) -> String {
        HTTPDate.string(iso: instant) ?? instant
    }
}

/// The four `Ror-*` header names as field names, built once.
enum RORHeaderFields {
    static let all: [(String, HTTPField.Name)] = Whitelist.rorHeaderNames.map { ($0, HTTPField.Name($0)!) }
}

/// Every consumer call carries `Authorization: Bearer` (a token from the realm `ror`, bound to the presented
/// certificate) and the four `Ror-*` headers with the values registered for the client.
struct ConsumerAuthorization<Context: RequestContext & CallerContext>: RouterMiddleware {
    let tokens: RORTokenService

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let (token, entry) = try await tokens.verify(
            authorization: request.headers[.authorization],
            identity: context.identity,
            environment: context.environment
        )
        try RORConsumerHeaders.check(request.headers, entry: entry)
        return try await RORCaller.$profile.withValue(RORConsumerHeaders.profile(token, entry)) {
            try await next(request, context)
        }
    }
}

/// The four `Ror-*` headers every consumer call carries, and the access profile they come with.
enum RORConsumerHeaders {
    /// Each header present, and equal to the value registered for the client when one is.
    static func check(_ headers: HTTPFields, entry: WhitelistEntry) throws {
        for (name, field) in RORHeaderFields.all {
            guard let value = headers[field], !value.isEmpty else {
                throw FHIRError(
                    .badRequest,
                    code: "required",
                    "Missing header \(name): ROR consumer calls carry the four Ror-* headers given with the access profile",
                    expression: [name]
                )
            }
            // Registered names may be written in any case (compared byte by byte, ASCII case folded: no name or
            // string built per call).
            if let expected = entry.rorHeaders?.first(where: { Self.sameName($0.key, name) })?.value,
                expected != value
            {
                throw FHIRError(
                    .forbidden,
                    code: "forbidden",
                    "Header \(name) '\(value)' does not match the value registered for client '\(entry.clientId ?? "?")'",
                    expression: [name]
                )
            }
        }
    }

    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    /// The caller's access profile: the whitelist entry's, else the token's.
    static func profile(_ token: RORAccessToken, _ entry: WhitelistEntry) -> Int? {
        entry.accessProfile ?? token.profil
    }
}

extension StoredVersion {
    /// The version the journal names for a stored resource answered as it is stored.
    init(_ resource: StoredResource) {
        self.init(type: resource.type, id: resource.id, version: resource.version, lastUpdated: resource.lastUpdated)
    }
}
