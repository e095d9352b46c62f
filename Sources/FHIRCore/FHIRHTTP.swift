import Foundation
import HTTPTypes
import Hummingbird

/// FHIR over HTTP, shared by the FHIR services: answers in `application/fhir+json`, errors as OperationOutcomes, and
/// the reading of a JSON request body with the refusals every write shares.
public enum FHIRResponse {
    /// A FHIR JSON answer.
    public static func json(_ status: HTTPResponse.Status, _ data: Data, headers: HTTPFields = [:]) -> Response {
        var fields: HTTPFields = [.contentType: OperationOutcome.contentType]
        for field in headers { fields.append(field) }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// An error that leaves as a FHIR OperationOutcome with this status, issue code and expression.
public struct FHIRError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var expression: [String]?
    /// Extra response headers (e.g. `WWW-Authenticate` on a 401).
    public var headers: HTTPFields = [:]
    /// Several issues (profile validation): one per problem, in place of the single one above.
    public var issues: [OperationOutcome.Issue]?

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, expression: [String]?) {
        self.status = status
        self.code = code
        self.message = message
        self.expression = expression
    }

    /// 422 with one issue per profile problem; `profile` names the profile in the message.
    public init(profileIssues: [ProfileValidator.Issue], resourceType: String, profile: String = "ROR profile") {
        self.init(
            .unprocessableContent,
            code: profileIssues.first?.code ?? "invalid",
            "\(resourceType) does not conform to its \(profile) (\(profileIssues.count) problem(s))",
            expression: profileIssues.first.map { [$0.expression] }
        )
        issues = profileIssues.map {
            OperationOutcome.Issue(code: $0.code, diagnostics: $0.diagnostics, expression: [$0.expression])
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let outcome =
            issues.map(OperationOutcome.init(issue:))
            ?? OperationOutcome(code: code, diagnostics: message, expression: expression)
        var response = FHIRResponse.json(status, outcome.jsonData())
        for field in headers { response.headers.append(field) }
        return response
    }
}

/// Reading a FHIR JSON request body, with the refusals every write shares: media type (415), size (413), UTF-8,
/// nesting depth and JSON object (400).
public enum FHIRBody {
    /// Nesting allowed in a request body (a ROR resource nests about ten levels).
    public static let depthLimit = 64

    public static func json(_ request: Request, maximumBody: Int, what: String) async throws -> JSONObject {
        try mediaType(request, what: what)
        let buffer = try await collect(request, maximumBody: maximumBody)
        return try object(buffer)
    }

    /// The same on a body already collected.
    public static func json(_ request: Request, body: ByteBuffer, what: String) throws -> JSONObject {
        try mediaType(request, what: what)
        return try object(body)
    }

    /// A JSON Patch body (RFC 6902, `application/json-patch+json`): its operations, each a JSON object.
    public static func jsonPatch(_ request: Request, maximumBody: Int) async throws -> [JSONObject] {
        let patchType = "application/json-patch+json"
        try mediaType(request, what: "a JSON Patch", accepted: [patchType], named: patchType)
        let buffer = try await collect(request, maximumBody: maximumBody)
        guard case .array(let operations) = try value(buffer), let objects = Optional(operations.compactMap(\.object)),
            objects.count == operations.count, !objects.isEmpty
        else {
            throw FHIRError(
                .badRequest,
                code: "structure",
                "A JSON Patch is a non-empty array of operation objects",
                expression: nil
            )
        }
        return objects
    }

    private static func collect(_ request: Request, maximumBody: Int) async throws -> ByteBuffer {
        var request = request
        guard let buffer = try? await request.collectBody(upTo: maximumBody) else {
            throw FHIRError(
                .contentTooLarge,
                code: "too-costly",
                "The body is over \(maximumBody) bytes",
                expression: nil
            )
        }
        return buffer
    }

    private static func mediaType(
        _ request: Request,
        what: String,
        accepted: Set<String> = ["application/fhir+json", "application/json"],
        named: String = "application/fhir+json"
    ) throws {
        // The type before any parameter, spaces around it and case aside (Foundation's trimming was 1 % of a
        // capacity PATCH).
        let type = (request.headers[.contentType] ?? "").utf8.prefix { $0 != UInt8(ascii: ";") }
            .drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        let mediaType = String(decoding: type, as: UTF8.self).lowercased()
        guard accepted.contains(mediaType) else {
            throw FHIRError(
                .unsupportedMediaType,
                code: "not-supported",
                "Content-Type '\(request.headers[.contentType] ?? "")': \(what) as \(named)",
                expression: nil
            )
        }
    }

    private static func object(_ buffer: ByteBuffer) throws -> JSONObject {
        guard case .object(let object) = try value(buffer) else {
            throw FHIRError(.badRequest, code: "structure", "The body is not a JSON object", expression: nil)
        }
        return object
    }

    private static func value(_ buffer: ByteBuffer) throws -> JSON {
        let value: JSON
        do {
            value = try buffer.withUnsafeReadableBytes { raw throws(JSON.ParseError) in
                try JSON(parsing: raw.bindMemory(to: UInt8.self), depthLimit: depthLimit)
            }
        } catch {
            switch error.kind {
            case .invalidUTF8:
                throw FHIRError(.badRequest, code: "structure", "The body is not valid UTF-8", expression: nil)
            case .tooDeep:
                throw FHIRError(
                    .badRequest,
                    code: "structure",
                    "The JSON body nests deeper than \(depthLimit) levels",
                    expression: nil
                )
            case .duplicateKey, .malformed:
                throw FHIRError(
                    .badRequest,
                    code: "structure",
                    "The body is not a JSON object: \(error)",
                    expression: nil
                )
            }
        }
        return value
    }
}
