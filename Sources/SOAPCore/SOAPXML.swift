import Foundation

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of a parsed SOAP message: namespace-resolved name, attributes, children and text. A value type,
/// small enough for the few kilobytes a SOAP request carries.
public struct SOAPElement: Sendable, Hashable {
    /// Namespace URI ("" when none).
    public var namespace: String
    public var name: String
    /// Attributes by local name (SOAP payloads here use no namespaced attributes that could collide).
    public var attributes: [String: String]
    public var children: [SOAPElement]
    /// Character data directly inside this element, whitespace kept.
    public var rawText: String

    public init(
        namespace: String,
        name: String,
        attributes: [String: String] = [:],
        children: [SOAPElement] = [],
        rawText: String = ""
    ) {
        self.namespace = namespace
        self.name = name
        self.attributes = attributes
        self.children = children
        self.rawText = rawText
    }

    /// The text with surrounding whitespace removed.
    public var text: String { rawText.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The first child with that local name (and namespace, when given).
    public func child(_ name: String, namespace: String? = nil) -> SOAPElement? {
        children.first { $0.name == name && (namespace == nil || $0.namespace == namespace) }
    }

    public func children(_ name: String, namespace: String? = nil) -> [SOAPElement] {
        children.filter { $0.name == name && (namespace == nil || $0.namespace == namespace) }
    }

    /// Follows a path of local names (`child("A")?.child("B")…`).
    public func path(_ names: String...) -> SOAPElement? {
        var element: SOAPElement? = self
        for name in names { element = element?.child(name) }
        return element
    }

    /// Every element below this one, depth first.
    public var descendants: [SOAPElement] {
        children.flatMap { [$0] + $0.descendants }
    }
}

/// Why a message was refused before any service logic ran.
public enum XMLRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// SOAP 1.2 part 1 §5: "A SOAP message MUST NOT contain a Document Type Declaration" — which also rules out
    /// external entities (XXE) and entity expansion (billion laughs) before the parser sees them.
    case documentTypeDeclaration
    case tooLarge(bytes: Int, limit: Int)
    case tooDeep(limit: Int)
    case tooManyElements(limit: Int)
    case malformed(line: Int, column: Int, message: String)
    case empty

    public var description: String {
        switch self {
        case .documentTypeDeclaration:
            "the message contains a Document Type Declaration (<!DOCTYPE or <!ENTITY): forbidden in SOAP messages (SOAP 1.2 part 1 §5), no entity is expanded"
        case .tooLarge(let bytes, let limit): "the message is \(bytes) bytes, over the \(limit)-byte limit"
        case .tooDeep(let limit): "the message nests elements deeper than \(limit) levels"
        case .tooManyElements(let limit): "the message has more than \(limit) elements"
        case .malformed(let line, let column, let message):
            "malformed XML at line \(line), column \(column): \(message)"
        case .empty: "the message is empty"
        }
    }
}

/// A parser for untrusted SOAP messages: no DTD at all (hence no external entity, no entity expansion), bounded
/// size, depth and element count, namespace-aware, declared encodings honoured (libxml2 through FoundationXML).
public struct HardenedXMLParser: Sendable {
    public var maximumBytes: Int
    public var maximumDepth: Int
    public var maximumElements: Int
    /// SOAP 1.2 forbids processing instructions; a CDA document may carry `<?xml-stylesheet …?>`. Either way a PI
    /// without data is refused (FoundationXML crashes on one).
    public var allowsProcessingInstructions: Bool

    public init(
        maximumBytes: Int = 1 << 20,
        maximumDepth: Int = 64,
        maximumElements: Int = 10_000,
        allowsProcessingInstructions: Bool = false
    ) {
        self.maximumBytes = maximumBytes
        self.maximumDepth = maximumDepth
        self.maximumElements = maximumElements
        self.allowsProcessingInstructions = allowsProcessingInstructions
    }

    public func parse(_ data: Data) throws(XMLRejection) -> SOAPElement {
        guard data.count <= maximumBytes else { throw .tooLarge(bytes: data.count, limit: maximumBytes) }
        guard !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else { throw .empty }
        // Looked for in the raw bytes, before parsing: ASCII markup reads the same in every encoding a SOAP
        // message may declare (UTF-8, ISO-8859-x). A UTF-16 message would hide it, so UTF-16 is refused by the
        // parser's encoding check below.
        if data.contains(bytes: "<!DOCTYPE") || data.contains(bytes: "<!ENTITY") {
            throw .documentTypeDeclaration
        }
        if data.starts(with: [0xFE, 0xFF]) || data.starts(with: [0xFF, 0xFE])
            || (data.count > 1 && (data[data.startIndex] == 0 || data[data.startIndex + 1] == 0))
        {
            throw .malformed(line: 1, column: 1, message: "UTF-16 messages are not accepted; send UTF-8")
        }
        let body = Self.afterDeclaration(data)
        if !allowsProcessingInstructions, body.contains(bytes: "<?") {
            // SOAP 1.2 (Part 1, 5) forbids processing instructions; FoundationXML also dereferences a null pointer on
            // one without data (`<?m?>`, found by libFuzzer), which stopped the server.
            throw .malformed(line: 1, column: 1, message: "processing instructions are not allowed in a SOAP message")
        }
        if allowsProcessingInstructions, Self.hasProcessingInstructionWithoutData(body) {
            throw .malformed(line: 1, column: 1, message: "a processing instruction without data")
        }
        if let offset = Self.firstInvalidUTF8(in: data) {
            throw .malformed(
                line: data.prefix(offset).count(where: { $0 == 0x0A }) + 1,
                column: offset - (data.prefix(offset).lastIndex(of: 0x0A).map { $0 - data.startIndex + 1 } ?? 0) + 1,
                message: "byte \(offset) is not UTF-8 (the message declares no single-byte encoding)"
            )
        }
        let builder = TreeBuilder(maximumDepth: maximumDepth, maximumElements: maximumElements)
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        let ok = parser.parse()
        if let limit = builder.limitHit { throw limit }
        guard ok, let root = builder.root else {
            let message = parser.parserError.map { ($0 as NSError).localizedDescription } ?? "not well-formed"
            throw .malformed(line: parser.lineNumber, column: parser.columnNumber, message: message)
        }
        return root
    }
}

extension HardenedXMLParser {
    /// The offset of the first byte that is not UTF-8, unless the XML declaration names a single-byte encoding
    /// (ISO-8859-x, Latin-n, Windows-125x, whose every byte is a character). FoundationXML traps on an element name
    /// that is not UTF-8 — five bytes, `<` 0xC9 `xmr`, found by libFuzzer, stopped the whole server — so such a
    /// message is refused before it reaches the parser.
    static func firstInvalidUTF8(in data: Data) -> Int? {
        if String(validating: data, as: UTF8.self) != nil { return nil }
        if let encoding = declaredEncoding(data)?.lowercased(),
            encoding.hasPrefix("iso-8859") || encoding.hasPrefix("iso8859") || encoding.hasPrefix("latin")
                || encoding.hasPrefix("windows-125") || encoding.hasPrefix("cp125")
        {
            return nil
        }
        var parser = Unicode.UTF8.ForwardParser()
        var bytes = data.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &bytes) {
            case .valid(let scalar): offset += scalar.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }

    /// Whether some `<?target?>` has no data after its target (what FoundationXML crashes on).
    static func hasProcessingInstructionWithoutData(_ data: Data) -> Bool {
        var rest = data[...]
        while let start = rest.firstRange(of: Array("<?".utf8)) {
            let afterTarget = rest[start.upperBound...].drop { ![0x20, 0x09, 0x0A, 0x0D, 0x3F].contains($0) }
            let data = afterTarget.drop { [0x20, 0x09, 0x0A, 0x0D].contains($0) }
            if data.first == 0x3F || data.isEmpty { return true }
            rest = rest[start.upperBound...]
        }
        return false
    }

    /// The bytes after a leading XML declaration (and UTF-8 byte order mark), the whole message without one.
    static func afterDeclaration(_ data: Data) -> Data.SubSequence {
        var rest = data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data[...]
        // `<?xml` then a space, and a version (`<?xml?>` crashed FoundationXML too): otherwise a processing instruction.
        if rest.starts(with: Array("<?xml".utf8)), rest.count > 5,
            [0x20, 0x09, 0x0A, 0x0D].contains(rest[rest.startIndex + 5]),
            let end = rest.firstRange(of: Array("?>".utf8)),
            rest[..<end.lowerBound].firstRange(of: Array("version".utf8)) != nil
        {
            rest = rest[end.upperBound...]
        }
        // A slice of the same storage: copying a 1 MB ITI-41 to look past its first line is not worth it.
        return rest
    }

    /// `encoding="…"` of a leading `<?xml …?>` declaration.
    static func declaredEncoding(_ data: Data) -> String? {
        let head = String(decoding: data.prefix(200), as: UTF8.self)
        guard head.hasPrefix("<?xml"), let end = head.range(of: "?>") else { return nil }
        let declaration = head[..<end.lowerBound]
        guard let key = declaration.range(of: "encoding") else { return nil }
        let rest = declaration[key.upperBound...].drop { $0 == " " || $0 == "=" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        return String(rest.dropFirst().prefix { $0 != quote })
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    let maximumDepth: Int
    let maximumElements: Int
    var stack: [SOAPElement] = []
    var root: SOAPElement?
    var count = 0
    var limitHit: XMLRejection?

    init(maximumDepth: Int, maximumElements: Int) {
        self.maximumDepth = maximumDepth
        self.maximumElements = maximumElements
    }

    func parser(
        _ parser: XMLParser,
        didStartElement elementName: String,
        namespaceURI: String?,
        qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        count += 1
        if stack.count >= maximumDepth {
            limitHit = .tooDeep(limit: maximumDepth)
            parser.abortParsing()
            return
        }
        if count > maximumElements {
            limitHit = .tooManyElements(limit: maximumElements)
            parser.abortParsing()
            return
        }
        var attributes: [String: String] = [:]
        for (key, value) in attributeDict {
            attributes[String(key.split(separator: ":").last ?? Substring(key))] = value
        }
        stack.append(SOAPElement(namespace: namespaceURI ?? "", name: elementName, attributes: attributes))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].rawText += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].rawText += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(
        _ parser: XMLParser,
        didEndElement elementName: String,
        namespaceURI: String?,
        qualifiedName qName: String?
    ) {
        guard let element = stack.popLast() else { return }
        if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
    }

    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? { nil }
}

/// A SOAP 1.2 envelope: its header blocks and the single body element.
public struct SOAPEnvelope: Sendable {
    public static let soap11Namespace = "http://schemas.xmlsoap.org/soap/envelope/"

    public var header: SOAPElement?
    public var body: SOAPElement
    /// Attributes of `env:Body` (INSi's CPx mode signs a body carrying `Id="_0"`).
    public var bodyAttributes: [String: String]

    /// Parses and checks the envelope; every refusal is the SOAP 1.2 fault a SOAP node would send.
    public init(data: Data, parser: HardenedXMLParser = HardenedXMLParser()) throws(SOAPFault) {
        let root: SOAPElement
        do {
            root = try parser.parse(data)
        } catch {
            throw SOAPFault(code: .sender, subcode: "sandbox:MalformedMessage", reason: "Message refused: \(error)")
        }
        if root.name == "Envelope", root.namespace == Self.soap11Namespace {
            throw SOAPFault(
                code: .versionMismatch,
                reason:
                    "SOAP 1.1 envelope received: this service speaks SOAP 1.2 (namespace \(SOAPFault.envelopeNamespace), Content-Type application/soap+xml)"
            )
        }
        guard root.name == "Envelope", root.namespace == SOAPFault.envelopeNamespace else {
            throw SOAPFault(
                code: .sender,
                subcode: "sandbox:MalformedMessage",
                reason:
                    "The document element is {\(root.namespace)}\(root.name), not a SOAP 1.2 {\(SOAPFault.envelopeNamespace)}Envelope"
            )
        }
        guard let body = root.child("Body", namespace: SOAPFault.envelopeNamespace) else {
            throw SOAPFault(code: .sender, subcode: "sandbox:MalformedMessage", reason: "The envelope has no Body")
        }
        guard body.children.count == 1, let payload = body.children.first else {
            throw SOAPFault(
                code: .sender,
                subcode: "sandbox:MalformedMessage",
                reason: "The Body must carry exactly one element (it carries \(body.children.count))"
            )
        }
        self.header = root.child("Header", namespace: SOAPFault.envelopeNamespace)
        self.body = payload
        self.bodyAttributes = body.attributes
    }

    /// The header block with that local name and namespace.
    public func headerBlock(_ name: String, namespace: String) -> SOAPElement? {
        header?.child(name, namespace: namespace)
    }

    /// The `action` parameter of a SOAP 1.2 Content-Type (`application/soap+xml; charset=utf-8; action="…"`).
    public static func action(contentType: String?) -> String? {
        guard let contentType else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let parts = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0].lowercased() == "action" {
                return parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }
}

extension SOAPElement {
    /// The element written back as XML, each element with its namespace as the default one (prefixes are not kept,
    /// nor attributes' namespaces: enough for ebRIM, whose attributes have none).
    public var xml: String {
        var text = "<\(name)"
        if !namespace.isEmpty { text += " xmlns=\"\(XMLText.escape(namespace))\"" }
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            text += " \(key)=\"\(XMLText.escape(value))\""
        }
        if children.isEmpty && rawText.isEmpty { return text + "/>" }
        text += ">"
        text += children.isEmpty ? XMLText.escape(rawText) : children.map(\.xml).joined()
        return text + "</\(name)>"
    }
}

extension Data {
    /// Whether the ASCII `needle` occurs: `memchr` for its first byte, then `memcmp`. Foundation's `range(of:)` took
    /// 9 % of a 1 MB ITI-41 looking for a DTD in the document (docs/performance.md).
    fileprivate func contains(bytes needle: StaticString) -> Bool {
        withUnsafeBytes { haystack in
            guard var cursor = haystack.baseAddress, needle.utf8CodeUnitCount > 0 else { return false }
            let end = cursor + haystack.count
            let length = needle.utf8CodeUnitCount
            while end - cursor >= length {
                guard let hit = memchr(cursor, Int32(needle.utf8Start.pointee), end - cursor - length + 1) else {
                    return false
                }
                if memcmp(hit, needle.utf8Start, length) == 0 { return true }
                cursor = UnsafeRawPointer(hit) + 1
            }
            return false
        }
    }
}
