import Access
import FHIRCore
import Foundation
import HTTPCommon
import SOAPCore

/// One exchange of the run's client as the journal kept it (appel enregistré).
public struct RecordedCall: Sendable, Codable, Equatable {
    public var id: Int64
    public var time: Date
    public var service: String?
    public var method: String
    public var path: String
    public var query: String?
    public var status: Int
    /// The journal's reason: why a call was refused, or which run and step injected its answer.
    public var reason: String?
    /// The client certificate's subject DN.
    public var subjectDN: String?
    public var requestHeaders: [String: String]
    public var requestBody: Data?
    public var responseHeaders: [String: String]
    public var responseBody: Data?

    public init(_ entry: JournalEntry) {
        id = entry.id ?? 0
        time = entry.time
        service = entry.service
        method = entry.method
        path = entry.path
        query = entry.query
        status = entry.status
        reason = entry.reason
        subjectDN = entry.subjectDN
        requestHeaders = Self.headers(entry.requestHeaders)
        requestBody = entry.requestBody
        responseHeaders = Self.headers(entry.responseHeaders)
        responseBody = entry.responseBody
    }

    static func headers(_ json: String?) -> [String: String] {
        guard let json, let data = json.data(using: .utf8),
            let object = try? JSONDecoder().decode([String: String].self, from: data)
        else { return [:] }
        return object
    }

    /// `GET /path?query → 200`, for messages.
    public var summary: String {
        "#\(id) \(method) \(path)\(query.map { "?\($0)" } ?? "") → \(status)"
    }

    /// The query's parameters, decoded, in order.
    var queryItems: [(String, String)] { query.map { FormEncoding.items($0) } ?? [] }

    /// The marker the journal's reason carries for an answer injected by `run` for `step`.
    public static func injectionReason(run: Int64, step: String) -> String { "recette-injection run \(run) \(step)" }
}

/// Which recorded calls a step is about, and (as `check`) what a call must satisfy. Every field given must hold.
public struct CallPattern: Codable, Sendable, Equatable {
    /// `ror-fhir`, `ror-csd`, `insi`, `dmp`, `mes`.
    public var service: String?
    /// One method or several separated by `|`.
    public var method: String?
    /// A path; `*` stands for any characters but `/`, `**` for any characters, `?` for one character.
    public var path: String?
    /// A path the call must not have (same patterns).
    public var exceptPath: String?
    /// The client certificate's subject DN (RFC 4514), a pattern (`*CN=INSI-AUTO,*`).
    public var subject: String?
    /// Query parameters by name: a value pattern (`*` any), or null for "absent".
    public var query: [String: String?]?
    /// Request headers by lower-case name: a value pattern, or null for "absent".
    public var headers: [String: String?]?
    /// Predicates on the request body.
    public var body: [BodyPredicate]?
    /// The answer's status is one of these.
    public var status: [Int]?
    /// Predicates on the answer's body.
    public var response: [BodyPredicate]?
    /// The answer was (true) or was not (false) injected by the run.
    public var injected: Bool?

    public init(
        service: String? = nil,
        method: String? = nil,
        path: String? = nil,
        query: [String: String?]? = nil,
        headers: [String: String?]? = nil,
        body: [BodyPredicate]? = nil,
        status: [Int]? = nil,
        response: [BodyPredicate]? = nil,
        injected: Bool? = nil
    ) {
        self.service = service
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.status = status
        self.response = response
        self.injected = injected
    }

    func problem() -> String? {
        for predicate in (body ?? []) + (response ?? []) {
            if let problem = predicate.problem() { return problem }
        }
        return nil
    }

    /// Nil when `call` matches; else the first reason it does not, in words (`check` failures quote it).
    public func mismatch(_ call: RecordedCall, run: Int64? = nil) -> String? {
        if let service, call.service != service { return "it is not a \(service) call" }
        if let method, !method.split(separator: "|").contains(where: { $0 == call.method }) {
            return "its method is \(call.method), not \(method)"
        }
        if let path, !Glob.matches(path, call.path) { return "its path \(call.path) is not \(path)" }
        if let exceptPath, Glob.matches(exceptPath, call.path) { return "its path is \(exceptPath)" }
        if let subject, !Glob.matches(subject, call.subjectDN ?? "", slashIsSpecial: false) {
            return "its certificate's subject \(call.subjectDN ?? "(none)") is not \(subject)"
        }
        for (name, expected) in (query ?? [:]).sorted(by: { $0.key < $1.key }) {
            let values = call.queryItems.filter { $0.0 == name }.map(\.1)
            if let problem = Self.compare(values, expected, what: "query parameter \(name)") { return problem }
        }
        for (name, expected) in (headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            let values = call.requestHeaders[name.lowercased()].map { [$0] } ?? []
            if let problem = Self.compare(values, expected, what: "header \(name)") { return problem }
        }
        for predicate in body ?? [] {
            if let problem = predicate.mismatch(call.requestBody, contentType: call.requestHeaders["content-type"]) {
                return "its request body: \(problem)"
            }
        }
        if let status, !status.contains(call.status) {
            return "its answer is \(call.status), not \(status.map(String.init).joined(separator: " or "))"
        }
        for predicate in response ?? [] {
            if let problem = predicate.mismatch(
                call.responseBody,
                contentType: call.responseHeaders["content-type"]
            ) {
                return "its answer's body: \(problem)"
            }
        }
        if let injected {
            let wasInjected = call.reason?.hasPrefix("recette-injection run \(run.map(String.init) ?? "")") ?? false
            if injected != wasInjected { return injected ? "its answer was not injected" : "its answer was injected" }
        }
        return nil
    }

    /// Whether the request part (method, path, query, headers, body) matches: what an injection is decided on.
    func matchesRequest(
        service: String?,
        method: String,
        path: String,
        query: String?,
        headers: [String: String],
        body: Data
    ) -> Bool {
        var request = self
        request.status = nil
        request.response = nil
        request.injected = nil
        request.subject = nil
        var call = RecordedCall(
            id: 0,
            time: Date(),
            service: service,
            method: method,
            path: path,
            query: query,
            status: 0,
            requestHeaders: headers
        )
        call.requestBody = body
        return request.mismatch(call) == nil
    }

    /// A value pattern: `>N`, `>=N`, `<N`, `<=N` compare numbers; anything else is a glob.
    static func value(_ value: String, matches pattern: String) -> Bool {
        for (prefix, holds) in [
            (">=", { (a: Double, b: Double) in a >= b }), ("<=", { $0 <= $1 }), (">", { $0 > $1 }), ("<", { $0 < $1 }),
        ] where pattern.hasPrefix(prefix) {
            guard let bound = Double(pattern.dropFirst(prefix.count)), let number = Double(value) else { return false }
            return holds(number, bound)
        }
        return Glob.matches(pattern, value, slashIsSpecial: false)
    }

    static func compare(_ values: [String], _ expected: String??, what: String) -> String? {
        switch expected {
        case .none: return nil
        case .some(.none):
            return values.isEmpty ? nil : "it has the \(what) (\(values.joined(separator: ", "))), which must be absent"
        case .some(.some(let pattern)):
            guard !values.isEmpty else { return "it has no \(what)" }
            return values.contains { Self.value($0, matches: pattern) }
                ? nil : "its \(what) is '\(values.joined(separator: ", "))', not '\(pattern)'"
        }
    }
}

extension RecordedCall {
    init(
        id: Int64,
        time: Date,
        service: String?,
        method: String,
        path: String,
        query: String?,
        status: Int,
        requestHeaders: [String: String]
    ) {
        self.id = id
        self.time = time
        self.service = service
        self.method = method
        self.path = path
        self.query = query
        self.status = status
        self.reason = nil
        self.subjectDN = nil
        self.requestHeaders = requestHeaders
        self.requestBody = nil
        self.responseHeaders = [:]
        self.responseBody = nil
    }
}

/// A predicate on a body: select values (FHIRPath for JSON, a path of element names for XML, a form field, or the
/// raw text), then require that they exist (default), equal or match a pattern, or count so many.
public struct BodyPredicate: Codable, Sendable, Equatable {
    /// FHIRPath (the FHIRCore subset) on a JSON body.
    public var fhirpath: String?
    /// XML: element local names separated by `/`, `//` at the start for "anywhere", an optional last `@attribute`
    /// (`//Prenom`, `//TIQ/ListePrenom`, `//queryResponseCode/@code`).
    public var xpath: String?
    /// A field of an `application/x-www-form-urlencoded` body.
    public var form: String?
    /// The body contains this text.
    public var contains: String?
    public var equals: String?
    /// `*` any characters.
    public var matches: String?
    public var exists: Bool?
    public var count: Int?

    public init(
        fhirpath: String? = nil,
        xpath: String? = nil,
        form: String? = nil,
        contains: String? = nil,
        equals: String? = nil,
        matches: String? = nil,
        exists: Bool? = nil,
        count: Int? = nil
    ) {
        self.fhirpath = fhirpath
        self.xpath = xpath
        self.form = form
        self.contains = contains
        self.equals = equals
        self.matches = matches
        self.exists = exists
        self.count = count
    }

    func problem() -> String? {
        let selectors = [fhirpath, xpath, form, contains].compactMap { $0 }
        guard selectors.count == 1 else { return "a body predicate has one of fhirpath, xpath, form or contains" }
        if let fhirpath {
            do { _ = try FHIRPath.parsed(fhirpath) } catch { return error.description }
        }
        return nil
    }

    var label: String { fhirpath ?? xpath ?? form.map { "form field \($0)" } ?? "text '\(contains ?? "")'" }

    func mismatch(_ body: Data?, contentType: String?) -> String? {
        if let contains {
            let found = body.map { String(decoding: $0, as: UTF8.self).contains(contains) } ?? false
            return found == (exists ?? true) ? nil : (found ? "it contains '\(contains)'" : "no '\(contains)' in it")
        }
        let values = select(body ?? Data())
        if let count, values.count != count { return "\(label) gives \(values.count) values, not \(count)" }
        if let equals, !values.contains(equals) {
            return "\(label) is \(values.isEmpty ? "absent" : "'\(values.joined(separator: "', '"))'"), not '\(equals)'"
        }
        if let matches, !values.contains(where: { Glob.matches(matches, $0, slashIsSpecial: false) }) {
            return
                "\(label) is \(values.isEmpty ? "absent" : "'\(values.joined(separator: "', '"))'"), not '\(matches)'"
        }
        if count == nil, equals == nil, matches == nil, values.isEmpty == (exists ?? true) {
            return values.isEmpty ? "\(label) is absent" : "\(label) is present, and must not be"
        }
        return nil
    }

    func select(_ body: Data) -> [String] {
        if let fhirpath {
            guard let path = try? FHIRPath.parsed(fhirpath), let json = try? JSON(parsing: body),
                let object = json.object
            else { return [] }
            return path.evaluate(on: object).map { Self.text($0.value) }
        }
        if let form {
            return FormEncoding.items(String(decoding: body, as: UTF8.self)).filter { $0.0 == form }.map(\.1)
        }
        if let xpath {
            guard let root = try? HardenedXMLParser(maximumBytes: 32 << 20).parse(body) else { return [] }
            return XMLPath(xpath).values(in: root)
        }
        return []
    }

    static func text(_ value: JSON) -> String {
        switch value {
        case .string(let text): text
        case .bool(let bool): String(bool)
        case .number(let number): number.text
        case .null: ""
        default: value.text
        }
    }
}

/// The XML path subset of ``BodyPredicate/xpath``.
struct XMLPath {
    var anywhere: Bool
    var names: [String]
    var attribute: String?

    init(_ text: String) {
        anywhere = text.hasPrefix("//")
        var parts = text.split(separator: "/").map(String.init)
        if let last = parts.last, last.hasPrefix("@") {
            attribute = String(last.dropFirst())
            parts.removeLast()
        }
        names = parts
    }

    func values(in root: SOAPElement) -> [String] {
        guard let first = names.first else { return [] }
        var current: [SOAPElement] =
            anywhere ? ([root] + root.descendants).filter { $0.name == first } : (root.name == first ? [root] : [])
        for name in names.dropFirst() {
            current = current.flatMap { $0.children.filter { $0.name == name } }
        }
        return current.compactMap { element in attribute.map { element.attributes[$0] } ?? element.text }
    }
}

/// `*` (no `/` when `slashIsSpecial`), `**` (anything) and `?` (one character) patterns.
enum Glob {
    static func matches(_ pattern: String, _ text: String, slashIsSpecial: Bool = true) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        var memo: [Int: Bool] = [:]
        func match(_ i: Int, _ j: Int) -> Bool {
            let key = i * (t.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if i == p.count {
                result = j == t.count
            } else if p[i] == UInt8(ascii: "?") {
                result = j < t.count && match(i + 1, j + 1)
            } else if p[i] == UInt8(ascii: "*") {
                let double = i + 1 < p.count && p[i + 1] == UInt8(ascii: "*")
                let next = double ? i + 2 : i + 1
                let crossesSlash = double || !slashIsSpecial
                result =
                    match(next, j)
                    || (j < t.count && (crossesSlash || t[j] != UInt8(ascii: "/")) && match(i, j + 1))
            } else {
                result = j < t.count && p[i] == t[j] && match(i + 1, j + 1)
            }
            memo[key] = result
            return result
        }
        return match(0, 0)
    }
}
