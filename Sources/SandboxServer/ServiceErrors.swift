import Access
import FHIRCore
import Foundation
import Hummingbird
import NIOCore
import SOAPCore

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
        case 400..<500: "invalid"
        default: "exception"
        }
    }

    static func response(
        service: SandboxService?,
        status: HTTPResponse.Status,
        message: String,
        subcode: String,
        expression: [String]? = nil
    ) -> Response {
        switch service?.errorForm {
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
    static func refusal(service: SandboxService?, decision: AccessDecision) -> Response {
        response(service: service, status: .forbidden, message: decision.message, subcode: subcodeName(decision.reason))
    }

    /// `not-whitelisted` → `NotWhitelisted`: fault subcodes are QName-like.
    static func subcodeName(_ reason: String) -> String {
        reason.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// Any error escaping a handler, turned into the service's form (never a bare 500 page).
    static func response(for error: any Error, service: SandboxService?) -> Response {
        if let httpError = error as? HTTPError {
            return response(
                service: service,
                status: httpError.status,
                message: httpError.body ?? httpError.status.reasonPhrase,
                subcode: "HTTP\(httpError.status.code)"
            )
        }
        if let responseError = error as? any HTTPResponseError {
            return response(
                service: service,
                status: responseError.status,
                message: "\(error)",
                subcode: "HTTP\(responseError.status.code)"
            )
        }
        return response(
            service: service,
            status: .internalServerError,
            message: "internal error: \(error)",
            subcode: "InternalError"
        )
    }
}
