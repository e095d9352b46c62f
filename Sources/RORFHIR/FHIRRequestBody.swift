import FHIRCore
import Foundation
import Hummingbird

/// Reading a FHIR JSON request body, with the refusals every write shares: media type (415), size (413), UTF-8,
/// nesting depth and JSON object (400).
enum FHIRBody {
    static func json(_ request: Request, maximumBody: Int, what: String) async throws -> [String: Any] {
        let mediaType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard mediaType == "application/fhir+json" || mediaType == "application/json" else {
            throw FHIRError(.unsupportedMediaType, code: "not-supported",
                            "Content-Type '\(request.headers[.contentType] ?? "")': \(what) as application/fhir+json", expression: nil)
        }
        var request = request
        guard let buffer = try? await request.collectBody(upTo: maximumBody) else {
            throw FHIRError(.contentTooLarge, code: "too-costly", "The body is over \(maximumBody) bytes", expression: nil)
        }
        let data = Data(buffer: buffer)
        guard let text = String(data: data, encoding: .utf8) else {
            throw FHIRError(.badRequest, code: "structure", "The body is not valid UTF-8", expression: nil)
        }
        guard JSONDepth.within(text.utf8, limit: 64) else {
            throw FHIRError(.badRequest, code: "structure", "The JSON body nests deeper than 64 levels", expression: nil)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FHIRError(.badRequest, code: "structure", "The body is not a JSON object", expression: nil)
        }
        return object
    }
}

/// JSON nesting depth, scanned on the raw text (strings skipped) before parsing.
enum JSONDepth {
    static func within(_ bytes: String.UTF8View, limit: Int) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == 0x5C { escaped = true } else if byte == 0x22 { inString = false }
                continue
            }
            switch byte {
            case 0x22: inString = true
            case 0x7B, 0x5B:
                depth += 1
                if depth > limit { return false }
            case 0x7D, 0x5D: depth -= 1
            default: break
            }
        }
        return true
    }
}

/// FHIR Patch over HTTP for every patch the service takes: failures as OperationOutcomes naming the path, with a
/// hook for the answers an endpoint defines itself (the capacity feed's 404 for "no such indicator").
enum FHIRPatchRequest {
    static func read(_ object: [String: Any]) throws -> FHIRPatch {
        do {
            return try FHIRPatch(parameters: object)
        } catch let failure {
            throw answer(failure)
        }
    }

    static func apply(_ patch: FHIRPatch, to resource: [String: Any],
                      answer specific: (FHIRPatch.Failure) -> FHIRError? = { _ in nil }) throws -> [String: Any] {
        var changes = ChangedElements()
        return try apply(patch, to: resource, changes: &changes, answer: specific)
    }

    /// The same, noting which list elements the patch changed.
    static func apply(_ patch: FHIRPatch, to resource: [String: Any], changes: inout ChangedElements,
                      answer specific: (FHIRPatch.Failure) -> FHIRError? = { _ in nil }) throws -> [String: Any] {
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
            return FHIRError(.unprocessableContent, code: "processing", failure.message, expression: [failure.expression])
        case .unsupported:
            return FHIRError(.badRequest, code: "not-supported", failure.message, expression: [failure.expression])
        case .invalid:
            return FHIRError(.badRequest, code: "invalid", failure.message, expression: [failure.expression])
        }
    }
}
