import Foundation

/// One row of the search index: what a search parameter found in a resource, in the column its type uses.
/// Rows are written with the resource (same transaction), so a search sees a write at once.
public struct SearchIndexRow: Sendable, Hashable {
    public var param: String
    /// Token/quantity/uri system; nil when the element has none.
    public var system: String?
    /// Token code, exact string (for `:exact`), quantity unit code, uri.
    public var code: String?
    /// Normalised text: string value (case and accents folded), token display/text for `:text`.
    public var text: String?
    /// Number, or quantity value.
    public var number: Double?
    /// Date range, seconds since 1970, inclusive bounds.
    public var low: Double?
    public var high: Double?
    /// Reference target.
    public var refType: String?
    public var refID: String?

    public init(
        param: String,
        system: String? = nil,
        code: String? = nil,
        text: String? = nil,
        number: Double? = nil,
        low: Double? = nil,
        high: Double? = nil,
        refType: String? = nil,
        refID: String? = nil
    ) {
        self.param = param
        self.system = system
        self.code = code
        self.text = text
        self.number = number
        self.low = low
        self.high = high
        self.refType = refType
        self.refID = refID
    }
}

public enum SearchIndexer {
    /// Bump when the rows extracted for the same parameter definitions change (normalisation, new columns):
    /// prebuilt datasets made with another version are then reloaded from their JSON.
    public static let version = 1

    /// The index rows of a resource for the given parameters.
    public static func rows(for resource: JSONObject, parameters: [SearchParameterDefinition]) -> [SearchIndexRow] {
        var rows: [SearchIndexRow] = []
        let root = JSON.object(resource)
        // Parameters often share their first step (a Location's capacity ones all start at its capacity indicators):
        // the elements it selects are found once.
        // A few distinct first steps, compared rather than hashed (their filters are long URLs).
        var firstSteps: [(step: ElementPath.Step, nodes: [JSON])] = []
        for parameter in parameters {
            for path in parameter.paths {
                let start: [JSON]
                if path.steps.isEmpty {
                    start = [root]
                } else if let known = firstSteps.first(where: { $0.step == path.steps[0] }) {
                    start = known.nodes
                } else {
                    start = ElementPath.select(path.steps.prefix(1), from: [root])
                    firstSteps.append((path.steps[0], start))
                }
                for node in ElementPath.select(path.steps.dropFirst(), from: start) {
                    rows += extract(node, parameter: parameter)
                }
            }
        }
        return rows
    }

    /// The same on a `JSONSerialization` tree.
    public static func rows(for resource: [String: Any], parameters: [SearchParameterDefinition]) -> [SearchIndexRow] {
        rows(for: JSONObject(any: resource) ?? JSONObject(), parameters: parameters)
    }

    static func extract(_ node: JSON, parameter: SearchParameterDefinition) -> [SearchIndexRow] {
        let code = parameter.code
        switch parameter.type {
        case .token:
            return tokens(node).map {
                SearchIndexRow(param: code, system: $0.system, code: $0.code, text: $0.text.map(FHIRText.normalise))
            }
        case .string:
            return strings(node).map { SearchIndexRow(param: code, code: $0, text: FHIRText.normalise($0)) }
        case .uri:
            return node.string.map { [SearchIndexRow(param: code, code: $0)] } ?? []
        case .date:
            return dateRanges(node).map { SearchIndexRow(param: code, low: $0.low, high: $0.high) }
        case .number:
            return node.number.map { [SearchIndexRow(param: code, number: $0)] } ?? []
        case .quantity:
            guard let value = node["value"]?.number else { return [] }
            let unit = node["code"]?.string ?? node["unit"]?.string
            return [SearchIndexRow(param: code, system: node["system"]?.string, code: unit, number: value)]
        case .reference:
            guard let reference = node["reference"]?.string, let (type, id) = FHIRReference.split(reference) else {
                return []
            }
            return [SearchIndexRow(param: code, refType: type, refID: id)]
        case .special:
            return []
        }
    }

    struct Token {
        var system: String?
        var code: String
        var text: String?
    }

    /// Coding, CodeableConcept, Identifier, code/string/boolean primitives, ContactPoint.
    static func tokens(_ node: JSON) -> [Token] {
        switch node {
        case .string(let string): return [Token(system: nil, code: string, text: nil)]
        case .bool(let bool): return [Token(system: nil, code: bool ? "true" : "false", text: nil)]
        case .object(let object):
            if case .array(let codings)? = object["coding"] {
                let text = object["text"]?.string
                return codings.compactMap { coding -> Token? in
                    guard let code = coding["code"]?.string else { return nil }
                    return Token(system: coding["system"]?.string, code: code, text: coding["display"]?.string ?? text)
                }
            }
            if let code = object["code"]?.string {
                return [Token(system: object["system"]?.string, code: code, text: object["display"]?.string)]
            }
            if let value = object["value"]?.string {
                return [Token(system: object["system"]?.string, code: value, text: object["type"]?["text"]?.string)]
            }
            return []
        default: return []
        }
    }

    /// string primitives, HumanName and Address parts.
    static func strings(_ node: JSON) -> [String] {
        if let string = node.string { return [string] }
        guard case .object(let object) = node else { return [] }
        var out: [String] = []
        for key in [
            "text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country",
        ] {
            switch object[key] {
            case .string(let value)?: out.append(value)
            case .array(let values)?: out += values.compactMap(\.string)
            default: break
            }
        }
        return out
    }

    /// date, dateTime, instant, Period.
    static func dateRanges(_ node: JSON) -> [(low: Double, high: Double)] {
        if let text = node.string, let range = FHIRDate.range(of: text) { return [range] }
        guard case .object(let object) = node else { return [] }
        let start = object["start"]?.string.flatMap(FHIRDate.range(of:))
        let end = object["end"]?.string.flatMap(FHIRDate.range(of:))
        if start == nil, end == nil { return [] }
        return [(start?.low ?? -Double.greatestFiniteMagnitude, end?.high ?? Double.greatestFiniteMagnitude)]
    }
}

/// `Type/id` references (absolute URLs keep their last two segments).
public enum FHIRReference {
    public static func split(_ reference: String) -> (String, String)? {
        let parts = reference.split(separator: "/").map(String.init)
        guard parts.count >= 2 else { return nil }
        let type = parts[parts.count - 2]
        let id = parts[parts.count - 1]
        guard type.first?.isUppercase == true, !id.isEmpty else { return nil }
        return (type, id)
    }
}

/// FHIR string matching: case- and accent-insensitive (R4 §3.1.1.4.6).
public enum FHIRText {
    public static func normalise(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }
}

/// The parts of a FHIR `date`, `dateTime` or `instant` text, read by hand (a regular expression and `Calendar` cost a
/// tenth of a capacity PATCH): `YYYY(-MM(-DD(Thh:mm(:ss(.f+)?)?(Z|±hh:mm)?)?)?)?`, with months 01–12, days that
/// exist in their month, hours 00–23, minutes 00–59, seconds up to 60. Each datatype then says which parts it needs.
struct FHIRTemporalText {
    var year: Int
    var month: Int?, day: Int?, hour: Int?, minute: Int?, second: Int?
    /// The digits after the seconds' dot (at least one when there is a dot).
    var fraction: String?
    /// `Z` or `±hh:mm`, as written.
    var zone: (sign: Int, hours: Int, minutes: Int)?

    init?(_ text: String) {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += count
            return value
        }
        func skip(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = number(4) else { return nil }
        self.year = year
        if skip(0x2D) {
            guard let month = number(2), (1...12).contains(month) else { return nil }
            self.month = month
            if skip(0x2D) {
                guard let day = number(2), (1...FHIRDate.daysIn(month: month, year: year)).contains(day) else {
                    return nil
                }
                self.day = day
                if skip(0x54) {
                    guard let hour = number(2), hour <= 23, skip(0x3A), let minute = number(2), minute <= 59 else {
                        return nil
                    }
                    (self.hour, self.minute) = (hour, minute)
                    if skip(0x3A) {
                        guard let second = number(2), second <= 60 else { return nil }
                        self.second = second
                        if skip(0x2E) {
                            let start = index
                            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
                            guard index > start else { return nil }
                            fraction = String(decoding: bytes[start..<index], as: UTF8.self)
                        }
                    }
                    if skip(0x5A) {
                        zone = (1, 0, 0)
                    } else if index < bytes.count {
                        let sign = bytes[index] == 0x2D ? -1 : 1
                        guard skip(0x2B) || skip(0x2D), let hours = number(2), skip(0x3A), let minutes = number(2)
                        else { return nil }
                        zone = (sign, hours, minutes)
                    }
                }
            }
        }
        guard index == bytes.count else { return nil }
    }

    /// A zone FHIR allows: up to ±13:59, or ±14:00.
    var zoneIsValid: Bool {
        guard let zone else { return true }
        return zone.minutes <= 59 && (zone.hours <= 13 || (zone.hours == 14 && zone.minutes == 0))
    }
}

/// FHIR date/dateTime/instant values as the range of instants they cover, at their precision.
public enum FHIRDate {
    /// `2024`, `2024-03`, `2024-03-05`, `2024-03-05T10:00`, `…:00`, `…:00.123` (up to 9 digits), with `Z` or `±hh:mm`
    /// (default UTC). Returns nil for anything else, impossible days (`2023-02-30`) and zones (`+99:99`) included.
    public static func range(of text: String) -> (low: Double, high: Double)? {
        guard let parts = FHIRTemporalText(text), (parts.fraction?.count ?? 1) <= 9, parts.zoneIsValid else {
            return nil
        }
        let (year, month, day) = (parts.year, parts.month, parts.day)
        let offset = parts.zone.map { $0.sign * ($0.hours * 3600 + $0.minutes * 60) } ?? 0
        let fraction = parts.fraction.map { Double("0." + $0) ?? 0 }
        let midnight = Double(daysSince1970(year: year, month: month ?? 1, day: day ?? 1)) * 86400
        let start =
            midnight + Double((parts.hour ?? 0) * 3600 + (parts.minute ?? 0) * 60 + (parts.second ?? 0) - offset)
            + (fraction ?? 0)
        let end: Double
        if parts.second != nil {
            end = start + (fraction != nil ? 0.0009 : 0.999)
        } else if parts.minute != nil {
            end = start + 59.999
        } else {
            let next: Int
            if let month, let day {
                next = daysSince1970(year: year, month: month, day: day) + 1
            } else if let month {
                next =
                    month == 12
                    ? daysSince1970(year: year + 1, month: 1, day: 1)
                    : daysSince1970(year: year, month: month + 1, day: 1)
            } else {
                next = daysSince1970(year: year + 1, month: 1, day: 1)
            }
            end = Double(next) * 86400 - Double(offset) - 0.001
        }
        return (start, end)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let year = month <= 2 ? year - 1 : year
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

/// JSON scalars as `JSONSerialization` gives them. On Linux a parsed `0` or `1` is an `NSNumber` that also casts to
/// `Bool`, so booleans are recognised by their boxed type, never by `as? Bool`.
public enum JSONScalar {
    public static func isBoolean(_ value: Any?) -> Bool {
        guard let value else { return false }
        // A Swift Bool (FHIRPath's own results) is told by its type alone, before any cast.
        if type(of: value) == Bool.self { return true }
        // Strings and objects are most of what is tested, and far cheaper to rule out than the NSNumber bridge below.
        if value is String || value is [String: Any] || value is [Any] { return false }
        guard let number = value as? NSNumber else { return false }
        // First byte of the ObjC type encoding: `c` (char) or `B` — JSONSerialization's booleans. No String built:
        // this runs for every scalar a write or a search looks at.
        let kind = number.objCType.pointee
        return kind == 0x63 || kind == 0x42
    }

    public static func bool(_ value: Any?) -> Bool? {
        // A Swift Bool as itself: bridging it to NSNumber would allocate one.
        if let value, type(of: value) == Bool.self { return value as? Bool }
        guard isBoolean(value) else { return nil }
        return (value as? NSNumber)?.boolValue
    }

    public static func number(_ value: Any?) -> Double? {
        guard let value, !isBoolean(value) else { return nil }
        if let number = value as? NSNumber { return number.doubleValue }
        if let int = value as? Int { return Double(int) }
        if let double = value as? Double { return double }
        return nil
    }
}
