import Access
import Foundation
import Hummingbird

/// `/admin/onboarding` (integration requests and their transitions) and `/admin/clock` (the sandbox clock).
/// Refusals: 400 bad input, 404 no such request, 409 a transition the request's state does not allow.
enum AdminOnboarding {
    /// Body of the action endpoints; each reads the fields it needs.
    struct Action: Codable {
        var actor: String?
        var reason: String?
        var accessProfile: Int?
        var clientId: String?
        var clientSecret: String?
        var rorHeaders: [String: String]?
        var establishments: [String]?
        var finess: String?
        var certificatePEM: String?
    }

    struct Detail: Encodable {
        var request: OnboardingRequest
        var events: [OnboardingEvent.View]
        var clock: SandboxClock.View
    }

    static func add(to admin: RouterGroup<AdminRequestContext>, onboarding: Onboarding) {
        let group = admin.group("onboarding")
        group.get { request, _ in
            var state: OnboardingState?
            if let text = request.uri.queryParameters["state"] {
                guard let value = OnboardingState(rawValue: String(text)) else {
                    return SandboxJSON.error(.badRequest, "state must be one of \(OnboardingState.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                state = value
            }
            return SandboxJSON.response(try onboarding.list(state: state).map(\.masked))
        }
        group.post { request, _ in
            switch await AdminAPI.decodeBody(request, as: OnboardingSubmission.self, "onboarding submission") {
            case .refusal(let response): return response
            case .value(let submission):
                return answer(status: .created) { try onboarding.submit(submission, actor: "admin") }
            }
        }
        group.get(":id") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self) else { return badID }
            return answer(onboarding) { _ in try onboarding.request(id) } detail: { try onboarding.events(id) }
        }
        let actions: [(String, @Sendable (Int64, Action) throws -> OnboardingRequest)] = [
            ("validate", { id, action in
                try onboarding.validate(id, decision: CommitteeDecision(
                    accessProfile: action.accessProfile, clientId: action.clientId, clientSecret: action.clientSecret,
                    rorHeaders: action.rorHeaders, reason: action.reason), actor: action.actor ?? "committee")
            }),
            ("reject", { id, action in try onboarding.reject(id, reason: action.reason ?? "", actor: action.actor ?? "committee") }),
            ("tests-done", { id, action in try onboarding.markTestsDone(id, actor: action.actor ?? "publisher") }),
            ("whitelist", { id, action in try onboarding.addToWhitelist(id, actor: action.actor ?? "ans") }),
            ("revoke", { id, action in try onboarding.revoke(id, reason: action.reason, actor: action.actor ?? "ans") }),
            ("certificates", { id, action in
                guard let finess = action.finess, let pem = action.certificatePEM else {
                    throw OnboardingError(.invalid, "give finess and certificatePEM")
                }
                return try onboarding.addEstablishmentCertificate(
                    id, EstablishmentCertificate(finess: finess, certificatePEM: pem), actor: action.actor ?? "ans")
            }),
        ]
        for (name, perform) in actions {
            group.post(RouterPath(":id/\(name)")) { request, context in
                try await act(request, context, perform)
            }
        }
        group.put(":id/establishments") { request, context in
            try await act(request, context) { id, action in
                guard let establishments = action.establishments else { throw OnboardingError(.invalid, "give establishments (a FINESS list)") }
                return try onboarding.setEstablishments(id, establishments, actor: action.actor ?? "ans")
            }
        }
        group.delete(":id/certificates/:finess") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self) else { return badID }
            let finess = context.parameters.get("finess") ?? ""
            return answer { try onboarding.removeEstablishmentCertificate(id, finess: finess, actor: "ans") }
        }

        admin.get("clock") { _, _ in SandboxJSON.response(onboarding.clock.view) }
        admin.post("clock") { request, _ in
            struct Setting: Decodable { var speed: Double }
            switch await AdminAPI.decodeBody(request, as: Setting.self, "clock setting ({\"speed\": 3600})") {
            case .refusal(let response): return response
            case .value(let setting):
                do {
                    try onboarding.clock.setSpeed(setting.speed)
                } catch let error as ClockError {
                    return SandboxJSON.error(.badRequest, error.description)
                }
                return SandboxJSON.response(onboarding.clock.view)
            }
        }
    }

    static var badID: Response { SandboxJSON.error(.badRequest, "the request id must be an integer") }

    /// Runs an action whose body may be empty.
    static func act(_ request: Request, _ context: AdminRequestContext,
                    _ perform: (Int64, Action) throws -> OnboardingRequest) async throws -> Response {
        guard let id = context.parameters.get("id", as: Int64.self) else { return badID }
        var request = request
        let body = try? await request.collectBody(upTo: 1024 * 1024)
        var action = Action()
        if let body, body.readableBytes > 0 {
            switch await AdminAPI.decodeBody(Request(head: request.head, body: .init(buffer: body)), as: Action.self, "onboarding action") {
            case .refusal(let response): return response
            case .value(let value): action = value
            }
        }
        return answer { try perform(id, action) }
    }

    /// The request (and its history) or the refusal in the admin API's error form.
    static func answer(status: HTTPResponse.Status = .ok, _ body: () throws -> OnboardingRequest) -> Response {
        do {
            return SandboxJSON.response(try body().masked, status: status)
        } catch {
            return refusal(error)
        }
    }

    static func answer(_ onboarding: Onboarding, _ body: (Onboarding) throws -> OnboardingRequest,
                       detail events: () throws -> [OnboardingEvent]) -> Response {
        do {
            return SandboxJSON.response(Detail(request: try body(onboarding).masked, events: try events().map(OnboardingEvent.View.init), clock: onboarding.clock.view))
        } catch {
            return refusal(error)
        }
    }

    static func refusal(_ error: any Error) -> Response {
        switch error {
        case let error as OnboardingError:
            let status: HTTPResponse.Status = switch error.kind {
            case .invalid: .badRequest
            case .conflict: .conflict
            case .notFound: .notFound
            }
            return SandboxJSON.error(status, error.description)
        default:
            return SandboxJSON.error(.internalServerError, "onboarding: \(error)")
        }
    }
}
