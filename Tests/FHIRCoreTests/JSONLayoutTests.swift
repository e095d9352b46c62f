import Foundation
import Testing

@testable import FHIRCore

/// A resource's next version written by copying the bytes of what it did not change (`JSONLayout`): always the
/// bytes the whole resource written again gives, whatever its list became.
@Suite("JSON layout")
struct JSONLayoutTests {
    static func indicator(_ code: String, _ count: Int) -> JSON {
        .object(
            JSONObject([
                "url": .string("capacity"),
                "extension": .array([
                    .object(JSONObject(["url": .string("status"), "valueCode": .string(code)])),
                    .object(
                        JSONObject(["url": .string("count"), "valueInteger": .number(JSONNumber(text: String(count)))])
                    ),
                ]),
            ])
        )
    }

    static func location(version: Int, name: String = "Unité \"Nord\"", extensions: [JSON]) -> JSONObject {
        JSONObject([
            "resourceType": .string("Location"), "id": .string("l1"),
            "meta": .object(JSONObject(["versionId": .string(String(version))])),
            "name": .string(name), "extension": .array(extensions), "status": .string("active"),
        ])
    }

    @Test func eachVersionIsTheWholeResourceWrittenAgain() throws {
        let (e0, e1, e2, e3) = (
            Self.indicator("01", 10), Self.indicator("02", 4), Self.indicator("03", 6), Self.indicator("05", 1)
        )
        let v1 = Self.location(version: 1, extensions: [e0, e1, e2])
        let changed: Set<String> = ["extension", "meta"]
        func list(_ original: JSONObject, _ origins: [Int?]) -> ResourceRepository.ListChange {
            ResourceRepository.ListChange(name: "extension", original: original["extension"]!.array!, origins: origins)
        }
        // Parsed from storage: no layout yet.
        let (d1, l1) = JSONLayout.write(v1, list: list(v1, [0, 1, 2]), changed: changed)
        #expect(d1 == JSON.object(v1).data())
        // One indicator replaced, one added.
        let v2 = Self.location(version: 2, extensions: [e0, Self.indicator("02", 5), e2, e3])
        let (d2, l2) = JSONLayout.write(v2, list: list(v1, [0, nil, 2, nil]), changed: changed, previous: l1)
        #expect(d2 == JSON.object(v2).data())
        // One removed: the others move up.
        let v3 = Self.location(version: 3, extensions: [Self.indicator("02", 5), e2, e3])
        let (d3, l3) = JSONLayout.write(v3, list: list(v2, [1, 2, 3]), changed: changed, previous: l2)
        #expect(d3 == JSON.object(v3).data())
        // All removed, then one back.
        let v4 = Self.location(version: 4, extensions: [])
        let (d4, l4) = JSONLayout.write(v4, list: list(v3, []), changed: changed, previous: l3)
        #expect(d4 == JSON.object(v4).data())
        let v5 = Self.location(version: 5, extensions: [e1])
        let (d5, _) = JSONLayout.write(v5, list: list(v4, [nil]), changed: changed, previous: l4)
        #expect(d5 == JSON.object(v5).data())
        // A layout of another version (its list of another length): nothing of the list copied, still exact.
        let (d6, _) = JSONLayout.write(v3, list: list(v2, [1, 2, 3]), changed: changed, previous: l1)
        #expect(d6 == JSON.object(v3).data())
        // Everything may have changed: written whole.
        let renamed = Self.location(version: 6, name: "Sud", extensions: [e0])
        let (d7, _) = JSONLayout.write(renamed, list: nil, changed: nil, previous: l1)
        #expect(d7 == JSON.object(renamed).data())
    }

    /// What the caller says is unchanged is copied, not written again (the caller's word is the contract).
    @Test func unchangedMembersAreCopied() {
        let v1 = Self.location(version: 1, name: "Nord", extensions: [Self.indicator("01", 1)])
        let list = ResourceRepository.ListChange(name: "extension", original: [Self.indicator("01", 1)], origins: [0])
        let (_, layout) = JSONLayout.write(v1, list: list, changed: ["meta"])
        let (copied, _) = JSONLayout.write(
            Self.location(version: 2, name: "Sud", extensions: [Self.indicator("01", 1)]),
            list: list,
            changed: ["meta"],
            previous: layout
        )
        #expect(String(decoding: copied, as: UTF8.self).contains("\"Nord\""))
        #expect(String(decoding: copied, as: UTF8.self).contains("\"versionId\":\"2\""))
        // Without a list (a dataset load), nothing is recorded.
        #expect(JSONLayout.write(v1).1.members.isEmpty)
    }
}
