import Foundation
import Hummingbird
import INSi

/// `/admin/insi/{identities,cards,lps}`: the INSi test base, as the CNDA manages it (list, add or replace, remove).
enum AdminINSi {
    static func add(to admin: RouterGroup<AdminRequestContext>, directory: INSiDirectory) {
        let group = admin.group("insi")
        group.get("identities") { _, _ in SandboxJSON.response(try directory.identities()) }
        group.get("cards") { _, _ in SandboxJSON.response(try directory.cards()) }
        group.get("lps") { _, _ in SandboxJSON.response(try directory.authorisedLPS()) }

        group.post("identities") { request, _ in
            let allowBadKey = request.uri.queryParameters["allowBadKey"].map { $0 == "true" } ?? false
            return try await create(request, as: INSIdentity.self) { try directory.add($0, allowBadKey: allowBadKey) }
        }
        group.post("cards") { request, _ in try await create(request, as: VitaleCard.self, directory.add) }
        group.post("lps") { request, _ in try await create(request, as: INSiDirectory.AuthorisedLPS.self, directory.add)
        }

        for kind in INSiDirectory.Kind.allCases {
            group.delete(RouterPath("\(kind.rawValue)/:id")) { _, context in
                let id = context.parameters.get("id") ?? ""
                guard try directory.remove(kind, id: id) else {
                    return SandboxJSON.error(.notFound, "no INSi \(kind.rawValue) entry '\(id)'")
                }
                return Response(status: .noContent)
            }
        }
    }

    /// Decodes the body as `Value`, stores it with `save`, answers 201 with it; 400 naming the field otherwise.
    static func create<Value: Codable>(
        _ request: Request,
        as: Value.Type,
        _ save: (Value) throws -> Void
    ) async throws -> Response {
        let value: Value
        switch await AdminAPI.decodeBody(request, as: Value.self, "\(Value.self)") {
        case .refusal(let response): return response
        case .value(let decoded): value = decoded
        }
        do {
            try save(value)
        } catch let error as INSiValidationError {
            return SandboxJSON.error(.badRequest, error.description)
        }
        return SandboxJSON.response(value, status: .created)
    }
}
