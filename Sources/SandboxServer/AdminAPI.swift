import Access
import Foundation
import HTTPCommon
import HTTPTypes
import Hummingbird
import MonEspaceSante
import NIOCore
import Store

public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    public var responseEncoder: JSONEncoder { SandboxJSON.encoder }
    public var requestDecoder: JSONDecoder { SandboxJSON.decoder }
}

/// The admin API (plain HTTP, loopback by default): health, whitelist, journal, reset, and its OpenAPI document.
/// Errors are `{"error": "…"}` with a 4xx status.
enum AdminAPI {
    /// The guards every admin and console request passes: same origin, and the admin token when one is set.
    static func addGuards(to router: Router<AdminRequestContext>, adminToken: String?) {
        router.add(middleware: SameOriginMiddleware())
        if let token = adminToken, !token.isEmpty {
            router.add(middleware: AdminTokenMiddleware(token: token))
            AdminTokenMiddleware.addLogin(to: router, token: token)
        }
    }

    /// `/admin/health`, `/admin/whitelist`, `/admin/journal`, `/admin/reset`; `reset(all)` puts the data back to the
    /// seeds (with `all`, the whitelist, onboarding and CRL too).
    static func add(
        to admin: RouterGroup<AdminRequestContext>,
        health: @escaping @Sendable () async -> Health,
        whitelist: Whitelist,
        journal: Journal,
        reset: @escaping @Sendable (_ all: Bool) throws -> Void,
        resetProgress: @escaping @Sendable () -> Sandbox.ResetProgress
    ) {
        admin.get("health") { _, _ in SandboxJSON.response(await health()) }

        admin.get("whitelist") { _, _ in
            do {
                return SandboxJSON.response(try whitelist.entries().map(WhitelistEntry.View.init))
            } catch {
                return SandboxJSON.unexpected(error, doing: "could not read the whitelist")
            }
        }

        admin.post("whitelist") { request, _ in
            let whitelistRequest: WhitelistRequest
            switch await decodeBody(request, as: WhitelistRequest.self, "whitelist entry") {
            case .refusal(let response): return response
            case .value(let value): whitelistRequest = value
            }
            do {
                let entry = try whitelist.create(try Whitelist.entry(from: whitelistRequest, origin: "admin"))
                return SandboxJSON.response(WhitelistEntry.View(entry), status: .created)
            } catch let error as WhitelistError {
                return SandboxJSON.error(error.existing == nil ? .badRequest : .conflict, error.description)
            }
        }

        admin.put("whitelist/:id") { request, context in
            guard let id = context.parameters.get("id", as: Int64.self) else {
                return SandboxJSON.error(.badRequest, "the entry id must be an integer")
            }
            let whitelistRequest: WhitelistRequest
            switch await decodeBody(request, as: WhitelistRequest.self, "whitelist entry") {
            case .refusal(let response): return response
            case .value(let value): whitelistRequest = value
            }
            do {
                guard
                    let entry = try whitelist.update(
                        id: id,
                        to: try Whitelist.entry(from: whitelistRequest, origin: "admin")
                    )
                else {
                    return SandboxJSON.error(.notFound, "no whitelist entry \(id)")
                }
                return SandboxJSON.response(WhitelistEntry.View(entry))
            } catch let error as WhitelistError {
                return SandboxJSON.error(.badRequest, error.description)
            }
        }

        admin.delete("whitelist/:id") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self) else {
                return SandboxJSON.error(.badRequest, "the entry id must be an integer")
            }
            guard try whitelist.remove(id: id) else {
                return SandboxJSON.error(.notFound, "no whitelist entry \(id)")
            }
            return Response(status: .noContent)
        }

        admin.get("journal") { request, _ in
            var filter = JournalFilter()
            let query = request.uri.queryParameters
            if let limit = query["limit"] {
                guard let value = Int(String(limit)), (1...10_000).contains(value) else {
                    return SandboxJSON.error(.badRequest, "limit must be an integer from 1 to 10000")
                }
                filter.limit = value
            }
            if let decision = query["decision"] {
                guard let value = JournalDecision(rawValue: String(decision)) else {
                    return SandboxJSON.error(.badRequest, "decision must be accepted or refused")
                }
                filter.decision = value
            }
            if let after = query["after"] {
                guard let value = Int64(String(after)) else {
                    return SandboxJSON.error(.badRequest, "after must be a journal id")
                }
                filter.afterID = value
            }
            filter.service = query["service"].map(String.init)
            return SandboxJSON.response(try journal.entries(filter).map(JournalEntry.View.init))
        }

        admin.post("reset") { request, _ in
            let scope = request.uri.queryParameters["scope"].map(String.init) ?? "data"
            guard scope == "data" || scope == "all" else {
                return SandboxJSON.error(.badRequest, "scope must be data (default) or all")
            }
            try reset(scope == "all")
            return SandboxJSON.response(["reset": scope])
        }
        admin.get("reset") { _, _ in SandboxJSON.response(resetProgress()) }

    }

    /// `GET /admin/openapi.json`: the admin API's OpenAPI 3.1 document (`Resources/admin-openapi.json`).
    static func addOpenAPI(to admin: RouterGroup<AdminRequestContext>) {
        admin.get("openapi.json") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: AdminOpenAPI.document))
            )
        }
    }

    enum Decoded<Value> {
        case value(Value)
        case refusal(Response)
    }

    /// A JSON request body (at most 1 MiB) as `Value`, or the 413/400 answer naming what is wrong.
    static func decodeBody<Value: Decodable>(_ request: Request, as: Value.Type, _ what: String) async -> Decoded<Value>
    {
        var request = request
        guard let body = try? await request.collectBody(upTo: 1024 * 1024) else {
            return .refusal(SandboxJSON.error(.contentTooLarge, "a \(what) is at most 1 MiB of JSON"))
        }
        return decode(body, as: Value.self, what)
    }

    /// A collected body as `Value`, or the 400 naming what is wrong.
    static func decode<Value: Decodable>(_ body: ByteBuffer, as: Value.Type, _ what: String) -> Decoded<Value> {
        do {
            return .value(try SandboxJSON.decoder.decode(Value.self, from: body))
        } catch {
            return .refusal(
                SandboxJSON.error(.badRequest, "body must be a JSON \(what): \(describe(decodingError: error))")
            )
        }
    }

    struct Health: Encodable, Sendable {
        var status: String
        var environment: String
        var tls: String
        var admin: String
        var rejectMode: String
        var whitelistEntries: Int
        var uptimeSeconds: Double
        var environments: [ReadyEnvironment]
        var clock: SandboxClock.View
        var onboardingWaiting: Int
    }

    static func describe(decodingError error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        case .dataCorrupted(let context): "invalid JSON (\(context.debugDescription))"
        default: "\(error)"
        }
    }
}

/// The admin listener's last word on what its routes leave unanswered: a path no route serves (404), a body over a
/// route's limit (413), a full disk (507 with a Retry-After), any other error (500 saying what failed) — as
/// `{"error"}` JSON on `/admin`, as a console page elsewhere (a browser) — never the empty answers Hummingbird's
/// router sends. Wraps the router's responder: router middleware does not see requests no route matched.
struct AdminResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == AdminRequestContext {
    let inner: Inner
    let layout: ConsoleLayout

    func respond(to request: Request, context: AdminRequestContext) async throws -> Response {
        let response: Response
        do {
            response = try await inner.respond(to: request, context: context)
        } catch {
            return SandboxJSON.unexpected(error) { answer(request, status: $0, $1) }
        }
        // The router's own answers (no route, a body over a route's limit, an HTTPError without a body) have no body.
        guard response.status.code >= 400, response.headers[.contentType] == nil else { return response }
        let message =
            switch response.status {
            case .notFound: "No admin or console page answers \(request.method.rawValue) \(request.uri.path)."
            case .contentTooLarge: "The request's body is over the size this page accepts."
            default: response.status.reasonPhrase
            }
        return answer(request, status: response.status, message)
    }

    private func answer(_ request: Request, status: HTTPResponse.Status, _ message: String) -> Response {
        request.uri.path.hasPrefix("/admin")
            ? SandboxJSON.error(status, message)
            : layout.page(status.reasonPhrase, active: "", HTML.notice(message, error: true), status: status)
    }
}

/// Refuses a state-changing request a browser sent from another site (an `Origin` that is not this listener): the
/// console's forms work on loopback without a token, and a page elsewhere must not be able to post to them. Clients
/// that send no `Origin` (curl, test suites) are not concerned.
struct SameOriginMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if request.method != .get, request.method != .head, let origin = request.headers[.origin] {
            let host = request.head.authority ?? ""
            let originHost =
                origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
                ?? origin
            guard origin != "null", originHost == host else {
                return SandboxJSON.error(
                    .forbidden,
                    "cross-site request refused: Origin \(origin) is not this admin listener (\(host))"
                )
            }
        }
        return try await next(request, context)
    }
}

/// With `--admin-token T`, every admin call needs `Authorization: Bearer T` (or `X-Admin-Token: T`).
struct AdminTokenMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    let token: String

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let bearer = request.headers[.authorization].flatMap { value -> String? in
            value.lowercased().hasPrefix("bearer ") ? String(value.dropFirst(7)) : nil
        }
        let header = request.headers[HTTPField.Name("X-Admin-Token")!]
        let path = request.uri.path
        // The login form, and Mon espace santé's pairing page: a patient's browser, not the administrator.
        if path == "/console/login" || path == MESService.authorizePath { return try await next(request, context) }
        guard bearer == token || header == token || Self.cookie(request) == token else {
            if path == "/console" || path.hasPrefix("/console/") || path == "/" {
                // A browser: the login form (the token then travels as a same-site cookie).
                return Self.loginPage(status: .unauthorized)
            }
            var response = SandboxJSON.error(.unauthorized, "admin token required (Authorization: Bearer <token>)")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"esante-sandbox-admin\""
            return response
        }
        return try await next(request, context)
    }

    static let cookieName = "esante_admin_token"

    static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0] == cookieName { return String(pair[1]).removingPercentEncoding }
            }
        }
        return nil
    }

    static func loginPage(status: HTTPResponse.Status, error: String? = nil) -> Response {
        HTML.page(
            "Connexion",
            active: "",
            """
            \(error.map { HTML.notice($0, error: true) } ?? "<p>Ce bac à sable protège son administration par un jeton (<code>--admin-token</code>).</p>")
            <form class="panel" method="post" action="/console/login">\(HTML.field("token", "Jeton d'administration", error: error, type: "password", required: true))\
            <div><button>Entrer</button></div></form>
            """,
            status: status
        )
    }

    static func addLogin(to router: Router<AdminRequestContext>, token: String) {
        router.get("console/login") { _, _ in loginPage(status: .ok) }
        router.post("console/login") { request, _ in
            let form = try await FormData.read(request)
            guard let given = form["token"], given == token else {
                return loginPage(status: .unauthorized, error: "jeton incorrect")
            }
            var response = HTML.redirect("/console")
            response.headers[.setCookie] = "\(cookieName)=\(HTML.url(token)); Path=/; HttpOnly; SameSite=Strict"
            return response
        }
    }
}
