import Foundation
import Testing

@testable import FHIRCore

@Suite("FHIR JSON writer")
struct FHIRJSONTests {
    static func roundTrip(_ object: Any) throws -> Any {
        try JSONSerialization.jsonObject(with: try FHIRJSON.data(object), options: [.fragmentsAllowed])
    }

    @Test func scalarsKeepTheirJSONTypes() throws {
        let parsed = try JSONSerialization.jsonObject(
            with: Data(
                #"{"b":true,"f":false,"i":37,"d":1.5,"big":12345678901,"neg":-2,"n":null,"s":"a/b \"q\" \\ é\n\t\u0001"}"#
                    .utf8
            )
        )
        let text = String(decoding: try FHIRJSON.data(parsed), as: UTF8.self)
        #expect(
            text
                == #"{"b":true,"big":12345678901,"d":1.5,"f":false,"i":37,"n":null,"neg":-2,"s":"a/b \"q\" \\ é\n\t\u0001"}"#
        )
        let back = try #require(try Self.roundTrip(parsed) as? [String: Any])
        #expect(JSONScalar.isBoolean(back["b"]) && JSONScalar.bool(back["b"]) == true)
        #expect(!JSONScalar.isBoolean(back["i"]) && JSONScalar.number(back["i"]) == 37)
        #expect(
            String(decoding: try FHIRJSON.data(["x": 3, "y": true, "z": 2.25] as [String: Any]), as: UTF8.self)
                == #"{"x":3,"y":true,"z":2.25}"#
        )
        #expect(throws: FHIRJSON.UnsupportedValue.self) { try FHIRJSON.data(["d": Date()]) }
        // Escapes at both ends, side by side, and none at all.
        #expect(
            String(decoding: try FHIRJSON.data(["\"\\k", "\u{1F}x\"\"", "", "plain é"]), as: UTF8.self)
                == #"["\"\\k","\u001fx\"\"","","plain é"]"#
        )
    }

    /// Every resource of the repository seeds reads back equal to what JSONSerialization parsed, sorted or not.
    @Test func seedResourcesRoundTrip() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Seeds/ror/dataset.json")
        let bundle = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let entries = try #require(bundle["entry"] as? [[String: Any]])
        #expect(entries.count > 100)
        for entry in entries {
            let resource = try #require(entry["resource"] as? [String: Any])
            for sorted in [true, false] {
                // Compared through Foundation's own canonical text (sorted keys): same tree, same scalars.
                let back = try JSONSerialization.jsonObject(with: try FHIRJSON.data(resource, sortedKeys: sorted))
                let expected = try JSONSerialization.data(withJSONObject: resource, options: [.sortedKeys])
                let actual = try JSONSerialization.data(withJSONObject: back, options: [.sortedKeys])
                #expect(
                    expected == actual,
                    "\(resource["id"] ?? "?"): \(String(decoding: expected, as: UTF8.self).prefix(300)) vs \(String(decoding: actual, as: UTF8.self).prefix(300))"
                )
            }
        }
    }
}
