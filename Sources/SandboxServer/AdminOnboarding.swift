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
                    return SandboxJSON.error(
                        .badRequest,
                        "state must be one of \(OnboardingState.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
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
            do {
                let detail = Detail(
                    request: try onboarding.request(id).masked,
                    events: try onboarding.events(id).map(OnboardingEvent.View.init),
                    clock: onboarding.clock.view
                )
                return SandboxJSON.response(detail)
            } catch {
                return refusal(error)
            }
        }
        for name in ["validate", "reject", "tests-done", "whitelist", "revoke"] {
            group.post(RouterPath(":id/\(name)")) { request, context in
                try await act(name, request, context, onboarding)
            }
        }
        group.post(":id/certificates") { request, context in
            try await act("add-certificate", request, context, onboarding)
        }
        group.put(":id/establishments") { request, context in
            try await act("establishments", request, context, onboarding)
        }
        group.delete(":id/certificates/:finess") { request, context in
            try await act("remove-certificate", request, context, onboarding) {
                $0.finess = context.parameters.get("finess")
            }
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

    /// The actions on a request by the names the API's and the console's paths use (one table for both); nil when
    /// the name is none of them. `defaultActor` stands in for an absent `actor` (else committee, publisher or ans).
    static func perform(
        _ name: String,
        id: Int64,
        _ action: Action,
        on onboarding: Onboarding,
        defaultActor: String? = nil
    ) throws -> OnboardingRequest? {
        func actor(_ role: String) -> String { action.actor ?? defaultActor ?? role }
        switch name {
        case "validate":
            return try onboarding.validate(
                id,
                decision: CommitteeDecision(
                    accessProfile: action.accessProfile,
                    clientId: action.clientId,
                    clientSecret: action.clientSecret,
                    rorHeaders: action.rorHeaders,
                    reason: action.reason
                ),
                actor: actor("committee")
            )
        case "reject": return try onboarding.reject(id, reason: action.reason ?? "", actor: actor("committee"))
        case "tests-done": return try onboarding.markTestsDone(id, actor: actor("publisher"))
        case "whitelist": return try onboarding.addToWhitelist(id, actor: actor("ans"))
        case "revoke": return try onboarding.revoke(id, reason: action.reason, actor: actor("ans"))
        case "establishments":
            guard let establishments = action.establishments else {
                throw OnboardingError(.invalid, "give establishments (a FINESS list)")
            }
            return try onboarding.setEstablishments(id, establishments, actor: actor("ans"))
        case "add-certificate":
            guard let finess = action.finess, let pem = action.certificatePEM else {
                throw OnboardingError(.invalid, "give finess and certificatePEM")
            }
            return try onboarding.addEstablishmentCertificate(
                id,
                EstablishmentCertificate(finess: finess, certificatePEM: pem),
                actor: actor("ans")
            )
        case "remove-certificate":
            return try onboarding.removeEstablishmentCertificate(id, finess: action.finess ?? "", actor: actor("ans"))
        default: return nil
        }
    }

    /// Runs an action of the API; its JSON body may be empty.
    static func act(
        _ name: String,
        _ request: Request,
        _ context: AdminRequestContext,
        _ onboarding: Onboarding,
        adjust: (inout Action) -> Void = { _ in }
    ) async throws -> Response {
        guard let id = context.parameters.get("id", as: Int64.self) else { return badID }
        var request = request
        var action = Action()
        if let body = try? await request.collectBody(upTo: 1024 * 1024), body.readableBytes > 0 {
            switch AdminAPI.decode(body, as: Action.self, "onboarding action") {
            case .refusal(let response): return response
            case .value(let value): action = value
            }
        }
        adjust(&action)
        return answer {
            guard let request = try perform(name, id: id, action, on: onboarding) else {
                throw OnboardingError(.notFound, "no onboarding action '\(name)'")
            }
            return request
        }
    }

    /// The request or the refusal in the admin API's error form.
    static func answer(status: HTTPResponse.Status = .ok, _ body: () throws -> OnboardingRequest) -> Response {
        do {
            return SandboxJSON.response(try body().masked, status: status)
        } catch {
            return refusal(error)
        }
    }

    static func refusal(_ error: any Error) -> Response {
        switch error {
        case let error as OnboardingError:
            let status: HTTPResponse.Status =
                switch error.kind {
                case .invalid: .badRequest
                case .conflict: .conflict
                case .notFound: .notFound
                }
            return SandboxJSON.error(status, error.description)
        default:
            return SandboxJSON.unexpected(error, doing: "onboarding")
        }
    }
}
