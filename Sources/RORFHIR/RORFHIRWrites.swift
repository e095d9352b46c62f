import Access
import FHIRCore
import Foundation
import GRDB
import HTTPCommon
import HTTPTypes
import Hummingbird

/// The writes the IG's server CapabilityStatement allows under `/ws-diffusion-fhir`: `create` (`POST [type]`, with
/// `If-None-Exist`), `update` (`PUT [type]/[id]`, with `If-Match`), `patch` of a HealthcareService (scenario 1:
/// attach a new place) or a Task, and `POST [type]/$validate`. Every write is checked against the ROR profile rules (422 with
/// one issue per problem), keeps the replaced version, answers `ETag`/`Last-Modified`/`Location` and honours
/// `Prefer: return=minimal|representation|OperationOutcome`. Writers need a whitelist entry with role `feed`.
/// Task: the IG's RORTask (anomaly reports); production serves none (the IG draft is followed here, as the issue asks).
extension RORFHIRService {
    static let writableTypes: Set<String> = [
        "Location", "HealthcareService", "Organization", "Practitioner", "PractitionerRole", "Task",
    ]
    /// PATCH as the IG's CapabilityStatement allows it (capacities have their own endpoint).
    static let patchableTypes: Set<String> = ["HealthcareService", "Task"]

    func addWriteRoutes<Context: RequestContext & CallerContext>(to group: RouterGroup<Context>) {
        group.post(":type/$validate") { request, context in
            let type = try self.writableType(context)
            let resource = try await FHIRBody.json(
                request,
                maximumBody: self.maximumBody,
                what: "$validate takes the resource"
            )
            let candidate = OperationOutcome.validationCandidate(resource)
            guard candidate["resourceType"]?.string == type else {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "The resource to validate is not a \(type)",
                    expression: ["resourceType"]
                )
            }
            let issues = self.profileIssues(candidate, asSent: true)
            let outcome = OperationOutcome(
                validation: issues,
                noIssue: "No issue: the \(type) conforms to its ROR profile"
            )
            return FHIRResponse.json(.ok, outcome.jsonData())
        }
        group.post(":type") { request, context in
            let type = try self.writableType(context)
            try await self.requireWriter(request, context: context)
            var resource = try await FHIRBody.json(
                request,
                maximumBody: self.maximumBody,
                what: "a create takes the resource"
            )
            guard resource["resourceType"]?.string == type else {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "The body is a \(resource["resourceType"]?.string ?? "?"), not a \(type)",
                    expression: ["resourceType"]
                )
            }
            if let condition = request.headers[HTTPField.Name("If-None-Exist")!] {
                let items = FormEncoding.items(condition)
                let search: SearchRequest
                do {
                    search = try SearchRequest(type: type, items: items, registry: self.repository.registry)
                } catch let error as SearchError {
                    throw FHIRError(
                        .badRequest,
                        code: "invalid",
                        "If-None-Exist: \(error.message)",
                        expression: ["If-None-Exist"]
                    )
                }
                let existing = try await self.repository.searchIDs(search)
                if existing.count > 1 {
                    throw FHIRError(
                        .preconditionFailed,
                        code: "multiple-matches",
                        "If-None-Exist matches \(existing.count) resources",
                        expression: ["If-None-Exist"]
                    )
                }
                if let id = existing.first, let stored = try await self.repository.read(type: type, id: id) {
                    return self.written(request, stored, status: .ok)
                }
            }
            // The server names what is created (FHIR create ignores a client id).
            resource["id"] = .string(UUID().uuidString.lowercased())
            let stored = try await self.store(resource, type: type, expectedVersion: nil)
            return self.written(request, stored, status: .created)
        }
        group.put(":type/:id") { request, context in
            let type = try self.writableType(context)
            try await self.requireWriter(request, context: context)
            let id = context.parameters.get("id") ?? ""
            let resource = try await FHIRBody.json(
                request,
                maximumBody: self.maximumBody,
                what: "an update takes the resource"
            )
            guard resource["resourceType"]?.string == type, resource["id"]?.string == id else {
                throw FHIRError(
                    .badRequest,
                    code: "invalid",
                    "The body must be the \(type) with id '\(id)' (resourceType and id as in the URL)",
                    expression: ["id"]
                )
            }
            let existed = try await self.repository.read(type: type, id: id) != nil
            let stored = try await self.store(resource, type: type, expectedVersion: try Self.ifMatch(request))
            return self.written(request, stored, status: existed ? .ok : .created)
        }
        // `:type/:id`, not a literal `HealthcareService/:id`: a literal beside `:type` would hide the searches (the
        // router does not backtrack).
        group.patch(":type/:id") { request, context in
            let type = try self.type(context)
            guard Self.patchableTypes.contains(type) else {
                throw FHIRError(
                    .methodNotAllowed,
                    code: "not-supported",
                    "PATCH is served for HealthcareService (scenario 1) and Task here; capacities go through PATCH \(RORCapacityFeed.basePath)/Location",
                    expression: nil
                )
            }
            try await self.requireWriter(request, context: context)
            let id = context.parameters.get("id") ?? ""
            let body = try await FHIRBody.json(
                request,
                maximumBody: self.maximumBody,
                what: "a patch takes a FHIRPath Patch Parameters resource"
            )
            let patch = try FHIRPatchRequest.read(body)
            guard let current = try await self.repository.read(type: type, id: id),
                let object = (try? JSON(parsing: current.json))?.object
            else {
                throw FHIRError(.notFound, code: "not-found", "Resource \(type)/\(id) is not known", expression: [type])
            }
            let expected = try Self.ifMatch(request) ?? current.version
            let patched = try FHIRPatchRequest.apply(patch, to: object)
            let stored = try await self.store(patched, type: type, expectedVersion: expected)
            return self.written(request, stored, status: .ok)
        }
    }

    func writableType<Context: RequestContext>(_ context: Context) throws -> String {
        let type = try self.type(context)
        guard Self.writableTypes.contains(type) else {
            throw FHIRError(
                .methodNotAllowed,
                code: "not-supported",
                "\(type) is not written through this API",
                expression: nil
            )
        }
        return type
    }

    /// Writers are clients whose whitelist entry has role `feed`.
    func requireWriter<Context: RequestContext & CallerContext>(_ request: Request, context: Context) async throws {
        let (_, entry) = try await tokens.verify(
            authorization: request.headers[.authorization],
            identity: context.identity,
            environment: context.environment
        )
        guard entry.role == .feed else {
            throw FHIRError(
                .forbidden,
                code: "forbidden",
                "Client '\(entry.clientId ?? "?")' is whitelisted to consume: writes need role feed",
                expression: nil
            )
        }
    }

    /// `If-Match: W/"<version>"` (the version an update was based on).
    static func ifMatch(_ request: Request) throws -> Int? {
        guard let header = request.headers[.ifMatch] else { return nil }
        let digits = header.replacingOccurrences(of: "W/", with: "").trimmingCharacters(
            in: CharacterSet(charactersIn: "\" ")
        )
        guard let version = Int(digits) else {
            throw FHIRError(
                .badRequest,
                code: "invalid",
                "If-Match '\(header)' is not a version ETag (W/\"<version>\")",
                expression: ["If-Match"]
            )
        }
        return version
    }

    /// The resource's problems against the FHIR structure and its ROR profile, with the `meta.lastUpdated` the
    /// server sets on a write (`asSent`: `$validate` checks the resource as sent, and says when it has none).
    func profileIssues(_ resource: JSONObject, asSent: Bool = false) -> [ProfileValidator.Issue] {
        guard !asSent else { return validator.validate(resource) }
        var stamped = resource
        var meta = stamped["meta"]?.object ?? JSONObject()
        meta["lastUpdated"] = .string(FHIRInstant.string(Date()))
        stamped["meta"] = .object(meta)
        return validator.validate(stamped)
    }

    /// Validates, then writes in one transaction: the previous version kept in `fhir_history`, the new one indexed.
    /// `expectedVersion` (If-Match) must be the current one, else 412.
    func store(_ resource: JSONObject, type: String, expectedVersion: Int?) async throws -> StoredResource {
        let issues = profileIssues(resource)
        guard issues.isEmpty else { throw FHIRError(profileIssues: issues, resourceType: type) }
        let repository = self.repository
        let id = resource["id"]?.string ?? ""
        return try await repository.store.write { db in
            let current = try repository.current(type: type, id: id, in: db)
            if let expectedVersion, current?.version != expectedVersion {
                throw FHIRError(
                    .preconditionFailed,
                    code: "conflict",
                    "If-Match W/\"\(expectedVersion)\" but \(type)/\(id) is at version \(current.map { "\($0.version)" } ?? "none")",
                    expression: ["If-Match"]
                )
            }
            if let current { try repository.archive(current, in: db) }
            return try repository.save(resource, in: db)
        }
    }

    /// 200/201 with `ETag`, `Last-Modified`, `Location` and the body `Prefer: return=` asks for.
    func written(_ request: Request, _ stored: StoredResource, status: HTTPResponse.Status) -> Response {
        let prefer = request.headers[HTTPField.Name("Prefer")!] ?? ""
        var response: Response
        if prefer.contains("return=minimal") {
            response = Response(status: status)
        } else if prefer.contains("return=OperationOutcome") {
            response = FHIRResponse.json(
                status,
                OperationOutcome(
                    severity: "information",
                    code: "informational",
                    diagnostics: "\(stored.type)/\(stored.id) stored at version \(stored.version)"
                ).jsonData()
            )
        } else {
            response = FHIRResponse.json(status, stored.json)
        }
        response.headers[.eTag] = "W/\"\(stored.version)\""
        response.headers[.lastModified] = Self.httpDate(stored.lastUpdated)
        response.headers[.location] = "\(baseURL(request))/\(stored.type)/\(stored.id)/_history/\(stored.version)"
        return response
    }
}
