import Foundation

/// A scenario pack (jeu de scénarios de recette): what a publisher's client must do against one service, as data in
/// `Seeds/recette/<id>.json`. Scenario ids follow the official numbering where there is one (the ROR
/// documentation's scenario pages, RG_ rules, CNDA test codes) and `SBX-…` otherwise.
public struct RecettePack: Codable, Sendable, Equatable {
    public var id: String
    /// Bumped whenever a rule changes: a report names the version it was judged by.
    public var version: String
    public var title: String
    public var description: String?
    public var scenarios: [Scenario]

    /// One scenario: steps checked against the calls the run's client made, in any order unless `ordered`.
    public struct Scenario: Codable, Sendable, Equatable {
        public var id: String
        public var title: String
        /// The official document and section the scenario comes from.
        public var reference: String?
        /// Each step's first match must come after the previous step's (steps with `when` or `after` excepted).
        public var ordered: Bool?
        public var steps: [Step]
    }

    /// A step: which calls it is about (`match`) and what must be true of them (`rule`).
    public struct Step: Codable, Sendable, Equatable {
        public var id: String
        public var title: String
        public var match: CallPattern
        public var rule: Rule?
        /// `every`: what each matching call must also satisfy.
        public var check: CallPattern?
        /// `atMost`: the largest number of matching calls, in the run or (with `perSeconds`) in any window that long.
        public var atMost: Int?
        public var perSeconds: Double?
        /// Only calls after the first call of this step (same scenario) count.
        public var after: String?
        /// Only calls before the first call of this step (same scenario) count — all of them if it was never seen.
        public var before: String?
        /// With `after`: the first matching call must come within this many seconds of it …
        public var withinSeconds: Double?
        /// … and not sooner than this (a retry that waited for `Retry-After`).
        public var notBeforeSeconds: Double?
        /// With `after`: only calls repeating that step's first call (same method, path, query and body) count — a
        /// blind retry, or the retry a 503 asks for.
        public var repeatOfAnchor: Bool?
        /// The step applies only if this step (same scenario) was seen; otherwise it is skipped.
        public var when: String?
        /// `warning`: a failure is reported but does not fail the run.
        public var severity: Severity?
        /// Judged by a person from the evidence (the sandbox cannot see it, e.g. what the user was shown).
        public var manual: Bool?
        /// An answer the official test environments cannot produce, given instead of the service's to this run's
        /// client for calls matching `match` (its request part), `times` times.
        public var inject: Injection?
        /// Said in the report when the step fails: what the client should do.
        public var advice: String?

        public var effectiveRule: Rule { rule ?? .required }
    }

    public enum Rule: String, Codable, Sendable {
        /// At least one matching call.
        case required
        /// No matching call.
        case forbidden
        /// Every matching call satisfies `check` (passes when there is none).
        case every
        /// Informational: seen or not, never a failure (`when` of other steps builds on it).
        case observed
    }

    public enum Severity: String, Codable, Sendable {
        case error
        case warning
    }

    public struct Injection: Codable, Sendable, Equatable {
        public var times: Int?
        public var status: Int
        public var headers: [String: String]?
        /// The body as text (a JSON body may be given as an object: it is written back compactly).
        public var body: String?
        public var contentType: String?

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            times = try c.decodeIfPresent(Int.self, forKey: .times)
            status = try c.decode(Int.self, forKey: .status)
            headers = try c.decodeIfPresent([String: String].self, forKey: .headers)
            contentType = try c.decodeIfPresent(String.self, forKey: .contentType)
            if let text = try? c.decodeIfPresent(String.self, forKey: .body) {
                body = text
            } else if let object = try c.decodeIfPresent(AnyJSON.self, forKey: .body) {
                body = String(decoding: try JSONEncoder().encode(object), as: UTF8.self)
            }
        }
    }

    /// Reads a pack and checks what the decoder cannot: unique ids, `after`/`when` naming an earlier step of the
    /// same scenario, the options each rule takes, patterns that compile.
    public static func load(_ data: Data, name: String) throws(RecetteError) -> RecettePack {
        let pack: RecettePack
        do {
            pack = try JSONDecoder().decode(RecettePack.self, from: data)
        } catch {
            throw RecetteError("\(name): not a scenario pack: \(error)")
        }
        if let problem = pack.problem() { throw RecetteError("\(name): \(problem)") }
        return pack
    }

    func problem() -> String? {
        guard !id.isEmpty, !version.isEmpty else { return "id and version are required" }
        var scenarioIds = Set<String>()
        for scenario in scenarios {
            guard scenarioIds.insert(scenario.id).inserted else { return "scenario \(scenario.id) is given twice" }
            var earlier = Set<String>()
            for step in scenario.steps {
                let at = "scenario \(scenario.id), step \(step.id)"
                guard !earlier.contains(step.id) else { return "\(at): the id is given twice" }
                for (option, named) in [("after", step.after), ("before", step.before), ("when", step.when)] {
                    if let named, !earlier.contains(named) {
                        return "\(at): \(option) '\(named)' is not an earlier step of the scenario"
                    }
                }
                if step.effectiveRule == .every, step.check == nil { return "\(at): rule every needs check" }
                if step.withinSeconds != nil || step.notBeforeSeconds != nil, step.after == nil {
                    return "\(at): withinSeconds and notBeforeSeconds need after"
                }
                if step.perSeconds != nil, step.atMost == nil { return "\(at): perSeconds needs atMost" }
                if step.repeatOfAnchor == true, step.after == nil { return "\(at): repeatOfAnchor needs after" }
                if let problem = step.match.problem() ?? step.check?.problem() { return "\(at): \(problem)" }
                earlier.insert(step.id)
            }
        }
        return nil
    }
}

public struct RecetteError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Any JSON value, to accept an injected body written as an object in a pack.
struct AnyJSON: Codable, Equatable {
    var value: JSONValue

    indirect enum JSONValue: Equatable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([AnyJSON])
        case object([String: AnyJSON])
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            value = .null
        } else if let bool = try? c.decode(Bool.self) {
            value = .bool(bool)
        } else if let number = try? c.decode(Double.self) {
            value = .number(number)
        } else if let string = try? c.decode(String.self) {
            value = .string(string)
        } else if let array = try? c.decode([AnyJSON].self) {
            value = .array(array)
        } else {
            value = .object(try c.decode([String: AnyJSON].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .null: try c.encodeNil()
        case .bool(let bool): try c.encode(bool)
        case .number(let number):
            if number == number.rounded(), abs(number) < 1e15 {
                try c.encode(Int(number))
            } else {
                try c.encode(number)
            }
        case .string(let string): try c.encode(string)
        case .array(let array): try c.encode(array)
        case .object(let object): try c.encode(object)
        }
    }
}

/// The packs of a seeds folder (`recette/*.json`), by id.
public struct RecettePacks: Sendable {
    public var packs: [RecettePack]

    public init(packs: [RecettePack]) { self.packs = packs }

    public static func load(from seeds: URL?) throws(RecetteError) -> RecettePacks {
        guard let folder = seeds?.appendingPathComponent("recette") else { return RecettePacks(packs: []) }
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
        var packs: [RecettePack] = []
        for file in files.filter({ $0.pathExtension == "json" }).sorted(by: { $0.path < $1.path }) {
            let data: Data
            do { data = try Data(contentsOf: file) } catch { throw RecetteError("\(file.path): \(error)") }
            let pack = try RecettePack.load(data, name: "Seeds/recette/\(file.lastPathComponent)")
            if packs.contains(where: { $0.id == pack.id }) {
                throw RecetteError("Seeds/recette/\(file.lastPathComponent): pack id \(pack.id) is given twice")
            }
            packs.append(pack)
        }
        return RecettePacks(packs: packs)
    }

    public func pack(_ id: String) -> RecettePack? { packs.first { $0.id == id } }
}
