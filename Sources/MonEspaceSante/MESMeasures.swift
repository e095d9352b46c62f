import FHIRCore
import Foundation

/// The measures Mon espace santé accepts, as data (`Seeds/terminology/mes-measures.json`): for each code, the UCUM
/// unit(s) its profile fixes and a plausible range (components for blood pressure).
public struct MESMeasureRules: Sendable {
    public struct Measure: Codable, Sendable {
        public var system: String
        public var code: String
        public var label: String
        public var profile: String?
        public var units: [String]?
        public var min: Double?
        public var max: Double?
        public var components: [Measure]?
    }

    struct File: Codable { var measures: [Measure] }

    public let measures: [Measure]

    public init(measures: [Measure]) { self.measures = measures }

    /// Reads `<seeds>/terminology/mes-measures.json` (no rules without seeds: every measure is refused).
    public static func load(from seeds: URL?) throws -> MESMeasureRules {
        guard let url = seeds?.appendingPathComponent("terminology/mes-measures.json"),
            FileManager.default.fileExists(atPath: url.path)
        else { return MESMeasureRules(measures: []) }
        return MESMeasureRules(measures: try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).measures)
    }

    public func measure(system: String?, code: String?) -> Measure? {
        measures.first { $0.code == code && (system == nil || $0.system == system) }
    }

    public func label(code: String) -> String { measures.first { $0.code == code }?.label ?? code }
}

/// One problem of a pushed measure, with the FHIRPath of what is wrong.
struct MeasureIssue: Equatable {
    var code: String
    var message: String
    var expression: String
}

extension MESMeasureRules {
    static let ucum = "http://unitsofmeasure.org"

    /// The problems of an Observation against the measure profiles: status, a known code, an effective date not in
    /// the future, a value in the profile's unit and in a plausible range (each component for blood pressure).
    func problems(of observation: JSONObject, now: Date = Date()) -> [MeasureIssue] {
        var issues: [MeasureIssue] = []
        let statuses: Set<String> = ["registered", "preliminary", "final", "amended", "corrected"]
        if let status = observation["status"]?.string {
            if !statuses.contains(status) {
                issues.append(
                    .init(
                        code: "code-invalid",
                        message: "status '\(status)' is not a measure status",
                        expression: "Observation.status"
                    )
                )
            }
        } else {
            issues.append(.init(code: "required", message: "status is required", expression: "Observation.status"))
        }
        let codings = observation["code"]?["coding"]?.array ?? []
        let measure = codings.lazy.compactMap { self.measure(system: $0["system"]?.string, code: $0["code"]?.string) }
            .first
        if measure == nil {
            let given = codings.map { "\($0["system"]?.string ?? "?")|\($0["code"]?.string ?? "?")" }.joined(
                separator: ", "
            )
            issues.append(
                .init(
                    code: "code-invalid",
                    message:
                        "code \(given.isEmpty ? "(none)" : given) is not a Mon espace santé measure (known: \(measures.map(\.code).joined(separator: ", ")))",
                    expression: "Observation.code.coding"
                )
            )
        }
        if let text = observation["effectiveDateTime"]?.string {
            if let date = FHIRDateTime.parse(text) {
                if date > now.addingTimeInterval(300) {
                    issues.append(
                        .init(
                            code: "value",
                            message: "effectiveDateTime \(text) is in the future",
                            expression: "Observation.effectiveDateTime"
                        )
                    )
                }
            } else {
                issues.append(
                    .init(
                        code: "value",
                        message: "effectiveDateTime '\(text)' is not a FHIR dateTime with a time zone",
                        expression: "Observation.effectiveDateTime"
                    )
                )
            }
        } else {
            issues.append(
                .init(code: "required", message: "effectiveDateTime is required", expression: "Observation.effective")
            )
        }
        guard let measure else { return issues }
        if let components = measure.components {
            let given = observation["component"]?.array ?? []
            for expected in components {
                guard
                    let index = given.firstIndex(where: { component in
                        (component["code"]?["coding"]?.array ?? []).contains { $0["code"]?.string == expected.code }
                    })
                else {
                    issues.append(
                        .init(
                            code: "required",
                            message: "component \(expected.code) (\(expected.label)) is required",
                            expression: "Observation.component"
                        )
                    )
                    continue
                }
                issues += quantityProblems(
                    given[index]["valueQuantity"],
                    expected,
                    path: "Observation.component[\(index)].valueQuantity"
                )
            }
        } else {
            issues += quantityProblems(observation["valueQuantity"], measure, path: "Observation.valueQuantity")
        }
        return issues
    }

    private func quantityProblems(_ quantity: JSON?, _ measure: Measure, path: String) -> [MeasureIssue] {
        guard let quantity = quantity?.object else {
            return [.init(code: "required", message: "\(measure.label): a valueQuantity is required", expression: path)]
        }
        var issues: [MeasureIssue] = []
        let units = measure.units ?? []
        if quantity["system"]?.string != Self.ucum || !units.contains(quantity["code"]?.string ?? "") {
            issues.append(
                .init(
                    code: "code-invalid",
                    message:
                        "\(measure.label): the unit must be UCUM \(units.map { "'\($0)'" }.joined(separator: " or ")) (got \(quantity["system"]?.string ?? "no system")|\(quantity["code"]?.string ?? "no code"))",
                    expression: path + ".code"
                )
            )
        }
        if let value = quantity["value"]?.number {
            if let min = measure.min, let max = measure.max, !(min...max).contains(value) {
                issues.append(
                    .init(
                        code: "value",
                        message: "\(measure.label): \(value) is outside the plausible range \(min)–\(max)",
                        expression: path + ".value"
                    )
                )
            }
        } else {
            issues.append(
                .init(
                    code: "required",
                    message: "\(measure.label): a numeric value is required",
                    expression: path + ".value"
                )
            )
        }
        return issues
    }
}

/// FHIR `dateTime` with a time (and a time zone, as instants need one to be compared).
enum FHIRDateTime {
    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
