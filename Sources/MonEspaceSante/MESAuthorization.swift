import Foundation
import HTTPCommon
import HTTPTypes
import Hummingbird
import SOAPCore

/// The validated parameters of an authorization request (RFC 6749 §4.1.1, PKCE of RFC 7636).
struct AuthorizationRequest {
    var service: MESServiceRecord
    var redirectURI: String
    var state: String?
    var scope: String
    var nonce: String?
    var codeChallenge: String?
    var codeChallengeMethod: String?

    /// What the request was sent with, as hidden fields of the page's form.
    var fields: [(String, String)] {
        var fields = [
            ("client_id", service.clientId), ("redirect_uri", redirectURI), ("response_type", "code"), ("scope", scope),
        ]
        if let state { fields.append(("state", state)) }
        if let nonce { fields.append(("nonce", nonce)) }
        if let codeChallenge { fields.append(("code_challenge", codeChallenge)) }
        if let codeChallengeMethod { fields.append(("code_challenge_method", codeChallengeMethod)) }
        return fields
    }
}

/// The patient's side of pairing ("appariement"): the page where the patient (here: whoever drives the browser)
/// picks one of the sandbox's patients and gives or refuses consent, then goes back to the service with a `code` or
/// `error=access_denied`. Served on the admin listener, since a browser presents no client certificate.
extension MESService {
    /// Refused before any redirect: the client or its redirect URI cannot be trusted (RFC 6749 §4.1.2.1).
    struct PageError: Error {
        var message: String
    }

    /// A refusal sent back to the service's redirect URI.
    struct RedirectError: Error {
        var location: String
    }

    public func addBrowserRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get(RouterPath(Self.authorizePath)) { request, _ in
            self.authorizationPage(FormEncoding.items(request.uri.query ?? ""))
        }
        router.post(RouterPath(Self.authorizePath)) { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 64 << 10)
            return self.decide(FormEncoding.items(String(buffer: body)))
        }
    }

    func parseAuthorization(_ items: [(String, String)]) throws -> AuthorizationRequest {
        var values: [String: String] = [:]
        for (name, value) in items {
            guard values[name] == nil else { throw PageError(message: "the parameter \(name) is repeated") }
            values[name] = value
        }
        guard let clientId = values["client_id"], !clientId.isEmpty else {
            throw PageError(message: "client_id is required")
        }
        guard let service = try? directory.service(clientId: clientId) else {
            throw PageError(message: "no Mon espace santé service '\(clientId)' is registered")
        }
        guard let redirectURI = values["redirect_uri"], !redirectURI.isEmpty else {
            throw PageError(message: "redirect_uri is required")
        }
        guard service.redirectURIs.contains(redirectURI) else {
            throw PageError(
                message:
                    "redirect_uri '\(redirectURI)' is not one registered for \(clientId): the browser is not sent there"
            )
        }
        let state = values["state"]
        func back(_ error: String, _ description: String) -> RedirectError {
            RedirectError(
                location: Self.redirect(
                    redirectURI,
                    [("error", error), ("error_description", description)],
                    state: state
                )
            )
        }
        guard values["response_type"] == "code" else {
            throw back("unsupported_response_type", "response_type must be code")
        }
        let scope = (values["scope"] ?? "openid mesures").split(separator: " ").map(String.init)
        if let unknown = scope.first(where: { !Self.scopes.contains($0) }) {
            throw back(
                "invalid_scope",
                "scope '\(unknown)' is not offered (\(Self.scopes.sorted().joined(separator: " ")))"
            )
        }
        let method = values["code_challenge_method"]
        if let method, values["code_challenge"] == nil || !["S256", "plain"].contains(method) {
            throw back("invalid_request", "code_challenge_method needs a code_challenge and is S256 or plain")
        }
        if let challenge = values["code_challenge"], !(43...128).contains(challenge.count) {
            throw back("invalid_request", "code_challenge must be 43 to 128 characters (RFC 7636)")
        }
        return AuthorizationRequest(
            service: service,
            redirectURI: redirectURI,
            state: state,
            scope: scope.joined(separator: " "),
            nonce: values["nonce"],
            codeChallenge: values["code_challenge"],
            codeChallengeMethod: values["code_challenge"] == nil ? nil : (method ?? "plain")
        )
    }

    /// What a page answers when the request cannot be served: an error page, or the service's redirect URI.
    struct Refusal: Error {
        var response: Response
    }

    func validated(_ items: [(String, String)]) -> Result<AuthorizationRequest, Refusal> {
        do {
            return .success(try parseAuthorization(items))
        } catch let error as RedirectError {
            return .failure(Refusal(response: Self.seeOther(error.location)))
        } catch {
            let message = (error as? PageError)?.message ?? "\(error)"
            return .failure(
                Refusal(
                    response: Self.page(
                        "Demande d'appariement refusée",
                        "<p class=\"error\">\(XMLText.escape(message))</p>",
                        status: .badRequest
                    )
                )
            )
        }
    }

    static func redirect(_ uri: String, _ parameters: [(String, String)], state: String?) -> String {
        var components = URLComponents(string: uri)!
        var query = components.queryItems ?? []
        query += parameters.map { URLQueryItem(name: $0.0, value: $0.1) }
        if let state { query.append(URLQueryItem(name: "state", value: state)) }
        components.queryItems = query
        // `+` is a space in the form encoding the service will read.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.string ?? uri
    }

    static func seeOther(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    func authorizationPage(
        _ items: [(String, String)],
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let request: AuthorizationRequest
        switch validated(items) {
        case .success(let valid): request = valid
        case .failure(let refusal): return refusal.response
        }
        let patients = (try? directory.patients()) ?? []
        let hidden = request.fields.map {
            "<input type=\"hidden\" name=\"\(XMLText.escape($0.0))\" value=\"\(XMLText.escape($0.1))\">"
        }
        .joined()
        let choices = patients.map { patient in
            """
            <label class="patient"><input type="radio" name="ins" value="\(XMLText.escape(patient.ins))"> \
            <b>\(XMLText.escape(patient.birthName))</b> \(XMLText.escape(patient.firstNames)) · né(e) le \(XMLText.escape(patient.birthDate)) \
            · INS <code>\(XMLText.escape(patient.ins))</code></label>
            """
        }.joined(separator: "\n")
        let content = """
            <p>Le service <b>\(XMLText.escape(request.service.name))</b> (<code>\(XMLText.escape(request.service.clientId))</code>) \
            demande à être apparié à votre profil Mon espace santé pour y déposer et y lire vos mesures de santé \
            (<code>\(XMLText.escape(request.scope))</code>).</p>
            \(error.map { "<p class=\"error\" id=\"error\">\(XMLText.escape($0))</p>" } ?? "")
            <form method="post" action="\(Self.authorizePath)" id="consent">\(hidden)
            <fieldset><legend>Qui êtes-vous ? (patients du bac à sable, identités de test INSi)</legend>
            \(choices.isEmpty ? "<p>Aucun patient : chargez les données d'exemple (<code>Seeds/mes/</code>).</p>" : choices)
            </fieldset>
            <p><button name="decision" value="allow" id="allow">Autoriser l'appariement</button>
            <button name="decision" value="deny" id="deny" class="secondary">Refuser</button></p>
            </form>
            <p class="muted">Bac à sable esante-sandbox : aucune authentification réelle, le patient est choisi dans la liste.</p>
            """
        return Self.page("Mon espace santé — appariement", content, status: status)
    }

    func decide(_ items: [(String, String)]) -> Response {
        let request: AuthorizationRequest
        switch validated(items.filter { $0.0 != "ins" && $0.0 != "decision" }) {
        case .success(let valid): request = valid
        case .failure(let refusal): return refusal.response
        }
        let decision = items.first { $0.0 == "decision" }?.1
        let query = items.filter { $0.0 != "ins" && $0.0 != "decision" }
        switch decision {
        case "deny":
            return Self.seeOther(
                Self.redirect(
                    request.redirectURI,
                    [("error", "access_denied"), ("error_description", "the patient refused the pairing")],
                    state: request.state
                )
            )
        case "allow":
            guard let ins = items.first(where: { $0.0 == "ins" })?.1, let _ = try? directory.patient(ins: ins) else {
                return authorizationPage(query, error: "Choisissez un patient dans la liste.", status: .badRequest)
            }
            do {
                let pairing = try directory.pair(clientId: request.service.clientId, ins: ins, consent: true)
                let code = try issueCode(pairing: pairing, request: request)
                return Self.seeOther(Self.redirect(request.redirectURI, [("code", code)], state: request.state))
            } catch {
                return Self.seeOther(
                    Self.redirect(
                        request.redirectURI,
                        [("error", "server_error"), ("error_description", "\(error)")],
                        state: request.state
                    )
                )
            }
        default:
            return authorizationPage(query, error: "Autorisez ou refusez l'appariement.", status: .badRequest)
        }
    }

    static func page(_ title: String, _ content: String, status: HTTPResponse.Status) -> Response {
        let html = """
            <!doctype html><html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(XMLText.escape(title))</title><style>
            body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
            h1{font-size:1.3rem;border-bottom:3px solid #0a6e4f;padding-bottom:.4rem}
            .patient{display:block;padding:.4rem .6rem;border:1px solid #d0d7de;border-radius:6px;margin:.3rem 0}
            button{font:inherit;padding:.4rem .9rem;border-radius:6px;border:1px solid #0a6e4f;background:#0a6e4f;color:#fff}
            button.secondary{background:#fff;color:#0a6e4f}.error{color:#b42318;font-weight:600}.muted{color:#656d76}
            fieldset{border:1px solid #d0d7de;border-radius:6px}
            </style></head><body><h1>\(XMLText.escape(title))</h1>
            \(content)
            </body></html>
            """
        return Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }
}
