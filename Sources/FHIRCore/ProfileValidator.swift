import Foundation

/// Validation of resources against profiles written as rule tables (data, not code), so a maintainer follows the next
/// IG version by editing a file: each rule names an element path (`extension[url=…].valueCodeableConcept.coding.code`),
/// its cardinality, datatype, code list, reference targets, and rules for each element found (`each`).
public struct ProfileValidator: Sendable {
    public struct Rule: Codable, Sendable {
        public var path: String
        public var min: Int?
        /// `nil` or absent: unbounded.
        public var max: Int?
        /// `string`, `code`, `uri`, `id`, `integer`, `decimal`, `boolean`, `date`, `dateTime`, `instant`, `object`.
        public var type: String?
        /// Name of a code list the values must belong to.
        public var binding: String?
        /// Resource types a `reference` may point to.
        public var targets: [String]?
        /// Rules applied to each element found at `path` (paths relative to it).
        public var each: [Rule]?
        /// Why the rule exists (IG element), for maintainers.
        public var comment: String?
    }

    public struct Profile: Codable, Sendable {
        public var resourceType: String
        public var profile: String?
        public var rules: [Rule]
    }

    /// One problem, as an OperationOutcome issue.
    public struct Issue: Sendable, Hashable {
        /// `required`, `structure`, `value`, `code-invalid`.
        public var code: String
        public var diagnostics: String
        public var expression: String
    }

    public var profiles: [String: Profile] {
        didSet { compiled = profiles.mapValues { $0.rules.map(CompiledRule.init) } }
    }
    public var codeLists: [String: Set<String>]
    /// The FHIR base structure, checked before the profile's rules (nil: not checked).
    public var structure: StructureValidator?
    /// The rules with their paths parsed once (parsing them for every write was a tenth of a capacity PATCH).
    private var compiled: [String: [CompiledRule]]

    /// A class: every check walks the rules, and copying a struct of ten strings and arrays retained each of them.
    final class CompiledRule: Sendable {
        let rule: Rule
        let steps: [ElementPath.Step]
        /// FHIRPath of the elements found, relative to the node checked (the same for every element found).
        let suffix: String
        let each: [CompiledRule]

        init(_ rule: Rule) {
            self.rule = rule
            self.steps = ElementPath(parsing: rule.path).steps
            self.suffix = ProfileValidator.expression(steps, base: "")
            self.each = (rule.each ?? []).map(CompiledRule.init)
        }
    }

    public init(
        profiles: [Profile] = [],
        codeLists: [String: [String]] = [:],
        structure: StructureValidator? = nil
    ) {
        let byType = Dictionary(profiles.map { ($0.resourceType, $0) }, uniquingKeysWith: { first, _ in first })
        self.profiles = byType
        self.codeLists = codeLists.mapValues(Set.init)
        self.structure = structure
        self.compiled = byType.mapValues { $0.rules.map(CompiledRule.init) }
    }

    /// `ror-profiles.json` (`{"profiles": [...]}`), `code-lists.json` (`{"lists": {name: [codes]}}`) and the FHIR
    /// base structure `fhir-r4-structure.json` of a folder.
    public static func load(from folder: URL?) throws -> ProfileValidator {
        guard let folder else { return ProfileValidator() }
        struct ProfilesFile: Codable { var profiles: [Profile] }
        struct ListsFile: Codable { var lists: [String: [String]] }
        var profiles: [Profile] = []
        var lists: [String: [String]] = [:]
        let profilesURL = folder.appendingPathComponent("ror-profiles.json")
        let listsURL = folder.appendingPathComponent("code-lists.json")
        do {
            if FileManager.default.fileExists(atPath: profilesURL.path) {
                profiles = try JSONDecoder().decode(ProfilesFile.self, from: Data(contentsOf: profilesURL)).profiles
            }
            if FileManager.default.fileExists(atPath: listsURL.path) {
                lists = try JSONDecoder().decode(ListsFile.self, from: Data(contentsOf: listsURL)).lists
            }
        } catch {
            throw ResourceError("\(folder.path): \(error)")
        }
        let structureURL = folder.appendingPathComponent(Self.structureFile)
        let structure =
            FileManager.default.fileExists(atPath: structureURL.path)
            ? try StructureValidator.load(from: structureURL) : nil
        return ProfileValidator(profiles: profiles, codeLists: lists, structure: structure)
    }

    /// Every problem of `resource` against its type's profile (none when no profile is known for the type).
    /// `changed`: the top-level elements that may differ from a stored version that passed these rules (nil: any);
    /// only the rules on them are checked — the others would find what they found then.
    /// `changedElements`: for top-level lists changed element by element (``ChangedElements/byIndex``), the indices
    /// of the elements that are new; the others' own checks are skipped (cardinalities still count every element).
    public func validate(
        _ resource: JSONObject,
        changed: Set<String>? = nil,
        changedElements: [String: Set<Int>] = [:]
    ) -> [Issue] {
        guard let type = resource["resourceType"]?.string else {
            return [Issue(code: "structure", diagnostics: "resourceType is missing", expression: "resourceType")]
        }
        var issues: [Issue] = []
        if var rules = compiled[type] {
            if let changed { rules = rules.filter { $0.steps.first.map { changed.contains($0.name) } ?? true } }
            check(rules, on: .object(resource), expression: type, into: &issues, fresh: changedElements)
        }
        // The base structure's issues after the profile's: a mistake both see is named first in the profile's words.
        issues += structure?.validate(resource, only: changed, changedElements: changedElements) ?? []
        return issues
    }

    /// The generated FHIR base structure's file name in the terminology folder.
    public static let structureFile = "fhir-r4-structure.json"

    /// The same on a `JSONSerialization` tree.
    public func validate(
        _ resource: [String: Any],
        changed: Set<String>? = nil,
        changedElements: [String: Set<Int>] = [:]
    ) -> [Issue] {
        validate(JSONObject(any: resource) ?? JSONObject(), changed: changed, changedElements: changedElements)
    }

    /// `fresh`: lists of `node` of which only the elements at these indices are checked (cardinalities count all).
    func check(
        _ rules: [CompiledRule],
        on node: JSON,
        expression: String,
        into issues: inout [Issue],
        fresh: [String: Set<Int>] = [:]
    ) {
        // The rules of a node mostly select children of one name by one key (`extension[url=…]`, a dozen of them per
        // capacity indicator): those children are grouped by that key once, not scanned again for every rule.
        var groups: [String: [String: [(index: Int, item: JSON)]]] = [:]
        for compiled in rules {
            let rule = compiled.rule
            // `found` for the cardinalities, `checked` for the checks of each element.
            let found: [JSON]
            var checked: [JSON]?
            if let first = compiled.steps.first, let filter = first.filter {
                let key = first.name + "[" + filter.key
                let group = groups[key] ?? Self.group(node, name: first.name, by: filter.key)
                groups[key] = group
                let members = group[filter.value] ?? []
                found = ElementPath.select(compiled.steps.dropFirst(), from: members.map(\.item))
                if let indices = fresh[first.name] {
                    checked = ElementPath.select(
                        compiled.steps.dropFirst(),
                        from: members.filter { indices.contains($0.index) }.map(\.item)
                    )
                }
            } else {
                found = ElementPath.select(compiled.steps[...], from: [node])
                if let first = compiled.steps.first, let indices = fresh[first.name],
                    case .array(let list)? = node[first.name]
                {
                    checked = ElementPath.select(
                        compiled.steps.dropFirst(),
                        from: indices.sorted().filter(list.indices.contains).map { list[$0] }
                    )
                }
            }
            // Every element found has the same FHIRPath (filters are where-forms, not indexes): built once, and only
            // when an issue or a nested rule needs it.
            var built: String?
            func at() -> String {
                if let built { return built }
                let text = expression + compiled.suffix
                built = text
                return text
            }
            if let min = rule.min, found.count < min {
                issues.append(
                    Issue(
                        code: "required",
                        diagnostics: "\(at()): at least \(min) required, \(found.count) found",
                        expression: at()
                    )
                )
            }
            if let max = rule.max, found.count > max {
                issues.append(
                    Issue(
                        code: "structure",
                        diagnostics: "\(at()): at most \(max) allowed, \(found.count) found",
                        expression: at()
                    )
                )
            }
            for value in checked ?? found {
                if let type = rule.type, !Self.matches(value, type: type) {
                    issues.append(
                        Issue(
                            code: "value",
                            diagnostics: "\(at()): '\(Self.shown(value))' is not a valid \(type)",
                            expression: at()
                        )
                    )
                    continue
                }
                if let binding = rule.binding {
                    if let list = codeLists[binding] {
                        if let code = value.string, !list.contains(code) {
                            issues.append(
                                Issue(
                                    code: "code-invalid",
                                    diagnostics:
                                        "\(at()): code '\(code)' is not in \(binding) (\(list.sorted().joined(separator: ", ")))",
                                    expression: at()
                                )
                            )
                        }
                    } else {
                        issues.append(
                            Issue(
                                code: "code-invalid",
                                diagnostics: "\(at()): code list \(binding) is not loaded",
                                expression: at()
                            )
                        )
                    }
                }
                if let targets = rule.targets, let reference = value.string {
                    let type = reference.split(separator: "/").dropLast().last.map(String.init) ?? ""
                    if !targets.contains(type) {
                        issues.append(
                            Issue(
                                code: "value",
                                diagnostics:
                                    "\(at()): '\(reference)' must reference \(targets.joined(separator: " or "))",
                                expression: at()
                            )
                        )
                    }
                }
                if !compiled.each.isEmpty { check(compiled.each, on: value, expression: at(), into: &issues) }
            }
        }
    }

    /// A value as a diagnostic quotes it: a string's text, any other value's JSON.
    static func shown(_ value: JSON) -> String { value.string ?? value.text }

    // MARK: Paths

    /// The `name` children of a node with their index, by their `key` (those without a string `key` left out: no filter
    /// selects them).
    static func group(_ node: JSON, name: String, by key: String) -> [String: [(index: Int, item: JSON)]] {
        guard let child = node[name] else { return [:] }
        var groups: [String: [(index: Int, item: JSON)]] = [:]
        for (index, item) in child.elements.enumerated() {
            if let value = item[key]?.string { groups[value, default: []].append((index, item)) }
        }
        return groups
    }

    static func expression(_ steps: [ElementPath.Step], base: String) -> String {
        steps.reduce(base) { at, step in
            step.filter.map { "\(at).\(step.name).where(\($0.key)='\($0.value)')" } ?? "\(at).\(step.name)"
        }
    }

    /// FHIR `date`, `dateTime` and `instant` (the regular expressions of the FHIR R4 datatypes, and days that exist):
    /// a date has no time; a dateTime's time has seconds and a zone; an instant is a dateTime to the second.
    static func isTemporal(_ text: String, _ type: String) -> Bool {
        guard let parts = FHIRTemporalText(text), parts.zoneIsValid else { return false }
        let timed = parts.second != nil && parts.zone != nil
        switch type {
        case "date": return parts.hour == nil
        case "instant": return timed
        default: return parts.hour == nil || timed
        }
    }

    /// FHIR `code`: `[^\s]+( [^\s]+)*` — no leading, trailing or doubled space, no other whitespace (by hand: the
    /// commonest datatype of a write, and ICU regexes are slow on Linux).
    static func isCode(_ text: String) -> Bool {
        var previousSpace = true
        for scalar in text.unicodeScalars {
            if scalar == " " {
                if previousSpace { return false }
                previousSpace = true
            } else if scalar.properties.isWhitespace {
                return false
            } else {
                previousSpace = false
            }
        }
        return !previousSpace
    }

    static func isIDByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x2E
    }

    static func matches(_ value: JSON, type: String) -> Bool {
        switch type {
        case "string", "uri", "code", "id", "date", "dateTime", "instant":
            guard let text = value.string, !text.isEmpty else { return false }
            if type == "string" { return true }
            if type == "uri" { return !text.contains(where: \.isWhitespace) }
            if type == "code" { return isCode(text) }
            if type == "id" { return text.utf8.count <= 64 && text.utf8.allSatisfy { isIDByte($0) } }
            return isTemporal(text, type)
        case "integer":
            guard case .number(let number) = value else { return false }
            // JSON's integer form only (FHIR: no fraction, no exponent), within 32 bits.
            guard let integer = Int(number.text) else { return false }
            return abs(integer) < 2_147_483_648
        case "decimal":
            if case .number = value { return true }
            return false
        case "boolean":
            if case .bool = value { return true }
            return false
        case "object":
            if case .object = value { return true }
            return false
        default: return true
        }
    }
}
