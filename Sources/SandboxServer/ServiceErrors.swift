import Access
import FHIRCore
import Foundation
import HTTPCommon
import Hummingbird
import NIOCore
import SOAPCore
import Store

/// Errors in each service's own protocol form: FHIR `OperationOutcome` on FHIR paths, SOAP 1.2 `Fault` on SOAP
/// paths, `{"error": …}` JSON elsewhere (sandbox and admin paths).
enum ServiceErrors {
    /// FHIR `IssueType` for an HTTP status.
    static func fhirIssueCode(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 401: "login"
        case 403: "forbidden"
        case 404: "not-found"
        case 405: "not-supported"
        case 406, 415: "not-supported"
        case 408: "timeout"
        case 409: "conflict"
        case 412: "conflict"
        case 413: "too-costly"
        case 507: "no-store"
        case 400..<500: "invalid"
        default: "exception"
        }
    }

    static func response(
        form: SandboxService.ErrorForm?,
        status: HTTPResponse.Status,
        message: String,
        subcode: String,
        expression: [String]? = nil,
        retryAfter: Int? = nil
    ) -> Response {
        var response = body(form, status: status, message: message, subcode: subcode, expression: expression)
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }

    private static func body(
        _ form: SandboxService.ErrorForm?,
        status: HTTPResponse.Status,
        message: String,
        subcode: String,
        expression: [String]?
    ) -> Response {
        switch form {
        case .fhirOperationOutcome:
            let outcome = OperationOutcome(
                code: fhirIssueCode(for: status),
                diagnostics: message,
                expression: expression
            )
            return Response(
                status: status,
                headers: [.contentType: OperationOutcome.contentType],
                body: .init(byteBuffer: ByteBuffer(bytes: outcome.jsonData()))
            )
        case .soapFault:
            // SOAP 1.2 over HTTP (part 2 §7.5.2.2): a Sender fault travels with a 4xx code for access refusals
            // here, so HTTP-level clients and SOAP stacks both see the refusal.
            let fault = SOAPFault(
                code: status.code >= 500 ? .receiver : .sender,
                subcode: "sandbox:\(subcode)",
                reason: message,
                detailXML: "<sandbox:status>\(status.code)</sandbox:status>"
            )
            return fault.response(status: status)
        case nil:
            return SandboxJSON.response(["error": message, "reason": subcode], status: status)
        }
    }

    /// The refusal of a caller by the access layer.
    static func refusal(form: SandboxService.ErrorForm?, decision: AccessDecision) -> Response {
        response(form: form, status: .forbidden, message: decision.message, subcode: subcodeName(decision.reason))
    }

    /// `not-whitelisted` → `NotWhitelisted`: fault subcodes are QName-like.
    static func subcodeName(_ reason: String) -> String {
        reason.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// A write refused for a full disk: 507 Insufficient Storage (RFC 4918) where the answer is FHIR or JSON; a
    /// Receiver fault with 503 on SOAP services, the status SOAP stacks read as "try again later". Both say when.
    static func storageFull(form: SandboxService.ErrorForm?) -> Response {
        response(
            form: form,
            status: form == .soapFault ? .serviceUnavailable : .insufficientStorage,
            message: StorageSpace.message,
            subcode: "InsufficientStorage",
            retryAfter: StorageSpace.retryAfterSeconds
        )
    }

    /// Any error escaping a handler, turned into the service's form (never a bare 500 page).
    static func response(for error: any Error, form: SandboxService.ErrorForm?) -> Response {
        if StorageSpace.isExhausted(error) { return storageFull(form: form) }
        if let httpError = error as? HTTPError {
            return response(
                form: form,
                status: httpError.status,
                message: httpError.body ?? httpError.status.reasonPhrase,
                subcode: "HTTP\(httpError.status.code)"
            )
        }
        if let responseError = error as? any HTTPResponseError {
            return response(
                form: form,
                status: responseError.status,
                message: "\(error)",
                subcode: "HTTP\(responseError.status.code)"
            )
        }
        return response(
            form: form,
            status: .internalServerError,
            message: "internal error: \(error)",
            subcode: "InternalError"
        )
    }
}
