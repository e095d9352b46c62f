import FHIRCore
import Foundation
import Hummingbird

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
