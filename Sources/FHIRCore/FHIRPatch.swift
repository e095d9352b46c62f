import Foundation

/// FHIR Patch (FHIRPath Patch, a `Parameters` resource, R4 §2.40): operations `add`, `replace`, `delete` applied to a
/// JSON resource with the `FHIRPath` subset. `insert` and `move` are refused by name.
public struct FHIRPatch: Sendable {
    public struct Operation: Sendable {
        public enum Kind: String, Sendable { case add, replace, delete }
        public var kind: Kind
        public var pathText: String
        public var path: FHIRPath
        /// `add`: the child to add to (absent: the ROR variant, whose path names the list itself).
        public var name: String?
        public var value: JSON?
    }

    public var operations: [Operation]

    /// Why a patch cannot be read or applied; `expression` is the FHIRPath (or the Parameters element) concerned.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public enum Kind: Sendable { case invalid, unsupported, noMatch, multipleMatches }
        public var kind: Kind
        public var message: String
        public var expression: String
        public var description: String { message }
    }

    /// Reads a `Parameters` patch body.
    public init(parameters: JSONObject) throws(Failure) {
        guard parameters["resourceType"]?.string == "Parameters" else {
            throw Failure(
                kind: .invalid,
                message:
                    "A FHIR Patch body is a Parameters resource (resourceType '\(parameters["resourceType"]?.string ?? "")')",
                expression: "Parameters"
            )
        }
        let entries = (parameters["parameter"]?.array ?? []).compactMap(\.object)
        guard !entries.isEmpty else {
            throw Failure(
                kind: .invalid,
                message: "The Parameters carry no operation",
                expression: "Parameters.parameter"
            )
        }
        operations = []
        for (index, entry) in entries.enumerated() {
            let at = "Parameters.parameter[\(index)]"
            guard entry["name"]?.string == "operation" else {
                throw Failure(
                    kind: .invalid,
                    message: "\(at): every parameter is an 'operation' (got '\(entry["name"]?.string ?? "")')",
                    expression: "\(at).name"
                )
            }
            let parts = (entry["part"]?.array ?? []).compactMap(\.object)
            func part(_ name: String) -> JSONObject? { parts.first { $0["name"]?.string == name } }
            func text(_ name: String) -> String? {
                part(name)?.first(withPrefix: "value")?.value.string
            }
            guard let typeText = text("type") else {
                throw Failure(kind: .invalid, message: "\(at): part 'type' missing", expression: "\(at).part")
            }
            guard let kind = Operation.Kind(rawValue: typeText) else {
                throw Failure(
                    kind: .unsupported,
                    message: "\(at): operation type '\(typeText)' is not supported (add, replace, delete)",
                    expression: "\(at).part"
                )
            }
            guard let pathText = text("path"), !pathText.isEmpty else {
                throw Failure(kind: .invalid, message: "\(at): part 'path' missing", expression: "\(at).part")
            }
            let path: FHIRPath
            do { path = try FHIRPath.parsed(pathText) } catch {
                throw Failure(kind: .unsupported, message: "\(at): \(error)", expression: pathText)
            }
            var value: JSON?
            if kind != .delete {
                guard let valuePart = part("value") else {
                    throw Failure(
                        kind: .invalid,
                        message: "\(at): part 'value' missing for \(kind.rawValue)",
                        expression: "\(at).part"
                    )
                }
                if valuePart["part"] != nil {
                    throw Failure(
                        kind: .unsupported,
                        message:
                            "\(at): a value given as parts is not supported; send it as value[x] (e.g. valueExtension)",
                        expression: "\(at).part"
                    )
                }
                guard let found = valuePart.first(withPrefix: "value")?.value else {
                    throw Failure(
                        kind: .invalid,
                        message: "\(at): part 'value' has no value[x]",
                        expression: "\(at).part"
                    )
                }
                value = found
            }
            operations.append(Operation(kind: kind, pathText: pathText, path: path, name: text("name"), value: value))
        }
    }

    /// The same from a `JSONSerialization` tree.
    public init(parameters: [String: Any]) throws(Failure) {
        try self.init(parameters: JSONObject(any: parameters) ?? JSONObject())
    }

    /// Applies every operation in order; the input is left untouched.
    public func apply(to resource: [String: Any]) throws(Failure) -> [String: Any] {
        var changes = ChangedElements()
        return try apply(to: resource, changes: &changes)
    }

    /// The same on a `JSONSerialization` tree.
    public func apply(to resource: [String: Any], changes: inout ChangedElements) throws(Failure) -> [String: Any] {
        try apply(to: JSONObject(any: resource) ?? JSONObject(), changes: &changes).dictionary
    }

    /// Applies every operation in order, noting in `changes` which elements of the resource's lists it changed.
    public func apply(to resource: JSONObject, changes: inout ChangedElements) throws(Failure) -> JSONObject {
        var object = resource
        for operation in operations {
            switch operation.kind {
            case .replace, .delete:
                let matches = operation.path.evaluate(on: object).filter(\.isInsideResource)
                guard !matches.isEmpty else {
                    throw Failure(
                        kind: .noMatch,
                        message: "\(operation.kind.rawValue): no element matches \(operation.pathText)",
                        expression: operation.pathText
                    )
                }
                guard matches.count == 1 else {
                    throw Failure(
                        kind: .multipleMatches,
                        message:
                            "\(operation.kind.rawValue): \(matches.count) elements match \(operation.pathText) (one expected)",
                        expression: operation.pathText
                    )
                }
                let location = matches[0].location
                let countBefore = Self.topLevelCount(object, location)
                object =
                    Self.setting(
                        .object(object),
                        at: location[...],
                        to: operation.kind == .replace ? operation.value : nil
                    ).object ?? object
                changes.record(location, removed: operation.kind == .delete, countBefore: countBefore)
            case .add:
                let (container, name) = try Self.container(of: operation)
                let targets = container.evaluate(on: object)
                guard targets.count == 1, case .object(var target) = targets[0].value else {
                    throw Failure(
                        kind: targets.isEmpty ? .noMatch : .multipleMatches,
                        message: "add: \(targets.count) elements match the container \(container) (one expected)",
                        expression: operation.pathText
                    )
                }
                let added: Int
                if case .array(var list)? = target[name] {
                    added = list.count
                    list.append(operation.value!)
                    target[name] = .array(list)
                } else if target[name] == nil {
                    target[name] = .array([operation.value!])
                    added = 0
                } else {
                    throw Failure(
                        kind: .invalid,
                        message: "add: \(name) already has a value (use replace)",
                        expression: operation.pathText
                    )
                }
                let location = targets[0].location + [.key(name), .index(added)]
                let countBefore = Self.topLevelCount(object, location)
                object =
                    Self.setting(.object(object), at: targets[0].location[...], to: .object(target)).object ?? object
                changes.record(location, removed: false, countBefore: countBefore)
            }
        }
        return object
    }

    /// The length of the top-level list `location` starts in (0 when it is not a list).
    static func topLevelCount(_ object: JSONObject, _ location: [JSONPathStep]) -> Int {
        guard case .key(let name)? = location.first else { return 0 }
        return object[name]?.array?.count ?? 0
    }

    /// The container and child name of an `add`: its `path` and `name`, or, without `name` (the ROR's variant),
    /// the list its path names: `Location.extension.where(…)` adds to `Location.extension`.
    static func container(of operation: Operation) throws(Failure) -> (FHIRPath, String) {
        if let name = operation.name { return (operation.path, name) }
        var path = operation.path
        while case .function(let base, _, _) = path { path = base }
        guard case .member(let base, let name) = path else {
            throw Failure(
                kind: .invalid,
                message: "add: part 'name' missing and the path names no list",
                expression: operation.pathText
            )
        }
        return (base, name)
    }

    /// `root` with the value at `location` replaced (`nil`: removed).
    static func setting(_ root: JSON, at location: ArraySlice<JSONPathStep>, to value: JSON?) -> JSON {
        guard let step = location.first else { return value ?? .null }
        let rest = location.dropFirst()
        switch step {
        case .key(let key):
            var object = root.object ?? JSONObject()
            if rest.isEmpty, value == nil {
                object[key] = nil
            } else {
                object[key] = setting(object[key] ?? .null, at: rest, to: value)
            }
            return .object(object)
        case .index(let index):
            guard case .array(var array) = root, array.indices.contains(index) else {
                return root.array.map(JSON.array) ?? .array([])
            }
            if rest.isEmpty, value == nil {
                array.remove(at: index)
            } else {
                array[index] = setting(array[index], at: rest, to: value)
            }
            return .array(array)
        }
    }
}

/// Which elements of a resource's top-level lists a patch changed (``FHIRPatch/apply(to:changes:)``), by their index
/// in the patched resource: a replaced or added element, or one changed inside. A removal shifts the indices after it.
public struct ChangedElements: Sendable, Equatable {
    /// For each top-level list changed element by element: where each element of the patched list comes from in the
    /// original list (nil: added, replaced or changed inside by the patch).
    public private(set) var origins: [String: [Int?]] = [:]
    /// Top-level elements changed as a whole (not element by element).
    public private(set) var wholes: Set<String> = []

    public init() {}

    /// Indices changed, by list name; nil for an element changed as a whole.
    public var elements: [String: Set<Int>?] {
        var elements: [String: Set<Int>?] = byIndex.mapValues { $0 }
        for name in wholes { elements[name] = .some(nil) }
        return elements
    }

    /// The lists changed element by element, with the indices changed (others changed as a whole are left out).
    public var byIndex: [String: Set<Int>] {
        origins.mapValues { origin in Set(origin.indices.filter { origin[$0] == nil }) }
    }

    /// `countBefore`: the list's length before this change (the original's when the list was not changed yet).
    mutating func record(_ location: [JSONPathStep], removed: Bool, countBefore: Int) {
        guard case .key(let name)? = location.first, !wholes.contains(name) else { return }
        guard location.count >= 2, case .index(let index) = location[1] else {
            wholes.insert(name)
            origins[name] = nil
            return
        }
        var origin = origins[name] ?? (0..<countBefore).map { $0 }
        if removed, location.count == 2 {
            if index < origin.count { origin.remove(at: index) }
        } else if index < origin.count {
            origin[index] = nil
        } else {
            origin.append(nil)
        }
        origins[name] = origin
    }
}
