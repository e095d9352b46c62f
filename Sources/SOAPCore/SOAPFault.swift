import Foundation

/// A SOAP 1.2 `env:Fault` (W3C SOAP 1.2 part 1 §5.4): how every SOAP service of the sandbox reports an error.
public struct SOAPFault: Sendable, Hashable, Error {
    /// SOAP 1.2 fault codes (`env:Sender` for the caller's fault, `env:Receiver` for ours).
    public enum Code: String, Sendable {
        case sender = "env:Sender"
        case receiver = "env:Receiver"
        case versionMismatch = "env:VersionMismatch"
        case mustUnderstand = "env:MustUnderstand"
    }

    public var code: Code
    /// Optional application subcode (a QName's text, e.g. `sandbox:NotWhitelisted`).
    public var subcode: String?
    public var reason: String
    /// Already-serialised XML placed inside `env:Detail`, or nil.
    public var detailXML: String?
    /// `xml:lang` of the reason (the CNAM services answer in French).
    public var language: String

    public init(code: Code, subcode: String? = nil, reason: String, detailXML: String? = nil, language: String = "en") {
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.detailXML = detailXML
        self.language = language
    }

    public static let envelopeNamespace = "http://www.w3.org/2003/05/soap-envelope"
    public static let sandboxNamespace = "urn:esante-sandbox:faults"
    public static let contentType = "application/soap+xml; charset=utf-8"

    /// The whole envelope.
    public var xml: String {
        var subcodeXML = ""
        if let subcode {
            subcodeXML = "<env:Subcode><env:Value>\(XMLText.escape(subcode))</env:Value></env:Subcode>"
        }
        let detail = detailXML.map { "<env:Detail>\($0)</env:Detail>" } ?? ""
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <env:Envelope xmlns:env="\(Self.envelopeNamespace)" xmlns:sandbox="\(Self.sandboxNamespace)">\
            <env:Body><env:Fault><env:Code><env:Value>\(code.rawValue)</env:Value>\(subcodeXML)</env:Code>\
            <env:Reason><env:Text xml:lang="\(language)">\(XMLText.escape(reason))</env:Text></env:Reason>\(detail)</env:Fault>\
            </env:Body></env:Envelope>
            """
    }
}

/// XML text escaping for element content and attribute values.
public enum XMLText {
    public static func escape(_ text: String) -> String {
        // Most values (codes, ids, dates) need nothing: scan the bytes before building a new string.
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else {
            return text
        }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
