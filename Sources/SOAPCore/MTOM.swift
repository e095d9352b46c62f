import Foundation
import Hummingbird
import MultipartKit
import NIOCore
import NIOHTTP1

/// MTOM/XOP (W3C SOAP MTOM and XOP): a SOAP 1.2 message sent as `multipart/related`, its root part the envelope
/// (`application/xop+xml`), binary content in other parts referenced by `<xop:Include href="cid:…"/>`. The
/// parsing is multipart-kit's; this type only follows the references.
public enum MTOM {
    public static let xopNamespace = "http://www.w3.org/2004/08/xop/include"

    /// A refusal of a malformed MTOM message, said as a SOAP 1.2 Sender fault.
    static func refusal(_ reason: String) -> SOAPFault {
        SOAPFault(code: .sender, subcode: "sandbox:MalformedMTOM", reason: "MTOM/XOP message refused: \(reason)")
    }

    /// The parameters of a media type (`boundary`, `type`, `start`, `start-info`, `action`), names lowercased, quotes
    /// removed.
    static func parameters(_ contentType: String) -> [String: String] {
        var parameters: [String: String] = [:]
        for part in contentType.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            parameters[pair[0].lowercased()] = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return parameters
    }

    struct Part {
        var headers: [String: String] = [:]
        var body = ByteBuffer()
    }

    /// The root part's bytes and Content-Type, and the other parts by Content-ID (without `<>`).
    static func split(
        _ body: ByteBuffer,
        contentType: String
    ) throws(SOAPFault) -> (root: Data, rootType: String, attachments: [String: Data]) {
        let parameters = parameters(contentType)
        guard let boundary = parameters["boundary"], !boundary.isEmpty else {
            throw refusal("the Content-Type has no boundary")
        }
        var parts: [Part] = []
        var current = Part()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in current.headers[name.lowercased()] = value }
        parser.onBody = { chunk in current.body.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(current)
            current = Part()
        }
        do { try parser.execute(body) } catch { throw refusal("malformed multipart body (\(error))") }
        guard !parts.isEmpty else { throw refusal("no part found with boundary '\(boundary)'") }
        func id(_ part: Part) -> String? {
            part.headers["content-id"]?.trimmingCharacters(in: CharacterSet(charactersIn: "<> "))
        }
        let start = parameters["start"]?.trimmingCharacters(in: CharacterSet(charactersIn: "<> "))
        guard let root = start.map({ start in parts.first { id($0) == start } }) ?? parts.first else {
            throw refusal("no part has the Content-ID of start=\(start ?? "")")
        }
        let rootType = root.headers["content-type"] ?? ""
        guard rootType.lowercased().hasPrefix("application/xop+xml") else {
            throw refusal("the root part is '\(rootType)', not application/xop+xml")
        }
        var attachments: [String: Data] = [:]
        for part in parts where id(part) != id(root) {
            guard let id = id(part) else { throw refusal("a part has no Content-ID") }
            attachments[id] = Data(buffer: part.body)
        }
        return (Data(buffer: root.body), rootType, attachments)
    }

    /// The element with every `xop:Include` replaced by the base64 text of the part it names, so that services read
    /// a document the same way whether it came inline or as an attachment.
    static func resolve(_ element: SOAPElement, attachments: [String: Data]) throws(SOAPFault) -> SOAPElement {
        var element = element
        if let include = element.children.first(where: { $0.name == "Include" && $0.namespace == xopNamespace }) {
            let href = include.attributes["href"] ?? ""
            guard href.hasPrefix("cid:"),
                let data = attachments[(href.dropFirst(4).removingPercentEncoding ?? String(href.dropFirst(4)))]
            else {
                throw refusal("xop:Include href '\(href)' names no part of the message")
            }
            element.children = []
            element.rawText = data.base64EncodedString()
            return element
        }
        var children: [SOAPElement] = []
        for child in element.children { children.append(try resolve(child, attachments: attachments)) }
        element.children = children
        return element
    }

    /// An MTOM answer: the envelope as the root part, each attachment a binary part referenced from the envelope by
    /// `cid:<id>`.
    public static func response(envelope: String, attachments: [(id: String, mimeType: String, data: Data)]) -> Response
    {
        let boundary = "MIMEBoundary_\(UUID().uuidString.lowercased())"
        let rootID = "root.message@esante-sandbox"
        var root = HTTPHeaders()
        root.add(name: "Content-Type", value: "application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"")
        root.add(name: "Content-Transfer-Encoding", value: "binary")
        root.add(name: "Content-ID", value: "<\(rootID)>")
        var parts = [MultipartPart(headers: root, body: ByteBuffer(string: envelope))]
        for attachment in attachments {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: attachment.mimeType)
            headers.add(name: "Content-Transfer-Encoding", value: "binary")
            headers.add(name: "Content-ID", value: "<\(attachment.id)>")
            parts.append(MultipartPart(headers: headers, body: ByteBuffer(bytes: attachment.data)))
        }
        var body = ByteBuffer()
        try? MultipartSerializer().serialize(parts: parts, boundary: boundary, into: &body)
        let contentType =
            "multipart/related; type=\"application/xop+xml\"; boundary=\"\(boundary)\"; start=\"<\(rootID)>\"; start-info=\"application/soap+xml\""
        return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: body))
    }
}
