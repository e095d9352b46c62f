import Foundation
import SwiftASN1
import X509

/// A distinguished name (DN) as the sandbox compares it: the subject DN of a client certificate, or a DN a user
/// typed into a whitelist entry ("DN du certificat" in the ANS onboarding forms).
///
/// RDNs are kept **in certificate (DER) order**, most significant first (`C`, `ST`, `O`, `OU`, `CN`), which is how
/// OpenSSL's one-line and slash forms print them; the RFC 4514 string reverses that order (`CN=…,…,C=FR`).
/// Two DNs match when their ``matchKey`` is equal: attribute types canonicalised, values Unicode NFC, compared
/// case-insensitively with insignificant spaces collapsed (RFC 4518 in spirit), multi-valued RDNs as sets.
public struct SubjectDN: Hashable, Sendable, CustomStringConvertible {
    public struct Attribute: Hashable, Sendable, Codable {
        /// Canonical short name (`CN`, `OU`, `ST`, …) or dotted OID for types without one.
        public var type: String
        public var value: String

        public init(type: String, value: String) {
            self.type = type
            self.value = value
        }
    }

    /// The textual forms a DN can be written in.
    public enum Format: String, Sendable, CaseIterable, Codable {
        /// `CN=CLIENT,OU=…,C=FR` — RFC 4514 / RFC 2253, as Java `X500Principal.getName()`, nginx `$ssl_client_s_dn`.
        case rfc4514
        /// `C = FR, ST = Paris (75), …, CN = CLIENT` — `openssl x509 -noout -subject` (OpenSSL 3 default).
        case openSSLOneLine
        /// `/C=FR/ST=Paris (75)/…/CN=CLIENT` — legacy OpenSSL `-subj` / `-nameopt compat`.
        case slash
    }

    /// RDNs in certificate order (most significant first); each RDN holds one or more attributes.
    public private(set) var rdns: [[Attribute]]

    public init(rdns: [[Attribute]]) {
        self.rdns = rdns
    }

    /// Parses a DN written in any of the three ``Format``s (detected unless given).
    public init(parsing text: String, format: Format? = nil) throws(DNParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw DNParseError(.empty, in: text, at: 0) }
        let detected = format ?? Self.detectFormat(trimmed)
        var parser = DNTextParser(text: trimmed, format: detected)
        let parsed = try parser.parse()
        // RFC 4514 lists the most specific RDN first; the other two forms follow certificate order.
        self.rdns = detected == .rfc4514 ? parsed.reversed() : parsed
    }

    /// The subject or issuer of a parsed certificate.
    public init(_ name: DistinguishedName) {
        self.rdns = name.map { rdn in
            rdn.map { attribute in
                Attribute(type: Self.shortName(for: attribute.type), value: Self.text(of: attribute.value))
            }
        }
    }

    /// Which form a string is written in: leading `/` → slash; `TYPE = value` (spaces around the first `=`) → the
    /// OpenSSL one-line form; anything else → RFC 4514.
    public static func detectFormat(_ text: String) -> Format {
        if text.hasPrefix("/") { return .slash }
        if let equals = text.firstIndex(of: "="), equals > text.startIndex {
            let before = text[text.index(before: equals)]
            let afterIndex = text.index(after: equals)
            if before == " ", afterIndex < text.endIndex, text[afterIndex] == " " { return .openSSLOneLine }
        }
        return .rfc4514
    }

    // MARK: Printing

    /// RFC 4514 string (most specific RDN first, `,` without space, `+` inside a multi-valued RDN, UTF-8 kept):
    /// byte-identical to swift-certificates, Java `getName()` and `openssl -nameopt RFC2253,-esc_msb`.
    public var rfc4514: String {
        rdns.reversed().map { rdn in
            rdn.map { "\($0.type)=\(Self.escapeRFC4514($0.value))" }.joined(separator: "+")
        }.joined(separator: ",")
    }

    /// OpenSSL 3 default (`-nameopt oneline`): certificate order, `", "` and `" = "`.
    public var openSSLOneLine: String {
        rdns.map { rdn in
            rdn.map { "\(Self.openSSLName($0.type)) = \(Self.quoteOneLine($0.value))" }.joined(separator: " + ")
        }.joined(separator: ", ")
    }

    /// Legacy slash form, certificate order.
    public var slashForm: String {
        rdns.map { rdn in
            "/"
                + rdn.map { "\(Self.openSSLName($0.type))=\($0.value.replacingOccurrences(of: "/", with: "\\/"))" }
                .joined(separator: "+")
        }.joined()
    }

    public var description: String { rfc4514 }

    /// All attributes in certificate order, flattened (for JSON output).
    public var attributes: [Attribute] { rdns.flatMap { $0 } }

    /// First value of an attribute type, e.g. `value(of: "OU")`.
    public func value(of type: String) -> String? {
        attributes.first { $0.type == type }?.value
    }

    // MARK: Matching

    /// Canonical comparison key: equal for the same DN however it was written.
    public var matchKey: String { Self.matchKey(normalisedRDNs()) }

    /// Same attributes regardless of RDN order; used only to explain a near miss, never to accept.
    public var unorderedMatchKey: String { Self.unorderedMatchKey(normalisedRDNs()) }

    /// Each RDN as its sorted `TYPE=normalised value` strings: the part both keys share (computed once per
    /// connection by ``ClientIdentity``).
    public func normalisedRDNs() -> [String] {
        rdns.map { rdn in rdn.map { "\($0.type)=\(Self.normalisedValue($0.value))" }.sorted().joined(separator: "+") }
    }

    public static func matchKey(_ normalisedRDNs: [String]) -> String { normalisedRDNs.joined(separator: ",") }
    public static func unorderedMatchKey(_ normalisedRDNs: [String]) -> String {
        normalisedRDNs.sorted().joined(separator: ",")
    }

    public func matches(_ other: SubjectDN) -> Bool { matchKey == other.matchKey }

    static func normalisedValue(_ value: String) -> String {
        // Fast path for the usual ASCII value: no NFC, ASCII case folding, spaces collapsed.
        if value.utf8.allSatisfy({ $0 < 0x80 }) {
            var out: [UInt8] = []
            out.reserveCapacity(value.utf8.count)
            var pendingSpace = false
            for byte in value.utf8 {
                if byte == 0x20 || (0x09...0x0d).contains(byte) {
                    pendingSpace = !out.isEmpty
                    continue
                }
                if pendingSpace {
                    out.append(0x20)
                    pendingSpace = false
                }
                out.append((0x41...0x5a).contains(byte) ? byte + 0x20 : byte)
            }
            return String(decoding: out, as: UTF8.self)
        }
        let nfc = value.precomposedStringWithCanonicalMapping.lowercased()
        return nfc.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}

// MARK: - Attribute types

extension SubjectDN {
    /// Canonical names of the attribute types (RFC 4514 §3 plus the ones swift-certificates prints).
    static let typesByOID: [String: String] = [
        "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
        "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
        "1.2.840.113549.1.9.1": "E", "2.5.4.5": "SERIALNUMBER", "2.5.4.4": "SN", "2.5.4.42": "GIVENNAME",
        "2.5.4.12": "TITLE", "2.5.4.97": "ORGANIZATIONIDENTIFIER",
    ]

    /// Spellings accepted when parsing, upper-cased, mapped to the canonical name.
    static let typeAliases: [String: String] = {
        var aliases: [String: String] = [
            "S": "ST", "STATEORPROVINCENAME": "ST", "COMMONNAME": "CN", "COUNTRYNAME": "C", "LOCALITYNAME": "L",
            "ORGANIZATIONNAME": "O", "ORGANIZATIONALUNITNAME": "OU", "STREETADDRESS": "STREET",
            "DOMAINCOMPONENT": "DC", "USERID": "UID", "EMAILADDRESS": "E", "EMAIL": "E", "SURNAME": "SN",
            "G": "GIVENNAME", "GN": "GIVENNAME",
        ]
        for (oid, name) in typesByOID {
            aliases[name] = name
            aliases[oid] = name
            aliases["OID." + oid] = name
        }
        return aliases
    }()

    static func shortName(for oid: ASN1ObjectIdentifier) -> String {
        let dotted = oid.description
        return typesByOID[dotted] ?? dotted
    }

    /// Canonical type for a spelling, or nil when it is neither a known name nor a dotted OID.
    static func canonicalType(_ raw: String) -> String? {
        let upper = raw.uppercased()
        if let known = typeAliases[upper] { return known }
        let oid = upper.hasPrefix("OID.") ? String(upper.dropFirst(4)) : upper
        let arcs = oid.split(separator: ".", omittingEmptySubsequences: false)
        guard arcs.count >= 2, arcs.allSatisfy({ !$0.isEmpty && $0.allSatisfy({ $0.isASCII && $0.isNumber }) }) else {
            return nil
        }
        return oid
    }

    /// The name OpenSSL prints for a type (its one-line and slash forms use `emailAddress`, not `E`).
    static func openSSLName(_ type: String) -> String {
        switch type {
        case "E": return "emailAddress"
        case "SERIALNUMBER": return "serialNumber"
        case "GIVENNAME": return "GN"
        case "STREET": return "street"
        case "ORGANIZATIONIDENTIFIER": return "organizationIdentifier"
        default: return type
        }
    }

    static func text(of value: RelativeDistinguishedName.Attribute.Value) -> String {
        if let string = String(value) { return string }
        // Not a string type: RFC 4514 §2.4 hex form of the DER encoding.
        var serializer = DER.Serializer()
        if (try? serializer.serialize(ASN1Any(value))) != nil {
            return "#" + serializer.serializedBytes.map { String(format: "%02x", $0) }.joined()
        }
        return String(describing: value)
    }

    static func escapeRFC4514(_ value: String) -> String {
        if value.hasPrefix("#"), value.count > 1, value.dropFirst().allSatisfy(\.isHexDigit) {
            return value  // a hex-encoded BER value is written as is
        }
        let specials: Set<Character> = [",", "+", "\"", "\\", "<", ">", ";"]
        let characters = Array(value)
        var out = ""
        for (index, character) in characters.enumerated() {
            let leading = index == 0 && (character == " " || character == "#")
            let trailing = index == characters.count - 1 && character == " "
            if specials.contains(character) || leading || trailing { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// OpenSSL one-line quoting: a value with specials is double-quoted, `"` and `\` backslash-escaped.
    static func quoteOneLine(_ value: String) -> String {
        let specials: Set<Character> = [",", "+", "\"", "\\", "<", ">", ";"]
        let needsQuotes =
            value.contains(where: { specials.contains($0) }) || value.hasPrefix(" ")
            || value.hasSuffix(" ") || value.hasPrefix("#")
        guard needsQuotes else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }
}

// MARK: - Errors

/// Why a DN string could not be parsed. `position` is a character offset into the input.
public struct DNParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case empty
        case missingEquals
        case emptyType
        case unknownAttributeType(String)
        case emptyValue(String)
        case danglingEscape
        case invalidHexEscape
        case invalidUTF8
        case unterminatedQuote
        case unexpectedCharacter(Character)
        case invalidHexValue
    }

    public var kind: Kind
    public var input: String
    public var position: Int

    init(_ kind: Kind, in input: String, at position: Int) {
        self.kind = kind
        self.input = input
        self.position = position
    }

    public var description: String {
        let what: String
        switch kind {
        case .empty: what = "the DN is empty"
        case .missingEquals: what = "an attribute has no '=' (expected TYPE=value)"
        case .emptyType: what = "an attribute type is empty"
        case .unknownAttributeType(let type):
            what =
                "unknown attribute type '\(type)' (use CN, OU, O, L, ST, C, E, DC, UID, SERIALNUMBER or a dotted OID)"
        case .emptyValue(let type): what = "attribute \(type) has an empty value"
        case .danglingEscape: what = "the DN ends with a lone '\\'"
        case .invalidHexEscape: what = "'\\' must be followed by a special character or two hex digits"
        case .invalidUTF8: what = "escaped bytes are not valid UTF-8"
        case .unterminatedQuote: what = "a quoted value has no closing '\"'"
        case .unexpectedCharacter(let c): what = "unexpected character '\(c)'"
        case .invalidHexValue: what = "a '#' value must be the hex DER encoding of a string"
        }
        return "malformed DN at character \(position + 1): \(what)"
    }
}

// MARK: - Parser

/// One tokenizer for the three forms: they differ in separators (`,` `+` vs `/` `+`) and in RDN order, and all
/// three escape with `\` (a special character or two hex digits of UTF-8) or quote with `"`.
struct DNTextParser {
    let input: String
    let characters: [Character]
    let format: SubjectDN.Format
    var index = 0

    init(text: String, format: SubjectDN.Format) {
        self.input = text
        self.characters = Array(text)
        self.format = format
    }

    mutating func parse() throws(DNParseError) -> [[SubjectDN.Attribute]] {
        var rdns: [[SubjectDN.Attribute]] = []
        var current: [SubjectDN.Attribute] = []
        if format == .slash { index = 1 }  // skip the leading "/"
        while true {
            current.append(try parseAttribute())
            skipSpaces()
            guard index < characters.count else { break }
            let separator = characters[index]
            index += 1
            switch (format, separator) {
            case (_, "+"):
                continue
            case (.slash, "/"), (.rfc4514, ","), (.rfc4514, ";"), (.openSSLOneLine, ","):
                rdns.append(current)
                current = []
                if format == .slash, index >= characters.count { return rdns }  // trailing "/"
            default:
                throw DNParseError(.unexpectedCharacter(separator), in: input, at: index - 1)
            }
        }
        rdns.append(current)
        return rdns
    }

    private func isSeparator(_ c: Character) -> Bool {
        format == .slash ? (c == "/" || c == "+") : (c == "," || c == "+" || c == ";")
    }

    private mutating func skipSpaces() {
        while index < characters.count, characters[index] == " " { index += 1 }
    }

    private mutating func parseAttribute() throws(DNParseError) -> SubjectDN.Attribute {
        skipSpaces()
        let typeStart = index
        while index < characters.count, characters[index] != "=" {
            if isSeparator(characters[index]) { throw DNParseError(.missingEquals, in: input, at: index) }
            index += 1
        }
        guard index < characters.count else { throw DNParseError(.missingEquals, in: input, at: typeStart) }
        let rawType = String(characters[typeStart..<index]).trimmingCharacters(in: .whitespaces)
        guard !rawType.isEmpty else { throw DNParseError(.emptyType, in: input, at: typeStart) }
        guard let type = SubjectDN.canonicalType(rawType) else {
            throw DNParseError(.unknownAttributeType(rawType), in: input, at: typeStart)
        }
        index += 1  // "="
        if format != .slash { skipSpaces() }
        let value = try parseValue()
        guard !value.isEmpty else { throw DNParseError(.emptyValue(type), in: input, at: index) }
        return SubjectDN.Attribute(type: type, value: value)
    }

    private mutating func parseValue() throws(DNParseError) -> String {
        if index < characters.count, characters[index] == "\"" { return try parseQuoted() }
        if format == .rfc4514, index < characters.count, characters[index] == "#" { return try parseHexValue() }
        var bytes: [UInt8] = []
        var trailingUnescapedSpaces = 0
        while index < characters.count, !isSeparator(characters[index]) {
            let c = characters[index]
            if c == "\\" {
                try appendEscape(into: &bytes)
                trailingUnescapedSpaces = 0
                continue
            }
            trailingUnescapedSpaces = c == " " ? trailingUnescapedSpaces + 1 : 0
            bytes.append(contentsOf: Array(String(c).utf8))
            index += 1
        }
        if format != .slash { bytes.removeLast(trailingUnescapedSpaces) }  // spaces before a separator are not data
        return try decode(bytes)
    }

    private mutating func parseQuoted() throws(DNParseError) -> String {
        let start = index
        index += 1
        var bytes: [UInt8] = []
        while index < characters.count {
            let c = characters[index]
            if c == "\"" {
                index += 1
                return try decode(bytes)
            }
            if c == "\\" {
                try appendEscape(into: &bytes)
                continue
            }
            bytes.append(contentsOf: Array(String(c).utf8))
            index += 1
        }
        throw DNParseError(.unterminatedQuote, in: input, at: start)
    }

    /// `#` + hex DER of a string type (RFC 4514 §2.4): decoded to its text.
    private mutating func parseHexValue() throws(DNParseError) -> String {
        let start = index
        index += 1
        var hex = ""
        while index < characters.count, !isSeparator(characters[index]), characters[index] != " " {
            hex.append(characters[index])
            index += 1
        }
        guard hex.count >= 4, hex.count % 2 == 0, let bytes = Self.hexBytes(hex),
            let node = try? DER.parse(bytes),
            case let value = RelativeDistinguishedName.Attribute.Value(asn1Any: ASN1Any(derEncoded: node)),
            let text = String(value)
        else { throw DNParseError(.invalidHexValue, in: input, at: start) }
        return text
    }

    private mutating func appendEscape(into bytes: inout [UInt8]) throws(DNParseError) {
        let start = index
        index += 1
        guard index < characters.count else { throw DNParseError(.danglingEscape, in: input, at: start) }
        let next = characters[index]
        if next.isHexDigit {
            guard index + 1 < characters.count, characters[index + 1].isHexDigit,
                let byte = UInt8(String([next, characters[index + 1]]), radix: 16)
            else { throw DNParseError(.invalidHexEscape, in: input, at: start) }
            bytes.append(byte)
            index += 2
            return
        }
        let escapable: Set<Character> = [",", "+", "\"", "\\", "<", ">", ";", " ", "#", "=", "/"]
        guard escapable.contains(next) else { throw DNParseError(.invalidHexEscape, in: input, at: start) }
        bytes.append(contentsOf: Array(String(next).utf8))
        index += 1
    }

    private func decode(_ bytes: [UInt8]) throws(DNParseError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DNParseError(.invalidUTF8, in: input, at: index)
        }
        return text
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = hex.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let byte = UInt8(String([high, low]), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

// MARK: - Building certificates

extension SubjectDN {
    /// The X.509 name for minting: RDNs in this DN's (certificate) order; `C` and `SERIALNUMBER` as
    /// PrintableString, `E` and `DC` as IA5String, everything else UTF8String, as IGC-Santé encodes them.
    public func distinguishedName() throws -> DistinguishedName {
        let oids = Dictionary(uniqueKeysWithValues: Self.typesByOID.map { ($0.value, $0.key) })
        let rdns = try rdns.map { rdn in
            RelativeDistinguishedName(
                try rdn.map { attribute -> RelativeDistinguishedName.Attribute in
                    let dotted = oids[attribute.type] ?? attribute.type
                    let oid = try ASN1ObjectIdentifier(dotRepresentation: dotted)
                    switch attribute.type {
                    case "C", "SERIALNUMBER":
                        if let printable = try? RelativeDistinguishedName.Attribute(
                            type: oid,
                            printableString: attribute.value
                        ) {
                            return printable
                        }
                        return RelativeDistinguishedName.Attribute(type: oid, utf8String: attribute.value)
                    case "E", "DC":
                        return try RelativeDistinguishedName.Attribute(type: oid, ia5String: attribute.value)
                    default:
                        return RelativeDistinguishedName.Attribute(type: oid, utf8String: attribute.value)
                    }
                }
            )
        }
        return DistinguishedName(rdns)
    }
}
