import Foundation
import GRDB

/// The search parameters a server supports, per resource type.
public struct SearchParameterRegistry: Sendable {
    public var parameters: [String: [String: SearchParameterDefinition]]

    public init(_ parameters: [String: [SearchParameterDefinition]]) {
        self.parameters = parameters.mapValues {
            Dictionary($0.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func parameter(_ code: String, of type: String) -> SearchParameterDefinition? {
        parameters[type]?[code]
    }

    public var resourceTypes: [String] { parameters.keys.sorted() }

    /// What the index rows of a resource depend on: every parameter's type, paths and targets, and the indexer's
    /// version. Stored with a prebuilt dataset, whose rows are reused only when this text is unchanged.
    public var indexingFingerprint: String {
        var lines = ["indexer \(SearchIndexer.version)"]
        for type in resourceTypes {
            for (code, definition) in parameters[type]!.sorted(by: { $0.key < $1.key }) {
                lines.append(
                    "\(type).\(code) \(definition.type.rawValue) \(definition.paths.map(\.description).joined(separator: " | ")) -> \(definition.targets.joined(separator: ","))"
                )
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// A search that cannot run; becomes a 400 OperationOutcome with `expression`.
public struct SearchError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The offending parameter (as sent).
    public var parameter: String
    public var description: String { message }

    public init(_ message: String, parameter: String) {
        self.message = message
        self.parameter = parameter
    }
}

extension SearchError {
    /// A database error a query's shape caused (SQLite's expression tree, term or variable limits), as a search error
    /// naming the parameter with the most values: a 400, not a 500. Nil for any other error.
    public static func queryShape(_ error: any Error, items: [(String, String)]) -> SearchError? {
        guard let database = error as? DatabaseError,
            ["too large", "too many", "stack overflow", "too complex", "too deep"].contains(where: {
                (database.message ?? "").lowercased().contains($0)
            })
        else { return nil }
        let heaviest = items.max { $0.1.count < $1.1.count }?.0 ?? ""
        return SearchError(
            "The search is too large for the sandbox's database (\(database.message ?? "")): use fewer terms",
            parameter: heaviest
        )
    }
}

/// One condition of a search (all conditions must hold; `values` of one condition are alternatives).
public indirect enum SearchCondition: Sendable {
    /// `name[:modifier]=v1,v2`
    case parameter(SearchParameterDefinition, modifier: String?, values: [String], raw: String)
    /// `_id=a,b`
    case ids([String])
    /// `_id:not`, `:missing` etc. are expressed through `.parameter`; `missing` is its own case.
    case missing(SearchParameterDefinition, Bool)
    /// `reference.param=…` (chained search). With `above` (`reference.param:above=…`, as the production ROR offers
    /// on `organization`), a target also matches when one of its ancestors (through `hierarchy`) does.
    case chain(
        reference: SearchParameterDefinition,
        targetType: String,
        condition: SearchCondition,
        above: SearchParameterDefinition?
    )
    /// `_has:Source:reference:param=…` (reverse chain).
    case has(sourceType: String, reference: SearchParameterDefinition, condition: SearchCondition)
    /// `_filter` combinations.
    case any([SearchCondition])
    case all([SearchCondition])
    case not(SearchCondition)
}

/// `_include` / `_revinclude` specification.
public struct IncludeSpec: Sendable, Hashable {
    public var sourceType: String
    /// nil for `*`.
    public var parameter: String?
    public var targetType: String?
    public var iterate: Bool
}

/// A parsed search: conditions plus result controls.
public struct SearchRequest: Sendable {
    public var type: String
    public var conditions: [SearchCondition] = []
    public var count: Int
    public var sort: [(parameter: String, descending: Bool)] = []
    public var includes: [IncludeSpec] = []
    public var revIncludes: [IncludeSpec] = []
    public var summaryCount = false
    public var elements: [String]?
    /// `_total=none` leaves `Bundle.total` out.
    public var includeTotal = true
    /// Parameters ignored under `Prefer: handling=lenient`, for the OperationOutcome that says so.
    public var ignored: [String] = []

    public static let defaultCount = 200
    public static let maximumCount = 1000
    /// Bounds on a query's shape, each refused with a 400 naming the parameter: past them SQLite's expression tree
    /// (at most 1 000 deep) overflowed and the error escaped as a 500.
    public static let maximumParameters = 200
    public static let maximumRepetitions = 100
    public static let maximumValues = 100
    public static let maximumFilterTerms = 100
    public static let maximumFilterDepth = 16

    /// Parameters that shape the result rather than filter it.
    static let resultParameters: Set<String> = [
        "_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_format", "_pretty",
    ]

    /// Parses `items` (query string pairs, in order) for a search of `type`.
    public init(
        type: String,
        items: [(String, String)],
        registry: SearchParameterRegistry,
        lenient: Bool = false
    ) throws {
        self.type = type
        self.count = Self.defaultCount
        try Self.checkShape(items)
        for (rawName, value) in items {
            do {
                try apply(rawName, value, registry: registry)
            } catch let error as SearchError where lenient && error.message.hasPrefix("Unknown search parameter") {
                ignored.append(rawName)
            }
        }
    }

    private mutating func apply(_ rawName: String, _ value: String, registry: SearchParameterRegistry) throws {
        let (name, modifier) = Self.splitModifier(rawName)
        switch name {
        case "_count":
            guard let count = Int(value), count >= 0 else {
                throw SearchError("_count must be a non-negative integer (got '\(value)')", parameter: rawName)
            }
            guard count <= Self.maximumCount else {
                throw SearchError("_count must not exceed \(Self.maximumCount) (got \(count))", parameter: rawName)
            }
            self.count = count
        case "_sort":
            for item in value.split(separator: ",").map(String.init) {
                let descending = item.hasPrefix("-")
                let code = descending ? String(item.dropFirst()) : item
                guard code == "_id" || code == "_lastUpdated" || registry.parameter(code, of: type) != nil else {
                    throw SearchError("Unknown sort parameter '\(code)' for \(type)", parameter: rawName)
                }
                sort.append((code, descending))
            }
        case "_include", "_revinclude":
            let spec = try Self.include(
                value,
                iterate: modifier == "iterate" || modifier == "recurse",
                registry: registry,
                parameter: rawName
            )
            if name == "_include" { includes.append(spec) } else { revIncludes.append(spec) }
        case "_summary":
            switch value {
            case "count": summaryCount = true
            case "false": break
            default: throw SearchError("_summary supports 'count' and 'false' (got '\(value)')", parameter: rawName)
            }
        case "_elements":
            elements = value.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        case "_total":
            switch value {
            case "none": includeTotal = false
            case "estimate", "accurate": includeTotal = true
            default: throw SearchError("_total must be none, estimate or accurate (got '\(value)')", parameter: rawName)
            }
        case "_format", "_pretty":
            break  // checked by the caller (content negotiation)
        case "_filter":
            conditions.append(try FilterExpression.parse(value, type: type, registry: registry))
        default:
            conditions.append(try Self.condition(type: type, name: rawName, value: value, registry: registry))
        }
    }

    /// Refuses a query too large to run: too many parameters, one repeated or with too many values, a `_filter` with
    /// too many terms or too deep.
    static func checkShape(_ items: [(String, String)]) throws {
        var repetitions: [String: Int] = [:]
        for (name, value) in items {
            repetitions[name, default: 0] += 1
            if repetitions[name]! > maximumRepetitions {
                throw SearchError(
                    "Parameter '\(name)' is repeated more than \(maximumRepetitions) times",
                    parameter: name
                )
            }
            if name == "_filter" {
                var depth = 0
                var deepest = 0
                var terms = 1
                var quoted = false
                var word = ""
                for character in value {
                    if character == "\"" { quoted.toggle() }
                    guard !quoted else { continue }
                    if character == "(" { depth += 1 }
                    if character == ")" { depth -= 1 }
                    deepest = max(deepest, depth)
                    if character.isLetter {
                        word.append(character)
                    } else {
                        if word.lowercased() == "and" || word.lowercased() == "or" { terms += 1 }
                        word = ""
                    }
                }
                if terms > maximumFilterTerms || deepest > maximumFilterDepth {
                    throw SearchError(
                        "_filter is too large: at most \(maximumFilterTerms) terms and \(maximumFilterDepth) levels of parentheses (got \(terms) terms, \(deepest) levels)",
                        parameter: name
                    )
                }
            } else if !resultParameters.contains(name),
                value.utf8.reduce(1, { $1 == UInt8(ascii: ",") ? $0 + 1 : $0 }) > maximumValues
            {
                throw SearchError("Parameter '\(name)' has more than \(maximumValues) values", parameter: name)
            }
        }
        if items.count > maximumParameters {
            throw SearchError(
                "Too many search parameters: at most \(maximumParameters) (got \(items.count))",
                parameter: items[maximumParameters].0
            )
        }
    }

    static func splitModifier(_ raw: String) -> (String, String?) {
        guard let colon = raw.firstIndex(of: ":") else { return (raw, nil) }
        return (String(raw[..<colon]), String(raw[raw.index(after: colon)...]))
    }

    static func include(
        _ value: String,
        iterate: Bool,
        registry: SearchParameterRegistry,
        parameter: String
    ) throws -> IncludeSpec {
        if value == "*" { return IncludeSpec(sourceType: "*", parameter: nil, targetType: nil, iterate: iterate) }
        let parts = value.split(separator: ":").map(String.init)
        guard parts.count >= 2, parts.count <= 3, registry.parameters[parts[0]] != nil else {
            throw SearchError(
                "\(parameter) must be Type:parameter[:TargetType] or * (got '\(value)')",
                parameter: parameter
            )
        }
        if parts[1] == "*" {
            return IncludeSpec(sourceType: parts[0], parameter: nil, targetType: nil, iterate: iterate)
        }
        guard let definition = registry.parameter(parts[1], of: parts[0]), definition.type == .reference else {
            throw SearchError("\(parts[0]) has no reference search parameter '\(parts[1])'", parameter: parameter)
        }
        return IncludeSpec(
            sourceType: parts[0],
            parameter: parts[1],
            targetType: parts.count == 3 ? parts[2] : nil,
            iterate: iterate
        )
    }

    /// A filtering parameter: plain, `_id`, chained (`a.b`), or reverse-chained (`_has:T:ref:param`).
    static func condition(
        type: String,
        name rawName: String,
        value: String,
        registry: SearchParameterRegistry
    ) throws -> SearchCondition {
        if rawName.hasPrefix("_has:") {
            let parts = rawName.split(separator: ":", maxSplits: 3).map(String.init)
            guard parts.count == 4, registry.parameters[parts[1]] != nil else {
                throw SearchError("_has must be _has:Type:reference:parameter (got '\(rawName)')", parameter: rawName)
            }
            guard let reference = registry.parameter(parts[2], of: parts[1]), reference.type == .reference,
                reference.targets.isEmpty || reference.targets.contains(type)
            else {
                throw SearchError("\(parts[1]) has no reference parameter '\(parts[2])' to \(type)", parameter: rawName)
            }
            do {
                let inner = try condition(type: parts[1], name: parts[3], value: value, registry: registry)
                return .has(sourceType: parts[1], reference: reference, condition: inner)
            } catch let error as SearchError {
                throw SearchError(error.message, parameter: rawName)
            }
        }
        let (name, modifier) = splitModifier(rawName)
        if let dot = name.firstIndex(of: ".") {
            let referenceCode = String(name[..<dot])
            var rest = String(name[name.index(after: dot)...])
            // `:above` closes the chain (hierarchy-aware); any other modifier belongs to the chained parameter.
            var innerModifier = modifier
            var above = false
            if let modifier, modifier == "above" || modifier.hasSuffix(":above") {
                above = true
                innerModifier = modifier == "above" ? nil : String(modifier.dropLast(":above".count))
            }
            if let innerModifier { rest += ":" + innerModifier }
            // `reference:Type.param` names the target type explicitly.
            let (code, typeModifier) = splitModifier(referenceCode)
            guard let reference = registry.parameter(code, of: type), reference.type == .reference else {
                throw SearchError(
                    "Unknown search parameter '\(code)' for resource type \(type) (chains need a reference parameter)",
                    parameter: rawName
                )
            }
            let targets = typeModifier.map { [$0] } ?? reference.targets
            guard targets.count == 1, let target = targets.first, registry.parameters[target] != nil else {
                throw SearchError(
                    "Chain '\(rawName)' is ambiguous: name the target type (\(code):Type.param)",
                    parameter: rawName
                )
            }
            var hierarchy: SearchParameterDefinition?
            if above {
                guard
                    let partOf = registry.parameters[target]?.values.first(where: {
                        $0.type == .reference && $0.targets == [target]
                    })
                else {
                    throw SearchError(
                        ":above needs a hierarchy: \(target) has no reference to itself",
                        parameter: rawName
                    )
                }
                hierarchy = partOf
            }
            do {
                let inner = try condition(type: target, name: rest, value: value, registry: registry)
                return .chain(reference: reference, targetType: target, condition: inner, above: hierarchy)
            } catch let error as SearchError {
                throw SearchError(error.message, parameter: rawName)  // name the whole chain, as sent
            }
        }
        if name == "_id" {
            guard modifier == nil else { throw SearchError("_id supports no modifier", parameter: rawName) }
            return .ids(splitValues(value))
        }
        guard let definition = registry.parameter(name, of: type) else {
            let known = (registry.parameters[type]?.keys.sorted() ?? []).joined(separator: ", ")
            throw SearchError(
                "Unknown search parameter '\(name)' for resource type \(type). Valid search parameters: [\(known)]",
                parameter: rawName
            )
        }
        if modifier == "missing" {
            guard value == "true" || value == "false" else {
                throw SearchError(":missing takes true or false (got '\(value)')", parameter: rawName)
            }
            return .missing(definition, value == "true")
        }
        try validateModifier(modifier, for: definition, raw: rawName)
        let values = splitValues(value)
        guard !values.isEmpty, values.allSatisfy({ !$0.isEmpty }) else {
            throw SearchError("Parameter '\(rawName)' has an empty value", parameter: rawName)
        }
        for item in values {
            try SearchValue.validate(item, definition: definition, modifier: modifier, parameter: rawName)
        }
        return .parameter(definition, modifier: modifier, values: values, raw: rawName)
    }

    static func validateModifier(_ modifier: String?, for definition: SearchParameterDefinition, raw: String) throws {
        guard let modifier else { return }
        let allowed: Set<String>
        switch definition.type {
        case .token: allowed = ["not", "text"]
        case .string: allowed = ["exact", "contains"]
        case .uri: allowed = ["below"]
        case .reference: allowed = Set(definition.targets)
        case .date, .number, .quantity, .special: allowed = []
        }
        guard allowed.contains(modifier) else {
            throw SearchError(
                "Modifier ':\(modifier)' is not supported on \(definition.type.rawValue) parameter '\(definition.code)'",
                parameter: raw
            )
        }
    }

    /// Comma separates alternatives; `\,` is a literal comma.
    static func splitValues(_ value: String) -> [String] {
        var values: [String] = []
        var current = ""
        var escaped = false
        for character in value {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," {
                values.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        values.append(current)
        return values
    }
}

/// Prefixed values of number/date/quantity parameters.
public enum SearchPrefix: String, Sendable, CaseIterable {
    case eq, ne, gt, lt, ge, le, sa, eb, ap
}

enum SearchValue {
    /// Splits `ge2024-01-01` into (ge, "2024-01-01"); no prefix = eq. An alphabetic prefix that is not a FHIR
    /// prefix is an error.
    static func prefixed(_ value: String, parameter: String) throws -> (SearchPrefix, String) {
        guard let first = value.first, first.isLetter else { return (.eq, value) }
        guard let prefix = SearchPrefix(rawValue: String(value.prefix(2))) else {
            let letters = value.prefix(while: { $0.isLetter }).prefix(2)
            throw SearchError(
                "Invalid prefix '\(letters)' in '\(value)' (use eq, ne, gt, lt, ge, le, sa, eb or ap)",
                parameter: parameter
            )
        }
        return (prefix, String(value.dropFirst(2)))
    }

    static func validate(
        _ value: String,
        definition: SearchParameterDefinition,
        modifier: String?,
        parameter: String
    ) throws {
        switch definition.type {
        case .date:
            let (_, text) = try prefixed(value, parameter: parameter)
            guard FHIRDate.range(of: text) != nil else {
                throw SearchError(
                    "Invalid date '\(text)' for '\(parameter)' (expected YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)",
                    parameter: parameter
                )
            }
        case .number:
            let (_, text) = try prefixed(value, parameter: parameter)
            guard Double(text) != nil else {
                throw SearchError("Invalid number '\(text)' for '\(parameter)'", parameter: parameter)
            }
        case .quantity:
            let (_, text) = try prefixed(value, parameter: parameter)
            let number = text.split(separator: "|", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard Double(number) != nil else {
                throw SearchError(
                    "Invalid quantity '\(text)' for '\(parameter)' (expected [prefix]number[|system|code])",
                    parameter: parameter
                )
            }
        case .token, .string, .uri, .reference, .special:
            break
        }
    }
}

extension SearchRequest {
    /// What the search's ids depend on, by resource type: the parameters whose index rows its conditions and sort
    /// read (`*`: any write of the type, for `_lastUpdated`, read from the row every write stamps). Every type listed
    /// also depends on which of its resources exist (a creation re-indexes all parameters). A write of a type it
    /// does not list, or of parameters it does not read, cannot change its ids (the read cache keeps it).
    public var dependencies: [String: Set<String>] {
        var read: [String: Set<String>] = [type: []]
        func note(_ parameter: String, of type: String) {
            read[type, default: []].insert(parameter == "_lastUpdated" ? "*" : parameter)
        }
        func add(_ condition: SearchCondition, on type: String) {
            switch condition {
            case .parameter(let definition, _, _, _), .missing(let definition, _):
                note(definition.code, of: type)
            case .ids:
                break  // which resources exist: every type listed depends on it
            case .chain(let reference, let target, let inner, let above):
                note(reference.code, of: type)
                read[target, default: []].formUnion([])
                if let above { note(above.code, of: target) }
                add(inner, on: target)
            case .has(let source, let reference, let inner):
                note(reference.code, of: source)
                add(inner, on: source)
            case .any(let terms), .all(let terms):
                for term in terms { add(term, on: type) }
            case .not(let term):
                add(term, on: type)
            }
        }
        for condition in conditions { add(condition, on: type) }
        for (parameter, _) in sort { note(parameter, of: type) }
        return read
    }
}

extension SearchRequest {
    /// For a search whose ids can be brought up to date by checking again only the resources a write can have moved
    /// in or out (conditions on the type's own parameters and chains one level deep, sorted by id): by chain target
    /// type, the reference parameters leading to it. Nil for other shapes (`_has`, chains of chains, `:above`, a
    /// sort), which a write that meets them makes the cache forget.
    public var maintainedChains: [String: Set<String>]? {
        guard sort.isEmpty else { return nil }
        var chains: [String: Set<String>] = [:]
        func own(_ condition: SearchCondition) -> Bool {
            switch condition {
            case .parameter, .missing, .ids: true
            case .any(let terms), .all(let terms): terms.allSatisfy(own)
            case .not(let term): own(term)
            case .chain, .has: false
            }
        }
        func maintained(_ condition: SearchCondition) -> Bool {
            switch condition {
            case .parameter, .missing, .ids: return true
            case .chain(let reference, let target, let inner, nil):
                guard own(inner) else { return false }
                chains[target, default: []].insert(reference.code)
                return true
            case .chain, .has: return false
            case .any(let terms), .all(let terms): return terms.allSatisfy(maintained)
            case .not(let term): return maintained(term)
            }
        }
        return conditions.allSatisfy(maintained) ? chains : nil
    }
}
