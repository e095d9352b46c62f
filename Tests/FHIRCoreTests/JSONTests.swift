import Foundation
import Testing

@testable import FHIRCore

@Suite("JSON tree")
struct JSONTests {
    static func parse(_ text: String, depthLimit: Int = 512) throws(JSON.ParseError) -> JSON {
        try JSON(parsing: Data(text.utf8), depthLimit: depthLimit)
    }

    static func failure(_ bytes: [UInt8], depthLimit: Int = 512) -> JSON.ParseError? {
        do {
            _ = try JSON(parsing: bytes, depthLimit: depthLimit)
            return nil
        } catch { return error }
    }

    @Test func keepsOrderAndNumberText() throws {
        let text =
            #"{"z":1,"a":[1.50,-0.5e3,true,false,null,"é\u00e9\ud83d\ude00\n\"\\\/"],"m":{"b":{},"a":[]},"n":12345678901234567890}"#
        let value = try Self.parse(text)
        // Written back as read: members in order, numbers as written (a FHIR decimal keeps its precision), `\/` as `/`.
        #expect(
            value.text
                == #"{"z":1,"a":[1.50,-0.5e3,true,false,null,"éé😀\n\"\\/"],"m":{"b":{},"a":[]},"n":12345678901234567890}"#
        )
        #expect(value["a"]?.array?.first == .number(JSONNumber(text: "1.50")))
        #expect(value["a"]?.array?[1].number == -500)
        #expect(value["m"]?.object?.keys == ["b", "a"])
        #expect(
            value.data(sortedKeys: true)
                == Data(
                    #"{"a":[1.50,-0.5e3,true,false,null,"éé😀\n\"\\/"],"m":{"a":[],"b":{}},"n":12345678901234567890,"z":1}"#
                        .utf8
                )
        )
        // The same tree as Foundation reads it.
        let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8))
        // Converted to Foundation objects, it serialises exactly as what Foundation parsed, but for an integer past
        // 64 bits: Foundation keeps it whole, the tree's conversion gives a Double (FHIR integers are 32-bit).
        var ours = try #require(value.any as? [String: Any])
        var theirs = try #require(foundation as? [String: Any])
        #expect(ours["n"] as? Double == 12345678901234567890)
        (ours["n"], theirs["n"]) = (nil, nil)
        #expect(
            try JSONSerialization.data(withJSONObject: ours, options: .sortedKeys)
                == JSONSerialization.data(withJSONObject: theirs, options: .sortedKeys)
        )
        #expect(JSON(any: foundation)?["m"]?["b"] == .object(JSONObject()))
        #expect(JSON(any: foundation)?["a"]?.array?[2] == .bool(true))
    }

    @Test func objectMembers() {
        var object = JSONObject(["a": .string("x"), "b": .integer(2)])
        object["b"] = nil
        object["c"] = .bool(false)
        object["a"] = .string("y")
        #expect(object.keys == ["a", "c"])
        #expect(object["a"]?.string == "y" && object["b"] == nil)
        #expect(object.first(withPrefix: "c")?.value == .bool(false))
        #expect(JSONObject(any: ["k": Date()]) == nil)
        let dictionary = JSONObject(["i": .integer(3), "d": .number(JSONNumber(text: "2.5")), "s": .string("t")])
            .dictionary
        #expect(dictionary["i"] as? Int == 3 && dictionary["d"] as? Double == 2.5 && dictionary["s"] as? String == "t")
    }

    /// Each refusal says what is wrong and where reading stopped; each is shown able to fail by a close valid text.
    @Test func refusals() throws {
        let cases: [(String, JSON.ParseError.Kind, String)] = [
            (#"{"a":1,"a":2}"#, .duplicateKey, "'a' appears twice"),
            (#"{"a":1"#, .malformed, "not closed"),
            (#"{"a" 1}"#, .malformed, "':' was expected"),
            (#"[1,]"#, .malformed, "a value was expected"),
            (#"[01]"#, .malformed, "does not start with 0"),
            (#"[1.]"#, .malformed, "after a decimal point"),
            (#"[1e]"#, .malformed, "in an exponent"),
            (#"["a\qb"]"#, .malformed, "unknown escape"),
            (#"["\ud800"]"#, .malformed, "lone UTF-16 surrogate"),
            (#"["\u12"]"#, .malformed, "four hex digits"),
            ("[\"a\tb\"]", .malformed, "control character"),
            (#"{} x"#, .malformed, "after the JSON value"),
            (#"nul"#, .malformed, "a value was expected"),
            ("", .malformed, "the text ended"),
        ]
        for (text, kind, message) in cases {
            let error = try #require(Self.failure(Array(text.utf8)), "\(text) was accepted")
            #expect(error.kind == kind && error.description.contains(message), "\(text): \(error)")
        }
        for valid in [
            #"{"a":1,"b":2}"#, #"[1]"#, #"[10.5e-3]"#, #"["a\nb"]"#, #"["\ud83d\ude00"]"#, #"["\u0012"]"#, #"{}"#,
            "\u{FEFF}[]", #"null"#,
        ] {
            #expect(Self.failure(Array(valid.utf8)) == nil, "\(valid) was refused")
        }
        // Not UTF-8, inside a string or outside.
        #expect(Self.failure([0x5B, 0x22, 0xC3, 0x28, 0x22, 0x5D])?.kind == .invalidUTF8)
        #expect(Self.failure([0x7B, 0xFF, 0xFE, 0x7D])?.kind == .invalidUTF8)
        #expect(Self.failure([0x7B, 0x7D, 0x20, 0x78])?.kind == .malformed)
        // Nesting: at the limit read, one more refused.
        #expect(
            Self.failure(
                Array((String(repeating: "[", count: 3) + String(repeating: "]", count: 3)).utf8),
                depthLimit: 3
            ) == nil
        )
        #expect(
            Self.failure(
                Array((String(repeating: "[", count: 4) + String(repeating: "]", count: 4)).utf8),
                depthLimit: 3
            )?.kind == .tooDeep
        )
    }

    /// Every resource of the repository seeds reads as Foundation reads it.
    @Test func seedResourcesReadAsFoundationReadsThem() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Seeds/ror/dataset.json")
        let data = try Data(contentsOf: url)
        let ours = try JSON(parsing: data)
        let foundation = try JSONSerialization.jsonObject(with: data)
        let expected = try JSONSerialization.data(withJSONObject: foundation, options: [.sortedKeys])
        let actual = try JSONSerialization.data(withJSONObject: ours.any, options: [.sortedKeys])
        #expect(expected == actual)
        #expect(try JSON(parsing: ours.data()) == ours)
    }
}
