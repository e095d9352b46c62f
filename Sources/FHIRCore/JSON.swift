import Foundation

/// A JSON value as the FHIR core reads and writes resources: objects keep their members in the order written, numbers
/// their literal text (a FHIR decimal keeps its precision: `1.50` stays `1.50`).
///
/// Why not `[String: Any]` from `JSONSerialization`: every step through such a tree is a dynamic cast of an
/// existential (`as? [String: Any]`, `as? String`, an `NSNumber` bridge to tell a boolean), and those casts with the
/// retains and hashing around them were over a third of a capacity PATCH (FHIRPath filter, validation, indexing,
/// serialisation). Here a step is a `switch`.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public var string: String? { if case .string(let value) = self { value } else { nil } }
    public var object: JSONObject? { if case .object(let value) = self { value } else { nil } }
    public var array: [JSON]? { if case .array(let value) = self { value } else { nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var number: Double? { if case .number(let value) = self { value.double } else { nil } }

    /// The member `key` of an object (nil for a missing member and for anything but an object).
    public subscript(key: String) -> JSON? {
        if case .object(let object) = self { object[key] } else { nil }
    }

    /// The elements of an array, or the value itself (FHIR repeats an element as an array, a single one as itself).
    public var elements: [JSON] {
        if case .array(let values) = self { values } else { [self] }
    }

    public static func integer(_ value: Int) -> JSON { .number(JSONNumber(text: String(value))) }
}

/// A JSON number, as written.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    public var text: String

    public init(text: String) { self.text = text }

    public var double: Double { Double(text) ?? .nan }
    public var description: String { text }
}

/// A JSON object: its members in order. FHIR objects have a handful of members, so a lookup scans them (no hashing).
public struct JSONObject: Sendable, Hashable, Sequence {
    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JSON

        public init(_ key: String, _ value: JSON) {
            self.key = key
            self.value = value
        }
    }

    public var members: [Member]

    public init(_ members: [Member] = []) { self.members = members }

    public init(_ pairs: KeyValuePairs<String, JSON>) { members = pairs.map { Member($0.key, $0.value) } }

    /// The member's value; setting nil removes it, setting a new key appends it.
    public subscript(key: String) -> JSON? {
        get {
            for member in members where member.key == key { return member.value }
            return nil
        }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append(Member(key, newValue))
            }
        }
    }

    public var keys: [String] { members.map(\.key) }
    public var isEmpty: Bool { members.isEmpty }
    public var count: Int { members.count }

    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

    /// The first member whose key starts with `prefix` (a choice element: `value` → `valueCodeableConcept`).
    public func first(withPrefix prefix: String) -> Member? {
        members.first { $0.key.hasPrefix(prefix) }
    }
}

// MARK: Reading

extension JSON {
    /// Why bytes are not a JSON value, with the byte offset where reading stopped.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Kind: Sendable, Hashable { case invalidUTF8, tooDeep, malformed, duplicateKey }
        public var kind: Kind
        public var message: String
        public var offset: Int
        public var description: String { "\(message) (at byte \(offset))" }
    }

    /// Parses JSON text (RFC 8259), strictly: UTF-8 only, nesting at most `depthLimit` levels, no duplicate key in an
    /// object (FHIR forbids them, and which one would count is anybody's guess), nothing after the value.
    public init(parsing bytes: some Collection<UInt8>, depthLimit: Int = 512) throws(ParseError) {
        let result: Result<JSON, ParseError> =
            bytes.withContiguousStorageIfAvailable { buffer in
                var parser = JSONParser(bytes: buffer, depthLimit: depthLimit)
                return Result { () throws(ParseError) in try parser.document() }
            }
            ?? {
                let copy = Array(bytes)
                return copy.withUnsafeBufferPointer { buffer in
                    var parser = JSONParser(bytes: buffer, depthLimit: depthLimit)
                    return Result { () throws(ParseError) in try parser.document() }
                }
            }()
        self = try result.get()
    }
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let depthLimit: Int
    var index = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>, depthLimit: Int) {
        self.bytes = bytes
        self.depthLimit = depthLimit
    }

    mutating func document() throws(JSON.ParseError) -> JSON {
        // A byte-order mark is tolerated, as Foundation did.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
        do throws(JSON.ParseError) {
            let value = try self.value()
            skipSpace()
            guard index == bytes.count else { throw error(.malformed, "unexpected text after the JSON value") }
            return value
        } catch {
            // Text that is not UTF-8 is that first (strings are checked as they are read; this finds bytes elsewhere).
            if error.kind == .malformed, String(validating: bytes, as: UTF8.self) == nil {
                throw JSON.ParseError(kind: .invalidUTF8, message: "the text is not valid UTF-8", offset: error.offset)
            }
            throw error
        }
    }

    func error(_ kind: JSON.ParseError.Kind, _ message: String) -> JSON.ParseError {
        JSON.ParseError(kind: kind, message: message, offset: index)
    }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value() throws(JSON.ParseError) -> JSON {
        skipSpace()
        guard index < bytes.count else { throw error(.malformed, "a value was expected, the text ended") }
        switch bytes[index] {
        case 0x7B: return .object(try object())
        case 0x5B: return .array(try array())
        case 0x22: return .string(try string())
        case 0x74:
            try literal("true")
            return .bool(true)
        case 0x66:
            try literal("false")
            return .bool(false)
        case 0x6E:
            try literal("null")
            return .null
        case 0x2D, 0x30...0x39: return .number(try number())
        default: throw error(.malformed, "a value was expected")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSON.ParseError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0
        else { throw error(.malformed, "a value was expected") }
        index += count
    }

    mutating func object() throws(JSON.ParseError) -> JSONObject {
        var members: [JSONObject.Member] = []
        guard try open(closedBy: 0x7D) else { return JSONObject(members) }
        repeat {
            skipSpace()
            guard index < bytes.count, bytes[index] == 0x22 else {
                throw error(.malformed, "a member name (a string) was expected")
            }
            let start = index
            let key = try string()
            for member in members where member.key == key {
                index = start
                throw error(.duplicateKey, "the member '\(key)' appears twice in an object")
            }
            skipSpace()
            guard index < bytes.count, bytes[index] == 0x3A else {
                throw error(.malformed, "':' was expected after a member name")
            }
            index += 1
            members.append(JSONObject.Member(key, try value()))
        } while try next(closedBy: 0x7D, "object")
        return JSONObject(members)
    }

    mutating func array() throws(JSON.ParseError) -> [JSON] {
        var elements: [JSON] = []
        guard try open(closedBy: 0x5D) else { return elements }
        repeat {
            elements.append(try value())
        } while try next(closedBy: 0x5D, "array")
        return elements
    }

    /// Enters an object or array at its opening byte; false when it closes at once (empty).
    mutating func open(closedBy close: UInt8) throws(JSON.ParseError) -> Bool {
        depth += 1
        guard depth <= depthLimit else { throw error(.tooDeep, "nesting deeper than \(depthLimit) levels") }
        index += 1
        skipSpace()
        guard index < bytes.count, bytes[index] == close else { return true }
        index += 1
        depth -= 1
        return false
    }

    /// After a member or element: true at a ',' (another follows), false at the closing byte (the container ends).
    mutating func next(closedBy close: UInt8, _ container: String) throws(JSON.ParseError) -> Bool {
        skipSpace()
        guard index < bytes.count else { throw error(.malformed, "the \(container) is not closed") }
        if bytes[index] == 0x2C {
            index += 1
            return true
        }
        guard bytes[index] == close else {
            throw error(.malformed, "',' or '\(Character(Unicode.Scalar(close)))' was expected")
        }
        index += 1
        depth -= 1
        return false
    }

    mutating func string() throws(JSON.ParseError) -> String {
        index += 1
        let start = index
        // Most strings have no escape: their bytes are the string's.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x22 {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                return try decoded(slice, at: start)
            }
            if byte == 0x5C { break }
            if byte < 0x20 { throw error(.malformed, "a control character must be escaped in a string") }
            index += 1
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x22:
                index += 1
                return try out.withUnsafeBufferPointer { buffer throws(JSON.ParseError) in
                    try decoded(buffer, at: start)
                }
            case 0x5C:
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case 0x22, 0x5C, 0x2F: out.append(escape)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == 0x75 else {
                            throw error(.malformed, "a lone UTF-16 surrogate in a \\u escape")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            throw error(.malformed, "a lone UTF-16 surrogate in a \\u escape")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error(.malformed, "a lone UTF-16 surrogate in a \\u escape")
                    }
                    out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
                default:
                    index -= 1
                    throw error(.malformed, "an unknown escape in a string")
                }
            default:
                if byte < 0x20 { throw error(.malformed, "a control character must be escaped in a string") }
                out.append(byte)
                index += 1
            }
        }
        throw error(.malformed, "the string is not closed")
    }

    mutating func hex4() throws(JSON.ParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error(.malformed, "four hex digits expected after \\u") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: throw error(.malformed, "four hex digits expected after \\u")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    func decoded(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) throws(JSON.ParseError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw JSON.ParseError(kind: .invalidUTF8, message: "a string is not valid UTF-8", offset: start)
        }
        return text
    }

    mutating func number() throws(JSON.ParseError) -> JSONNumber {
        let start = index
        func digits(_ parser: inout JSONParser) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, (0x30...0x39).contains(parser.bytes[parser.index]) {
                parser.index += 1
            }
            return parser.index - from
        }
        if bytes[index] == 0x2D { index += 1 }
        let integerStart = index
        let integer = digits(&self)
        guard integer > 0 else { throw error(.malformed, "a number has digits") }
        if integer > 1, bytes[integerStart] == 0x30 {
            index = integerStart
            throw error(.malformed, "a number does not start with 0")
        }
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            guard digits(&self) > 0 else { throw error(.malformed, "digits are expected after a decimal point") }
        }
        if index < bytes.count, bytes[index] == 0x65 || bytes[index] == 0x45 {
            index += 1
            if index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D { index += 1 }
            guard digits(&self) > 0 else { throw error(.malformed, "digits are expected in an exponent") }
        }
        return JSONNumber(text: String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }
}

// MARK: Writing

extension JSON {
    /// The JSON text: members in their order (or sorted by key when asked, for stable bytes), slashes unescaped.
    public func data(sortedKeys: Bool = false) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        write(into: &out, sortedKeys: sortedKeys)
        return Data(out)
    }

    public func write(into out: inout [UInt8], sortedKeys: Bool = false) {
        switch self {
        case .string(let text): FHIRJSON.writeString(text, into: &out)
        case .object(let object):
            out.append(0x7B)
            let members = sortedKeys ? object.members.sorted { $0.key < $1.key } : object.members
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(0x2C) }
                FHIRJSON.writeString(member.key, into: &out)
                out.append(0x3A)
                member.value.write(into: &out, sortedKeys: sortedKeys)
            }
            out.append(0x7D)
        case .array(let elements):
            out.append(0x5B)
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(0x2C) }
                element.write(into: &out, sortedKeys: sortedKeys)
            }
            out.append(0x5D)
        case .number(let number): out.append(contentsOf: number.text.utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        }
    }

    /// The JSON text as a string (diagnostics).
    public var text: String { String(decoding: data(), as: UTF8.self) }
}

// MARK: Between this and `JSONSerialization`'s trees

extension JSON {
    /// The value of a `JSONSerialization` tree or of Swift literals (`[String: Any]`, `[Any]`, `String`, `NSNumber`,
    /// `Int`, `Double`, `Bool`, `NSNull`); nil for anything JSON cannot hold. A dictionary's members come in its order.
    public init?(any value: Any) {
        switch value {
        case let text as String: self = .string(text)
        case let object as [String: Any]:
            var members: [JSONObject.Member] = []
            members.reserveCapacity(object.count)
            for (key, member) in object {
                guard let converted = JSON(any: member) else { return nil }
                members.append(JSONObject.Member(key, converted))
            }
            self = .object(JSONObject(members))
        case let array as [Any]:
            var elements: [JSON] = []
            elements.reserveCapacity(array.count)
            for element in array {
                guard let converted = JSON(any: element) else { return nil }
                elements.append(converted)
            }
            self = .array(elements)
        case is NSNull: self = .null
        default:
            if let flag = JSONScalar.bool(value) {
                self = .bool(flag)
            } else if let number = value as? NSNumber, FHIRJSON.isInteger(number) {
                self = .number(JSONNumber(text: String(number.int64Value)))
            } else if let number = JSONScalar.number(value), number.isFinite {
                let text =
                    number == number.rounded() && abs(number) < 9_007_199_254_740_992
                    ? String(Int64(number)) : "\(number)"
                self = .number(JSONNumber(text: text))
            } else {
                return nil
            }
        }
    }

    /// The same value as a `JSONSerialization`-style tree (numbers as `Int` when integral, else `Double`).
    public var any: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .number(let number): return Int(number.text) ?? number.double
        case .string(let text): return text
        case .array(let elements): return elements.map(\.any)
        case .object(let object): return object.dictionary
        }
    }
}

extension JSONObject {
    /// A `[String: Any]` tree's object (nil when a value is not JSON).
    public init?(any dictionary: [String: Any]) {
        guard case .object(let object)? = JSON(any: dictionary) else { return nil }
        self = object
    }

    /// The same object as a `[String: Any]` tree.
    public var dictionary: [String: Any] {
        var result: [String: Any] = [:]
        for member in members { result[member.key] = member.value.any }
        return result
    }
}
