import Foundation

/// JSON text of a parsed resource tree (`[String: Any]` from `JSONSerialization`), written directly into bytes:
/// keys sorted when asked (stable bytes), slashes unescaped. Foundation's writer on Linux spent a quarter of a capacity PATCH
/// serialising one Location; this one walks the tree once with no intermediate strings.
public enum FHIRJSON {
    public struct UnsupportedValue: Error, CustomStringConvertible {
        public var description: String
    }

    public static func data(_ value: Any, sortedKeys: Bool = true) throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        try write(value, sortedKeys: sortedKeys, into: &out)
        return Data(out)
    }

    static func write(_ value: Any, sortedKeys: Bool, into out: inout [UInt8]) throws {
        switch value {
        case let text as String:
            // Strings first: most values are, and a failed cast to a collection costs more than this one.
            writeString(text, into: &out)
        case let object as [String: Any]:
            out.append(0x7B)
            var first = true
            if sortedKeys {
                for key in object.keys.sorted() {
                    if !first { out.append(0x2C) }
                    first = false
                    writeString(key, into: &out)
                    out.append(0x3A)
                    try write(object[key]!, sortedKeys: true, into: &out)
                }
            } else {
                for (key, member) in object {
                    if !first { out.append(0x2C) }
                    first = false
                    writeString(key, into: &out)
                    out.append(0x3A)
                    try write(member, sortedKeys: false, into: &out)
                }
            }
            out.append(0x7D)
        case let array as [Any]:
            out.append(0x5B)
            for (index, element) in array.enumerated() {
                if index > 0 { out.append(0x2C) }
                try write(element, sortedKeys: sortedKeys, into: &out)
            }
            out.append(0x5D)
        case is NSNull:
            out.append(contentsOf: "null".utf8)
        default:
            if let flag = JSONScalar.bool(value) {
                out.append(contentsOf: (flag ? "true" : "false").utf8)
            } else if let number = value as? NSNumber, isInteger(number) {
                out.append(contentsOf: String(number.int64Value).utf8)
            } else if let number = JSONScalar.number(value) {
                guard number.isFinite else { throw UnsupportedValue(description: "JSON cannot hold \(number)") }
                if number == number.rounded(), abs(number) < 9_007_199_254_740_992 {
                    out.append(contentsOf: String(Int64(number)).utf8)
                } else {
                    out.append(contentsOf: "\(number)".utf8)
                }
            } else {
                throw UnsupportedValue(description: "not a JSON value: \(type(of: value))")
            }
        }
    }

    /// Whether an NSNumber holds an integer type (ObjC encodings c s i l q and unsigned; `c` is taken by booleans first).
    static func isInteger(_ number: NSNumber) -> Bool {
        switch number.objCType.pointee {
        case 0x73, 0x69, 0x6C, 0x71, 0x43, 0x53, 0x49, 0x4C, 0x51: true  // s i l q C S I L Q
        default: false
        }
    }

    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(0x22)
        // A native string's bytes in place (no copy, no uniqueness check); a bridged one's through a copy.
        if text.utf8.withContiguousStorageIfAvailable({ writeEscaped($0, into: &out) }) == nil {
            var text = text
            text.withUTF8 { writeEscaped($0, into: &out) }
        }
        out.append(0x22)
    }

    /// Runs of plain bytes appended at once: byte by byte, this was a third of serialising a Location.
    private static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var start = 0
        for index in bytes.indices where bytes[index] < 0x20 || bytes[index] == 0x22 || bytes[index] == 0x5C {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            start = index + 1
            switch bytes[index] {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x08: out.append(contentsOf: [0x5C, 0x62])
            case 0x0C: out.append(contentsOf: [0x5C, 0x66])
            default:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [
                    0x5C, 0x75, 0x30, 0x30, hex[Int(bytes[index] >> 4)], hex[Int(bytes[index] & 0xF)],
                ])
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
    }
}
