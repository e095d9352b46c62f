import Foundation

/// `_filter` (FHIR R4 §3.1.1.6, the subset the ROR documentation uses): `param op value` comparisons joined by
/// `and` / `or`, `not(…)`, parentheses; parameters may be chained (`organization._lastUpdated:above`).
/// Operators: `eq ne gt lt ge le sa eb` (dates, numbers, quantities, tokens, strings), `sw` (starts with), `co`
/// (contains). Values may be double-quoted.
enum FilterExpression {
    static func parse(_ text: String, type: String, registry: SearchParameterRegistry) throws -> SearchCondition {
        var parser = Parser(text: text, type: type, registry: registry)
        let condition = try parser.orExpression()
        parser.skipSpaces()
        guard parser.atEnd else { throw parser.error("unexpected '\(parser.rest)'") }
        return condition
    }

    struct Parser {
        let characters: [Character]
        let type: String
        let registry: SearchParameterRegistry
        var index = 0

        init(text: String, type: String, registry: SearchParameterRegistry) {
            self.characters = Array(text)
            self.type = type
            self.registry = registry
        }

        var atEnd: Bool { index >= characters.count }
        var rest: String { String(characters[index...]) }

        func error(_ message: String) -> SearchError {
            SearchError("_filter: \(message)", parameter: "_filter")
        }

        mutating func skipSpaces() {
            while !atEnd, characters[index].isWhitespace { index += 1 }
        }

        mutating func word() -> String {
            skipSpaces()
            var word = ""
            while !atEnd, !characters[index].isWhitespace, characters[index] != "(", characters[index] != ")" {
                word.append(characters[index])
                index += 1
            }
            return word
        }

        mutating func peekKeyword(_ keyword: String) -> Bool {
            skipSpaces()
            let saved = index
            let found = word().lowercased() == keyword
            index = saved
            return found
        }

        mutating func orExpression() throws -> SearchCondition {
            try joined("or", operand: { try $0.andExpression() }, combine: SearchCondition.any)
        }

        mutating func andExpression() throws -> SearchCondition {
            try joined("and", operand: { try $0.primary() }, combine: SearchCondition.all)
        }

        /// `operand (keyword operand)*`, combined when there is more than one.
        mutating func joined(
            _ keyword: String,
            operand: (inout Parser) throws -> SearchCondition,
            combine: ([SearchCondition]) -> SearchCondition
        ) throws -> SearchCondition {
            var terms = [try operand(&self)]
            while peekKeyword(keyword) {
                _ = word()
                terms.append(try operand(&self))
            }
            return terms.count == 1 ? terms[0] : combine(terms)
        }

        mutating func primary() throws -> SearchCondition {
            skipSpaces()
            guard !atEnd else { throw error("expression ends too early") }
            if characters[index] == "(" {
                index += 1
                let inner = try orExpression()
                skipSpaces()
                guard !atEnd, characters[index] == ")" else { throw error("missing ')'") }
                index += 1
                return inner
            }
            if peekKeyword("not") {
                _ = word()
                return .not(try primary())
            }
            let path = word()
            let op = word().lowercased()
            let value = try self.value()
            guard !path.isEmpty, !op.isEmpty else { throw error("expected 'parameter operator value'") }
            return try comparison(path: path, op: op, value: value)
        }

        mutating func value() throws -> String {
            skipSpaces()
            guard !atEnd else { throw error("missing value") }
            if characters[index] == "\"" {
                index += 1
                var text = ""
                while !atEnd, characters[index] != "\"" {
                    if characters[index] == "\\", index + 1 < characters.count { index += 1 }
                    text.append(characters[index])
                    index += 1
                }
                guard !atEnd else { throw error("unterminated quoted value") }
                index += 1
                return text
            }
            let text = word()
            guard !text.isEmpty else { throw error("missing value") }
            return text
        }

        /// One comparison as a search parameter condition (chains resolved by the ordinary parser).
        func comparison(path: String, op: String, value: String) throws -> SearchCondition {
            let prefixes: Set<String> = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]
            // The parameter's type decides how the operator is written as a search value.
            let (leaf, modifier) = SearchRequest.splitModifier(String(path.split(separator: ".").last ?? ""))
            let definition = try definitionOf(path: path)
            var name = path
            var searchValue = value.replacingOccurrences(of: ",", with: "\\,")
            switch (modifier == "missing" ? nil : definition?.type, op) {
            case (.date?, _), (.number?, _), (.quantity?, _):
                guard prefixes.contains(op) else { throw error("operator '\(op)' does not apply to \(leaf)") }
                searchValue = op + searchValue
            case (.string?, "eq"): name += ":exact"
            case (.string?, "sw"): break
            case (.string?, "co"): name += ":contains"
            case (.token?, "eq"), (.reference?, "eq"), (.uri?, "eq"), (nil, "eq"): break
            case (.token?, "ne"):
                name += ":not"
            default:
                throw error("operator '\(op)' is not supported on \(leaf)")
            }
            do {
                return try SearchRequest.condition(type: type, name: name, value: searchValue, registry: registry)
            } catch let error as SearchError {
                throw self.error(error.message)
            }
        }

        /// The definition at the end of a (possibly chained) path, following reference targets.
        func definitionOf(path: String) throws -> SearchParameterDefinition? {
            var current = type
            let parts = path.split(separator: ".").map(String.init)
            for (position, part) in parts.enumerated() {
                let (code, typeModifier) = SearchRequest.splitModifier(part)
                if code == "_id" { return nil }
                guard let definition = registry.parameter(code, of: current) else {
                    throw error("unknown parameter '\(code)' for \(current)")
                }
                if position == parts.count - 1 { return definition }
                guard let next = typeModifier ?? definition.targets.first else {
                    throw error("'\(code)' is not a reference")
                }
                current = next
            }
            return nil
        }
    }
}
