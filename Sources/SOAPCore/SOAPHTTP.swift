import Hummingbird
import NIOCore

/// SOAP over HTTP, shared by the SOAP services: how a fault and a service description travel.
extension SOAPFault {
    /// The fault as an HTTP response (`application/soap+xml`).
    /// `retryAfter`: seconds, for a refusal the client may send again later (503).
    public func response(status: HTTPResponse.Status, retryAfter: Int? = nil) -> Response {
        var headers: HTTPFields = [.contentType: Self.contentType]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: xml)))
    }
}

public enum SOAPServiceDescription {
    /// `GET <path>?wsdl` → the WSDL, `GET <path>?xsd=NAME` → one of `schemas`; 404 for an unknown schema, 405 for
    /// a GET without either (SOAP requests are POSTed).
    public static func response(
        _ request: Request,
        path: String,
        wsdl: () -> String,
        schemas: [String: String]
    ) throws -> Response {
        let query = request.uri.queryParameters
        let text: String
        if let name = query["xsd"].map(String.init) {
            guard let schema = schemas[name] else {
                throw HTTPError(
                    .notFound,
                    message: "No schema '\(name)': \(schemas.keys.sorted().joined(separator: ", "))"
                )
            }
            text = schema
        } else if request.uri.query?.lowercased() == "wsdl" || query["wsdl"] != nil {
            text = wsdl()
        } else {
            throw HTTPError(
                .methodNotAllowed,
                message: "POST SOAP 1.2 requests to \(path); GET \(path)?wsdl for the WSDL"
            )
        }
        return Response(
            status: .ok,
            headers: [.contentType: "application/xml; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
