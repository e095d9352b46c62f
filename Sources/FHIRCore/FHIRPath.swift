import Foundation
import NIOConcurrencyHelpers

/// A FHIRPath subset, enough for FHIR Patch paths such as the ROR capacity feed's
/// `Location.extension.where(url='…' and extension.where(url='capacityStatus' and valueCodeableConcept.coding.code='02').exists())`:
/// path navigation (choice elements `value` → `valueX`), `where()`, `exists()`, `first()`, `not()`, `as()`/`ofType()`,
/// `and`/`or`, `=`/`!=`, string/integer/boolean literals, parentheses. Anything else is refused by name.
public indirect enum FHIRPath: Sendable, Hashable, CustomStringConvertible {
    case root
    case member(FHIRPath, String)
    case function(FHIRPath, String, [FHIRPath])
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case equals(FHIRPath, FHIRPath, negated: Bool)
    case and(FHIRPath, FHIRPath)
    case or(FHIRPath, FHIRPath)

    public static let supportedFunctions: Set<String> = ["where", "exists", "first", "not", "as", "ofType"]

    public var description: String {
        switch self {
        case .root: return "$this"
        case .member(.root, let name): return name
        case .member(let base, let name): return "\(base).\(name)"
        case .function(.root, let name, let arguments):
            return "\(name)(\(arguments.map(\.description).joined(separator: ", ")))"
        case .function(let base, let name, let arguments):
            return "\(base).\(name)(\(arguments.map(\.description).joined(separator: ", ")))"
        case .string(let value): return "'\(value.replacingOccurrences(of: "'", with: "\\'"))'"
        case .integer(let value): return "\(value)"
        case .boolean(let value): return "\(value)"
        case .equals(let left, let right, let negated): return "\(left) \(negated ? "!=" : "=") \(right)"
        case .and(let left, let right): return "(\(left) and \(right))"
        case .or(let left, let right): return "(\(left) or \(right))"
        }
    }

    // MARK: Parsing

    /// Parses `text`, or takes the expression parsed earlier from the same text: a feeder sends the same few
    /// paths all day, and parsing them was a twentieth of a capacity PATCH.
    public static func parsed(_ text: String) throws(FHIRPathError) -> FHIRPath {
        if let known = parsedExpressions.withLockedValue({ $0[text] }) { return known }
        let path = try FHIRPath(parsing: text)
        parsedExpressions.withLockedValue { known in
            if known.count >= 1024 { known.removeAll() }  // bounded: paths are client input
            known[text] = path
        }
        return path
    }

    private static let parsedExpressions = NIOLockedValueBox<[String: FHIRPath]>([:])

    /// Bounds on client-sent paths (FHIRPath Patch, `$validate` rules): the parser and the evaluator recurse, and
    /// 200 000 nested parentheses found by the fuzzer overflowed the stack (`scripts/fuzz`, 2026-12-07).
    static let maximumTokens = 2048
    static let maximumNesting = 64

    public init(parsing text: String) throws(FHIRPathError) {
        let tokens = try Self.tokenize(text)
        guard tokens.count <= Self.maximumTokens else {
            throw FHIRPathError(text, "the expression is longer than \(Self.maximumTokens) tokens")
        }
        var parser = Parser(tokens: tokens, text: text)
        self = try parser.expression()
        if let extra = parser.peek { throw FHIRPathError(text, "unexpected '\(extra.text)' after the expression") }
    }

    enum Token: Equatable {
        case identifier(String)
        case string(String)
        case number(Int)
        case symbol(String)
        var text: String {
            switch self {
            case .identifier(let value), .symbol(let value): value
            case .string(let value): "'\(value)'"
            case .number(let value): "\(value)"
            }
        }
    }

    static func tokenize(_ text: String) throws(FHIRPathError) -> [Token] {
        var tokens: [Token] = []
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace {
                index += 1
                continue
            }
            if character == "'" {
                var value = ""
                index += 1
                while index < characters.count, characters[index] != "'" {
                    if characters[index] == "\\", index + 1 < characters.count { index += 1 }
                    value.append(characters[index])
                    index += 1
                }
                guard index < characters.count else { throw FHIRPathError(text, "unterminated string literal") }
                index += 1
                tokens.append(.string(value))
            } else if character.isLetter || character == "_" || character == "$" || character == "`" {
                var value = ""
                if character == "`" {
                    index += 1
                    while index < characters.count, characters[index] != "`" {
                        value.append(characters[index])
                        index += 1
                    }
                    index += 1
                } else {
                    while index < characters.count,
                        characters[index].isLetter || characters[index].isNumber || characters[index] == "_"
                            || characters[index] == "$"
                    {
                        value.append(characters[index])
                        index += 1
                    }
                }
                tokens.append(.identifier(value))
            } else if character.isNumber {
                var value = ""
                while index < characters.count, characters[index].isNumber {
                    value.append(characters[index])
                    index += 1
                }
                if index < characters.count, characters[index] == ".", index + 1 < characters.count,
                    characters[index + 1].isNumber
                {
                    throw FHIRPathError(text, "decimal literals are not supported")
                }
                tokens.append(.number(Int(value) ?? 0))
            } else if character == "!", index + 1 < characters.count, characters[index + 1] == "=" {
                tokens.append(.symbol("!="))
                index += 2
            } else if ".()=,".contains(character) {
                tokens.append(.symbol(String(character)))
                index += 1
            } else {
                let rest = String(characters[index...].prefix(2)).trimmingCharacters(in: .whitespaces)
                throw FHIRPathError(
                    text,
                    "operator '\(rest.first.map(String.init) ?? rest)' is not supported (supported: . where() exists() first() not() as() ofType() and or = !=)"
                )
            }
        }
        return tokens
    }

    struct Parser {
        var tokens: [Token]
        let text: String
        var position = 0
        var nesting = 0

        var peek: Token? { position < tokens.count ? tokens[position] : nil }

        mutating func next() -> Token? {
            defer { position += 1 }
            return peek
        }

        mutating func expect(_ symbol: String) throws(FHIRPathError) {
            guard next() == .symbol(symbol) else { throw FHIRPathError(text, "'\(symbol)' expected") }
        }

        mutating func expression() throws(FHIRPathError) -> FHIRPath {
            nesting += 1
            defer { nesting -= 1 }
            guard nesting <= FHIRPath.maximumNesting else {
                throw FHIRPathError(text, "the expression nests deeper than \(FHIRPath.maximumNesting) levels")
            }
            var left = try conjunction()
            while peek == .identifier("or") {
                position += 1
                left = .or(left, try conjunction())
            }
            if case .identifier(let word)? = peek,
                ["xor", "implies", "in", "contains", "is", "div", "mod"].contains(word)
            {
                throw FHIRPathError(text, "operator '\(word)' is not supported")
            }
            return left
        }

        mutating func conjunction() throws(FHIRPathError) -> FHIRPath {
            var left = try equality()
            while peek == .identifier("and") {
                position += 1
                left = .and(left, try equality())
            }
            return left
        }

        mutating func equality() throws(FHIRPathError) -> FHIRPath {
            let left = try term()
            if peek == .symbol("=") || peek == .symbol("!=") {
                let negated = next() == .symbol("!=")
                return .equals(left, try term(), negated: negated)
            }
            return left
        }

        mutating func term() throws(FHIRPathError) -> FHIRPath {
            var base: FHIRPath
            switch next() {
            case .string(let value)?: return .string(value)
            case .number(let value)?: return .integer(value)
            case .identifier("true")?: return .boolean(true)
            case .identifier("false")?: return .boolean(false)
            case .symbol("(")?:
                base = try expression()
                try expect(")")
            case .identifier(let name)?:
                base = try invocation(on: .root, name: name)
            case let token?: throw FHIRPathError(text, "unexpected '\(token.text)'")
            case nil: throw FHIRPathError(text, "unexpected end of expression")
            }
            while peek == .symbol(".") {
                position += 1
                guard case .identifier(let name)? = next() else {
                    throw FHIRPathError(text, "a name is expected after '.'")
                }
                base = try invocation(on: base, name: name)
            }
            return base
        }

        mutating func invocation(on base: FHIRPath, name: String) throws(FHIRPathError) -> FHIRPath {
            guard peek == .symbol("(") else {
                if name == "$this" { return base }
                if name.hasPrefix("$") || name.hasPrefix("%") {
                    throw FHIRPathError(text, "variable '\(name)' is not supported")
                }
                return .member(base, name)
            }
            guard FHIRPath.supportedFunctions.contains(name) else {
                throw FHIRPathError(
                    text,
                    "function '\(name)()' is not supported (supported: \(FHIRPath.supportedFunctions.sorted().map { "\($0)()" }.joined(separator: ", ")))"
                )
            }
            position += 1
            var arguments: [FHIRPath] = []
            if peek != .symbol(")") {
                repeat {
                    if ["as", "ofType"].contains(name), case .identifier(let type)? = peek {
                        position += 1
                        arguments.append(.string(type))
                    } else {
                        arguments.append(try expression())
                    }
                } while peek == .symbol(",") && next() != nil
            }
            try expect(")")
            let expected: ClosedRange<Int> =
                switch name {
                case "where", "as", "ofType": 1...1
                case "exists": 0...1
                default: 0...0
                }
            guard expected.contains(arguments.count) else {
                throw FHIRPathError(text, "\(name)() takes \(expected.upperBound) argument(s)")
            }
            return .function(base, name, arguments)
        }
    }
}

public struct FHIRPathError: Error, Hashable, Sendable, CustomStringConvertible {
    public var expression: String
    public var message: String

    public init(_ expression: String, _ message: String) {
        self.expression = expression
        self.message = message
    }

    public var description: String { "FHIRPath '\(expression)': \(message)" }
}

/// Where a value sits in a JSON resource: keys and array indices from the root.
public enum JSONPathStep: Hashable, Sendable {
    case key(String)
    case index(Int)
}

/// One item of a FHIRPath result over a JSON resource: its value, where it sits, and for a choice element its type.
public struct FHIRPathItem: Sendable {
    public var value: JSON
    /// Where it sits: the last step, linked to its parent's (a child shares its parent's chain instead of copying
    /// an array of steps: evaluating a filter over a Location's hundred indicators allocated one array per node).
    var node: PathNode?
    /// `CodeableConcept` for an item reached as `value` through `valueCodeableConcept`.
    public var choiceType: String?
    /// Inside a `where()`/`exists()` criterion only values count: no location is built for the items reached.
    var untracked = false

    init(value: JSON, node: PathNode?, choiceType: String?) {
        self.value = value
        self.node = node
        self.choiceType = choiceType
    }

    /// The steps from the resource to the item (empty for the resource itself and for literals).
    public var location: [JSONPathStep] {
        var steps: [JSONPathStep] = []
        var current = node
        while let step = current {
            steps.append(step.step)
            current = step.parent
        }
        return steps.reversed()
    }

    /// Whether the item is inside the resource (not the resource itself, not a literal).
    public var isInsideResource: Bool { node != nil }
}

/// One step of an item's location, linked to the location of its parent.
final class PathNode: @unchecked Sendable {
    let parent: PathNode?
    let step: JSONPathStep

    init(parent: PathNode?, step: JSONPathStep) {
        self.parent = parent
        self.step = step
    }
}

extension FHIRPath {
    /// Evaluates against a resource (JSON object). A path's first name may be the resource type (`Location.…`).
    public func evaluate(on resource: JSONObject) -> [FHIRPathItem] {
        evaluate([FHIRPathItem(value: .object(resource), node: nil, choiceType: nil)], isRoot: true)
    }

    /// The same on a `JSONSerialization` tree.
    public func evaluate(on resource: [String: Any]) -> [FHIRPathItem] {
        evaluate(on: JSONObject(any: resource) ?? JSONObject())
    }

    func evaluate(_ context: [FHIRPathItem], isRoot: Bool) -> [FHIRPathItem] {
        switch self {
        case .root:
            return context
        case .member(.root, let name) where isRoot:
            // `Location` at the start names the resource itself when its type matches.
            if let first = context.first, first.value["resourceType"]?.string == name {
                return context
            }
            return Self.children(of: context, named: name)
        case .member(let base, let name):
            return Self.children(of: base.evaluate(context, isRoot: isRoot), named: name)
        case .function(let base, let name, let arguments):
            let input = base.evaluate(context, isRoot: isRoot)
            switch name {
            case "where":
                return input.filter { item in arguments[0].criterion(item.value, choice: item.choiceType) == true }
            case "exists":
                let items =
                    arguments.isEmpty
                    ? input : input.filter { arguments[0].criterion($0.value, choice: $0.choiceType) == true }
                return [Self.boolean(!items.isEmpty)]
            case "first":
                return Array(input.prefix(1))
            case "not":
                guard let value = input.singleBoolean else { return [] }
                return [Self.boolean(!value)]
            default:  // as, ofType
                guard case .string(let type)? = arguments.first else { return [] }
                return input.filter { item in
                    if let choice = item.choiceType { return choice.lowercased() == type.lowercased() }
                    return Self.matches(item.value, type: type)
                }
            }
        case .string(let value): return [Self.literal(.string(value))]
        case .integer(let value): return [Self.literal(.integer(value))]
        case .boolean(let value): return [Self.boolean(value)]
        case .equals(let left, let right, let negated):
            // `url = '…'` or `valueCodeableConcept.coding.code = '…'` inside a `where()`, met once per sub-extension
            // of a filtered path: a lone string reached through plain names is compared in place, as below but without
            // building the item lists (most of a capacity patch's path).
            if !isRoot, context.count == 1, case .string(let literal) = right,
                let string = Self.loneString(left, from: context[0].value)
            {
                return [Self.boolean((string == literal) != negated)]
            }
            let lhs = left.evaluate(context, isRoot: isRoot)
            let rhs = right.evaluate(context, isRoot: isRoot)
            guard !lhs.isEmpty, !rhs.isEmpty else { return [] }
            let equal = lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { Self.equal($0.value, $1.value) }
            return [Self.boolean(negated ? !equal : equal)]
        case .and, .or:
            return truth(context, isRoot: isRoot).map { [Self.boolean($0)] } ?? []
        }
    }

    /// `evaluate(…).singleBoolean` without building the collections a criterion only tests: the boolean operators and
    /// a lone-string comparison answer directly, and a `where()` stops at its first match once that settles it (an
    /// element that is not a boolean makes the collection true). `extension.where(url = 'x' and …) and …`, a capacity
    /// patch's criterion, is an existence test on each indicator's sub-extensions.
    func truth(_ context: [FHIRPathItem], isRoot: Bool) -> Bool? {
        switch self {
        case .and(let left, let right), .or(let left, let right):
            return logical({ left.truth(context, isRoot: isRoot) }, { right.truth(context, isRoot: isRoot) })
        case .equals(let left, .string(let literal), let negated) where !isRoot && context.count == 1:
            if let string = Self.loneString(left, from: context[0].value) { return (string == literal) != negated }
            return evaluate(context, isRoot: isRoot).singleBoolean
        case .function(let base, "where", let arguments) where arguments.count == 1:
            return Self.whereTruth(
                base.evaluate(context, isRoot: isRoot).lazy.map { ($0.value, $0.choiceType) },
                arguments[0]
            )
        default:
            return evaluate(context, isRoot: isRoot).singleBoolean
        }
    }

    /// Three-valued `and`/`or` of two sides: the dominant value (false for `and`, true for `or`) decides alone — the
    /// right side is then not evaluated —, both of the other value give it, anything else is empty.
    private func logical(_ left: () -> Bool?, _ right: () -> Bool?) -> Bool? {
        let dominant: Bool
        if case .or = self { dominant = true } else { dominant = false }
        let lhs = left()
        if lhs == dominant { return dominant }
        let rhs = right()
        if rhs == dominant { return dominant }
        return lhs == !dominant && rhs == !dominant ? !dominant : nil
    }

    /// A `where()` tested for truth: stops at the second match (several items are true) or at a first match that is
    /// not a boolean; a lone boolean is its value; none is empty.
    private static func whereTruth(_ items: some Sequence<(JSON, String?)>, _ criterion: FHIRPath) -> Bool? {
        var lone: Bool?
        var matched = 0
        for (value, choice) in items where criterion.criterion(value, choice: choice) == true {
            matched += 1
            guard matched == 1, case .bool(let flag) = value else { return true }
            lone = flag
        }
        return lone
    }

    /// `truth` of a `where()`/`exists()` criterion on one item (no location kept): its common forms — `and`/`or`, a
    /// lone-string comparison, a `where()` on a plain name — answered on the value itself, without the one-item
    /// collections and child lists `truth` builds (a capacity patch's path tests ~200 sub-extensions per PATCH).
    func criterion(_ value: JSON, choice: String?) -> Bool? {
        switch self {
        case .and(let left, let right), .or(let left, let right):
            return logical({ left.criterion(value, choice: choice) }, { right.criterion(value, choice: choice) })
        case .equals(let left, .string(let literal), let negated):
            if let string = Self.loneString(left, from: value) { return (string == literal) != negated }
        case .function(.member(.root, let name), "where", let arguments) where arguments.count == 1:
            // A plain name present (a choice name is left to `truth`): its elements, as `children(of:named:)` lists them.
            guard let child = value[name] else { break }
            return Self.whereTruth(child.elements.lazy.map { ($0, nil) }, arguments[0])
        default:
            break
        }
        var item = FHIRPathItem(value: value, node: nil, choiceType: choice)
        item.untracked = true
        return truth([item], isRoot: false)
    }

    /// The one string a chain of plain names (`a.b.c` from the criterion's item) reaches through objects and
    /// one-element lists; nil when the chain meets anything else (a missing or choice name, several elements, a
    /// non-string), left to the general evaluation.
    static func loneString(_ path: FHIRPath, from value: JSON) -> String? {
        loneValue(path, from: value)?.string
    }

    /// The one value a chain of plain names reaches (see ``loneString(_:from:)``).
    private static func loneValue(_ path: FHIRPath, from value: JSON) -> JSON? {
        switch path {
        case .member(.root, let name):
            return value[name].flatMap(lone)
        case .member(let base, let name):
            guard case .member = base, let parent = loneValue(base, from: value) else { return nil }
            return parent[name].flatMap(lone)
        default:
            return nil
        }
    }

    /// A value, or the only element of a one-element list.
    private static func lone(_ value: JSON) -> JSON? {
        guard case .array(let list) = value else { return value }
        return list.count == 1 ? list[0] : nil
    }

    static func children(of items: [FHIRPathItem], named name: String) -> [FHIRPathItem] {
        var result: [FHIRPathItem] = []
        for item in items {
            guard case .object(let object) = item.value else { continue }
            var found: [(String, JSON, String?)] = []
            if let value = object[name] {
                found.append((name, value, nil))
            } else {
                // A choice element (`value` → `valueCodeableConcept`, `valueInteger`…).
                for member in object
                where member.key.hasPrefix(name) && member.key.utf8.count > name.utf8.count
                    && member.key[member.key.index(member.key.startIndex, offsetBy: name.count)].isUppercase
                {
                    found.append((member.key, member.value, String(member.key.dropFirst(name.count))))
                }
            }
            for (key, value, choice) in found {
                if item.untracked {
                    for element in value.elements {
                        var child = FHIRPathItem(value: element, node: nil, choiceType: choice)
                        child.untracked = true
                        result.append(child)
                    }
                    continue
                }
                let keyNode = PathNode(parent: item.node, step: .key(key))
                if case .array(let array) = value {
                    for (index, element) in array.enumerated() {
                        result.append(
                            FHIRPathItem(
                                value: element,
                                node: PathNode(parent: keyNode, step: .index(index)),
                                choiceType: choice
                            )
                        )
                    }
                } else {
                    result.append(FHIRPathItem(value: value, node: keyNode, choiceType: choice))
                }
            }
        }
        return result
    }

    static func literal(_ value: JSON) -> FHIRPathItem { FHIRPathItem(value: value, node: nil, choiceType: nil) }
    static func boolean(_ value: Bool) -> FHIRPathItem {
        FHIRPathItem(value: .bool(value), node: nil, choiceType: "boolean")
    }

    static func equal(_ lhs: JSON, _ rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): return a == b
        case (.number(let a), .number(let b)): return a.double == b.double
        case (.bool(let a), .bool(let b)): return a == b
        default: return false
        }
    }

    static func matches(_ value: JSON, type: String) -> Bool {
        switch (value, type.lowercased()) {
        case (.string, "string"), (.string, "code"), (.string, "uri"), (.string, "datetime"): return true
        case (.number, "integer"), (.number, "decimal"): return true
        case (.bool, "boolean"): return true
        default: return false
        }
    }
}

extension [FHIRPathItem] {
    /// Singleton evaluation in a boolean context (FHIRPath §4.5): a boolean is itself, empty is empty, any other
    /// non-empty collection is true — so `extension.where(…) and …` reads as "such an extension exists and …".
    var singleBoolean: Bool? {
        guard !isEmpty else { return nil }
        if count == 1, case .bool(let value) = self[0].value { return value }
        return true
    }

    var isSingleTrue: Bool { singleBoolean == true }
}
