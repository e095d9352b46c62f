import Foundation

/// The FHIR base structure of resources and datatypes, as the reference validator (HAPI's, which the national ROR
/// runs) checks it before any profile: unknown properties, a primitive's JSON type and lexical form, base
/// cardinalities (an array where one value is allowed, one value where an array is required, a required element
/// missing), choice elements (`value[x]`: one of its types, once), `_element` primitive extensions, `contained`
/// resources and the local references to them. The definitions are data, generated from a maintained model of R4
/// (`scripts/fhir_structure.py` → `Seeds/terminology/fhir-r4-structure.json`); the diagnostics use HAPI's words.
public struct StructureValidator: Sendable {
    /// One element of a type: its type's name, cardinality and choice group.
    struct Element: Sendable {
        var type: String
        var min: Int
        var isList: Bool
        /// `value` for `valueString`, `valueBoolean`…
        var choice: String?
    }

    struct TypeDefinition: Sendable {
        var isResource: Bool
        var elements: [String: Element]
        /// Choice groups (`value`) → whether one of them is required.
        var choices: [String: Bool]
        var required: [String]
    }

    struct Primitive: Sendable {
        enum JSONKind: String, Sendable { case string, number, boolean }
        var json: JSONKind
        var pattern: Pattern?
    }

    /// A lexical regex matched whole. `NSRegularExpression` is immutable and documented thread-safe.
    struct Pattern: @unchecked Sendable {
        let expression: NSRegularExpression

        init(_ pattern: String) throws { expression = try NSRegularExpression(pattern: "^(?:\(pattern))$") }

        func matches(_ text: String) -> Bool {
            expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
    }

    let types: [String: TypeDefinition]
    let primitives: [String: Primitive]

    /// `fhir-r4-structure.json` of a terminology folder.
    public static func load(from file: URL) throws -> StructureValidator {
        do {
            guard case .object(let root) = try JSON(parsing: Data(contentsOf: file)) else {
                throw ResourceError("not a JSON object")
            }
            var primitives: [String: Primitive] = [:]
            for member in root["primitives"]?.object ?? JSONObject() {
                let (name, value) = (member.key, member.value)
                let pattern = try value["regex"]?.string.map { try Pattern($0) }
                primitives[name] = Primitive(
                    json: Primitive.JSONKind(rawValue: value["json"]?.string ?? "string") ?? .string,
                    pattern: pattern
                )
            }
            var types: [String: TypeDefinition] = [:]
            for member in root["types"]?.object ?? JSONObject() {
                let (name, value) = (member.key, member.value)
                var definition = TypeDefinition(
                    isResource: value["resource"]?.bool == true,
                    elements: [:],
                    choices: [:],
                    required: []
                )
                for member in value["elements"]?.object ?? JSONObject() {
                    let (element, shape) = (member.key, member.value)
                    let parts = shape.array ?? []
                    let item = Element(
                        type: parts.first?.string ?? "string",
                        min: parts.count > 1 ? Int(parts[1].number ?? 0) : 0,
                        isList: parts.count > 2 && parts[2].string == "*",
                        choice: parts.count > 3 ? parts[3].string : nil
                    )
                    definition.elements[element] = item
                    if let choice = item.choice {
                        definition.choices[choice] = (definition.choices[choice] ?? false) || parts.last?.bool == true
                    } else if item.min > 0 {
                        definition.required.append(element)
                    }
                }
                definition.required.sort()
                types[name] = definition
            }
            return StructureValidator(types: types, primitives: primitives)
        } catch {
            throw ResourceError("\(file.path): \(error)")
        }
    }

    /// Whether resources of this type are known.
    public func knows(_ resourceType: String) -> Bool { types[resourceType]?.isResource == true }

    /// Every structural problem of `resource`; `only`: the top-level elements to check (nil: all of them), and for
    /// lists among them the indices of the elements to check (`changedElements`, as ``ProfileValidator`` reads it).
    public func validate(
        _ resource: JSONObject,
        only: Set<String>? = nil,
        changedElements: [String: Set<Int>] = [:]
    ) -> [ProfileValidator.Issue] {
        guard let type = resource["resourceType"]?.string, let definition = types[type], definition.isResource
        else {
            return []
        }
        var walk = Walk(validator: self, issues: [], containedIDs: [], localReferences: [])
        if only == nil, let contained = resource["contained"]?.array {
            walk.containedIDs = Set(contained.compactMap { $0.object?["id"]?.string })
        }
        walk.object(resource, of: definition, path: type, isResource: true, only: only, fresh: changedElements)
        if only == nil {
            for (reference, path) in walk.localReferences where !walk.containedIDs.contains(reference) {
                walk.issues.append(
                    .init(
                        code: "structure",
                        diagnostics: "Unable to resolve the contained resource '#\(reference)'",
                        expression: path
                    )
                )
            }
        }
        return walk.issues
    }

    /// One pass over a resource: the issues found, and what the local references need.
    struct Walk {
        let validator: StructureValidator
        var issues: [ProfileValidator.Issue]
        var containedIDs: Set<String>
        var localReferences: [(String, String)]

        mutating func issue(_ code: String, _ diagnostics: String, at path: String) {
            issues.append(.init(code: code, diagnostics: diagnostics, expression: path))
        }

        mutating func object(
            _ object: JSONObject,
            of definition: TypeDefinition,
            path: String,
            isResource: Bool,
            only: Set<String>? = nil,
            fresh: [String: Set<Int>] = [:]
        ) {
            guard object.count > (isResource ? 1 : 0) else {
                issue("structure", "Object must have some content", at: path)
                return
            }
            var choicesSeen: [String: [String]] = [:]
            var present: Set<String> = []
            for member in object {
                let (key, value) = (member.key, member.value)
                if isResource, key == "resourceType" { continue }
                if key.hasPrefix("_") {
                    let base = String(key.dropFirst())
                    if let only, !only.contains(base) { continue }
                    primitiveExtension(value, of: base, in: definition, object: object, path: path)
                    continue
                }
                if let only, !only.contains(key) { continue }
                guard let element = definition.elements[key] else {
                    issue("structure", "Unrecognized property '\(key)'", at: "\(path).\(key)")
                    continue
                }
                present.insert(key)
                if let choice = element.choice { choicesSeen[choice, default: []].append(key) }
                self.element(value, element, path: "\(path).\(key)", indices: fresh[key])
            }
            for (choice, names) in choicesSeen where names.count > 1 {
                issue(
                    "structure",
                    "Only one \(choice)[x] may be present (found \(names.sorted().joined(separator: ", ")))",
                    at: "\(path).\(names.sorted()[1])"
                )
            }
            guard only == nil else { return }
            for name in definition.required where !present.contains(name) && object["_" + name] == nil {
                issue("required", "\(path).\(name): minimum required = 1, but only found 0", at: "\(path).\(name)")
            }
            for (choice, required) in definition.choices where required && choicesSeen[choice] == nil {
                issue("required", "\(path).\(choice)[x]: minimum required = 1, but only found 0", at: "\(path)")
            }
        }

        /// `_name`: the id and extensions of a primitive element (one object, or a list beside a list).
        mutating func primitiveExtension(
            _ value: JSON,
            of name: String,
            in definition: TypeDefinition,
            object: JSONObject,
            path: String
        ) {
            let at = "\(path)._\(name)"
            guard let element = definition.elements[name], validator.primitives[element.type] != nil else {
                issue("structure", "Unrecognized property '_\(name)'", at: at)
                return
            }
            let extensionShape = Element(type: "Element", min: 0, isList: false, choice: nil)
            if element.isList {
                guard case .array(let items) = value else {
                    issue("structure", "This property must be an Array, not \(Self.kind(value))", at: at)
                    return
                }
                for (index, item) in items.enumerated() where item != .null {
                    self.element(item, extensionShape, path: "\(at)[\(index)]", indices: nil, inList: true)
                }
            } else {
                self.element(value, extensionShape, path: at, indices: nil)
            }
        }

        mutating func element(_ value: JSON, _ element: Element, path: String, indices: Set<Int>?, inList: Bool = false)
        {
            if element.isList, !inList {
                guard case .array(let items) = value else {
                    issue("structure", "This property must be an Array, not \(Self.kind(value))", at: path)
                    return
                }
                if items.isEmpty {
                    issue(
                        "structure",
                        "Array cannot be empty - the property should not be present if it has no values",
                        at: path
                    )
                }
                for (index, item) in items.enumerated() where indices?.contains(index) ?? true {
                    self.element(item, element, path: "\(path)[\(index)]", indices: nil, inList: true)
                }
                return
            }
            if let primitive = validator.primitives[element.type] {
                self.primitive(value, primitive, type: element.type, path: path)
            } else if element.type == "Resource" {
                guard case .object(let object) = value else {
                    issue("structure", "This property must be an Object, not \(Self.kind(value))", at: path)
                    return
                }
                resource(object, path: path)
            } else if let definition = validator.types[element.type] {
                guard case .object(let object) = value else {
                    issue("structure", "This property must be an Object, not \(Self.kind(value))", at: path)
                    return
                }
                self.object(object, of: definition, path: path, isResource: false)
                if element.type == "Reference", let reference = object["reference"]?.string, reference.hasPrefix("#") {
                    localReferences.append((String(reference.dropFirst()), "\(path).reference"))
                }
            }
        }

        /// A resource inside another (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`).
        mutating func resource(_ object: JSONObject, path: String) {
            guard let type = object["resourceType"]?.string else {
                issue("structure", "Unable to find resourceType property", at: path)
                return
            }
            guard let definition = validator.types[type], definition.isResource else {
                issue("not-supported", "This sandbox does not check the structure of '\(type)' resources", at: path)
                return
            }
            if path.hasSuffix("]"), path.contains(".contained[") {
                if object["contained"] != nil {
                    issue("structure", "A contained resource must not contain resources", at: "\(path).contained")
                }
                if object["id"] == nil {
                    issue("required", "A contained resource must have an id", at: "\(path).id")
                }
            }
            self.object(object, of: definition, path: path, isResource: true)
        }

        mutating func primitive(_ value: JSON, _ primitive: Primitive, type: String, path: String) {
            let text: String
            switch (value, primitive.json) {
            case (.string(let string), .string):
                guard !string.isEmpty else {
                    issue("value", "@value cannot be empty", at: path)
                    return
                }
                text = string
            case (.number(let number), .number): text = number.text
            case (.bool, .boolean): return
            case (.array, _): return issue("structure", "This property must be an simple value, not an array", at: path)
            case (.object, _):
                return issue("structure", "This property must be an simple value, not an object", at: path)
            case (.null, _): return issue("structure", "This property must be an simple value, not null", at: path)
            default:
                return issue(
                    "value",
                    "Error parsing JSON: the primitive value must be a \(primitive.json.rawValue)",
                    at: path
                )
            }
            if type == "uri" || type == "url" || type == "canonical", Self.hasWhitespace(text) {
                return issue("value", "URI values cannot have whitespace('\(text)')", at: path)
            }
            // Told by hand when it can (valid or not), else by the specification's regex.
            let valid = Self.lexicallyValid(text, as: type) ?? !(primitive.pattern.map { !$0.matches(text) } ?? false)
            if valid {
                if type == "positiveInt" || type == "unsignedInt" || type == "integer" { range(text, type, path) }
                return
            }
            let what =
                ["date", "dateTime", "instant", "time"].contains(type)
                ? "Not a valid date/time" : "The value is not a valid \(type)"
            issue("value", "\(what) ('\(text)')", at: path)
        }

        /// The common lexical forms checked by hand (true, false), nil for the others (times, oid, uuid, base64, and any date the
        /// fast path does not accept: the specification's regex): `NSRegularExpression` on every value made the
        /// structure check seven times the profile rules' cost (3.3 of 3.8 ms for a 13.5 kB Location, debug build;
        /// in release, dates by regex still made it 450 of 524 µs).
        static func lexicallyValid(_ text: String, as type: String) -> Bool? {
            let bytes = text.utf8
            func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
            func digits(_ part: Substring.UTF8View) -> Bool {
                !part.isEmpty && part.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
            }
            switch type {
            case "string", "markdown":
                // The specification's rule: no character below U+0020 but tab, carriage return and line feed.
                return !bytes.contains { $0 < 0x20 && !isSpace($0) }
            case "uri", "url", "canonical":
                return true  // whitespace was refused before; any other text is a URI reference here
            case "code":
                guard let first = bytes.first, let last = bytes.last, !isSpace(first), !isSpace(last) else {
                    return false
                }
                // The specification's `[^\s]+(\s[^\s]+)*`: single whitespace between tokens.
                var previousSpace = false
                for byte in bytes {
                    if isSpace(byte) && previousSpace { return false }
                    previousSpace = isSpace(byte)
                }
                return true
            case "id":
                return bytes.count <= 64
                    && bytes.allSatisfy {
                        ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                            || $0 == 0x2D
                            || $0 == 0x2E
                    }
            case "integer", "unsignedInt", "positiveInt":
                var rest = Substring(text).utf8[...]
                if type == "integer", rest.first == 0x2D || rest.first == 0x2B { rest = rest.dropFirst() }
                if type == "positiveInt", rest.first == 0x2B { rest = rest.dropFirst() }
                guard digits(rest), rest.count == 1 || rest.first != 0x30 else { return false }
                return type != "positiveInt" || rest.contains { $0 != 0x30 }
            case "date", "dateTime", "instant":
                // The usual, valid value is told by the search's own date reader; anything else (a leap second,
                // a mistake) goes to the specification's regex, which decides.
                guard let parts = FHIRTemporalText(text), FHIRDate.range(of: text) != nil else { return nil }
                let timed = parts.hour != nil
                let complete = parts.second != nil && parts.zone != nil
                switch type {
                case "date": return !timed && parts.zone == nil ? true : nil
                case "dateTime": return (timed ? complete : parts.zone == nil) ? true : nil
                default: return parts.day != nil && complete ? true : nil
                }
            default:
                return nil
            }
        }

        /// Whitespace by bytes when the text is ASCII: `Character.isWhitespace` on every URI was 44 % of the check.
        static func hasWhitespace(_ text: String) -> Bool {
            let bytes = text.utf8
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return text.contains(where: \.isWhitespace) }
            return bytes.contains { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        }

        /// 32-bit bounds of the integer types (their regexes allow any length).
        mutating func range(_ text: String, _ type: String, _ path: String) {
            guard let number = Int64(text.hasPrefix("+") ? String(text.dropFirst()) : text),
                number <= Int64(Int32.max), number >= Int64(Int32.min)
            else {
                return issue("value", "The value is not a valid \(type) ('\(text)')", at: path)
            }
        }

        static func kind(_ value: JSON) -> String {
            switch value {
            case .null: "null"
            case .array: "an array"
            case .object: "an Object"
            default: "a primitive property"
            }
        }
    }
}
