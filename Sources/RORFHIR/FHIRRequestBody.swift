import FHIRCore
import Foundation
import Hummingbird

/// Reading a FHIR JSON request body, with the refusals every write shares: media type (415), size (413), UTF-8,
/// nesting depth and JSON object (400).
enum FHIRBody {
    /// Nesting allowed in a request body (a ROR resource nests about ten levels).
    static let depthLimit = 64

    static func json(_ request: Request, maximumBody: Int, what: String) async throws -> JSONObject {
        try mediaType(request, what: what)
        var request = request
        guard let buffer = try? await request.collectBody(upTo: maximumBody) else {
            throw FHIRError(
                .contentTooLarge,
                code: "too-costly",
                "The body is over \(maximumBody) bytes",
                expression: nil
            )
        }
        return try object(buffer)
    }

    /// The same on a body already collected.
    static func json(_ request: Request, body: ByteBuffer, what: String) throws -> JSONObject {
        try mediaType(request, what: what)
        return try object(body)
    }

    private static func mediaType(_ request: Request, what: String) throws {
        // The type before any parameter, spaces around it and case aside (Foundation's trimming was 1 % of a
        // capacity PATCH).
        let type = (request.headers[.contentType] ?? "").utf8.prefix { $0 != UInt8(ascii: ";") }
            .drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        let mediaType = String(decoding: type, as: UTF8.self).lowercased()
        guard mediaType == "application/fhir+json" || mediaType == "application/json" else {
            throw FHIRError(
                .unsupportedMediaType,
                code: "not-supported",
                "Content-Type '\(request.headers[.contentType] ?? "")': \(what) as application/fhir+json",
                expression: nil
            )
        }
    }

    private static func object(_ buffer: ByteBuffer) throws -> JSONObject {
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
        guard case .object(let object) = value else {
            throw FHIRError(.badRequest, code: "structure", "The body is not a JSON object", expression: nil)
        }
        return object
    }
}

/// FHIR Patch over HTTP for every patch the service takes: failures as OperationOutcomes naming the path, with a
/// hook for the answers an endpoint defines itself (the capacity feed's 404 for "no such indicator").
enum FHIRPatchRequest {
    static func read(_ object: JSONObject) throws -> FHIRPatch {
        do {
            return try FHIRPatch(parameters: object)
        } catch let failure {
            throw answer(failure)
        }
    }

    static func apply(
        _ patch: FHIRPatch,
        to resource: JSONObject,
        answer specific: (FHIRPatch.Failure) -> FHIRError? = { _ in nil }
    ) throws -> JSONObject {
        var changes = ChangedElements()
        return try apply(patch, to: resource, changes: &changes, answer: specific)
    }

    /// The same, noting which list elements the patch changed.
    static func apply(
        _ patch: FHIRPatch,
        to resource: JSONObject,
        changes: inout ChangedElements,
        answer specific: (FHIRPatch.Failure) -> FHIRError? = { _ in nil }
    ) throws -> JSONObject {
        do {
            return try patch.apply(to: resource, changes: &changes)
        } catch let failure {
            throw specific(failure) ?? answer(failure)
        }
    }

    static func answer(_ failure: FHIRPatch.Failure) -> FHIRError {
        switch failure.kind {
        case .noMatch, .multipleMatches:
            // FHIR Patch: an operation that cannot be applied to the resource as it is.
            return FHIRError(
                .unprocessableContent,
                code: "processing",
                failure.message,
                expression: [failure.expression]
            )
        case .unsupported:
            return FHIRError(.badRequest, code: "not-supported", failure.message, expression: [failure.expression])
        case .invalid:
            return FHIRError(.badRequest, code: "invalid", failure.message, expression: [failure.expression])
        }
    }
}
