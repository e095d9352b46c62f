import Foundation
import Testing

@testable import FHIRCore

@Suite("Profile validator datatypes")
struct ProfileValidatorTests {
    /// The FHIR R4 regular expressions of the temporal datatypes: the hand-written checks must agree with them.
    static let regexes: [String: NSRegularExpression] = [
        "date": #"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"#,
        "dateTime":
            #"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$"#,
        "instant":
            #"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$"#,
    ].mapValues { try! NSRegularExpression(pattern: $0) }

    static let samples = [
        "2026", "2026-11", "2026-11-22", "2026-11-22T10:00:00+01:00", "2026-11-22T10:00:00Z",
        "2026-11-22T10:00:00.123Z",
        "2026-11-22T23:59:60-14:00", "2026-11-22T10:00:00+14:00", "2026-11-22T10:00:00+13:59",
        "2026-11-22T10:00:00.5+00:00", "2026-11-22T10:00:00.1234567890Z",
        "22/11/2026", "2026-13", "2026-00", "2026-11-00", "2026-11-32", "2026-1-22", "202", "20260", "2026-11-22T",
        "2026-11-22T10:00", "2026-11-22T10:00:00", "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z",
        "2026-11-22T10:00:61Z",
        "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00+14:01", "2026-11-22T10:00:00+1:00", "2026-11-22T10:00:00+01:00x",
        "2026-11-22 10:00:00Z", "2026-11-22T10:00:00z", "", "2026-11-22Z", "abcd", "2026-11-22T10:00:00-00:60",
    ]

    @Test(arguments: ["date", "dateTime", "instant"])
    func temporalChecksAgreeWithTheFHIRRegexes(_ type: String) {
        let regex = Self.regexes[type]!
        for text in Self.samples {
            let expected = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            #expect(ProfileValidator.isTemporal(text, type) == expected, "\(type) '\(text)'")
        }
        // Beyond the regular expression, the day must exist ("SHALL be valid dates").
        #expect(!ProfileValidator.isTemporal(type == "instant" ? "2023-02-29T10:00:00Z" : "2023-02-29", type))
        #expect(ProfileValidator.isTemporal(type == "instant" ? "2024-02-29T10:00:00Z" : "2024-02-29", type))
    }

    /// Rules selecting children by the same key are answered from one grouping: the same issues as scanning, in
    /// rule order, each rule seeing only its children (including two with the same url, and none).
    @Test func groupedSelectionsFindWhatEachRuleSelects() {
        let validator = ProfileValidator(profiles: [
            ProfileValidator.Profile(
                resourceType: "Location",
                rules: [
                    ProfileValidator.Rule(path: "extension[url=a]", min: 1, max: 1),
                    ProfileValidator.Rule(path: "extension[url=b].valueInteger", min: 1, type: "integer"),
                    ProfileValidator.Rule(path: "extension[url=c]", min: 1),
                    ProfileValidator.Rule(path: "identifier[system=s].value", min: 1, type: "string"),
                ]
            )
        ])
        let resource: [String: Any] = [
            "resourceType": "Location",
            "extension": [
                ["url": "a"], ["url": "a"], ["url": "b", "valueInteger": "x"], ["url": 3], ["valueInteger": 1],
            ], "identifier": [["system": "s", "value": "v"]],
        ]
        #expect(
            validator.validate(resource).map(\.expression) == [
                "Location.extension.where(url='a')", "Location.extension.where(url='b').valueInteger",
                "Location.extension.where(url='c')",
            ]
        )
        #expect(validator.validate(resource).map(\.code) == ["structure", "value", "required"])
    }

    /// Told which list elements are new, the validator checks only those one by one, but still counts every element.
    @Test func onlyTheNewElementsOfAListAreCheckedOneByOne() {
        let validator = ProfileValidator(profiles: [
            ProfileValidator.Profile(
                resourceType: "Location",
                rules: [
                    ProfileValidator.Rule(
                        path: "extension[url=cap]",
                        min: 0,
                        each: [ProfileValidator.Rule(path: "valueInteger", min: 1, max: 1, type: "integer")]
                    ),
                    ProfileValidator.Rule(path: "extension[url=date]", min: 1, max: 1),
                ]
            )
        ])
        let resource: [String: Any] = [
            "resourceType": "Location",
            "extension": [
                ["url": "cap", "valueInteger": "old and wrong"], ["url": "date"],
                ["url": "cap", "valueInteger": "new and wrong"],
                ["url": "cap", "valueInteger": 3], ["url": "date"],
            ],
        ]
        let all = validator.validate(resource).map(\.diagnostics)
        #expect(all.count == 3, "\(all)")  // two wrong values, two dates
        let fresh = validator.validate(resource, changedElements: ["extension": [2, 3]]).map(\.diagnostics)
        #expect(fresh.count == 2, "\(fresh)")
        #expect(fresh.contains { $0.contains("new and wrong") } && !fresh.contains { $0.contains("old and wrong") })
        #expect(fresh.contains { $0.contains("at most 1 allowed, 2 found") })
        #expect(validator.validate(resource, changedElements: ["extension": [3]]).map(\.code) == ["structure"])
    }
}
