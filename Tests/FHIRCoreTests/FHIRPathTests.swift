import Foundation
import Testing

@testable import FHIRCore

@Suite("FHIRPath subset and FHIR Patch")
struct FHIRPathTests {
    static let capacity =
        "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity"

    static func indicator(status: String, temporality: String, gender: String?, count: Int) -> [String: Any] {
        var parts: [[String: Any]] = [
            ["url": "capacityStatus", "valueCodeableConcept": ["coding": [["code": status]]]],
            ["url": "temporalityCapacity", "valueCodeableConcept": ["coding": [["code": temporality]]]],
            ["url": "nbCapacity", "valueInteger": count],
        ]
        if let gender { parts.append(["url": "genderCapacityAvailable", "valueCode": gender]) }
        return ["url": capacity, "extension": parts]
    }

    static var location: [String: Any] {
        let json = try! JSONSerialization.data(
            withJSONObject: [
                "resourceType": "Location", "id": "l1", "status": "active",
                "extension": [
                    // Booleans for the boolean-context rules (a lone boolean is itself, several are true).
                    ["url": "https://example.org/other", "valueString": "x", "flags": [false], "pair": [true, true]],
                    indicator(status: "01", temporality: "01", gender: nil, count: 20),
                    indicator(status: "02", temporality: "01", gender: "03", count: 4),
                    indicator(status: "02", temporality: "03", gender: "03", count: 2),
                ],
            ] as [String: Any]
        )
        // Through JSON, as stored resources are (numbers and booleans become NSNumber).
        return try! JSONSerialization.jsonObject(with: json) as! [String: Any]
    }

    static func count(_ path: String) throws -> Int {
        try FHIRPath(parsing: path).evaluate(on: location).count
    }

    @Test(arguments: [
        ("Location", 1), ("status", 1), ("Location.extension", 4),
        ("Location.extension.where(url='\(capacity)')", 3),
        (
            "Location.extension.where(url='\(capacity)' and extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='02').exists())",
            2
        ),
        (
            "Location.extension.where(url='\(capacity)').where(extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='02') and extension.where(url='temporalityCapacity' and valueCodeableConcept.coding.code='03'))",
            1
        ),
        (
            "Location.extension.where(url='\(capacity)' and extension.where(url='genderCapacityAvailable').exists().not())",
            1
        ),
        ("Location.extension.where(url='\(capacity)').extension.where(url='nbCapacity').value", 3),
        ("Location.extension.where(url='\(capacity)').extension.where(url='nbCapacity' and value = 4)", 1),
        ("Location.extension.where(url='\(capacity)').extension.where(url='nbCapacity' and value != 4)", 2),
        ("Location.extension.extension.value.as(CodeableConcept)", 6),
        ("Location.extension.extension.value.ofType(code)", 2),
        ("Location.extension.where(url='\(capacity)').first()", 1),
        ("Location.extension.where(url = 'nothing' or url = 'https://example.org/other')", 1),
        ("Location.extension.where((url = 'https://example.org/other'))", 1),
        ("Location.extension.where(url != '\(capacity)')", 1), ("Location.extension.where(missing = 'x')", 0),
        ("Location.extension.where(extension = 'x')", 0),
        ("Location.extension.where(url = 'https://example.org/other' and value = 'x')", 1),
        ("Location.extension.where(url='\(capacity)').extension.where(valueCodeableConcept.coding.code = '02')", 2),
        ("Location.extension.where(url='\(capacity)').extension.where(valueCodeableConcept.coding.code != '02')", 4),
        ("Location.extension.where(url='\(capacity)').extension.where(valueCodeableConcept.coding = '02')", 0),
        ("Location.extension.where(url='\(capacity)').extension.where(valueCodeableConcept.missing.code = '02')", 0),
        ("Location.status = 'active'", 1), ("Location.extension.where(url='none')", 0), ("Location.missing", 0),
        // A where() in a boolean context: one boolean is its value, several items are true, none is empty.
        ("Location.extension.where(url = 'https://example.org/other' and flags.where(true))", 0),
        ("Location.extension.where(url = 'https://example.org/other' and pair.where(true))", 1),
        ("Location.extension.where(url = 'https://example.org/other' and flags.where(false))", 0),
        ("Location.extension.where(flags.where(true) or url = 'https://example.org/other')", 1),
        ("Location.extension.where(flags.where(true).not())", 1),
        ("Location.extension.where(url='\(capacity)' and extension.where(url = 'nbCapacity'))", 3),
        ("Location.extension.where(extension.where(url = 'nbCapacity') and extension.where(valueCode = '03'))", 2),
    ])
    func evaluates(_ path: String, _ expected: Int) throws {
        #expect(try Self.count(path) == expected, "\(path)")
    }

    /// Client paths are bounded: 200 000 nested parentheses overflowed the parser's stack (found by libFuzzer).
    @Test func deeplyNestedOrOverlongPathsAreRefusedNotCrashed() throws {
        let nested = { (depth: Int) in
            String(repeating: "(", count: depth) + "name" + String(repeating: ")", count: depth)
        }
        #expect(try FHIRPath(parsing: nested(60)) == FHIRPath(parsing: "name"))
        #expect(throws: FHIRPathError.self) { try FHIRPath(parsing: nested(200_000)) }
        do {
            _ = try FHIRPath(parsing: nested(65))
            Issue.record("65 levels were accepted")
        } catch {
            #expect(error.description.contains("nests deeper than 64 levels"), "\(error)")
        }
        let long = Array(repeating: "name", count: 1100).joined(separator: ".")
        #expect(throws: FHIRPathError.self) { try FHIRPath(parsing: long) }
    }

    @Test func booleansAndLocations() throws {
        let items = try FHIRPath(
            parsing: "Location.extension.where(url='\(Self.capacity)').extension.where(url='nbCapacity').value"
        ).evaluate(on: Self.location)
        #expect(
            items.map(\.location)
                == [1, 2, 3].map {
                    [.key("extension"), .index($0), .key("extension"), .index(2), .key("valueInteger")]
                }
        )
        #expect(items.first?.choiceType == "Integer")
        #expect(
            try FHIRPath(parsing: "Location.status = 'retired'").evaluate(on: Self.location).first?.value
                == .bool(false)
        )
        #expect(try FHIRPath(parsing: "true and false").evaluate(on: Self.location).first?.value == .bool(false))
        #expect(try FHIRPath(parsing: "1 = 1").evaluate(on: Self.location).first?.value == .bool(true))
    }

    @Test(arguments: [
        ("Location.extension.count()", "function 'count()'"), ("Location.extension | Location.status", "operator '|'"),
        ("Location.extension[0]", "operator '['"), ("nbCapacity > 2", "operator '>'"), ("a xor b", "operator 'xor'"),
        ("Location.where(", "expected"), ("'open", "unterminated"), ("$index", "variable '$index'"), ("1.5", "decimal"),
        ("Location.extension.where()", "where() takes 1"), ("Location..extension", "a name is expected"),
    ])
    func refusesWhatItDoesNotSupportByName(_ path: String, _ message: String) {
        #expect(throws: FHIRPathError.self) { try FHIRPath(parsing: path) }
        do { _ = try FHIRPath(parsing: path) } catch { #expect(error.message.contains(message), "\(error.message)") }
    }

    static func patch(_ operations: [[String: Any]]) -> [String: Any] {
        [
            "resourceType": "Parameters",
            "parameter": operations.map { parts in
                [
                    "name": "operation",
                    "part": parts.map { key, value -> [String: Any] in
                        switch value {
                        case let string as String:
                            return ["name": key, key == "type" ? "valueCode" : "valueString": string]
                        default: return ["name": key, "valueExtension": value]
                        }
                    },
                ]
            },
        ]
    }

    /// A patch notes which list elements it changed, by index in the result: replaced, added (at the end), changed
    /// inside; a removal shifts the indices after it; an element that is not a list element changes as a whole.
    @Test func patchesNoteTheElementsTheyChange() throws {
        func changes(_ operations: [[String: Any]]) throws -> [String: Set<Int>?] {
            var changes = ChangedElements()
            _ = try FHIRPatch(parameters: Self.patch(operations)).apply(to: Self.location, changes: &changes)
            return changes.elements
        }
        let second =
            "Location.extension.where(url='\(Self.capacity)').where(extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='02') and extension.where(url='temporalityCapacity' and valueCodeableConcept.coding.code='01'))"
        let first =
            "Location.extension.where(url='\(Self.capacity)').where(extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='01'))"
        let value = Self.indicator(status: "06", temporality: "01", gender: nil, count: 1)
        #expect(try changes([["type": "replace", "path": second, "value": value]]) == ["extension": [2]])
        #expect(
            try changes([["type": "add", "path": "Location.extension.where(url='\(Self.capacity)')", "value": value]])
                == ["extension": [4]]
        )
        #expect(
            try changes([["type": "replace", "path": "\(second).extension.where(url='nbCapacity').value", "value": 3]])
                == ["extension": [2]]
        )
        // Replace the third element, then delete the second: the replaced one is now the second.
        #expect(
            try changes([["type": "replace", "path": second, "value": value], ["type": "delete", "path": first]]) == [
                "extension": [1]
            ]
        )
        #expect(try changes([["type": "delete", "path": second]]) == ["extension": []])
        #expect(
            try changes([["type": "replace", "path": "Location.status", "value": "inactive"]]) == [
                "status": Set<Int>?.none
            ]
        )
        #expect(ChangedElements().byIndex.isEmpty)
    }

    @Test func patchAddReplaceDelete() throws {
        let selector =
            "Location.extension.where(url='\(Self.capacity)').where(extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='02') and extension.where(url='temporalityCapacity' and valueCodeableConcept.coding.code='01'))"
        let replaced = try FHIRPatch(
            parameters: Self.patch([
                [
                    "type": "replace", "path": selector,
                    "value": Self.indicator(status: "02", temporality: "01", gender: "03", count: 9),
                ]
            ])
        )
        .apply(to: Self.location)
        #expect(
            try FHIRPath(parsing: "Location.extension.extension.where(url='nbCapacity' and value = 9)").evaluate(
                on: replaced
            ).count == 1
        )
        #expect((replaced["extension"] as! [Any]).count == 4)

        let added = try FHIRPatch(
            parameters: Self.patch([
                [
                    "type": "add", "path": "Location.extension.where(url='\(Self.capacity)')",
                    "value": Self.indicator(status: "06", temporality: "01", gender: nil, count: 1),
                ]
            ])
        )
        .apply(to: Self.location)
        #expect((added["extension"] as! [Any]).count == 5)
        let addedWithName = try FHIRPatch(
            parameters: Self.patch([
                [
                    "type": "add", "path": "Location", "name": "extension",
                    "value": Self.indicator(status: "06", temporality: "01", gender: nil, count: 1),
                ]
            ])
        )
        .apply(to: Self.location)
        #expect((addedWithName["extension"] as! [Any]).count == 5)

        let deleted = try FHIRPatch(parameters: Self.patch([["type": "delete", "path": selector]])).apply(
            to: Self.location
        )
        #expect((deleted["extension"] as! [Any]).count == 3)
        #expect(try FHIRPath(parsing: selector).evaluate(on: deleted).isEmpty)
    }

    @Test func patchFailures() throws {
        let none =
            "Location.extension.where(url='\(Self.capacity)' and extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='09').exists())"
        let two =
            "Location.extension.where(url='\(Self.capacity)' and extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='02').exists())"
        func failure(_ operations: [[String: Any]]) -> FHIRPatch.Failure.Kind? {
            do {
                _ = try FHIRPatch(parameters: Self.patch(operations)).apply(to: Self.location)
                return nil
            } catch { return error.kind }
        }
        #expect(failure([["type": "replace", "path": none, "value": [:] as [String: Any]]]) == .noMatch)
        #expect(failure([["type": "delete", "path": none]]) == .noMatch)
        #expect(failure([["type": "replace", "path": two, "value": [:] as [String: Any]]]) == .multipleMatches)
        #expect(failure([["type": "insert", "path": two]]) == .unsupported)
        #expect(
            failure([["type": "replace", "path": "Location.extension.count()", "value": [:] as [String: Any]]])
                == .unsupported
        )
        #expect(failure([["type": "replace", "path": two]]) == .invalid, "no value")
        #expect(failure([["path": two]]) == .invalid, "no type")
        #expect(throws: FHIRPatch.Failure.self) { try FHIRPatch(parameters: ["resourceType": "Location"]) }
        #expect(throws: FHIRPatch.Failure.self) { try FHIRPatch(parameters: ["resourceType": "Parameters"]) }
        let parts: [String: Any] = [
            "resourceType": "Parameters",
            "parameter": [
                [
                    "name": "operation",
                    "part": [
                        ["name": "type", "valueCode": "add"], ["name": "path", "valueString": "Location"],
                        ["name": "name", "valueString": "extension"],
                        ["name": "value", "part": [["name": "url", "valueUri": "x"]]],
                    ],
                ]
            ],
        ]
        #expect(throws: FHIRPatch.Failure.self) { try FHIRPatch(parameters: parts) }
        let notOperation: [String: Any] = ["resourceType": "Parameters", "parameter": [["name": "other"]]]
        #expect(throws: FHIRPatch.Failure.self) { try FHIRPatch(parameters: notOperation) }
    }
}
