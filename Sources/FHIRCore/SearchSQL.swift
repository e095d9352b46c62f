import Foundation
import GRDB

/// Turns a ``SearchRequest`` into SQL over `fhir_resource` / `fhir_index` (see `Store` migration `v2-fhir`).
/// Conditions are `EXISTS` sub-queries on the index, so repetitions AND, commas OR, chains and `_has` nest.
struct SearchSQL {
    private var aliasCounter = 0
    var arguments: [any DatabaseValueConvertible & Sendable] = []

    mutating func alias() -> String {
        aliasCounter += 1
        return "i\(aliasCounter)"
    }

    /// `SELECT r.id FROM fhir_resource r WHERE … ORDER BY …`.
    mutating func idQuery(_ request: SearchRequest) throws -> String {
        var clauses = ["r.type = ?", "r.deleted = 0"]
        arguments.append(request.type)
        // The first condition (the likely most selective: ids, then the resource's own parameters) drives as an
        // `IN (…)` list; the others are checked per candidate through the (type, id, param) index, so a chain over
        // a large set is not materialised when a selective condition already narrowed the candidates.
        let ordered = request.conditions.enumerated().sorted {
            Self.rank($0.element) < Self.rank($1.element)
                || (Self.rank($0.element) == Self.rank($1.element) && $0.offset < $1.offset)
        }.map(\.element)
        for (index, condition) in ordered.enumerated() {
            clauses.append(
                index == 0
                    ? try sql(condition, type: request.type, id: "r.id")
                    : try correlated(condition, type: request.type, id: "r.id")
            )
        }
        var order: [String] = []
        for (parameter, descending) in request.sort {
            let direction = descending ? "DESC" : "ASC"
            switch parameter {
            case "_id": order.append("r.id \(direction)")
            case "_lastUpdated": order.append("r.last_updated \(direction)")
            default:
                let column = "COALESCE(s.text, s.code, s.number, s.low)"
                let aggregate = descending ? "MAX" : "MIN"
                order.append(
                    "(SELECT \(aggregate)(\(column)) FROM fhir_index s WHERE s.type = r.type AND s.id = r.id AND s.param = '\(parameter.replacingOccurrences(of: "'", with: "''"))') \(direction)"
                )
            }
        }
        order.append("r.id ASC")
        return
            "SELECT r.id FROM fhir_resource r WHERE \(clauses.joined(separator: " AND ")) ORDER BY \(order.joined(separator: ", "))"
    }

    /// Which condition should drive the query: ids, then own parameters, then chains and `_has`.
    static func rank(_ condition: SearchCondition) -> Int {
        switch condition {
        case .ids: 0
        case .parameter(_, let modifier, _, _): modifier == "not" ? 3 : 1
        case .missing(_, let missing): missing ? 3 : 2
        case .has, .chain, .any, .all, .not: 2
        }
    }

    /// The condition checked for one candidate resource whose id is the SQL expression `id` (correlated, through
    /// the index that starts with the resource id).
    mutating func correlated(_ condition: SearchCondition, type: String, id: String) throws -> String {
        switch condition {
        case .any(let terms):
            return "(" + (try terms.map { try correlated($0, type: type, id: id) }).joined(separator: " OR ") + ")"
        case .all(let terms):
            return "(" + (try terms.map { try correlated($0, type: type, id: id) }).joined(separator: " AND ") + ")"
        case .not(let term): return "NOT (" + (try correlated(term, type: type, id: id)) + ")"
        case .ids, .chain(_, _, _, .some):
            return try sql(condition, type: type, id: id)
        case .missing(let definition, let missing):
            let a = alias()
            arguments += [type, definition.code]
            return
                "\(missing ? "NOT " : "")EXISTS (SELECT 1 FROM fhir_index \(a) INDEXED BY fhir_index_resource WHERE \(a).type = ? AND \(a).id = \(id) AND \(a).param = ?)"
        case .parameter(let definition, let modifier, let values, let raw):
            let (a, alternatives) = try self.alternatives(
                of: definition,
                type: type,
                modifier: modifier,
                values: values,
                raw: raw
            )
            return
                "\(modifier == "not" ? "NOT " : "")EXISTS (SELECT 1 FROM fhir_index \(a) INDEXED BY fhir_index_resource WHERE \(a).type = ? AND \(a).id = \(id) AND \(a).param = ? AND \(alternatives))"
        case .chain(let reference, let targetType, let inner, nil):
            let a = alias()
            arguments += [type, reference.code, targetType]
            let innerSQL = try correlated(inner, type: targetType, id: "\(a).ref_id")
            return
                "EXISTS (SELECT 1 FROM fhir_index \(a) INDEXED BY fhir_index_resource WHERE \(a).type = ? AND \(a).id = \(id) AND \(a).param = ? AND \(a).ref_type = ? AND \(innerSQL))"
        case .has(let sourceType, let reference, let inner):
            let a = alias()
            arguments += [type, sourceType, reference.code]
            let innerSQL = try correlated(inner, type: sourceType, id: "\(a).id")
            return
                "EXISTS (SELECT 1 FROM fhir_index \(a) INDEXED BY fhir_index_ref WHERE \(a).ref_id IS NOT NULL AND \(a).ref_type = ? AND \(a).ref_id = \(id) AND \(a).type = ? AND \(a).param = ? AND \(innerSQL))"
        }
    }

    /// SQL for one condition on the resource whose id is the SQL expression `id`, of type `type`.
    ///
    /// Every condition is `id [NOT] IN (SELECT … FROM fhir_index …)`: SQLite runs each sub-query once through the
    /// index that fits its own equalities and probes the result, instead of a correlated `EXISTS` per resource
    /// (which it may plan through the wrong index: seconds on a national dataset).
    mutating func sql(_ condition: SearchCondition, type: String, id: String) throws -> String {
        switch condition {
        case .any(let terms):
            return "(" + (try terms.map { try sql($0, type: type, id: id) }).joined(separator: " OR ") + ")"
        case .all(let terms):
            return "(" + (try terms.map { try sql($0, type: type, id: id) }).joined(separator: " AND ") + ")"
        case .not(let term): return "NOT (" + (try sql(term, type: type, id: id)) + ")"
        default: return "\(id) \(try membership(condition, type: type))"
        }
    }

    /// `IN (…)` / `NOT IN (…)` selecting the ids of `type` resources satisfying `condition`.
    mutating func membership(_ condition: SearchCondition, type: String) throws -> String {
        switch condition {
        case .any, .all, .not:
            throw SearchError("internal: composite condition in membership", parameter: "_filter")
        case .ids(let ids):
            arguments += ids
            return "IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))"
        case .missing(let definition, let missing):
            let a = alias()
            arguments += [type, definition.code]
            return
                "\(missing ? "NOT " : "")IN (SELECT \(a).id FROM fhir_index \(a) WHERE \(a).type = ? AND \(a).param = ?)"
        case .parameter(let definition, let modifier, let values, let raw):
            let (a, alternatives) = try self.alternatives(
                of: definition,
                type: type,
                modifier: modifier,
                values: values,
                raw: raw
            )
            return
                "\(modifier == "not" ? "NOT " : "")IN (SELECT \(a).id FROM fhir_index \(a) WHERE \(a).type = ? AND \(a).param = ? AND \(alternatives))"
        case .chain(let reference, let targetType, let inner, let above):
            let a = alias()
            arguments += [type, reference.code, targetType]
            guard let above else {
                let innerSQL = try sql(inner, type: targetType, id: "\(a).ref_id")
                return
                    "IN (SELECT \(a).id FROM fhir_index \(a) WHERE \(a).type = ? AND \(a).param = ? AND \(a).ref_type = ? AND \(a).ref_id IS NOT NULL AND \(innerSQL))"
            }
            // Targets matching the condition, then (recursively) everything below them in the hierarchy: a
            // reference to a child matches when an ancestor does.
            let m = alias()
            let t = alias()
            let h = alias()
            arguments += [targetType]
            let matching = try sql(inner, type: targetType, id: "\(t).id")
            arguments += [targetType, above.code, targetType]
            return """
                IN (SELECT \(a).id FROM fhir_index \(a) WHERE \(a).type = ? AND \(a).param = ? AND \(a).ref_type = ? AND \(a).ref_id IN (
                WITH RECURSIVE \(m)(id) AS (SELECT \(t).id FROM fhir_resource \(t) WHERE \(t).type = ? AND \(matching)
                UNION SELECT \(h).id FROM fhir_index \(h) JOIN \(m) ON \(h).ref_id = \(m).id WHERE \(h).type = ? AND \(h).param = ? AND \(h).ref_type = ?)
                SELECT id FROM \(m)))
                """
        case .has(let sourceType, let reference, let inner):
            let a = alias()
            arguments += [sourceType, reference.code, type]
            let innerSQL = try sql(inner, type: sourceType, id: "\(a).id")
            return
                "IN (SELECT \(a).ref_id FROM fhir_index \(a) WHERE \(a).type = ? AND \(a).param = ? AND \(a).ref_type = ? AND \(a).ref_id IS NOT NULL AND \(innerSQL))"
        }
    }

    /// A fresh index alias, its `type`/`param` arguments, and the OR of the values on it (parenthesised).
    mutating func alternatives(
        of definition: SearchParameterDefinition,
        type: String,
        modifier: String?,
        values: [String],
        raw: String
    ) throws -> (alias: String, sql: String) {
        let a = alias()
        arguments += [type, definition.code]
        var alternatives: [String] = []
        for value in values {
            alternatives.append(
                try valueSQL(value, definition: definition, modifier: modifier, alias: a, parameter: raw)
            )
        }
        // The partial indexes (migration v8) hold the rows that fill their column: the condition says so at its
        // top level, where SQLite looks for it, so the planner may use them.
        let filled: String? =
            switch definition.type {
            case .number, .quantity: "number"
            case .date: "low"
            case .reference: "ref_id"
            case .string: modifier == "exact" ? nil : "text"
            case .token: modifier == "text" ? "text" : nil
            case .uri, .special: nil
            }
        return (a, (filled.map { "\(a).\($0) IS NOT NULL AND " } ?? "") + "(\(alternatives.joined(separator: " OR ")))")
    }

    /// One alternative value, on index alias `a`.
    mutating func valueSQL(
        _ value: String,
        definition: SearchParameterDefinition,
        modifier: String?,
        alias a: String,
        parameter: String
    ) throws -> String {
        switch definition.type {
        case .token:
            if modifier == "text" {
                arguments.append(Self.likePrefix(FHIRText.normalise(value)))
                return "\(a).text LIKE ? ESCAPE '\\'"
            }
            guard let bar = value.firstIndex(of: "|") else {
                arguments.append(value)
                return "\(a).code = ?"
            }
            let system = String(value[..<bar])
            let code = String(value[value.index(after: bar)...])
            switch (system.isEmpty, code.isEmpty) {
            case (true, _):
                arguments.append(code)
                return "(\(a).system IS NULL AND \(a).code = ?)"
            case (false, true):
                arguments.append(system)
                return "\(a).system = ?"
            case (false, false):
                arguments += [system, code]
                return "(\(a).system = ? AND \(a).code = ?)"
            }
        case .string:
            switch modifier {
            case "exact":
                arguments.append(value)
                return "\(a).code = ?"
            case "contains":
                arguments.append("%" + Self.likeEscape(FHIRText.normalise(value)) + "%")
                return "\(a).text LIKE ? ESCAPE '\\'"
            default:
                arguments.append(Self.likePrefix(FHIRText.normalise(value)))
                return "\(a).text LIKE ? ESCAPE '\\'"
            }
        case .uri:
            if modifier == "below" {
                arguments.append(Self.likePrefix(value))
                return "\(a).code LIKE ? ESCAPE '\\'"
            }
            arguments.append(value)
            return "\(a).code = ?"
        case .number:
            let (prefix, text) = try SearchValue.prefixed(value, parameter: parameter)
            return numberSQL(prefix, text, column: "\(a).number")
        case .quantity:
            let (prefix, text) = try SearchValue.prefixed(value, parameter: parameter)
            let parts = text.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            var sql = numberSQL(prefix, parts[0], column: "\(a).number")
            if parts.count > 1, !parts[1].isEmpty {
                arguments.append(parts[1])
                sql += " AND \(a).system = ?"
            }
            if parts.count > 2, !parts[2].isEmpty {
                arguments.append(parts[2])
                sql += " AND \(a).code = ?"
            }
            return "(\(sql))"
        case .date:
            let (sql, bounds) = try FHIRDate.searchCondition(
                value,
                parameter: parameter,
                low: "\(a).low",
                high: "\(a).high"
            )
            arguments += bounds
            return sql
        case .reference:
            var type = modifier
            var id = value
            if let (t, i) = FHIRReference.split(value) {
                type = t
                id = i
            }
            arguments.append(id)
            var sql = "\(a).ref_id = ?"
            if let type {
                arguments.append(type)
                sql += " AND \(a).ref_type = ?"
            }
            return "(\(sql))"
        case .special:
            throw SearchError("Parameter '\(definition.code)' cannot be searched in this sandbox", parameter: parameter)
        }
    }

    /// Numbers compare at the precision written (R4 §3.1.1.4.1): `100` means [99.5, 100.5).
    mutating func numberSQL(_ prefix: SearchPrefix, _ text: String, column: String) -> String {
        let value = Double(text) ?? 0
        let decimals = text.split(separator: ".").dropFirst().first?.count ?? 0
        let half = 0.5 * pow(10, -Double(decimals))
        let (template, bounds): (String, [Double]) =
            switch prefix {
            case .eq, .ap: ("(# >= ? AND # < ?)", [value - half, value + half])
            case .ne: ("NOT (# >= ? AND # < ?)", [value - half, value + half])
            case .gt, .sa: ("# > ?", [value])
            case .lt, .eb: ("# < ?", [value])
            case .ge: ("# >= ?", [value])
            case .le: ("# <= ?", [value])
            }
        arguments += bounds
        return template.replacingOccurrences(of: "#", with: column)
    }

    static func likeEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }

    static func likePrefix(_ text: String) -> String { likeEscape(text) + "%" }
}

extension FHIRDate {
    /// The SQL condition of a date search value (`ge2024-01-01`, `2024-03`…) on an element whose range of instants
    /// is in the columns `low` and `high`, and its arguments (R4 §3.1.1.4.2: the value covers [low, high]).
    public static func searchCondition(
        _ value: String,
        parameter: String,
        low lowColumn: String,
        high highColumn: String
    ) throws -> (sql: String, arguments: [Double]) {
        let (prefix, text) = try SearchValue.prefixed(value, parameter: parameter)
        guard let (low, high) = FHIRDate.range(of: text) else {
            throw SearchError("Invalid date '\(text)'", parameter: parameter)
        }
        let (template, bounds): (String, [Double]) =
            switch prefix {
            case .eq, .ap: ("(<L> >= ? AND <H> <= ?)", [low, high])
            case .ne: ("NOT (<L> >= ? AND <H> <= ?)", [low, high])
            case .gt: ("<H> > ?", [high])
            case .lt: ("<L> < ?", [low])
            case .ge: ("<H> >= ?", [low])
            case .le: ("<L> <= ?", [high])
            case .sa: ("<L> > ?", [high])
            case .eb: ("<H> < ?", [low])
            }
        return (
            template.replacingOccurrences(of: "<L>", with: lowColumn).replacingOccurrences(of: "<H>", with: highColumn),
            bounds
        )
    }
}
