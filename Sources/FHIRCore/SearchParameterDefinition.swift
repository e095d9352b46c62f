import Foundation

/// FHIR search parameter types (R4 §3.1.1.4).
public enum SearchParameterType: String, Sendable, Hashable, Codable {
    case token, string, date, number, quantity, reference, uri, special
}

/// One search parameter a server supports, declared as data: a code, a type and the element paths it indexes.
///
/// Paths use a small, declarative subset of FHIRPath navigation, enough for the ROR's SearchParameter expressions:
/// - `identifier`, `meta.tag`, `address.city` — element names, arrays are traversed;
/// - `extension[url=https://…/ror-location-supported-capacity]` — keep elements whose `url` (or any key) equals;
/// - `value*` — the polymorphic `value[x]` element whatever its type (`valueCodeableConcept`, `valueCode`, …).
public struct SearchParameterDefinition: Sendable, Hashable {
    public var code: String
    public var type: SearchParameterType
    public var paths: [ElementPath]
    /// For references: the resource types it may point to (used by chains and `_include`).
    public var targets: [String]
    public var documentation: String?

    public init(
        _ code: String,
        _ type: SearchParameterType,
        paths: [String],
        targets: [String] = [],
        documentation: String? = nil
    ) {
        self.code = code
        self.type = type
        self.paths = paths.map { ElementPath(parsing: $0) }
        self.targets = targets
        self.documentation = documentation
    }

    /// Whether one of its paths starts at one of these top-level elements (a wildcard start may be any of them).
    public func reads(_ elements: Set<String>) -> Bool {
        paths.contains { path in
            guard let first = path.steps.first else { return true }
            return first.prefix != nil || elements.contains(first.name)
        }
    }
}

/// A parsed element path (see ``SearchParameterDefinition``).
public struct ElementPath: Sendable, Hashable, CustomStringConvertible {
    public struct Step: Sendable, Hashable {
        public var name: String {
            didSet { prefix = Self.prefix(of: name) }
        }
        /// `name[key=value]` filter.
        public var filter: (key: String, value: String)?
        /// For `value*` (every `value[x]` choice), `value`; decided once, not for every element the step meets.
        private(set) var prefix: String?

        public init(name: String, filter: (key: String, value: String)?) {
            self.name = name
            self.filter = filter
            self.prefix = Self.prefix(of: name)
        }

        static func prefix(of name: String) -> String? { name.hasSuffix("*") ? String(name.dropLast()) : nil }

        public static func == (lhs: Step, rhs: Step) -> Bool {
            lhs.name == rhs.name && lhs.filter?.key == rhs.filter?.key && lhs.filter?.value == rhs.filter?.value
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(filter?.key)
            hasher.combine(filter?.value)
        }
    }

    public var steps: [Step]
    public let description: String

    public init(parsing text: String) {
        self.description = text
        var steps: [Step] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "[" { depth += 1 }
            if character == "]" { depth -= 1 }
            if character == ".", depth == 0 {
                steps.append(Self.step(current))
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { steps.append(Self.step(current)) }
        self.steps = steps
    }

    private static func step(_ text: String) -> Step {
        guard let open = text.firstIndex(of: "["), text.hasSuffix("]") else { return Step(name: text, filter: nil) }
        let name = String(text[..<open])
        let inside = text[text.index(after: open)..<text.index(before: text.endIndex)]
        let parts = inside.split(separator: "=", maxSplits: 1).map(String.init)
        return Step(name: name, filter: parts.count == 2 ? (parts[0], parts[1]) : nil)
    }

    /// The elements this path selects in a JSON resource.
    public func evaluate(_ root: JSON) -> [JSON] { Self.select(steps[...], from: [root]) }

    /// The elements `steps` select from `nodes`.
    static func select(_ steps: ArraySlice<Step>, from nodes: [JSON]) -> [JSON] {
        var nodes = nodes
        for step in steps {
            var next: [JSON] = []
            for node in nodes {
                guard case .object(let object) = node else { continue }
                func take(_ child: JSON) {
                    for item in child.elements {
                        if let filter = step.filter {
                            guard item[filter.key]?.string == filter.value else { continue }
                        }
                        next.append(item)
                    }
                }
                if let prefix = step.prefix {
                    for member in object where member.key.hasPrefix(prefix) && !member.key.hasPrefix("_") {
                        take(member.value)
                    }
                } else if let child = object[step.name] {
                    take(child)
                }
            }
            nodes = next
        }
        return nodes
    }
}
