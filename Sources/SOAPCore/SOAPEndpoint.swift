import Foundation
import Hummingbird
import NIOCore

/// How a SOAP service writes the refusals the shared request plumbing makes: each service answers in its own fault
/// form (INSi's `siram:Erreur`, CSD's `ror:erreur`, the DMP's), with its own HTTP status.
public protocol SOAPServiceFault: Error {
    /// The body is over the parser's byte limit.
    static func tooLarge(limit: Int) -> Self
    /// The Content-Type is not `application/soap+xml`.
    static func unsupportedMediaType(_ contentType: String?) -> Self
    /// The envelope was refused by the hardened parser or is not a SOAP 1.2 envelope with one body element.
    init(envelope: SOAPFault)
    var response: Response { get }
}

/// A SOAP 1.2 request through the checks every SOAP service makes.
public struct SOAPRequest: Sendable {
    public var envelope: SOAPEnvelope
    public var contentType: String
    /// The `action` parameter of the Content-Type (SOAP 1.2's HTTP binding), if any.
    public var httpAction: String?
    /// Whether it came as MTOM/XOP (`multipart/related`): an answer carrying documents should too.
    public var isMTOM = false

    public init(envelope: SOAPEnvelope, contentType: String, httpAction: String?) {
        self.envelope = envelope
        self.contentType = contentType
        self.httpAction = httpAction
    }

    /// A WS-Addressing header block's text (`Action`, `MessageID`, `To`).
    public func addressing(_ name: String) -> String? {
        envelope.headerBlock(name, namespace: SOAPEndpoint.addressingNamespace)?.text
    }
}

/// An operation of a SOAP service: the body element that selects it and its action.
public protocol SOAPOperation: Sendable {
    var action: String { get }
    func selects(_ body: SOAPElement) -> Bool
}

/// The SOAP request plumbing shared by the SOAP services: body size, media type, envelope, action dispatch.
public enum SOAPEndpoint {
    public static let addressingNamespace = "http://www.w3.org/2005/08/addressing"

    /// Reads a POSTed SOAP 1.2 request: at most the parser's byte limit (413), `application/soap+xml` (415), an
    /// envelope the hardened parser accepts; every refusal in the service's fault form.
    public static func read<Fault: SOAPServiceFault>(
        _ request: Request,
        parser: HardenedXMLParser,
        faults: Fault.Type
    ) async throws(Fault) -> SOAPRequest {
        var request = request
        let limit = parser.maximumBytes
        guard let body = try? await request.collectBody(upTo: limit) else { throw Fault.tooLarge(limit: limit) }
        guard let contentType = request.headers[.contentType] else { throw Fault.unsupportedMediaType(nil) }
        if contentType.lowercased().hasPrefix("multipart/related") {
            // MTOM/XOP: the envelope is the root part; documents are parts it references.
            do throws(SOAPFault) {
                let (root, rootType, attachments) = try MTOM.split(body, contentType: contentType)
                var envelope = try SOAPEnvelope(data: root, parser: parser)
                envelope.body = try MTOM.resolve(envelope.body, attachments: attachments)
                let action = MTOM.parameters(contentType)["action"] ?? MTOM.parameters(rootType)["action"]
                var soap = SOAPRequest(envelope: envelope, contentType: contentType, httpAction: action)
                soap.isMTOM = true
                return soap
            } catch {
                throw Fault(envelope: error)
            }
        }
        guard contentType.lowercased().hasPrefix("application/soap+xml") else {
            throw Fault.unsupportedMediaType(contentType)
        }
        let envelope: SOAPEnvelope
        do {
            envelope = try SOAPEnvelope(data: Data(buffer: body), parser: parser)
        } catch {
            throw Fault(envelope: error)
        }
        return SOAPRequest(
            envelope: envelope,
            contentType: contentType,
            httpAction: SOAPEnvelope.action(contentType: contentType)
        )
    }

    /// Why no operation was chosen.
    public enum DispatchRefusal: Error, Sendable {
        /// No operation has this body element.
        case unknownElement(SOAPElement)
        /// `wsa:Action` is required and absent.
        case missingAction(expected: String)
        /// An action (from `origin`: the Content-Type or `wsa:Action`) names another operation.
        case wrongAction(origin: String, action: String, expected: String)
        /// The Content-Type's action and `wsa:Action` differ.
        case conflictingActions(http: String, addressing: String)
    }

    /// The operation the body element selects, checked against the actions the request carries: `wsa:Action`
    /// (required with `requireAddressing`) and the Content-Type's `action`, each equal to the operation's or one
    /// of `aliases` (other names of the same operation).
    public static func dispatch<Operation: SOAPOperation>(
        _ request: SOAPRequest,
        among operations: [Operation],
        requireAddressing: Bool,
        aliases: (Operation) -> [String] = { _ in [] }
    ) -> Result<Operation, DispatchRefusal> {
        guard let operation = operations.first(where: { $0.selects(request.envelope.body) }) else {
            return .failure(.unknownElement(request.envelope.body))
        }
        let addressing = request.addressing("Action").flatMap { $0.isEmpty ? nil : $0 }
        if requireAddressing, addressing == nil { return .failure(.missingAction(expected: operation.action)) }
        let accepted = [operation.action] + aliases(operation)
        if let addressing, !accepted.contains(addressing) {
            return .failure(.wrongAction(origin: "wsa:Action", action: addressing, expected: operation.action))
        }
        if let http = request.httpAction {
            if requireAddressing, let addressing, http != addressing {
                return .failure(.conflictingActions(http: http, addressing: addressing))
            }
            if !accepted.contains(http) {
                return .failure(.wrongAction(origin: "Content-Type", action: http, expected: operation.action))
            }
        }
        return .success(operation)
    }

    /// A SOAP 1.2 answer (`application/soap+xml`, 200) of an envelope's text.
    public static func answer(_ envelope: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: SOAPFault.contentType],
            body: .init(byteBuffer: ByteBuffer(string: envelope))
        )
    }
}
